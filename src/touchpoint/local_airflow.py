"""Run the project's DAGs on a project-local Airflow (demo, tests, debugging by hand).

``local_env`` builds the environment: ``AIRFLOW_HOME`` under ``var/``, the project's DAGs
folder, no examples, connections as ``AIRFLOW_CONN_*`` JSON. ``python -m
touchpoint.local_airflow RUNS.json`` (with that environment) migrates the metadata DB and
runs each DAG run in-process with ``dag.test()``, printing one ``@@touchpoint`` line per run
so a caller can show progress while keeping Airflow's own logs in a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from touchpoint.config import Settings
from touchpoint.warehouse.connection import url_parts

PROGRESS_PREFIX = "@@touchpoint "


@dataclass(frozen=True)
class DagRunRequest:
    dag_id: str
    logical_date: str
    conf: dict

    def as_dict(self) -> dict:
        return {"dag_id": self.dag_id, "logical_date": self.logical_date, "conf": self.conf}


def local_env(settings: Settings, warehouse_url: str, smtp_port: int, crm_url: str, crm_token: str) -> dict[str, str]:
    """Environment for a project-local Airflow; nothing is written outside ``var/``."""
    parts = url_parts(warehouse_url)
    warehouse = {
        "conn_type": "postgres", "host": parts.host, "port": parts.port,
        "login": parts.user, "password": parts.password, "schema": parts.dbname,
    }
    crm = urlsplit(crm_url)
    return {
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.var_dir / "cosmos"),
        "AIRFLOW__COSMOS__UPLOAD_SQL_TO_XCOM": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.airflow_home / "logs"),
        "AIRFLOW_CONN_TOUCHPOINT_WAREHOUSE": json.dumps(warehouse),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            **({"login": settings.smtp_login, "password": settings.smtp_password} if settings.smtp_login else {}),
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "reports@touchpoint.example"},
        }),
        "AIRFLOW_CONN_CRM_HUBSPOT": json.dumps({
            "conn_type": "http", "host": f"{crm.scheme}://{crm.hostname}", "port": crm.port,
            "password": crm_token, "extra": {"max_requests_per_second": 50},
        }),
        "TOUCHPOINT_VAR_DIR": str(settings.var_dir),
        "TOUCHPOINT_PROJECT_DIR": str(settings.project_dir),
        "TOUCHPOINT_LANDING_URL": settings.landing_url,
        "TOUCHPOINT_TASK_RETRIES": "0",
        "MPLCONFIGDIR": str(settings.var_dir / "cache" / "matplotlib"),
        "GX_ANALYTICS_ENABLED": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def run_dags(requests: list[DagRunRequest], env: dict[str, str], log_file: Path, echo=print) -> list[dict]:
    """Run the requests in one child process; echo progress; return one result per run."""
    from touchpoint.transform import ensure_manifest

    # the DAGs render dbt from the manifest: (re)write it when the dbt project changed
    ensure_manifest(Path(env["TOUCHPOINT_PROJECT_DIR"]) / "dbt_project", Path(env["TOUCHPOINT_VAR_DIR"]))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    spec = log_file.with_suffix(".runs.json")
    spec.write_text(json.dumps([r.as_dict() for r in requests]))
    results: list[dict] = []
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "touchpoint.local_airflow", str(spec)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith(PROGRESS_PREFIX):
                event = json.loads(line[len(PROGRESS_PREFIX):])
                if event.get("kind") == "result":
                    results.append(event)
                echo(event["message"])
        proc.wait()
    if proc.returncode != 0 and all(r.get("state") == "success" for r in results):
        results.append({"kind": "result", "state": "crashed", "message": f"Airflow runner exited {proc.returncode}"})
    return results


# -- the child process ---------------------------------------------------------------------
def _emit(kind: str, message: str, **extra) -> None:
    print(PROGRESS_PREFIX + json.dumps({"kind": kind, "message": message, **extra}), flush=True)


def _load_dag(dag_id: str):
    import importlib

    from airflow.sdk import DAG

    dags_dir = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    if dags_dir not in sys.path:
        sys.path.insert(0, dags_dir)
    module = importlib.import_module(dag_id)
    for value in vars(module).values():
        if isinstance(value, DAG) and value.dag_id == dag_id:
            return value
    from airflow.models.dagbag import DagBag  # fallback: the DAG registered by the decorator call

    return DagBag(dag_folder=str(Path(dags_dir) / f"{dag_id}.py")).get_dag(dag_id)


def ensure_pools() -> None:
    """Create the pools the DAGs use (in the metadata DB this process is configured for)."""
    from airflow.models.pool import Pool

    from touchpoint.airflow_resources import CRM_POOL, CRM_POOL_DESCRIPTION, CRM_POOL_SLOTS

    Pool.create_or_update_pool(CRM_POOL, slots=CRM_POOL_SLOTS, description=CRM_POOL_DESCRIPTION,
                               include_deferred=False)


def main(argv: list[str]) -> int:
    import pendulum
    from airflow.utils import db

    requests = [DagRunRequest(**r) for r in json.loads(Path(argv[0]).read_text())]
    started = time.monotonic()
    db.upgradedb()
    ensure_pools()
    _emit("info", f"  Airflow metadata DB ready in {os.environ['AIRFLOW_HOME']} ({time.monotonic() - started:.0f} s)")
    failed = 0
    for number, request in enumerate(requests, 1):
        t0 = time.monotonic()
        what = (f"{request.conf['start'][:10]} .. {request.conf['end'][:10]}"
                if request.conf and request.conf.get("start") else f"logical date {request.logical_date}")
        label = f"[{number}/{len(requests)}] {request.dag_id} {what}"
        _emit("info", f"  {label} ...")
        dag = _load_dag(request.dag_id)
        run = dag.test(logical_date=pendulum.parse(request.logical_date), run_conf=request.conf or None)
        state = str(getattr(run.state, "value", run.state))
        tasks = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
        bad = {t: s for t, s in tasks.items() if s != "success"}
        message = f"  {label}: {state} in {time.monotonic() - t0:.0f} s" + (f" (tasks not successful: {bad})" if bad else "")
        _emit("result", message, dag_id=request.dag_id, state=state, tasks=tasks)
        if state != "success":
            failed += 1
            break
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
