"""Every DAG file imports cleanly and quickly, without a database, network or process call, into
DAGs without cycles whose tasks all have an owner, retries, a timeout and the failure alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import REPO

# Imports every DAG file of a folder (argv[1]) the way the DAG processor does, with the calls a
# DAG file must not make at parse time patched to raise (and recorded, so a DAG file that
# swallows the error is caught too); prints one JSON line: per file, its parse time, error and
# blocked calls; per DAG, its cycle check and its tasks. argv[2]: the project's source folder,
# for naming where a blocked call came from.
PROBE = (
    r"""
import importlib.util, json, socket, subprocess, sys, time, traceback
from pathlib import Path
import airflow.sdk  # imported first: its own start-up is not the DAG file's parse time
import airflow.timetables.interval  # loaded in the DAG processor already"""
    r""" (croniter runs `file` once)
from airflow.sdk import DAG

dags_dir, src_dir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
calls = []


class ParseTimeCall(RuntimeError):
    pass


def block(name, depth=2):
    # record the call (where in a DAG file or the project it came from, and its direct caller);"""
    r""" raise
    stack = traceback.extract_stack()[:-depth]
    ours = [f for f in stack if f.filename.startswith((str(dags_dir), str(src_dir)))]
    where = f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "?"
    caller = f"{stack[-1].filename}:{stack[-1].lineno}"
    calls.append(f"{name} from {where} (via {caller})")
    raise ParseTimeCall(f"{name} called while a DAG file was parsed, from {where}")


def guard(name):
    def blocked(*args, **kwargs):
        block(name, depth=2)
    return blocked


class GuardedPopen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        block(f"subprocess.Popen({args[0] if args else kwargs.get('args')!r})", depth=2)


socket.socket.connect = guard("socket.socket.connect")
socket.socket.connect_ex = guard("socket.socket.connect_ex")
socket.create_connection = guard("socket.create_connection")
subprocess.Popen = GuardedPopen
try:
    import psycopg
except ImportError:
    pass
else:
    psycopg.connect = guard("psycopg.connect")
    psycopg.Connection.connect = classmethod(lambda cls, *a, **k:"""
    r""" block("psycopg.Connection.connect", depth=2))


def callback_names(callbacks):
    callbacks = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]"""
    r""" if callbacks else []
    return [f"{getattr(c, '__module__', '?')}."""
    r"""{getattr(c, '__qualname__', repr(c))}" for c in callbacks]


files, dags = {}, {}
for path in sorted(dags_dir.glob("*.py")):
    before, error = len(calls), None
    t0 = time.perf_counter()
    try:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except BaseException as exc:
        error, module = "".join(traceback.format_exception_only(exc)).strip(), None
    seconds = time.perf_counter() - t0
    files[path.name] = {"seconds": seconds, "error": error, "calls": calls[before:]}
    for dag in (v for v in vars(module).values() if isinstance(v, DAG)) if module else ():
        try:
            dag.check_cycle()  # what the DagBag does; building a DAG with a cycle does not raise
            cycle = None
        except Exception as exc:
            cycle = f"{type(exc).__name__}: {exc}"
        dags[dag.dag_id] = {
            "file": path.name, "seconds": seconds, "cycle": cycle,
            "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries,
                                  "timeout": t.execution_timeout.total_seconds()"""
    r""" if t.execution_timeout else None,
                                  "on_failure_callback": callback_names(t.on_failure_callback),
                                  "upstream": sorted(t.upstream_task_ids)}
                      for t in dag.tasks},
        }
print(json.dumps({"files": files, "dags": dags}))
"""
)

FAILURE_ALERT = "touchpoint.orchestration.failure_alerts.task_failure_alert"


def parse_dag_folder(tmp_path: Path, dags_dir: Path = REPO / "dags") -> dict:
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir),
        "HOME": str(tmp_path / "home"),
        # the session's var dir: its dbt manifest (written by the conftest fixture dbt_manifest)
        "TOUCHPOINT_VAR_DIR": os.environ["TOUCHPOINT_VAR_DIR"],
        "PATH": str(REPO / ".venv" / "bin") + ":/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dags_dir), str(REPO / "src")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    """The project's DAG folder, parsed once for this module's tests."""
    return parse_dag_folder(tmp_path_factory.mktemp("dag-parse"))


def load_dags(tmp_path) -> dict:
    return parse_dag_folder(tmp_path)["dags"]


def test_every_dag_file_imports_without_errors(parsed):
    assert {name: f["error"] for name, f in parsed["files"].items() if f["error"]} == {}


def test_every_dag_imports_quickly_and_every_task_has_an_owner_retries_and_a_timeout(parsed):
    dags = parsed["dags"]
    assert set(dags) == {"touchpoint_ingest", "touchpoint_weekly_report"}
    for dag_id, info in dags.items():
        assert info["seconds"] < 2.0, f"{dag_id} took {info['seconds']:.2f} s to parse"
        for task_id, task in info["tasks"].items():
            assert task["owner"] and task["owner"] != "airflow", f"{dag_id}.{task_id} has no owner"
            assert task["retries"] is not None, f"{dag_id}.{task_id} has no retries"
            assert task["timeout"], f"{dag_id}.{task_id} has no execution_timeout"


def test_every_task_emails_the_alerts_list_when_it_fails(parsed):
    for dag_id, info in parsed["dags"].items():
        for task_id, task in info["tasks"].items():
            assert FAILURE_ALERT in task["on_failure_callback"], (
                f"{dag_id}.{task_id} has on_failure_callback {task['on_failure_callback']}"
            )


def test_no_dag_has_a_cycle(parsed):
    assert {dag_id: info["cycle"] for dag_id, info in parsed["dags"].items() if info["cycle"]} == {}


def test_parsing_a_dag_file_makes_no_database_network_or_process_call(parsed):
    """No connect, no psycopg.connect, no subprocess (so no `dbt ls`: Cosmos renders from the
    manifest) while the DAG files are imported."""
    assert {name: f["calls"] for name, f in parsed["files"].items() if f["calls"]} == {}


def ancestors(tasks: dict, task_id: str) -> set[str]:
    seen: set[str] = set()
    todo = list(tasks[task_id]["upstream"])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(tasks[current]["upstream"])
    return seen


def test_the_ingest_dag_extracts_every_source_before_building_the_warehouse(parsed):
    tasks = parsed["dags"]["touchpoint_ingest"]["tasks"]
    extracts = {
        "extract_crm_people",
        "extract_crm_sales",
        "extract_crm_service",
        "extract_crm_conversations",
        "extract_email",
        "extract_web",
    }
    assert extracts | {"check_quality"} <= set(tasks)
    # The build: one `transform` task, or the dbt project as a Cosmos task group `dbt`.
    build = {t for t in tasks if t == "transform" or t.startswith("dbt.")}
    assert build, f"neither transform nor dbt.* tasks in {sorted(tasks)}"
    for task_id in build:
        assert extracts <= ancestors(tasks, task_id), (
            f"{task_id} may start before every extract is done"
        )
    assert build <= ancestors(tasks, "check_quality"), (
        "check_quality may start before the build is done"
    )


def test_the_weekly_report_runs_every_test_on_every_row_before_the_gate(parsed):
    tasks = parsed["dags"]["touchpoint_weekly_report"]["tasks"]
    assert "wait_for_ingest" in ancestors(tasks, "test_whole_tables")
    assert "test_whole_tables" in ancestors(tasks, "check_quality")


def test_the_weekly_report_builds_its_models_the_ingest_leaves_out(parsed, dbt_manifest):
    """The models tagged weekly: built by the weekly run after the ingest of its week and before
    its tests; no daily ingest builds one, and it builds every other model. Those tagged
    refreshed_weekly (they read a weekly verdict) are built by both."""
    nodes = json.loads(dbt_manifest.read_text())["nodes"].values()
    models = {n["name"]: "weekly" in n["tags"] for n in nodes if n["resource_type"] == "model"}
    weekly = {name for name, tagged in models.items() if tagged}
    refreshed = {
        n["name"]
        for n in nodes
        if n["resource_type"] == "model" and "refreshed_weekly" in n["tags"]
    }
    assert {"agg_touchpoint_signals", "agg_touchpoint_scorecard_weekly"} <= weekly
    assert {"dim_customers", "agg_customer_health"} == refreshed

    def model_of(task_id: str, group: str) -> str | None:
        node = task_id.removeprefix(f"{group}.").split(".")[0].removesuffix("_run")
        return node if task_id.startswith(f"{group}.") and node in models else None

    ingest = parsed["dags"]["touchpoint_ingest"]["tasks"]
    report = parsed["dags"]["touchpoint_weekly_report"]["tasks"]
    assert {model_of(t, "dbt") for t in ingest} - {None} == set(models) - weekly
    built = {t: model_of(t, "weekly_models") for t in report}
    assert {m for m in built.values() if m} == weekly | refreshed
    for task_id, model in built.items():
        if model:
            assert "wait_for_ingest" in ancestors(report, task_id), task_id
            assert task_id in ancestors(report, "test_whole_tables"), task_id


BAD_DAGS = {
    "calls_the_network.py": """
        import socket
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    """,
    "swallows_a_database_error.py": """
        import psycopg
        try:
            psycopg.connect("postgresql://etl@127.0.0.1:9/warehouse")
        except Exception:
            pass
    """,
    "runs_dbt.py": """
        import subprocess
        subprocess.run(["dbt", "ls"], capture_output=True)
    """,
    "has_a_cycle.py": """
        import pendulum
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG("has_a_cycle", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as cyclic:
            a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
            a >> b >> a
    """,
}


def test_the_probe_names_each_parse_time_call_and_finds_a_cycle(tmp_path):
    """The checks above can fail: a folder of bad DAG files, each caught with its line named."""
    bad = tmp_path / "bad_dags"
    bad.mkdir()
    for name, source in BAD_DAGS.items():
        (bad / name).write_text(textwrap.dedent(source))
    result = parse_dag_folder(tmp_path, bad)
    files = result["files"]
    assert files["calls_the_network.py"]["calls"][0].startswith(
        f"socket.create_connection from {bad}/calls_the_network.py:3"
    )
    assert "ParseTimeCall" in files["calls_the_network.py"]["error"]
    assert files["swallows_a_database_error.py"]["calls"][0].startswith(
        f"psycopg.connect from {bad}/swallows_a_database_error.py:4"
    )
    assert (
        files["swallows_a_database_error.py"]["error"] is None
    )  # caught by the record, not the error
    assert files["runs_dbt.py"]["calls"][0].startswith(
        f"subprocess.Popen(['dbt', 'ls']) from {bad}/runs_dbt.py:3"
    )
    assert files["has_a_cycle.py"]["calls"] == [] and files["has_a_cycle.py"]["error"] is None
    assert "Cycle detected in Dag: has_a_cycle" in result["dags"]["has_a_cycle"]["cycle"]
