"""The modules a task of this project imports, imported ahead of time in a long-lived process
that forks tasks (a Celery worker, through :mod:`touchpoint.orchestration.celery_config`): the
forked task starts with them loaded instead of importing them again, every task.

Only imports: none of these starts a thread or opens a connection when imported (a fork
copies only the thread that forks), and nothing here reads settings or touches a database.
"""

from __future__ import annotations

import importlib

# What the DAG files import when a task parses them, then what the tasks themselves import:
# dbt and its adapter (every Cosmos task), the extract/load path, GX (check_quality), and the
# report renderer (matplotlib, Jinja2, Babel).
MODULES = (
    "airflow.sdk",
    "airflow.sdk.execution_time.task_runner",
    "airflow.timetables.interval",
    "touchpoint.orchestration.dbt_tasks",
    "cosmos.operators.local",
    "cosmos.dbt.runner",
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "touchpoint.pipeline",
    "touchpoint.orchestration.connections",
    "great_expectations",
    "touchpoint.report.weekly",
    "touchpoint.report.charts",
)

for _name in MODULES:
    importlib.import_module(_name)
