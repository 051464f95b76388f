"""Shared test fixtures: one PostgreSQL cluster per session (under var/test), a fresh database
per test that needs one, a built warehouse to copy (built once per test run, restored into
each worker's cluster), a real SMTP sink and a real CRM simulator on loopback. Helpers the
tests import live in ``tests/helpers``, not here."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
        # one deployment's keys in every test warehouse: the same customer has the same key in
        # two warehouses a test compares, and a test's "first customers by key" are the same
        # from run to run (tests/warehouse/test_roles.py checks the generated secret)
        "TOUCHPOINT_PSEUDONYM_SECRET": "touchpoint-tests-pseudonym-secret-0001",
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
    "e2e/test_soak_week.py",  # 380 (seven daily runs and the weekly report; make soak)
    "e2e/test_demo_end_to_end.py",  # 190
    # two workers busy with a file of their own while the first to need the built world builds
    # it (make test-fast starts here)
    "extract/test_hostile_input.py",  # 30
    "report/test_mail_and_report.py",  # 30
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


@contextmanager
def _only_one_worker_at_a_time(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def run_dir(testrun_uid: str) -> Path:
    """A directory all the workers of this test run share: what one builds, the others reuse.
    Those of earlier runs are removed."""
    base = TEST_VAR.parent if os.environ.get("PYTEST_XDIST_WORKER") else TEST_VAR
    path = base / f"run-{testrun_uid}"
    with _only_one_worker_at_a_time(base / "runs.lock"):
        for old in base.glob("run-*"):
            if old != path and time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def small_world(run_dir: Path):
    """A small simulated world written to landing files (60 customers, 2 weeks), once for all
    the workers (its files; each worker makes the same World in memory)."""
    from touchpoint_sim.population import generate
    from touchpoint_sim.writers import write_world

    root = run_dir / "world"
    world = generate(customers=60, weeks=2, seed=11, start=SIM_START)
    with _only_one_worker_at_a_time(run_dir / "world.lock"):
        written = root / "manifest.json"
        if not written.exists():
            manifest = write_world(world, root / "landing", root / "sim")
            written.write_text(json.dumps(manifest))
        manifest = json.loads(written.read_text())
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
def dbt_manifest(settings: Settings, run_dir: Path) -> Path:
    """The manifest the DAGs render dbt from, fresh for this session's dbt project: parsed by
    the first worker, copied (with its times, so it counts as fresh) into the others' var."""
    from touchpoint.transform.dbt import ensure_manifest, manifest_path

    shared = run_dir / "dbt-manifest"
    with _only_one_worker_at_a_time(run_dir / "dbt-manifest.lock"):
        if shared.exists():
            target = manifest_path(settings.var_dir).parent
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(shared, target)
        else:
            path, _ = ensure_manifest(settings.dbt_project_dir, settings.var_dir)
            shutil.copytree(path.parent, shared)
    return ensure_manifest(settings.dbt_project_dir, settings.var_dir)[0]


@pytest.fixture(scope="session")
def built_world(cluster_url: str, settings: Settings, small_world, run_dir: Path) -> Iterator[str]:
    """The small world's two weeks extracted and built by dbt, once per test run: the first
    worker that needs it builds it and dumps it, the others restore the dump into their own
    cluster. Read it, or damage a copy of it (``built_copy``): it is the template those copies
    are made from."""
    from touchpoint.local.cluster import find_pg_bin
    from touchpoint.warehouse.schema import ensure_schema

    url = create_db(cluster_url)
    dump = run_dir / "built_world.dump"
    bin_dir = find_pg_bin(settings)
    with _only_one_worker_at_a_time(run_dir / "built_world.lock"):
        if dump.exists():
            # the stage roles are the cluster's: made by the schema's DDL on a scratch database
            scratch = create_db(cluster_url)
            with psycopg.connect(scratch) as conn:
                ensure_schema(conn)
            drop_db(cluster_url, scratch)
            subprocess.run(
                [str(bin_dir / "pg_restore"), "--exit-on-error", "-d", url, str(dump)],
                check=True,
                capture_output=True,
            )
        else:
            _build_small_world(url, settings, small_world)
            subprocess.run(
                [str(bin_dir / "pg_dump"), "-Fc", "-f", str(dump), url],
                check=True,
                capture_output=True,
            )
    yield url
    drop_db(cluster_url, url)


def _build_small_world(url: str, settings: Settings, small_world) -> None:
    from datetime import UTC, datetime, timedelta

    from touchpoint import pipeline
    from touchpoint.extract.run import CrmEndpoint
    from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

    start = datetime.combine(SIM_START, datetime.min.time(), UTC)
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


@pytest.fixture
def built_copy(cluster_url: str, built_world: str) -> Iterator[str]:
    """A private copy of the built small world (``create database ... template``), for a test
    that writes to it."""
    url = create_db(cluster_url, template=built_world)
    yield url
    drop_db(cluster_url, url)
