"""The soak test's child process: DAG runs one after another on the project-local Airflow, with
what happens between them in the world outside: files that landed late appear, and the CRM's
clock moves to the moment of each run (deletions, index lag). The CRM simulator serves from here,
with HubSpot's limits on.

``python -m helpers.soak_days SPEC.json``, in the environment
``touchpoint.local.airflow_runs.local_env`` builds; writes the results where the spec says.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path


def main(spec_path: str) -> int:
    import pendulum

    from touchpoint.orchestration.dag_runner import _load_dag, migrate
    from touchpoint_sim.crm_server import CrmData, CrmServer

    spec = json.loads(Path(spec_path).read_text())
    now = [datetime.fromisoformat(spec["runs"][0]["at"])]
    crm = CrmServer(
        CrmData.from_dir(Path(spec["crm_dir"])),
        port=spec["crm_port"],
        late_index_share=spec["late_index_share"],
        seed=spec["seed"],
        clock=lambda: now[0],
    ).start_in_thread()
    migrate()
    results = []
    try:
        for run in spec["runs"]:
            for pending, landed in run["files_landing_before"]:
                os.replace(pending, landed)
            now[0] = datetime.fromisoformat(run["at"])
            began = time.monotonic()
            dag_run = _load_dag(run["dag_id"]).test(
                logical_date=pendulum.parse(run["at"]), run_conf=run["conf"] or None
            )
            tasks = {
                ti.task_id: str(getattr(ti.state, "value", ti.state))
                for ti in dag_run.get_task_instances()
            }
            results.append(
                {
                    "dag_id": run["dag_id"],
                    "at": run["at"],
                    "state": str(getattr(dag_run.state, "value", dag_run.state)),
                    "failed_tasks": {t: s for t, s in tasks.items() if s != "success"},
                    "seconds": round(time.monotonic() - began, 1),
                }
            )
            print(f"@@soak {json.dumps(results[-1])}", flush=True)
    finally:
        crm.shutdown()
        Path(spec["result"]).write_text(
            json.dumps(
                {
                    "runs": results,
                    "crm_requests": crm.requests,
                    "rate_limited_at": crm.rate_limited_at,
                    "hidden_by_lag": sorted(map(list, crm.hidden_by_lag)),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
