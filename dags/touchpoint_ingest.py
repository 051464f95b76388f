"""touchpoint_ingest: extract CRM, email and web for one day, build the warehouse, check it.

Each run owns exactly its data interval (a UTC day). Params ``start``/``end`` (ISO dates)
override it for a manual range. Extracts run in parallel (CRM per object group, through the
``crm_api`` pool); dbt builds the project once (Cosmos' watcher producer, each model's tests
right after it), then a task per seed, snapshot, model and model's tests reports its node's
outcome in dbt's lineage; then the data-quality suites; then the interval is recorded as
ingested and the ``touchpoint_marts`` Asset is updated. Thin by design: the work lives in the
``touchpoint`` package.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from touchpoint.config import load_settings
from touchpoint.orchestration.dbt_tasks import dbt_task_group
from touchpoint.orchestration.defaults import default_args, interval_params
from touchpoint.orchestration.resources import CRM_POOL, MARTS_ASSET
from touchpoint.sources.catalog import CRM_GROUPS

settings = load_settings()


@dag(
    dag_id="touchpoint_ingest",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retry_delay=timedelta(minutes=1)),
    params=interval_params("interval"),
    tags=["touchpoint", "ingest"],
    doc_md=__doc__,
)
def touchpoint_ingest():
    @task
    def resolve_interval() -> dict[str, str]:
        from touchpoint.intervals import daily_interval

        context = get_current_context()
        # a run triggered without a logical date (the UI button, `airflow dags trigger`) has no
        # data interval: it owns the last complete period before now
        start, end = daily_interval(
            dict(context["params"]),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
        )
        return {"start": start.isoformat(), "end": end.isoformat()}

    @task
    def extract(source: str, interval: dict[str, str], crm_group: str | None = None) -> dict:
        from datetime import datetime

        from touchpoint import pipeline
        from touchpoint.orchestration import connections

        crm = connections.crm_endpoint() if source == "crm" else None
        return pipeline.extract(
            source,
            datetime.fromisoformat(interval["start"]),
            datetime.fromisoformat(interval["end"]),
            connections.warehouse_url(),
            load_settings(),
            crm=crm,
            crm_group=crm_group,
        )

    @task
    def check_quality(interval: dict[str, str]) -> dict:
        """The interval's suites on raw and marts; fails the run on a critical failure."""
        from datetime import datetime

        from touchpoint import pipeline
        from touchpoint.orchestration import connections

        report = pipeline.check_quality(
            datetime.fromisoformat(interval["start"]),
            datetime.fromisoformat(interval["end"]),
            connections.warehouse_url(),
            load_settings(),
            run_id=get_current_context()["run_id"],
        )
        return report.as_dict()

    @task(outlets=[MARTS_ASSET])
    def record_ingested(interval: dict[str, str], quality: dict) -> None:
        """The interval is in the marts and checked: the weekly report may count on it."""
        from datetime import datetime

        from touchpoint import pipeline
        from touchpoint.orchestration import connections

        pipeline.record_ingested(
            datetime.fromisoformat(interval["start"]),
            datetime.fromisoformat(interval["end"]),
            connections.warehouse_url(),
            get_current_context()["run_id"],
        )

    interval = resolve_interval()
    # One task per CRM group (people, sales, service, conversations) and per file source, in
    # parallel; the CRM tasks share the crm_api pool, which bounds concurrent calls to the
    # HubSpot API.
    extracted = [
        extract.override(task_id=f"extract_crm_{group}", pool=CRM_POOL)("crm", interval, group)
        for group in CRM_GROUPS
    ]
    extracted += [
        extract.override(task_id=f"extract_{source}")(source, interval)
        for source in ("email", "web")
    ]
    dbt = dbt_task_group(settings, default_args=default_args(retry_delay=timedelta(minutes=1)))
    quality = check_quality(interval)
    extracted >> dbt >> quality
    record_ingested(interval, quality)


touchpoint_ingest_dag = touchpoint_ingest()
