"""Celery settings for Airflow's CeleryExecutor (``[celery] celery_config_options``): Airflow's
defaults, plus the modules every task of this project needs, imported once by each worker
before it forks its pool (:mod:`touchpoint.orchestration.task_preload`).

Why: Airflow 3 runs each task in a process forked from the worker's pool process, which then
imports what the DAG file and the task need. For a dbt task that import (dbt, its Postgres
adapter, Cosmos) costs more than the task's own SQL. Imported in the worker, the fork
inherits them.

This module stays light: the scheduler and the api-server import it too (they build the
Celery app to queue tasks); only the worker imports the preload list.
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": ("touchpoint.orchestration.task_preload",)}
