"""touchpoint_weekly_report: the week that just ended, checked, rendered and emailed once.

Scheduled Mondays 07:00 in TOUCHPOINT_REPORT_TIMEZONE; the run's interval is the previous
week (Monday to Monday, UTC). Params ``start``/``end`` pick another week by hand.

It runs only once the ingest has completed every day of that week: ``wait_for_ingest`` pokes
``ops.ingest_intervals`` until every UTC day is covered, and fails naming the missing days
once TOUCHPOINT_REPORT_INGEST_WAIT_HOURS have passed since the week ended. Then the report's
own models (dbt tag ``weekly``, which the daily ingest leaves out) are built in the task group
``weekly_models`` (Cosmos' watcher mode, a task per model); then every dbt data test on every
row (the daily builds test the rows they wrote) and the week's data-quality suites: the gate,
closed by a failing test or a critical expectation; then the report (or, on a closed gate, an
alert to engineers).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from touchpoint.config import load_settings
from touchpoint.orchestration.dbt_tasks import dbt_task_group
from touchpoint.orchestration.defaults import default_args, interval_params

settings = load_settings()


@dag(
    dag_id="touchpoint_weekly_report",
    schedule=CronDataIntervalTimetable("0 7 * * 1", timezone=settings.report_timezone),
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retry_delay=timedelta(minutes=5)),
    params=interval_params("week"),
    tags=["touchpoint", "report"],
    doc_md=__doc__,
)
def touchpoint_weekly_report():
    @task
    def resolve_week() -> dict[str, str]:
        from touchpoint.intervals import weekly_interval

        context = get_current_context()
        # a run triggered without a logical date (the UI button, `airflow dags trigger`) has no
        # data interval: it owns the last complete period before now
        start, end = weekly_interval(
            dict(context["params"]),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
        )
        return {"start": start.isoformat(), "end": end.isoformat()}

    @task.sensor(
        poke_interval=15 * 60,
        timeout=(settings.report_ingest_wait_hours + 1) * 3600,
        mode="reschedule",
    )
    def wait_for_ingest(week: dict[str, str]) -> bool:
        """True once every day of the week is ingested; fails naming the missing days when
        the wait is over (a backfill of those days, then a re-run, sends the report)."""
        from datetime import UTC, datetime, timedelta

        from airflow.sdk.exceptions import AirflowFailException

        from touchpoint import pipeline
        from touchpoint.orchestration import connections

        start, end = datetime.fromisoformat(week["start"]), datetime.fromisoformat(week["end"])
        missing = pipeline.days_not_ingested(start, end, connections.warehouse_url())
        if not missing:
            return True
        waited = datetime.now(UTC) - end
        limit = timedelta(hours=load_settings().report_ingest_wait_hours)
        days = ", ".join(day.isoformat() for day in missing)
        if waited >= limit:
            raise AirflowFailException(
                f"the week {week['start'][:10]} .. {week['end'][:10]} is not fully ingested "
                f"{waited} after it ended: missing day(s) {days}; backfill touchpoint_ingest for "
                "them, then clear this run"
            )
        print(f"waiting for the ingest of {days} (up to {limit - waited} more)")
        return False

    @task
    def test_whole_tables() -> list[dict]:
        """Every dbt data test on every row (the daily builds test only the rows they wrote):
        the failing ones, which close the quality gate."""
        from touchpoint import pipeline
        from touchpoint.orchestration import connections

        return pipeline.test_whole_tables(connections.warehouse_url(), load_settings())

    @task
    def check_quality(week: dict[str, str], failed_tests: list[dict]) -> dict:
        """Validate the week, with the failing dbt tests; the result decides what send_report
        does (it never raises here)."""
        from datetime import datetime

        from touchpoint import pipeline
        from touchpoint.orchestration import connections

        report = pipeline.check_quality(
            datetime.fromisoformat(week["start"]),
            datetime.fromisoformat(week["end"]),
            connections.warehouse_url(),
            load_settings(),
            run_id=get_current_context()["run_id"],
            raise_on_critical=False,
        )
        return pipeline.gate_with_tests(report.as_dict(), failed_tests)

    @task
    def send_report(week: dict[str, str], quality: dict) -> list[dict]:
        """The gate: the report to stakeholders, or, on a critical failure, an alert to
        engineers."""
        from dataclasses import asdict
        from datetime import datetime

        from touchpoint import pipeline
        from touchpoint.orchestration import connections
        from touchpoint.orchestration.failure_alerts import AlreadyAlerted

        deliveries = pipeline.send_weekly_report(
            datetime.fromisoformat(week["start"]).date(),
            connections.warehouse_url(),
            connections.smtp_settings(),
            load_settings(),
            quality=quality,
        )
        if quality["status"] == "fail":
            # the engineers have the gate's alert; the failure callback sends no second one
            raise AlreadyAlerted(
                f"data-quality gate closed for {week['start'][:10]}: report held, alert sent to "
                f"{', '.join(d.recipient for d in deliveries)}; failures: "
                + "; ".join(f"{f['rule_id']} observed {f['observed']}" for f in quality["failures"])
            )
        return [asdict(d) for d in deliveries]

    week = resolve_week()
    weekly_models = dbt_task_group(
        settings,
        group_id="weekly_models",
        weekly=True,
        default_args=default_args(retry_delay=timedelta(minutes=5)),
    )
    failed_tests = test_whole_tables()
    quality = check_quality(week, failed_tests)
    wait_for_ingest(week) >> weekly_models >> failed_tests
    send_report(week, quality)


touchpoint_weekly_report_dag = touchpoint_weekly_report()
