"""Run the project's DAGs on a project-local Airflow (demo, tests, debugging by hand).

``local_env`` builds the environment: ``AIRFLOW_HOME`` under ``var/``, the project's DAGs
folder, no examples, connections as ``AIRFLOW_CONN_*`` JSON. ``run_dags`` starts
``touchpoint.orchestration.dag_runner`` in a child process with that environment and shows
its progress lines while Airflow's own logs go to a file, and each task's part of them to the
file Airflow's UI reads that task's log from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from touchpoint.config import Settings
from touchpoint.orchestration.dag_runner import PROGRESS_PREFIX, DagRunRequest
from touchpoint.warehouse.connection import url_parts


def local_env(
    settings: Settings, warehouse_url: str, smtp_port: int, crm_url: str, crm_token: str
) -> dict[str, str]:
    """Environment for a project-local Airflow; nothing is written outside ``var/``."""
    parts = url_parts(warehouse_url)
    warehouse = {
        "conn_type": "postgres",
        "host": parts.host,
        "port": parts.port,
        "login": parts.user,
        "password": parts.password,
        "schema": parts.dbname,
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
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                **(
                    {"login": settings.smtp_login, "password": settings.smtp_password}
                    if settings.smtp_login
                    else {}
                ),
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "reports@touchpoint.example",
                },
            }
        ),
        "AIRFLOW_CONN_CRM_HUBSPOT": json.dumps(
            {
                "conn_type": "http",
                "host": f"{crm.scheme}://{crm.hostname}",
                "port": crm.port,
                "password": crm_token,
                # the product's request budget: the simulator enforces HubSpot's limits
            }
        ),
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


class TaskLogs:
    """Files each task's part of the runner's output where Airflow's UI reads task logs
    (``dag_id=…/run_id=…/task_id=…/attempt=N.log`` under the base log folder): ``dag.test()``
    runs the tasks one after another in its process and logs to its console, between a
    "starting task_id" and an "end task" line per task."""

    _START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+)")
    _END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+)")

    def __init__(self, base_folder: Path) -> None:
        self.base_folder = base_folder
        self.current: str | None = None
        self.lines: dict[str, list[str]] = {}

    def feed(self, line: str) -> None:
        start = self._START.search(line)
        if start:
            self.current = start["task"]
            self.lines[self.current] = []
        if self.current is not None:
            self.lines[self.current].append(line)
        if self._END.search(line):
            self.current = None

    def file(self, result: dict) -> None:
        """Write the logs of the run ``result`` reports (its run id and each task's attempt)."""
        for task, (attempt, map_index) in result.get("attempts", {}).items():
            if task not in self.lines:
                continue  # never ran (upstream failed)
            mapped = f"map_index={map_index}/" if map_index >= 0 else ""
            path = (
                self.base_folder
                / f"dag_id={result['dag_id']}"
                / f"run_id={result['run_id']}"
                / f"task_id={task}"
                / f"{mapped}attempt={max(attempt, 1)}.log"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(self.lines.pop(task)))
        self.lines.clear()


def run_dags(
    requests: list[DagRunRequest], env: dict[str, str], log_file: Path, echo=print
) -> list[dict]:
    """Run the requests in one child process; echo progress; return one result per run. Each
    task's log is also filed where Airflow's UI reads it (:class:`TaskLogs`)."""
    from touchpoint.transform.dbt import ensure_manifest

    # the DAGs render dbt from the manifest: (re)write it when the dbt project changed
    ensure_manifest(
        Path(env["TOUCHPOINT_PROJECT_DIR"]) / "dbt_project", Path(env["TOUCHPOINT_VAR_DIR"])
    )
    log_file.parent.mkdir(parents=True, exist_ok=True)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    spec = log_file.with_suffix(".runs.json")
    spec.write_text(json.dumps([r.as_dict() for r in requests]))
    results: list[dict] = []
    task_logs = TaskLogs(Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]))
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "touchpoint.orchestration.dag_runner", "run", str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith(PROGRESS_PREFIX):
                event = json.loads(line[len(PROGRESS_PREFIX) :])
                if event.get("kind") == "result":
                    results.append(event)
                    task_logs.file(event)
                echo(event["message"])
            else:
                task_logs.feed(line)
        proc.wait()
    if proc.returncode != 0 and all(r.get("state") == "success" for r in results):
        results.append(
            {
                "kind": "result",
                "state": "crashed",
                "message": f"Airflow runner exited {proc.returncode}",
            }
        )
    return results
