"""The child process that runs the project's DAGs on a local Airflow: migrates the metadata DB,
creates the pools, then runs each requested DAG run in-process with ``dag.test()``, printing one
``@@touchpoint`` JSON line per step for the parent (``touchpoint.local.airflow_runs``) to show.

``python -m touchpoint.orchestration.dag_runner migrate`` | ``run RUNS.json``, in the
environment ``touchpoint.local.airflow_runs.local_env`` builds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROGRESS_PREFIX = "@@touchpoint "


@dataclass(frozen=True)
class DagRunRequest:
    dag_id: str
    logical_date: str
    conf: dict

    def as_dict(self) -> dict:
        return {"dag_id": self.dag_id, "logical_date": self.logical_date, "conf": self.conf}


def _emit(kind: str, message: str, **extra) -> None:
    print(PROGRESS_PREFIX + json.dumps({"kind": kind, "message": message, **extra}), flush=True)


def _load_dag(dag_id: str):
    import importlib

    from airflow.sdk import DAG

    dags_dir = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    if dags_dir not in sys.path:
        sys.path.insert(0, dags_dir)
    # parsed afresh: dag.test() leaves a run's conf in the DAG object's params, so a second run
    # of the same DAG object in this process would inherit it
    sys.modules.pop(dag_id, None)
    module = importlib.import_module(dag_id)
    for value in vars(module).values():
        if isinstance(value, DAG) and value.dag_id == dag_id:
            return value
    from airflow.models.dagbag import DagBag  # fallback: the DAG registered by the decorator call

    return DagBag(dag_folder=str(Path(dags_dir) / f"{dag_id}.py")).get_dag(dag_id)


def ensure_pools() -> None:
    """Create the pools the DAGs use (in the metadata DB this process is configured for)."""
    from airflow.models.pool import Pool

    from touchpoint.orchestration.resources import CRM_POOL, CRM_POOL_DESCRIPTION, CRM_POOL_SLOTS

    Pool.create_or_update_pool(
        CRM_POOL, slots=CRM_POOL_SLOTS, description=CRM_POOL_DESCRIPTION, include_deferred=False
    )


def migrate() -> None:
    """``airflow db migrate`` plus the pools the DAGs use."""
    from airflow.utils import db

    db.upgradedb()
    ensure_pools()


def run(spec: Path) -> int:
    import pendulum

    requests = [DagRunRequest(**r) for r in json.loads(spec.read_text())]
    started = time.monotonic()
    migrate()
    _emit(
        "info",
        f"  Airflow metadata DB ready in {os.environ['AIRFLOW_HOME']} "
        f"({time.monotonic() - started:.0f} s)",
    )
    failed = 0
    for number, request in enumerate(requests, 1):
        t0 = time.monotonic()
        what = (
            f"{request.conf['start'][:10]} .. {request.conf['end'][:10]}"
            if request.conf and request.conf.get("start")
            else f"logical date {request.logical_date}"
        )
        label = f"[{number}/{len(requests)}] {request.dag_id} {what}"
        _emit("info", f"  {label} ...")
        dag = _load_dag(request.dag_id)
        run = dag.test(
            logical_date=pendulum.parse(request.logical_date), run_conf=request.conf or None
        )
        state = str(getattr(run.state, "value", run.state))
        instances = run.get_task_instances()
        tasks = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in instances}
        bad = {t: s for t, s in tasks.items() if s != "success"}
        message = f"  {label}: {state} in {time.monotonic() - t0:.0f} s" + (
            f" (tasks not successful: {bad})" if bad else ""
        )
        _emit(
            "result",
            message,
            dag_id=request.dag_id,
            state=state,
            tasks=tasks,
            # where each task's log goes (the parent files it as Airflow's UI reads it)
            run_id=run.run_id,
            attempts={ti.task_id: [ti.try_number, ti.map_index] for ti in instances},
        )
        if state != "success":
            failed += 1
            break
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["migrate"] and len(argv) == 1:
        migrate()
        return 0
    if argv[:1] == ["run"] and len(argv) == 2:
        return run(Path(argv[1]))
    raise SystemExit("usage: python -m touchpoint.orchestration.dag_runner migrate | run RUNS.json")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
