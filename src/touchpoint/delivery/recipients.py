"""``reports/recipients.yml``: who gets the report and which slice of it, validated with errors
that name the entry.

A slice is a region and/or a business unit; the allowed values are those of the dbt seeds
``regions`` and ``business_units`` (the marts are built for exactly those)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale, UnknownLocaleError

from touchpoint.errors import ConfigError
from touchpoint.i18n import LANGUAGES, language_of

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_RECIPIENT_KEYS = {"address", "name", "timezone", "locale", "language", "filters"}
_FILTER_KEYS = {"region", "business_unit"}
_TOP_KEYS = {"recipients", "alerts", "sender"}


#: a slice field that filters nothing
ALL = "(all)"


@dataclass(frozen=True)
class Slice:
    region: str = ALL
    business_unit: str = ALL

    @property
    def is_everything(self) -> bool:
        return self.region == ALL and self.business_unit == ALL

    @property
    def label(self) -> str:
        parts = []
        if self.region != ALL:
            parts.append(f"region {self.region}")
        if self.business_unit != ALL:
            parts.append(f"{self.business_unit} channels")
        return ", ".join(parts) or "whole company"


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str
    timezone: str = "UTC"
    #: how numbers and dates are written (fr_FR: 1 234,5)
    locale: str = "en_GB"
    slice: Slice = field(default_factory=Slice)
    #: the language the report is written in (it, fr, en); None: the locale's, when a catalog
    #: speaks it, else English
    language: str | None = None

    @property
    def reads(self) -> str:
        """The language this recipient's report is written in."""
        return self.language or language_of(self.locale)


@dataclass(frozen=True)
class SliceValues:
    """The regions and business units a recipient may filter on."""

    regions: frozenset[str]
    business_units: frozenset[str]

    @classmethod
    def from_seeds(cls, dbt_project_dir: Path) -> SliceValues:
        def column(seed: str, name: str) -> frozenset[str]:
            with (dbt_project_dir / "seeds" / f"{seed}.csv").open(newline="") as f:
                return frozenset(row[name] for row in csv.DictReader(f))

        return cls(
            column("regions", "region") | {"Unknown"}, column("business_units", "business_unit")
        )


@dataclass(frozen=True)
class RecipientList:
    sender: str
    recipients: tuple[Recipient, ...]
    alerts: tuple[Recipient, ...]


def _slice(filters: object, where: str, known: SliceValues | None) -> Slice:
    if filters is None:
        return Slice()
    if not isinstance(filters, dict):
        raise ConfigError(
            f"{where}: filters must be a mapping like {{region: EMEA}}, got {filters!r}"
        )
    unknown = set(filters) - _FILTER_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown filter(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_FILTER_KEYS))}"
        )
    region, unit = str(filters.get("region", ALL)), str(filters.get("business_unit", ALL))
    if known is not None:
        if region != ALL and region not in known.regions:
            raise ConfigError(
                f"{where}: unknown region {region!r}; known: {', '.join(sorted(known.regions))} "
                "(dbt_project/seeds/regions.csv)"
            )
        if unit != ALL and unit not in known.business_units:
            raise ConfigError(
                f"{where}: unknown business unit {unit!r}; known: "
                f"{', '.join(sorted(known.business_units))} (dbt_project/seeds/business_units.csv)"
            )
    return Slice(region=region, business_unit=unit)


def _recipient(entry: object, where: str, known: SliceValues | None = None) -> Recipient:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with address and name, got {entry!r}")
    unknown = set(entry) - _RECIPIENT_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_RECIPIENT_KEYS))}"
        )
    address = str(entry.get("address", "")).strip()
    if not _ADDRESS.match(address):
        raise ConfigError(f"{where}: {address!r} is not an email address")
    timezone = str(entry.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: unknown time zone {timezone!r} (use an IANA name like Europe/Paris)"
        ) from None
    locale = str(entry.get("locale", "en_GB"))
    try:
        Locale.parse(locale)
    except (ValueError, UnknownLocaleError):
        raise ConfigError(
            f"{where}: unknown locale {locale!r} (use a name like en_GB or fr_FR)"
        ) from None
    language = entry.get("language")
    if language is not None and str(language) not in LANGUAGES:
        raise ConfigError(
            f"{where}: no report in language {language!r}; available: {', '.join(LANGUAGES)} "
            "(reports/locales)"
        )
    return Recipient(
        address=address,
        name=str(entry.get("name") or address),
        timezone=timezone,
        locale=locale,
        slice=_slice(entry.get("filters"), where, known),
        language=None if language is None else str(language),
    )


def load_recipients(path: Path, known: SliceValues | None = None) -> RecipientList:
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
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_TOP_KEYS))}"
        )
    sender = str(data.get("sender", "")).strip()
    if not _ADDRESS.match(sender.split("<")[-1].rstrip(">").strip()):
        raise ConfigError(f"{path}: sender {sender!r} is not an email address")
    recipients = tuple(
        _recipient(e, f"{path}: recipients[{i}]", known)
        for i, e in enumerate(data.get("recipients") or [])
    )
    alerts = tuple(
        _recipient(e, f"{path}: alerts[{i}]") for i, e in enumerate(data.get("alerts") or [])
    )
    if not recipients:
        raise ConfigError(f"{path}: no recipients listed")
    seen: set[str] = set()
    for i, r in enumerate(recipients):
        if r.address.lower() in seen:
            raise ConfigError(
                f"{path}: recipients[{i}]: {r.address} is listed twice (one report per address)"
            )
        seen.add(r.address.lower())
    return RecipientList(sender=sender, recipients=recipients, alerts=alerts)
