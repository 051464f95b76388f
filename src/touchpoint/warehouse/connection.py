"""Connections to the warehouse, with errors that say which server failed and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

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
    return UrlParts(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        dbname=parts.path.lstrip("/") or "postgres",
    )


def role_url(url: str, role: str) -> str:
    """The URL of a connection that runs as ``role`` (a group role the login user is a member
    of) from its first statement: libpq's ``options=-c role=...``, so it also works for clients
    that take a URL and nothing else (SQLAlchemy for Great Expectations, a stage's own connect).
    The role must exist: :func:`touchpoint.warehouse.schema.ensure_schema` creates it."""
    parts = urlsplit(libpq_url(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join(v for k, v in query if k == "options")  # a later -c role=... wins
    query = [(k, v) for k, v in query if k != "options"] + [
        ("options", f"{options} -c role={role}".strip())
    ]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def connect(url: str, autocommit: bool = False, role: str | None = None) -> psycopg.Connection:
    """Open a connection or raise a one-line :class:`WarehouseError`; with ``role``, the
    connection runs as that role (:func:`role_url`)."""
    try:
        return psycopg.connect(
            libpq_url(role_url(url, role) if role else url),
            autocommit=autocommit,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        hint = (
            f"; the stage role {role!r} is created by the warehouse's owner when a pipeline "
            "step first runs (ensure_schema), and the login user must be a member of it"
            if role and f'role "{role}"' in reason
            else ""
        )
        raise WarehouseError(
            f"cannot connect to the warehouse at {redact(url)}: {reason}{hint}; "
            "check that the server runs and TOUCHPOINT_WAREHOUSE_URL "
            "(or the warehouse connection) is right"
        ) from None


def set_role(conn: psycopg.Connection, role: str) -> None:
    """Run the rest of this session as ``role`` (``SET ROLE``, kept after the commit it ends
    with)."""
    conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    if not conn.autocommit:
        conn.commit()


def scalar(conn: psycopg.Connection, query: Any, params: Any = None) -> Any:
    """The first column of the first row of ``query`` (an aggregate's one value)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise WarehouseError(f"expected one row, got none from: {str(query)[:120]}")
    return row[0]
