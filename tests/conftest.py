"""Shared test fixtures: one PostgreSQL cluster per session (under var/test), a fresh database
per test that needs one, a built warehouse to copy, a real SMTP sink and a real CRM simulator
on loopback. Helpers the tests import live in ``tests/helpers``, not here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import SIM_START, TEST_PG_PORT, TEST_VAR, create_db, drop_db, free_port

# Settings for everything the tests start in-process: kept apart from the demo's var/.
os.environ.update(
    {
        "TOUCHPOINT_VAR_DIR": str(TEST_VAR),
        "TOUCHPOINT_PG_PORT": str(TEST_PG_PORT),
        "TOUCHPOINT_TASK_RETRIES": "0",
        "MPLCONFIGDIR": str(TEST_VAR / "cache" / "matplotlib"),
    }
)
os.environ.pop("TOUCHPOINT_WAREHOUSE_URL", None)

from touchpoint.config import Settings, load_settings
from touchpoint.local.cluster import EmbeddedCluster
from touchpoint.local.mail_sink import MailSink

# `make test` runs TEST_WORKERS workers (3), one file at a time each (--dist loadfile), in
# this order: the longest files first, so no worker is left alone with one at the end. Files
# not named here follow in collection order. Seconds from `pytest --durations=0` on an idle
# 2-core machine.
LONGEST_FIRST = (
    "orchestration/test_celery_executor.py",  # 300 (the two-day backfill)
    "e2e/test_demo_end_to_end.py",  # 190
    "quality/test_data_quality.py",  # 200 with the built world
    "report/test_weekly_report.py",  # 110
    "warehouse/test_incremental_equals_full.py",  # 100
    "privacy/test_consent.py",  # 80
    "warehouse/test_roles.py",  # 65
    "e2e/test_planted_incidents.py",  # 60
    "privacy/test_privacy_erasure.py",  # 40
    "warehouse/test_signals.py",  # 40
    "orchestration/test_airflow_ui.py",  # 30
    "warehouse/test_identity_stability.py",  # 30
    "warehouse/test_identity_resolution.py",  # 30
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """loadfile, but a worker gets its next file only when it is down to the last test of the
    one it has (which it holds until more work comes): xdist's own tops a worker up as soon as
    it has two tests left, so a short file waited behind the Celery backfill's long test."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # keep LONGEST_FIRST, not xdist's most-tests-first

    class OneFileAhead(LoadFileScheduling):
        def _reschedule(self, node: Any) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    return OneFileAhead(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    rank = {name: number for number, name in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(tests).as_posix(), len(rank))

    items.sort(key=order)  # stable: within a file, and among unnamed files, collection order


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def cluster_url(settings: Settings) -> str:
    """The session's cluster (started once, left running for the next session).

    A throwaway cluster: the tests turn its durability off (no test crashes the machine, and a
    killed PostgreSQL loses nothing committed either way), which the product never does; the
    product's own settings are checked on clusters of their own (test_warehouse_cli,
    test_crash_recovery)."""
    EmbeddedCluster(settings).start(log=lambda m: None)
    url = settings.embedded_url_for("postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"alter system set {name} = off")
        conn.execute("select pg_reload_conf()")
    return url


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
    from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

    server = CrmServer(
        CrmData.from_dir(small_world["sim"] / "crm"), port=0, **NO_LIMITS
    ).start_in_thread()
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
    from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

    start = datetime.combine(SIM_START, datetime.min.time(), UTC)
    url = create_db(cluster_url)
    local = replace(settings, landing_url=str(small_world["landing"]))
    crm = CrmServer(
        CrmData.from_dir(small_world["sim"] / "crm"), port=0, **NO_LIMITS
    ).start_in_thread()
    try:
        for source in ("crm", "email", "web"):
            pipeline.extract(
                source,
                start,
                start + timedelta(weeks=2),
                url,
                local,
                crm=CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0),
            )
        pipeline.transform(url, local)
        # as the ingest DAG does after each interval: the weekly report waits for these
        for day in range(14):
            pipeline.record_ingested(
                start + timedelta(days=day), start + timedelta(days=day + 1), url, "built_world"
            )
    finally:
        crm.shutdown()
    yield url
    drop_db(cluster_url, url)


@pytest.fixture
def built_copy(cluster_url: str, built_world: str) -> Iterator[str]:
    """A private copy of the built small world (``create database ... template``), for a test
    that writes to it."""
    url = create_db(cluster_url, template=built_world)
    yield url
    drop_db(cluster_url, url)
