"""Airflow connections -> the plain settings the product code takes.

Called from inside tasks only (never at DAG-parse time). Credentials live in connections
(``AIRFLOW_CONN_*`` or a secrets backend), never in code.
"""

from __future__ import annotations

from urllib.parse import quote

from touchpoint.delivery.smtp import SmtpSettings
from touchpoint.errors import ConfigError
from touchpoint.extract.run import CrmEndpoint

WAREHOUSE_CONN_ID = "touchpoint_warehouse"
CRM_CONN_ID = "crm_hubspot"
SMTP_CONN_ID = "smtp_default"


def _get(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def warehouse_url(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    conn = _get(conn_id)
    auth = quote(conn.login or "", safe="")
    if conn.password:
        auth += ":" + quote(conn.password, safe="")
    return (
        f"postgresql://{auth}@{conn.host or '127.0.0.1'}:{conn.port or 5432}"
        f"/{conn.schema or 'postgres'}"
    )


def crm_endpoint(conn_id: str = CRM_CONN_ID) -> CrmEndpoint:
    """HubSpot: ``host`` is the base URL (https://api.hubapi.com), ``password`` the private-app
    token; extras ``max_requests_per_second`` and ``max_searches_per_second`` (for every CRM task
    of the deployment together),
    ``max_retry_after_seconds`` and ``search_overlap_minutes`` (defaults: the settings')."""
    conn = _get(conn_id)
    host = (conn.host or "https://api.hubapi.com").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    extra = conn.extra_dejson
    return CrmEndpoint(
        base_url=host,
        token=conn.password or "",
        max_requests_per_second=float(
            extra.get("max_requests_per_second", CrmEndpoint.max_requests_per_second)
        ),
        max_searches_per_second=float(
            extra.get("max_searches_per_second", CrmEndpoint.max_searches_per_second)
        ),
        max_retry_after_seconds=float(
            extra.get("max_retry_after_seconds", CrmEndpoint.max_retry_after_seconds)
        ),
        search_overlap_minutes=float(
            extra.get("search_overlap_minutes", CrmEndpoint.search_overlap_minutes)
        ),
    )


def smtp_settings(conn_id: str = SMTP_CONN_ID) -> SmtpSettings:
    return _smtp_from(_get(conn_id))


def smtp_settings_outside_airflow(settings) -> SmtpSettings:
    """For the CLI: the ``smtp_default`` connection when ``AIRFLOW_CONN_SMTP_DEFAULT`` is set
    (JSON or URI, as Airflow reads it), else the local SMTP sink of the settings (with
    TOUCHPOINT_SMTP_LOGIN / TOUCHPOINT_SMTP_PASSWORD when set)."""
    import os

    value = os.environ.get("AIRFLOW_CONN_" + SMTP_CONN_ID.upper())
    if not value:
        return SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            login=settings.smtp_login,
            password=settings.smtp_password,
        )
    from airflow.models.connection import Connection

    if value.lstrip().startswith("{"):
        return _smtp_from(Connection.from_json(value, conn_id=SMTP_CONN_ID))
    return _smtp_from(Connection(conn_id=SMTP_CONN_ID, uri=value))


_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0", ""}


def extra_flag(extra: dict, name: str) -> bool | None:
    """A boolean of a connection's extras, None when absent. A URI's query string makes every
    extra a string: ``disable_tls=false`` is False here (``bool("false")`` is True), read as
    Airflow's ``to_boolean`` reads strings; anything else is refused."""
    if name not in extra or extra[name] is None:
        return None
    value = extra[name]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"connection {SMTP_CONN_ID}: extra {name}={value!r} is not a boolean")


def _smtp_from(conn) -> SmtpSettings:
    extra = conn.extra_dejson
    disable_ssl, disable_tls = extra_flag(extra, "disable_ssl"), extra_flag(extra, "disable_tls")
    return SmtpSettings(
        host=conn.host or "127.0.0.1",
        port=int(conn.port or 25),
        login=conn.login or None,
        password=conn.password or None,
        # SSL only when asked for (disable_ssl false); STARTTLS whenever the server offers it,
        # always with disable_tls false, never with disable_tls true
        use_ssl=disable_ssl is False,
        starttls=None if disable_tls is None else not disable_tls,
        timeout=float(extra.get("timeout", 30)),
    )
