"""The warehouse schemas that exist before dbt runs: raw tables, state, quarantine, report
deliveries.

The DDL lives in ``ddl/*.sql`` (applied in file-name order, each file idempotent), so the
Python here only decides *when* to apply it.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

from touchpoint.config import load_pseudonym_secret, load_roles
from touchpoint.errors import ConfigError
from touchpoint.sources.catalog import ALL_STREAMS
from touchpoint.warehouse.connection import connect, role_url


def ddl_files() -> list[tuple[str, str]]:
    folder = resources.files("touchpoint.warehouse") / "ddl"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text()) for f in files]


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create every pre-dbt schema object that is missing, including a raw table per declared
    stream, and the stage roles with their grants (``ddl/006_roles.sql``). Safe to run at any time.

    The DDL runs as the login user (the warehouse's owner) even on a connection that has taken
    a stage's role, which could not create it; the connection's role is the same afterwards."""
    roles, secret = load_roles(), load_pseudonym_secret()
    with conn.transaction():
        stage_role = conn.execute("select current_user::text, session_user::text").fetchone()
        assert stage_role is not None
        conn.execute("set local role none")
        # Serialise concurrent first runs (parallel extract tasks) on the same DDL.
        conn.execute("select pg_advisory_xact_lock(hashtext('touchpoint.ensure_schema'))")
        for key, name in (
            ("loader", roles.loader),
            ("transformer", roles.transformer),
            ("analyst", roles.analyst),
            ("reporter", roles.reporter),
        ):
            conn.execute("select set_config(%s, %s, true)", (f"touchpoint.role_{key}", name))
        conn.execute("select set_config('touchpoint.pseudonym_secret', %s, true)", (secret or "",))
        for _name, ddl in ddl_files():
            conn.execute(ddl)
        if secret is not None:
            stored = conn.execute("select secret from privacy.pseudonym_key").fetchone()
            if stored is None or stored[0] != secret:
                raise ConfigError(
                    "TOUCHPOINT_PSEUDONYM_SECRET is not the secret this warehouse keys its"
                    " customers with: unset it, or re-key every customer as README"
                    ' "Pseudonymous keys" says'
                )
        for stream in ALL_STREAMS:
            schema, table = stream.table.split(".")
            assert schema == "raw", f"stream {stream.name} must land in schema raw"
            conn.execute("select raw._create_stream_table(%s, %s)", (table, stream.source == "crm"))
        # Inside a caller's transaction this block is a savepoint, and SET LOCAL lasts until the
        # outer transaction ends: take the stage's role back explicitly.
        if stage_role[0] != stage_role[1]:
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(stage_role[0])))


def stage_url(warehouse_url: str, role: str) -> str:
    """The URL a stage connects with to run as its ``role``, once the warehouse's owner has
    made sure of the schema (and so of the role): for steps that open their own connections."""
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
    return role_url(warehouse_url, role)
