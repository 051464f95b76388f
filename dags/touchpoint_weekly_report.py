"""touchpoint_weekly_report: the week that just ended, checked, rendered and emailed once.

Scheduled Mondays 07:00 in TOUCHPOINT_REPORT_TIMEZONE; the run's interval is the previous
week (Monday to Monday, UTC). Params ``start``/``end`` pick another week by hand.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from touchpoint.config import load_settings
from touchpoint.dag_defaults import default_args, interval_params


@dag(
    dag_id="touchpoint_weekly_report",
    schedule=CronDataIntervalTimetable("0 7 * * 1", timezone=load_settings().report_timezone),
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
        start, end = weekly_interval(dict(context["params"]), context["data_interval_start"],
                                     context["data_interval_end"])
        return {"start": start.isoformat(), "end": end.isoformat()}

    @task
    def check_quality(week: dict[str, str]) -> dict:
        """Validate the week; the result decides what send_report does (it never raises here)."""
        from datetime import datetime

        from touchpoint import connections, pipeline

        report = pipeline.check_quality(datetime.fromisoformat(week["start"]), datetime.fromisoformat(week["end"]),
                                        connections.warehouse_url(), load_settings(),
                                        run_id=get_current_context()["run_id"], raise_on_critical=False)
        return report.as_dict()

    @task
    def send_report(week: dict[str, str], quality: dict) -> list[dict]:
        """The gate: the report to stakeholders, or, on a critical failure, an alert to engineers."""
        from dataclasses import asdict
        from datetime import datetime

        from touchpoint import connections, pipeline
        from touchpoint.errors import TouchpointError

        deliveries = pipeline.send_weekly_report(datetime.fromisoformat(week["start"]).date(),
                                                 connections.warehouse_url(), connections.smtp_settings(),
                                                 load_settings(), quality=quality)
        if quality["status"] == "fail":
            raise TouchpointError(
                f"data-quality gate closed for {week['start'][:10]}: report held, alert sent to "
                f"{', '.join(d.recipient for d in deliveries)}; failures: "
                + "; ".join(f"{f['rule_id']} observed {f['observed']}" for f in quality["failures"]))
        return [asdict(d) for d in deliveries]

    week = resolve_week()
    send_report(week, check_quality(week))


touchpoint_weekly_report_dag = touchpoint_weekly_report()
