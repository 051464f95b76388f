"""Airflow as long-running services on a PostgreSQL metadata database.

``dag.test()`` (see :mod:`touchpoint.local.airflow_runs`) runs a DAG in one process. This module
holds what the same DAGs need when Airflow runs as services instead: a metadata database on
PostgreSQL, the api-server that serves the task execution API, the CeleryExecutor's settings
(Redis broker, result backend), ``airflow standalone`` for the UI (``touchpoint airflow``,
``make airflow``), and a small supervisor for the processes of a scale-out run in tests.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Self
from urllib.parse import quote

from touchpoint.config import Settings
from touchpoint.errors import TouchpointError
from touchpoint.warehouse.connection import url_parts

# Airflow's Celery settings plus the preloaded task modules (a dotted path, not an import:
# importing it reads Airflow's configuration)
CELERY_CONFIG_PATH = "touchpoint.orchestration.celery_config.CELERY_CONFIG"

#: The metadata database ``touchpoint airflow`` creates next to the warehouse database.
METADATA_DB = "airflow"


def _pg_url(url: str, dbname: str | None = None, scheme: str = "postgresql") -> str:
    parts = url_parts(url)
    auth = quote(parts.user, safe="") + (
        f":{quote(parts.password, safe='')}" if parts.password else ""
    )
    return f"{scheme}://{auth}@{parts.host}:{parts.port}/{dbname or parts.dbname}"


def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url`` if it is missing; return its URL."""
    import psycopg

    with psycopg.connect(
        _pg_url(server_url, "postgres"), autocommit=True, connect_timeout=10
    ) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')
    return _pg_url(server_url, name)


def metadata_env(metadata_url: str) -> dict[str, str]:
    """Airflow's metadata DB on PostgreSQL (SQLAlchemy with psycopg2, Airflow's default driver)."""
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _pg_url(metadata_url, scheme="postgresql+psycopg2")
    }


def api_env(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """The api-server on ``host:port``; workers reach the task execution API under it."""
    base = f"http://{host}:{port}"
    return {
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
    }


def shared_secrets_env(
    jwt_secret: str | None = None, api_secret_key: str | None = None
) -> dict[str, str]:
    """Secrets every component must share: the JWT key the scheduler signs task tokens with and
    the api-server checks, and the key that signs log-fetch requests to workers."""
    return {
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret or secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": api_secret_key or secrets.token_urlsafe(32),
    }


def celery_env(
    metadata_url: str, broker_url: str, worker_log_port: int, concurrency: int = 4
) -> dict[str, str]:
    """CeleryExecutor: tasks queued on the Redis broker, results in the metadata database."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": _pg_url(metadata_url, scheme="db+postgresql"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        # Airflow's Celery settings plus the modules each worker imports once, before forking
        # its tasks (dbt, Cosmos, GX): each task starts with them loaded
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_PATH,
        # Each worker serves its task logs to the api-server on this port (default 8793).
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_log_port),
    }


def tool_path(extra: Iterable[str] = ()) -> str:
    """PATH with this interpreter's bin first: ``airflow`` and ``dbt`` (Cosmos needs it when a
    DAG is parsed) are the project's own."""
    return os.pathsep.join(
        [str(Path(sys.executable).parent), *extra, os.environ.get("PATH", "/usr/bin:/bin")]
    )


# -- what a deployment prepares before the DAGs parse and run ------------------------------
def ensure_dbt_manifest(settings: Settings) -> None:
    """The dbt manifest the DAG files render dbt tasks from (Cosmos): parsing needs it."""
    from touchpoint.transform.dbt import ensure_manifest

    ensure_manifest(settings.dbt_project_dir, settings.var_dir)


def migrate_metadata_db(
    env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``airflow db migrate`` plus the pools the DAGs use, in one child process (one Airflow
    start-up instead of one per CLI call), configured by ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "touchpoint.orchestration.dag_runner", "migrate"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- `touchpoint airflow`: the UI ----------------------------------------------------------
def shared_env(settings: Settings, metadata_url: str, crm_url: str) -> dict[str, str]:
    """The project-local Airflow that ``touchpoint airflow`` (the UI) and ``touchpoint demo``
    (runs by ``dag.test()``) share: home ``var/airflow-ui``, its task logs there, the metadata
    database ``metadata_url``, the connections as
    :func:`touchpoint.local.airflow_runs.local_env` sets them. So the UI shows the demo's runs,
    their task logs and the Cosmos dbt tasks."""
    from touchpoint.local.airflow_runs import local_env

    home = settings.var_dir / "airflow-ui"
    env = local_env(
        settings,
        settings.resolved_warehouse_url,
        settings.smtp_port,
        crm_url,
        settings.crm_token,
    )
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            **metadata_env(metadata_url),
        }
    )
    return env


def ui_env(settings: Settings, metadata_url: str, port: int) -> dict[str, str]:
    """``airflow standalone`` on the project's DAGs (:func:`shared_env`), the UI on loopback
    with no login (every visitor is admin: it is a developer's machine)."""
    env = shared_env(settings, metadata_url, settings.crm_url)
    env.update(
        {
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # The LocalExecutor starts one worker process per slot up front (32 by default).
            "AIRFLOW__CORE__PARALLELISM": "8",
            "TOUCHPOINT_TASK_RETRIES": str(settings.task_retries),
            "PATH": tool_path(),
            **api_env(port),
        }
    )
    return env


def prepare_ui(settings: Settings, port: int, log=print) -> dict[str, str]:
    """Everything ``airflow standalone`` needs before it starts: the embedded cluster (when it
    is the warehouse), the ``airflow`` metadata database next to the warehouse database,
    migrated, with the DAGs' pools, and the dbt manifest. Returns its environment."""
    if settings.uses_embedded_warehouse:
        from touchpoint.local.cluster import EmbeddedCluster

        EmbeddedCluster(settings).start(log=log)
    metadata_url = ensure_database(settings.resolved_warehouse_url, METADATA_DB)
    env = {**os.environ, **ui_env(settings, metadata_url, port)}
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_dbt_manifest(settings)
    log(f"migrating the Airflow metadata database {METADATA_DB!r} ...")
    migrated = migrate_metadata_db(env)
    if migrated.returncode != 0:
        detail = (migrated.stderr.strip() or migrated.stdout.strip() or "no output").splitlines()[
            -1
        ]
        raise TouchpointError(f"airflow db migrate failed: {detail}")
    return env


def airflow_command(
    settings: Settings, port: int, args: list[str], log=print, grace: float = 60.0
) -> int:
    """``airflow standalone`` (no args) or ``airflow ARGS`` in the UI's environment.

    Standalone runs in a session of its own and this process forwards Ctrl-C (SIGINT) or
    SIGTERM to it alone: it then stops its components one by one. A Ctrl-C that reaches every
    component at once can leave the scheduler waiting for its LocalExecutor workers forever.
    """
    from touchpoint.local.cluster import port_in_use

    if not args and port_in_use(port):
        raise TouchpointError(
            f"port {port} on 127.0.0.1 is already in use; pass --port with a free port "
            "(make airflow AIRFLOW_PORT=...)"
        )
    env = prepare_ui(settings, port, log)
    airflow = str(Path(sys.executable).parent / "airflow")
    if args:
        return subprocess.run([airflow, *args], env=env, check=False).returncode
    stop_requested: list[float] = []
    started: list[subprocess.Popen[bytes]] = []

    def request_stop(signum, frame) -> None:
        if not stop_requested:
            stop_requested.append(time.monotonic())
            log("stopping Airflow ...")
        for running in started:
            _signal_quietly(running.pid, signal.SIGINT, group=False)

    # Handlers, unlike an inherited "ignore", are reset by exec: standalone gets SIGINT's default.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    proc = subprocess.Popen([airflow, "standalone"], env=env, start_new_session=True)
    started.append(proc)
    if stop_requested:  # Ctrl-C while it was starting
        request_stop(signal.SIGINT, None)
    log(
        f"Airflow UI: http://127.0.0.1:{port} (standalone pid {proc.pid}, "
        f"home {env['AIRFLOW_HOME']}); Ctrl-C stops it"
    )
    while proc.poll() is None:
        if stop_requested and time.monotonic() - stop_requested[0] > grace:
            log(f"Airflow did not stop within {grace:.0f} s: killing its processes")
            _signal_quietly(proc.pid, signal.SIGKILL, group=True)
        time.sleep(0.2)
    _signal_quietly(proc.pid, signal.SIGKILL, group=True)  # any component that outlived standalone
    return 0 if stop_requested else proc.returncode


def _signal_quietly(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- process supervision -------------------------------------------------------------------
class ServiceGroup:
    """Long-running ``airflow ...`` processes, each in its own process group with its log in a
    file; :meth:`stop` ends each group it started (the services fork children of their own)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def exited(self) -> dict[str, int]:
        """The services that have stopped, with their exit codes."""
        return {
            name: code for name, proc in self.procs.items() if (code := proc.poll()) is not None
        }

    def tail(self, name: str, lines: int = 40) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def report(self, lines: int = 40) -> str:
        """The tail of every service's log, for a failure message."""
        return "\n".join(
            f"--- {name} ({self.log_file(name)}) ---\n{self.tail(name, lines)}"
            for name in self.procs
        )

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.procs.values():
            self._signal(proc, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()
        # Children that outlived their leader (a Celery pool process, an api-server worker).
        for proc in self.procs.values():
            self._signal(proc, signal.SIGKILL)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        _signal_quietly(proc.pid, sig, group=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
