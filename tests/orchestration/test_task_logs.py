"""The demo's task logs, filed where Airflow's UI reads them from dag.test()'s console."""

from __future__ import annotations

from touchpoint.local.airflow_runs import TaskLogs

CONSOLE = [
    "t0 [info] [DAG TEST] starting task_id=extract_web map_index=-1 [dag]\n",
    "t1 [info] segment_events: 3 new file(s)\n",
    "t2 [info] [DAG TEST] end task task_id=extract_web map_index=-1 [dag]\n",
    "t3 [info] between tasks: nobody's\n",
    "t4 [info] [DAG TEST] starting task_id=dbt.dbt_producer_watcher map_index=-1 [dag]\n",
    "t5 [error] Task failed with exception\n",
    "t6 [info] [DAG TEST] end task task_id=dbt.dbt_producer_watcher map_index=-1 [dag]\n",
]


def test_each_tasks_lines_go_to_its_attempts_file_and_nothing_else(tmp_path):
    logs = TaskLogs(tmp_path)
    for line in CONSOLE:
        logs.feed(line)
    logs.file(
        {
            "dag_id": "touchpoint_ingest",
            "run_id": "manual__2026-10-19T00:05:00+00:00",
            "attempts": {
                "extract_web": [1, -1],
                "dbt.dbt_producer_watcher": [2, -1],
                "record_ingested": [0, -1],  # never ran: no file
            },
        }
    )
    run = tmp_path / "dag_id=touchpoint_ingest" / "run_id=manual__2026-10-19T00:05:00+00:00"
    assert (run / "task_id=extract_web" / "attempt=1.log").read_text() == "".join(CONSOLE[0:3])
    producer = run / "task_id=dbt.dbt_producer_watcher" / "attempt=2.log"
    assert producer.read_text() == "".join(CONSOLE[4:7])
    assert sorted(p.parent.name for p in run.rglob("*.log")) == [
        "task_id=dbt.dbt_producer_watcher",
        "task_id=extract_web",
    ]
