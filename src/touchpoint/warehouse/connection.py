"""Connections to the warehouse, with errors that say which server failed and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from touchpoint.errors import WarehouseError


def redact(url: str) -> str:
    """The URL with its password replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def libpq_url(url: str) -> str:
    """Normalise SQLAlchemy-style URLs (``postgresql+psycopg://``) for libpq."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise WarehouseError(f"warehouse URL {redact(url)!r} is not a postgresql:// URL")
    if scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise WarehouseError(f"warehouse URL {redact(url)!r} is not a postgresql:// URL")
    return f"postgresql://{rest}"


@dataclass(frozen=True)
class UrlParts:
    """A warehouse URL split into what dbt profiles and Airflow connections want."""

    host: str
    port: int
    user: str
    password: str
    dbname: str


def url_parts(url: str) -> UrlParts:
    parts = urlsplit(libpq_url(url))
    return UrlParts(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                    user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                    dbname=parts.path.lstrip("/") or "postgres")


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection or raise a one-line :class:`WarehouseError`."""
    try:
        return psycopg.connect(libpq_url(url), autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(
            f"cannot connect to the warehouse at {redact(url)}: {reason}; "
            "check that the server runs and TOUCHPOINT_WAREHOUSE_URL (or the warehouse connection) is right"
        ) from None
