"""The raw layer's lock: loads share it, a dbt build (or an erasure's deletes) takes it alone.

Staging reads the raw rows loaded after the newest load it already holds, and the models after
it read what changed after their own last build: both rely on no load committing rows stamped
before a build while that build runs. So every load holds the lock shared for as long as it
writes, and every build holds it exclusively from its first read to its end. A build waits for
the loads in flight, and loads wait for the build, each saying so in its log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from touchpoint.warehouse.connection import connect

log = logging.getLogger(__name__)

#: pg_advisory_lock(key1, key2): the namespace and the lock of the raw layer
_KEY1, _KEY2 = "hashtext('touchpoint')", "hashtext('raw layer')"
_KEYS = f"{_KEY1}, {_KEY2}"


def _holders(conn: psycopg.Connection) -> str:
    rows = conn.execute(
        "select a.pid, coalesce(nullif(a.application_name, ''), a.usename::text),"
        " l.mode = 'ExclusiveLock'"
        " from pg_locks l join pg_stat_activity a using (pid)"
        " where l.locktype = 'advisory' and l.granted and l.objsubid = 2"
        f" and (l.classid, l.objid) = (({_KEY1})::oid, ({_KEY2})::oid)"
        " and a.pid <> pg_backend_pid()"
    ).fetchall()
    return ", ".join(
        f"{'a build' if exclusive else 'a load'} (pid {pid}, {who})" for pid, who, exclusive in rows
    )


def take_shared(conn: psycopg.Connection, what: str) -> None:
    """Hold the lock shared on ``conn`` (a load) until :func:`release_shared`."""
    with conn.transaction():
        got = conn.execute(f"select pg_try_advisory_lock_shared({_KEYS})").fetchone()
        if got and got[0]:
            return
        log.warning("%s: waiting for the raw layer, held by %s", what, _holders(conn) or "?")
        conn.execute(f"select pg_advisory_lock_shared({_KEYS})")


def release_shared(conn: psycopg.Connection) -> None:
    try:
        with conn.transaction():
            conn.execute(f"select pg_advisory_unlock_shared({_KEYS})")
    except psycopg.Error:
        pass  # a broken connection has released its session locks already


@contextmanager
def raw_layer_alone(warehouse_url: str, what: str) -> Iterator[None]:
    """Hold the lock exclusively for the block, on a connection of its own (a dbt build runs in
    another process): no load writes raw meanwhile."""
    with connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "select set_config('application_name', %s, false)", (f"touchpoint {what}"[:63],)
        )
        got = conn.execute(f"select pg_try_advisory_lock({_KEYS})").fetchone()
        if not (got and got[0]):
            log.warning(
                "%s: waiting for the loads in flight to finish: %s", what, _holders(conn) or "?"
            )
            conn.execute(f"select pg_advisory_lock({_KEYS})")
        try:
            yield
        finally:
            try:
                conn.execute(f"select pg_advisory_unlock({_KEYS})")
            except psycopg.Error:
                pass


def take_alone_in_transaction(conn: psycopg.Connection, what: str) -> None:
    """Inside a transaction: hold the lock exclusively until it ends (an erasure's deletes)."""
    got = conn.execute(f"select pg_try_advisory_xact_lock({_KEYS})").fetchone()
    if not (got and got[0]):
        log.warning("%s: waiting for the raw layer, held by %s", what, _holders(conn) or "?")
        conn.execute(f"select pg_advisory_xact_lock({_KEYS})")
