"""Shared test fixtures: one PostgreSQL cluster per session (under var/test), a fresh database
per test that needs one, a real SMTP sink and a real CRM simulator on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]
# Parallel test sessions (several engineers on one machine) pass their own var dir and port.
TEST_VAR = Path(os.environ.get("TOUCHPOINT_TEST_VAR", str(REPO / "var" / "test")))
TEST_PG_PORT = int(os.environ.get("TOUCHPOINT_TEST_PG_PORT", "54339"))
# `make test` runs the suite in parallel (pytest-xdist): each worker gets its own cluster, var
# dir and Airflow home, so no two workers share a port, a sqlite metadata DB or a manifest.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER:
    TEST_VAR = TEST_VAR / _WORKER
    TEST_PG_PORT += 100 + int(_WORKER.removeprefix("gw") or 0)
SIM_START = date(2026, 10, 5)

# Settings for everything the tests start in-process: kept apart from the demo's var/.
os.environ.update({
    "TOUCHPOINT_VAR_DIR": str(TEST_VAR),
    "TOUCHPOINT_PG_PORT": str(TEST_PG_PORT),
    "TOUCHPOINT_TASK_RETRIES": "0",
    "MPLCONFIGDIR": str(TEST_VAR / "cache" / "matplotlib"),
})
os.environ.pop("TOUCHPOINT_WAREHOUSE_URL", None)

from touchpoint.config import Settings, load_settings
from touchpoint.local.mail_sink import MailSink
from touchpoint.local.cluster import EmbeddedCluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``touchpoint ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "touchpoint", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=timeout,
    )


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def cluster_url(settings: Settings) -> str:
    """The session's cluster (started once, left running for the next session)."""
    EmbeddedCluster(settings).start(log=lambda m: None)
    return f"postgresql://{settings.pg_user}@127.0.0.1:{settings.pg_port}/postgres"


def create_db(cluster_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return cluster_url.rsplit("/", 1)[0] + f"/{name}"


def drop_db(cluster_url: str, url: str) -> None:
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


def mart_checksums(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent md5 of every mart: equal iff the marts are equal."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1")]
        return {t: tuple(conn.execute(
            f"select count(*), coalesce(md5(string_agg(md5(m::text), '' order by md5(m::text))), '')"
            f" from marts.{t} as m").fetchone()) for t in tables}


def drop_fact_unique_indexes(url: str) -> None:
    """Drop marts.fct_touchpoints' unique index, as a broken build might have, so a test can
    inject the duplicate or null keys the data-quality suites must catch."""
    with psycopg.connect(url, autocommit=True) as conn:
        for (index,) in conn.execute("select indexname from pg_indexes where schemaname = 'marts'"
                                     " and tablename = 'fct_touchpoints' and indexdef like 'CREATE UNIQUE%'").fetchall():
            conn.execute(f'drop index marts."{index}"')


@pytest.fixture
def fresh_db(cluster_url: str) -> Iterator[str]:
    """A new, empty database for one test; dropped afterwards."""
    url = create_db(cluster_url)
    yield url
    drop_db(cluster_url, url)


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail", port=free_port()) as sink:
        yield sink


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory):
    """A small simulated world written to landing files (60 customers, 2 weeks)."""
    from touchpoint_sim.population import generate
    from touchpoint_sim.writers import write_world

    root = tmp_path_factory.mktemp("world")
    world = generate(customers=60, weeks=2, seed=11, start=SIM_START)
    manifest = write_world(world, root / "landing", root / "sim")
    return {"world": world, "landing": root / "landing", "sim": root / "sim", "manifest": manifest}


@pytest.fixture
def crm_server(small_world):
    from touchpoint_sim.crm_server import CrmData, CrmServer

    server = CrmServer(CrmData.from_dir(small_world["sim"] / "crm"), port=0).start_in_thread()
    yield server
    server.shutdown()


@pytest.fixture
def settings_for(settings: Settings, small_world):
    """Settings whose landing URL points at the small world."""
    return replace(settings, landing_url=str(small_world["landing"]))


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest(settings: Settings) -> Path:
    """The manifest the DAGs render dbt from, fresh for this session's dbt project."""
    from touchpoint.transform.dbt import ensure_manifest

    return ensure_manifest(settings.dbt_project_dir, settings.var_dir)[0]


@pytest.fixture(scope="session")
def built_world(cluster_url: str, settings: Settings, small_world) -> Iterator[str]:
    """The small world's two weeks extracted and built by dbt, once per session. Read it, or
    damage a copy of it (``built_copy``): it is the template those copies are made from."""
    from datetime import UTC, datetime, timedelta

    from touchpoint import pipeline
    from touchpoint.extract.run import CrmEndpoint
    from touchpoint_sim.crm_server import CrmData, CrmServer

    start = datetime.combine(SIM_START, datetime.min.time(), UTC)
    url = create_db(cluster_url)
    local = replace(settings, landing_url=str(small_world["landing"]))
    crm = CrmServer(CrmData.from_dir(small_world["sim"] / "crm"), port=0).start_in_thread()
    try:
        for source in ("crm", "email", "web"):
            pipeline.extract(source, start, start + timedelta(weeks=2), url, local,
                             crm=CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0))
        pipeline.transform(url, local)
        # as the ingest DAG does after each interval: the weekly report waits for these
        for day in range(14):
            pipeline.record_ingested(start + timedelta(days=day), start + timedelta(days=day + 1), url, "built_world")
    finally:
        crm.shutdown()
    yield url
    drop_db(cluster_url, url)


@pytest.fixture
def built_copy(cluster_url: str, built_world: str) -> Iterator[str]:
    """A private copy of the built small world (``create database ... template``), for a test
    that writes to it."""
    name, template = f"c_{uuid.uuid4().hex[:12]}", built_world.rsplit("/", 1)[1]
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        # a template must have no other session (a pooled GX engine may still hold one)
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (template,))
        conn.execute(f'create database "{name}" template "{template}"')
    url = cluster_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    drop_db(cluster_url, url)
