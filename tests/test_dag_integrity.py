"""Every DAG file imports cleanly and quickly, with owners, retries and timeouts on every task."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

PROBE = r"""
import importlib.util, json, sys, time
from pathlib import Path
import airflow.sdk  # imported first: its own start-up is not the DAG file's parse time
from airflow.sdk import DAG
out = {}
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    t0 = time.perf_counter()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seconds = time.perf_counter() - t0
    for dag in (v for v in vars(module).values() if isinstance(v, DAG)):
        out[dag.dag_id] = {
            "file": path.name, "seconds": seconds,
            "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries,
                                  "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None}
                      for t in dag.tasks},
        }
print(json.dumps(out))
"""


def load_dags(tmp_path) -> dict:
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"), "HOME": str(tmp_path / "home"),
           "PATH": str(REPO / ".venv" / "bin") + ":/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "dags")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_dag_imports_quickly_and_every_task_has_an_owner_retries_and_a_timeout(tmp_path):
    dags = load_dags(tmp_path)
    assert set(dags) == {"touchpoint_ingest", "touchpoint_weekly_report"}
    for dag_id, info in dags.items():
        assert info["seconds"] < 2.0, f"{dag_id} took {info['seconds']:.2f} s to parse"
        for task_id, task in info["tasks"].items():
            assert task["owner"] and task["owner"] != "airflow", f"{dag_id}.{task_id} has no owner"
            assert task["retries"] is not None, f"{dag_id}.{task_id} has no retries"
            assert task["timeout"], f"{dag_id}.{task_id} has no execution_timeout"


def test_the_ingest_dag_extracts_every_source_before_building_the_warehouse(tmp_path):
    tasks = load_dags(tmp_path)["touchpoint_ingest"]["tasks"]
    assert {"extract_crm_people", "extract_crm_sales", "extract_crm_service", "extract_email", "extract_web",
            "transform", "check_quality"} <= set(tasks)
