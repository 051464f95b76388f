"""``reports/recipients.yml``: who gets the report, validated with errors that name the line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from touchpoint.errors import ConfigError

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_RECIPIENT_KEYS = {"address", "name", "timezone", "locale"}
_TOP_KEYS = {"recipients", "alerts", "sender"}


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str
    timezone: str = "UTC"
    locale: str = "en_GB"


@dataclass(frozen=True)
class RecipientList:
    sender: str
    recipients: tuple[Recipient, ...]
    alerts: tuple[Recipient, ...]


def _recipient(entry: object, where: str) -> Recipient:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with address and name, got {entry!r}")
    unknown = set(entry) - _RECIPIENT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(_RECIPIENT_KEYS))}")
    address = str(entry.get("address", "")).strip()
    if not _ADDRESS.match(address):
        raise ConfigError(f"{where}: {address!r} is not an email address")
    timezone = str(entry.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {timezone!r} (use an IANA name like Europe/Paris)") from None
    return Recipient(address=address, name=str(entry.get("name") or address),
                     timezone=timezone, locale=str(entry.get("locale", "en_GB")))


def load_recipients(path: Path) -> RecipientList:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read recipients file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys recipients, alerts and sender at the top level")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    sender = str(data.get("sender", "")).strip()
    if not _ADDRESS.match(sender.split("<")[-1].rstrip(">").strip()):
        raise ConfigError(f"{path}: sender {sender!r} is not an email address")
    recipients = tuple(_recipient(e, f"{path}: recipients[{i}]") for i, e in enumerate(data.get("recipients") or []))
    alerts = tuple(_recipient(e, f"{path}: alerts[{i}]") for i, e in enumerate(data.get("alerts") or []))
    if not recipients:
        raise ConfigError(f"{path}: no recipients listed")
    return RecipientList(sender=sender, recipients=recipients, alerts=alerts)
