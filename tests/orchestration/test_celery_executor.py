"""Scale-out and backfill: the same DAGs run under the CeleryExecutor, with a Redis broker, a
PostgreSQL metadata database, and the scheduler, dag-processor, api-server and a Celery worker
as separate processes (and a triggerer), as a deployment runs them; a 2-day backfill there
builds exactly the marts of one run over the same two days."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg
import pytest

from helpers import REPO, create_db, drop_db, free_port, mart_checksums
from touchpoint import pipeline
from touchpoint.extract.run import CrmEndpoint
from touchpoint.local.airflow_services import celery_env

DAG_ID = "touchpoint_ingest"
QUEUE = "touchpoint_scale_out"
BACKFILL = {"from": "2026-10-05", "to": "2026-10-06"}  # logical dates, inclusive: two daily runs
DAYS = {"start": "2026-10-05", "end": "2026-10-07"}
# A guard against a hang, not a speed target (that is `make bench`'s job): alone on 2 cores the
# three-day backfill took about 440 s, next to the rest of the suite 650 s (CI once hit 720 s with
# tasks still completing one by one), so the guard sits well above that.
DEADLINE_SECONDS = 1200


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def _wait(what: str, check, services, deadline: float, interval: float = 1.0):
    """Poll ``check`` until it returns something truthy; fail with every service's log tail if
    the deadline passes or a service dies."""
    while True:
        result = check()
        if result:
            return result
        died = services.exited()
        if died or time.monotonic() > deadline:
            reason = f"services exited: {died}" if died else "deadline passed"
            pytest.fail(f"waiting for {what}: {reason}\n{services.report()}", pytrace=False)
        time.sleep(interval)


def _failed_task_logs(metadata: str, log_folder, lines: int = 60) -> str:
    """The failed task instances and the tail of each one's log (the first thing to read when a
    run fails: the services' logs only say that it did)."""
    failed = _query(
        metadata,
        "select run_id, task_id, map_index, try_number from task_instance"
        " where dag_id = %s and state in ('failed', 'upstream_failed')"
        " order by start_date nulls last",
        (DAG_ID,),
    )
    parts = [f"failed task instances: {failed}"]
    for run_id, task_id, map_index, try_number in failed:
        folder = log_folder / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        log = folder / f"attempt={try_number}.log"
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            parts.append(f"--- {task_id} ({log}) ---\n{tail}")
    return "\n".join(parts)


@pytest.mark.slow
def test_a_two_day_backfill_on_celery_workers_builds_the_marts_of_one_run_over_those_days(
    cluster_url, settings_for, small_world, crm_server, dbt_manifest, tmp_path
):
    from touchpoint.local.airflow_runs import local_env
    from touchpoint.local.airflow_services import (
        ServiceGroup,
        api_env,
        celery_env,
        metadata_env,
        migrate_metadata_db,
        shared_secrets_env,
        tool_path,
    )
    from touchpoint.local.redis_broker import RedisServer

    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    warehouse = create_db(cluster_url)
    metadata = create_db(cluster_url)
    home = tmp_path / "airflow"
    redis = RedisServer(free_port(), tmp_path / "redis", log=lambda m: None)
    env = {
        **os.environ,
        **local_env(settings_for, warehouse, free_port(), crm_server.url, "sim-token"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        **metadata_env(metadata),
        **api_env(free_port()),
        **shared_secrets_env(),
        **celery_env(metadata, redis.url, worker_log_port=free_port()),
        # Only the run this test triggers: no scheduled run of "yesterday" when unpaused.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # The DAG files do not change while the test runs: parse them once, not every 30 s in
        # two processes beside the tasks (a deployment keeps Airflow's defaults)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": QUEUE,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "HOME": str(tmp_path / "home"),
        "PATH": tool_path(),
    }
    airflow = [str(REPO / ".venv" / "bin" / "airflow")]
    services = ServiceGroup(env, tmp_path / "logs")
    try:
        redis.start()
        migrate = migrate_metadata_db(env)
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

        services.start("api-server", [*airflow, "api-server"])
        services.start("dag-processor", [*airflow, "dag-processor"])
        services.start("scheduler", [*airflow, "scheduler"])
        services.start("triggerer", [*airflow, "triggerer"])  # deferred tasks resume through it
        services.start(
            "worker",
            [
                *airflow,
                "celery",
                "worker",
                "--queues",
                QUEUE,
                "--concurrency",
                "4",
                "--celery-hostname",
                "scale-out-test@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )

        def parsed():
            errors = _query(metadata, "select filename, stacktrace from import_error")
            if errors:
                pytest.fail(f"the dag-processor reports import errors: {errors}", pytrace=False)
            return _query(metadata, "select 1 from serialized_dag where dag_id = %s", (DAG_ID,))

        _wait(f"the dag-processor to store {DAG_ID}", parsed, services, deadline)
        for command in (
            ["dags", "unpause", DAG_ID],
            # one run at a time, as the daily schedule does: a backfill's own default
            # lets runs overlap, and two dbt builds on one warehouse collide
            [
                "backfill",
                "create",
                "--dag-id",
                DAG_ID,
                "--from-date",
                BACKFILL["from"],
                "--to-date",
                BACKFILL["to"],
                "--max-active-runs",
                "1",
            ],
        ):
            done = subprocess.run(
                [*airflow, *command],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, (
                f"airflow {' '.join(command)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )

        def finished():
            rows = _query(
                metadata,
                "select run_id, state, data_interval_start, data_interval_end from dag_run"
                " where dag_id = %s order by data_interval_start",
                (DAG_ID,),
            )
            done = len(rows) == 2 and all(state in ("success", "failed") for _, state, _, _ in rows)
            return rows if done or any(state == "failed" for _, state, _, _ in rows) else None

        runs = _wait(
            f"the two backfill runs of {DAG_ID} to finish",
            finished,
            services,
            deadline,
            interval=2.0,
        )
        tasks = _query(
            metadata,
            "select task_id, map_index, state, queue, hostname from task_instance"
            " where dag_id = %s",
            (DAG_ID,),
        )
        assert [state for _, state, _, _ in runs] == ["success"] * 2, (
            f"runs {runs}\n{_failed_task_logs(metadata, home / 'logs')}\n{services.report()}"
        )
        # one run per day, consecutive, each owning its own data interval
        assert [(s.date().isoformat(), e.date().isoformat()) for _, _, s, e in runs] == [
            ("2026-10-05", "2026-10-06"),
            ("2026-10-06", "2026-10-07"),
        ]

        # Every task ran on the Celery worker: queued on its queue, executed by it, result stored.
        # (An EmptyOperator, such as Cosmos' marker tasks, is marked done by the scheduler without
        # running anywhere: it has no hostname.)
        assert tasks and all(
            state == "success" and queue == QUEUE for _, _, state, queue, _ in tasks
        ), tasks
        ran = {task_id for task_id, _, _, _, hostname in tasks if hostname}
        worker_log = services.log_file("worker").read_text(errors="replace")
        executed = [
            line for line in worker_log.splitlines() if "Executing workload in Celery" in line
        ]
        missing = {
            task_id
            for task_id in ran
            if not any(f"task_id='{task_id}'" in line for line in executed)
        }
        assert ran and not missing, (
            f"the worker log does not show these tasks: {missing}\n{services.tail('worker')}"
        )

        # Celery records its own result once the task returns, a moment after the task's state.
        def stored():
            done = dict(
                _query(metadata, "select status, count(*) from celery_taskmeta group by status")
            )
            return done.get("SUCCESS", 0) >= len(ran)

        _wait(
            "Celery's results in the result backend",
            stored,
            services,
            min(deadline, time.monotonic() + 30),
        )

        touchpoints = _query(
            warehouse,
            "select count(*) from marts.fct_touchpoints"
            " where occurred_at >= %s and occurred_at < %s",
            (DAYS["start"], DAYS["end"]),
        )
        assert touchpoints[0][0] > 0, "no touchpoints for those days in marts.fct_touchpoints"
        backfilled = time.monotonic() - started

        # The same two days in one interval, outside Airflow: the marts must be identical.
        one_run = create_db(cluster_url)
        try:
            start, end = (
                datetime.fromisoformat(DAYS[k]).replace(tzinfo=UTC) for k in ("start", "end")
            )
            for source in ("crm", "email", "web"):
                pipeline.extract(
                    source,
                    start,
                    end,
                    one_run,
                    settings_for,
                    crm=CrmEndpoint(crm_server.url, "sim-token", max_requests_per_second=0),
                )
            # as the ingest builds (the weekly report's models are its run's)
            pipeline.transform(one_run, settings_for, daily=True)
            assert mart_checksums(warehouse) == mart_checksums(one_run)
        finally:
            drop_db(cluster_url, one_run)
        print(
            f"\nCelery backfill: {len(runs)} runs, {len(ran)} tasks on the worker,"
            f" {touchpoints[0][0]} touchpoints,"
            f" {backfilled:.0f} s; marts equal to one run over the same days"
        )
    finally:
        services.stop()
        redis.stop()
        drop_db(cluster_url, warehouse)
        drop_db(cluster_url, metadata)


def test_the_workers_celery_settings_keep_airflows_and_preload_every_task_module_without_a_thread(
    tmp_path,
):
    """A worker imports :mod:`touchpoint.orchestration.task_preload` before forking its tasks: every
    module it lists must import, and none may start a thread (a fork copies only the forking
    one)."""
    probe = (
        "import sys, threading\n"
        "from touchpoint.orchestration.celery_config import CELERY_CONFIG\n"
        "from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG\n"
        "assert {k: v for k, v in CELERY_CONFIG.items() if k != 'imports'}"
        " == DEFAULT_CELERY_CONFIG\n"
        "for module in CELERY_CONFIG['imports']:\n"
        "    __import__(module)\n"
        "from touchpoint.orchestration.task_preload import MODULES\n"
        "missing = [m for m in MODULES if m not in sys.modules]\n"
        "print(threading.active_count(), missing)\n"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": celery_env(
            "postgresql://u@127.0.0.1:1/airflow", "redis://127.0.0.1:1/0", 1
        )["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"],
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-2] == "1 []"
