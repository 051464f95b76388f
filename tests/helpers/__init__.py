"""Helpers the tests share: paths, ports, the CLI as a user runs it, and databases on the test
cluster (fresh, dropped, copied from a template, compared)."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
# Parallel test sessions (several engineers on one machine) pass their own var dir and port.
TEST_VAR = Path(os.environ.get("TOUCHPOINT_TEST_VAR", str(REPO / "var" / "test")))
TEST_PG_PORT = int(os.environ.get("TOUCHPOINT_TEST_PG_PORT", "54339"))
# `make test` runs the suite in parallel (pytest-xdist): each worker gets its own cluster, var
# dir and Airflow home, so no two workers share a port, a sqlite metadata DB or a manifest.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER:
    TEST_VAR = TEST_VAR / _WORKER
    TEST_PG_PORT += 100 + int(_WORKER.removeprefix("gw") or 0)
#: the first day of every simulated world in the tests (a Monday)
SIM_START = date(2026, 10, 5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``touchpoint ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "touchpoint", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def _sibling(cluster_url: str, name: str) -> str:
    return cluster_url.rsplit("/", 1)[0] + f"/{name}"


def create_db(cluster_url: str, template: str | None = None) -> str:
    """A new database on the cluster, empty or a copy of ``template`` (a database URL).

    Named by the lowest free number (each worker has a cluster of its own), so later tests
    reuse the names of dropped databases and dbt's saved parse for that name
    (``touchpoint.transform.dbt.target_dir``) instead of parsing the project again."""
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        taken = {
            row[0]
            for row in conn.execute("select datname from pg_database where datname ~ '^t_[0-9]+$'")
        }
        name = next(f"t_{n}" for n in itertools.count() if f"t_{n}" not in taken)
        if template is None:
            conn.execute(f'create database "{name}"')
        else:
            source = template.rsplit("/", 1)[1]
            # a template must have no other session (a pooled GX engine may still hold one)
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (source,),
            )
            conn.execute(f'create database "{name}" template "{source}"')
    return _sibling(cluster_url, name)


def drop_db(cluster_url: str, url: str) -> None:
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


NUMBER_TYPES = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}


#: marts that record what the builds saw rather than derive from the data: the customer-key
#: change map is the identity snapshot's history, so a warehouse built in steps that merged two
#: customers has rows a single full build of the same data never had
BUILD_HISTORY = frozenset({"dim_customer_key_changes"})


def mart_checksums(
    url: str, also: tuple[str, ...] = (), sums_of_deltas: tuple[str, ...] = ()
) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent md5 of every mart, and of the tables ``also`` names
    (``schema.table``): equal iff they are equal. The ``also`` tables' columns named ``_*``
    (when a row was written) are left out: two builds of the same rows differ there. In the
    tables of ``sums_of_deltas`` (totals kept by adding deltas, which keep a group whose numbers
    fell back to 0 so that the models after them see it change) rows whose numbers are all 0
    are left out: a full build writes no such row. The marts of :data:`BUILD_HISTORY` are
    left out too."""
    with psycopg.connect(url) as conn:
        tables = [
            f"marts.{r[0]}"
            for r in conn.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'marts' order by 1"
            )
            if r[0] not in BUILD_HISTORY
        ] + list(also)
        sums = {}
        for table in tables:
            schema, name = table.split(".")
            described = [
                (column, kind)
                for column, kind in conn.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = %s and table_name = %s order by ordinal_position",
                    (schema, name),
                )
                if schema == "marts" or not column.startswith("_")
            ]
            assert described, f"no table {table}"
            # a number's value, not its scale: 0.0000 kept by adding deltas is the 0 of a full build
            row_text = (
                "row("
                + ", ".join(
                    f'trim_scale(m."{c}")' if kind == "numeric" else f'm."{c}"'
                    for c, kind in described
                )
                + ")::text"
            )
            where = ""
            if table in sums_of_deltas:  # a row all of whose numbers are 0 is no row
                numbers = [c for c, kind in described if kind in NUMBER_TYPES]
                where = " where " + " or ".join(f'm."{c}" <> 0' for c in numbers)
            row = conn.execute(
                f"select count(*), coalesce(md5(string_agg(md5({row_text}), ''"
                f" order by md5({row_text}))), '') from {schema}.{name} as m{where}"
            ).fetchone()
            assert row is not None
            sums[name if schema == "marts" else table] = (int(row[0]), str(row[1]))
        return sums


def drop_fact_unique_indexes(url: str) -> None:
    """Drop marts.fct_touchpoints' unique index, as a broken build might have, so a test can
    inject the duplicate or null keys the data-quality suites must catch."""
    with psycopg.connect(url, autocommit=True) as conn:
        for (index,) in conn.execute(
            "select indexname from pg_indexes where schemaname = 'marts'"
            " and tablename = 'fct_touchpoints' and indexdef like 'CREATE UNIQUE%'"
        ).fetchall():
            conn.execute(f'drop index marts."{index}"')
