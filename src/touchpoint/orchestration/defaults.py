"""What every touchpoint DAG shares: owner, retries, timeouts and the interval-override params.

Imported by the DAG files at parse time, so it stays light: no database, no network, no heavy
imports.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from touchpoint.config import load_settings
from touchpoint.orchestration.failure_alerts import task_failure_alert

OWNER = "data-engineering"


def default_args(
    retry_delay: timedelta, execution_timeout: timedelta = timedelta(minutes=30)
) -> dict[str, Any]:
    """Retries with exponential backoff (count from TOUCHPOINT_TASK_RETRIES), a timeout, and an
    email to the alerts list when a task fails for good (not on the tries that are retried)."""
    return {
        "owner": OWNER,
        "retries": load_settings().task_retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": execution_timeout,
        "on_failure_callback": task_failure_alert,
    }


def interval_params(what: str) -> dict[str, Any]:
    """``start``/``end`` params that override a run's interval by hand (ISO dates)."""
    from airflow.sdk import Param

    return {
        "start": Param(
            None, type=["null", "string"], description=f"override: {what} start (ISO date)"
        ),
        "end": Param(None, type=["null", "string"], description=f"override: {what} end (ISO date)"),
    }
