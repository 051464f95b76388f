"""The warehouse schemas that exist before dbt runs: raw tables, state, quarantine, report deliveries.

The DDL lives in ``ddl/*.sql`` (applied in file-name order, each file idempotent), so the
Python here only decides *when* to apply it.
"""

from __future__ import annotations

from importlib import resources

import psycopg


def ddl_files() -> list[tuple[str, str]]:
    folder = resources.files("touchpoint.warehouse") / "ddl"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text()) for f in files]


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create every pre-dbt schema object that is missing, including a raw table per declared
    stream. Safe to run at any time."""
    from touchpoint.extract.sources import ALL_STREAMS

    with conn.transaction():
        # Serialise concurrent first runs (parallel extract tasks) on the same DDL.
        conn.execute("select pg_advisory_xact_lock(hashtext('touchpoint.ensure_schema'))")
        for _name, sql in ddl_files():
            conn.execute(sql)
        for stream in ALL_STREAMS:
            schema, table = stream.table.split(".")
            assert schema == "raw", f"stream {stream.name} must land in schema raw"
            conn.execute("select raw._create_stream_table(%s)", (table,))
