"""The pipeline's steps, each a plain function over explicit resources.

DAG tasks call these with settings resolved from Airflow connections; the CLI and tests can
call them directly. Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from touchpoint.config import Settings, load_roles
from touchpoint.delivery.deliver import Delivery, RetryPolicy, deliver
from touchpoint.delivery.ledger import PERMANENT, delivery_states
from touchpoint.delivery.message import RenderedReport
from touchpoint.delivery.recipients import Recipient, RecipientList, SliceValues, load_recipients
from touchpoint.delivery.smtp import SmtpSettings
from touchpoint.extract import run as extract_run
from touchpoint.extract.quarantine import (
    QuarantinedRecord,
    QuarantineFilter,
    ReplayResult,
    list_quarantine,
    replay_quarantine,
    show_quarantined,
)
from touchpoint.extract.run import CrmEndpoint, extract_source
from touchpoint.intervals import iso_week
from touchpoint.quality.gx_runner import GXValidationFailed, QualityReport, run_quality
from touchpoint.report.render import DataQualityAlert, render_alert
from touchpoint.report.weekly import WeeklyReport, write_preview
from touchpoint.sources.catalog import FILE_STREAMS
from touchpoint.transform.dbt import (
    BUILD,
    DAILY_BUILD,
    WEEKLY_BUILD,
    WHOLE_TABLE_TESTS,
    DbtFailed,
    run_dbt,
    target_dir,
)
from touchpoint.warehouse.connection import connect, set_role
from touchpoint.warehouse.schema import ensure_schema, stage_url

log = logging.getLogger(__name__)

WEEKLY_REPORT = "weekly_touchpoints"
DQ_ALERT = "dq_alert"


def extract(
    source: str,
    start: datetime,
    end: datetime,
    warehouse_url: str,
    settings: Settings,
    crm: CrmEndpoint | None = None,
    crm_group: str | None = None,
    reread: bool = False,
) -> dict[str, Any]:
    """Extract one source for ``[start, end)`` into raw, as the loader role (``reread``: the
    interval's landing files even when the file ledger has them)."""
    stats = extract_source(
        source,
        stage_url(warehouse_url, settings.roles.loader),
        start,
        end,
        landing_url=settings.landing_url,
        crm=crm,
        crm_group=crm_group,
        limits=settings.limits,
        reread=reread,
    )
    return {s.stream: s.as_dict() for s in stats}


def load_file(source: str, path: str, warehouse_url: str, settings: Settings) -> dict[str, Any]:
    """Load one landing file of ``source`` by hand, as the loader role (no watermark moves)."""
    if source not in FILE_STREAMS:
        raise ValueError(
            f"{source!r} has no landing files; expected one of {', '.join(FILE_STREAMS)}"
        )
    stream, _folder = FILE_STREAMS[source]
    with connect(stage_url(warehouse_url, settings.roles.loader)) as conn:
        stats = extract_run.load_file(conn, stream, path, settings.limits)
    return {stats.stream: stats.as_dict()}


def quarantined(
    which: QuarantineFilter, warehouse_url: str, settings: Settings, limit: int = 50
) -> tuple[list[QuarantinedRecord], int]:
    """The newest quarantined records that match, and how many match (as the loader role)."""
    with connect(stage_url(warehouse_url, settings.roles.loader)) as conn:
        return list_quarantine(conn, which, limit)


def quarantined_record(record_id: int, warehouse_url: str, settings: Settings) -> QuarantinedRecord:
    with connect(stage_url(warehouse_url, settings.roles.loader)) as conn:
        return show_quarantined(conn, record_id)


def replay(which: QuarantineFilter, warehouse_url: str, settings: Settings) -> ReplayResult:
    """Load the matching quarantined records that pass the checks now (as the loader role)."""
    with connect(stage_url(warehouse_url, settings.roles.loader)) as conn:
        return replay_quarantine(conn, which, settings.limits)


def transform(
    warehouse_url: str, settings: Settings, daily: bool = False, full_refresh: bool = False
) -> None:
    """Build and test every dbt model (seeds, models, data tests) on the warehouse, as the
    transformer role (the profile's ``role``, from :func:`touchpoint.transform.dbt_env`).
    ``daily``: as the ingest builds, without the weekly report's models, its data tests on the
    rows the build wrote only. ``full_refresh``: every incremental model rebuilt from raw (an
    upgrade that changes their columns or keys)."""
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
    build = [*(DAILY_BUILD if daily else BUILD), *(["--full-refresh"] if full_refresh else [])]
    run_dbt(build, settings.dbt_project_dir, warehouse_url, settings.var_dir)


def build_weekly_models(warehouse_url: str, settings: Settings) -> None:
    """The weekly report's models (which a ``daily`` :func:`transform` leaves out), as its run
    builds them once the week is ingested; :func:`test_whole_tables` tests them after."""
    run_dbt([*WEEKLY_BUILD], settings.dbt_project_dir, warehouse_url, settings.var_dir)


def test_whole_tables(warehouse_url: str, settings: Settings) -> list[dict[str, Any]]:
    """Every dbt data test on every row (the daily build tests only the rows it wrote); the
    failing ones, in the shape of the quality gate's failures (:func:`gate_with_tests`). Raises
    :class:`DbtFailed` when dbt fails otherwise (nothing tested)."""
    try:
        run_dbt([*WHOLE_TABLE_TESTS], settings.dbt_project_dir, warehouse_url, settings.var_dir)
    except DbtFailed:
        failures = _failed_tests(target_dir(settings.var_dir, warehouse_url))
        if not failures:
            raise
        return failures
    return []


def _failed_tests(target: Path) -> list[dict[str, Any]]:
    try:
        results = json.loads((target / "run_results.json").read_text())["results"]
    except (FileNotFoundError, KeyError, ValueError):
        return []
    return [
        {
            "rule_id": "dbt." + r["unique_id"].split(".")[2],
            "severity": "critical",
            "expectation": "dbt test",
            "column": None,
            "observed": (
                f"{r['failures']} failing row(s)"
                if r["status"] == "fail"
                else (r.get("message") or "error").splitlines()[0]
            ),
        }
        for r in results
        if r["unique_id"].startswith("test.") and r["status"] in ("fail", "error")
    ]


def gate_with_tests(quality: dict[str, Any], failed_tests: list[dict[str, Any]]) -> dict[str, Any]:
    """The quality gate's result (:meth:`QualityReport.as_dict`) with the failing whole-table
    dbt tests among its critical failures: any of them closes the gate."""
    if not failed_tests:
        return quality
    return {**quality, "status": "fail", "failures": failed_tests + quality["failures"]}


def check_quality(
    start: datetime,
    end: datetime,
    warehouse_url: str,
    settings: Settings,
    run_id: str | None = None,
    raise_on_critical: bool = True,
    suites: list[str] | None = None,
) -> QualityReport:
    """Run every suite on the interval and store the results; by default raise
    :class:`GXValidationFailed` when a critical expectation fails (the gate). The checks read
    raw and the marts and write dq.*: they run as the transformer role."""
    report = run_quality(
        stage_url(warehouse_url, settings.roles.transformer),
        settings.expectations_dir,
        settings.var_dir / "gx",
        start,
        end,
        run_id=run_id,
        only=suites or None,
        limits=settings.limits,
    )
    if raise_on_critical and report.critical_failures:
        raise GXValidationFailed(report)
    return report


def record_ingested(start: datetime, end: datetime, warehouse_url: str, run_id: str) -> None:
    """Note that the ingest completed [start, end): extracted, built and checked (as the
    transformer role, the last stage of the ingest)."""
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        set_role(conn, load_roles().transformer)
        conn.execute(
            "insert into ops.ingest_intervals (interval_start, interval_end, run_id)"
            " values (%s, %s, %s)"
            " on conflict (interval_start, interval_end, run_id) do update set finished_at = now()",
            (start, end, run_id),
        )


def days_not_ingested(start: datetime, end: datetime, warehouse_url: str) -> list[date]:
    """The UTC days of [start, end) that no completed ingest run covers entirely (read by the
    report, as the reporter role)."""
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        set_role(conn, load_roles().reporter)
        conn.execute("set time zone 'UTC'")  # days are UTC days, whatever the server's zone
        rows = conn.execute(
            "select day::date from generate_series(%(start)s::timestamptz,"
            " %(end)s::timestamptz - interval '1 day', interval '1 day') as day"
            " where not exists (select 1 from ops.ingest_intervals as i"
            "                   where i.interval_start <= day"
            " and i.interval_end >= day + interval '1 day')"
            " order by 1",
            {"start": start, "end": end},
        ).fetchall()
    return [row[0] for row in rows]


def _recipients(settings: Settings, recipients_file: Path | None) -> RecipientList:
    return load_recipients(
        recipients_file or settings.reports_dir / "recipients.yml",
        SliceValues.from_seeds(settings.dbt_project_dir),
    )


def render_weekly_report(
    week_start: date,
    warehouse_url: str,
    settings: Settings,
    out: Path,
    quality: dict[str, Any] | None = None,
    recipients_file: Path | None = None,
) -> tuple[bool, list[Path]]:
    """Write each recipient's HTML, text, images and CSV under ``out``; send nothing. Returns
    whether the week has data (a week without is not sent) and the files written."""
    recipients = _recipients(settings, recipients_file)
    with connect(stage_url(warehouse_url, settings.roles.reporter)) as conn:
        report = WeeklyReport(
            conn,
            week_start,
            settings.reports_dir / "templates",
            quality,
            trend_url=settings.report_trend_url,
        )
        return report.has_data, write_preview(report, recipients.recipients, out)


def send_weekly_report(
    week_start: date,
    warehouse_url: str,
    smtp: SmtpSettings,
    settings: Settings,
    quality: dict[str, Any] | None = None,
    recipients_file: Path | None = None,
    dry_run: bool = False,
) -> list[Delivery]:
    """The gate and the send. With a critical data-quality failure (``quality["status"] ==
    "fail"``) stakeholders get nothing and the alerts list gets the failures; otherwise each
    recipient who has not had this week's report gets their slice of it, with any warnings as
    a note. A week without a single touchpoint sends nothing (unless
    TOUCHPOINT_REPORT_SKIP_EMPTY_WEEKS=false). ``dry_run`` renders every message that would go
    out and returns the plan, sending and recording nothing. Runs as the reporter role."""
    recipients = _recipients(settings, recipients_file)
    templates = settings.reports_dir / "templates"
    period = iso_week(week_start)
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        set_role(conn, settings.roles.reporter)
        if quality and quality.get("status") == "fail":
            alert = DataQualityAlert.from_dict(quality)
            send = _plan if dry_run else deliver
            return send(
                conn,
                smtp,
                DQ_ALERT,
                period,
                recipients.sender,
                recipients.alerts,
                render=lambda recipient: render_alert(alert, recipient, templates),
            )
        report = WeeklyReport(
            conn, week_start, templates, quality, trend_url=settings.report_trend_url
        )
        if settings.report_skip_empty_weeks and not report.has_data:
            log.warning(
                "week %s has no touchpoints in the warehouse: the report is not sent "
                "(set TOUCHPOINT_REPORT_SKIP_EMPTY_WEEKS=false to send it anyway)",
                period,
            )
            return []
        if dry_run:
            return _plan(
                conn,
                smtp,
                WEEKLY_REPORT,
                period,
                recipients.sender,
                recipients.recipients,
                render=report.render,
            )
        return deliver(
            conn,
            smtp,
            WEEKLY_REPORT,
            period,
            recipients.sender,
            recipients.recipients,
            render=report.render,
            alerts=recipients.alerts,
            policy=retry_policy(settings),
        )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.smtp_attempts, first_delay=settings.smtp_first_delay_seconds
    )


def _plan(
    conn,
    smtp: SmtpSettings,
    report: str,
    period: str,
    sender: str,
    recipients: tuple[Recipient, ...],
    render: Callable[[Recipient], RenderedReport],
    alerts: tuple[Recipient, ...] = (),
) -> list[Delivery]:
    """What :func:`deliver` would do, rendering each message but sending and recording nothing."""
    states = delivery_states(conn, report, period)
    plan = []
    for recipient in recipients:
        status, error = states.get(recipient.address, ("pending", None))
        due = status != "sent" and not (error or "").startswith(PERMANENT)
        subject = render(recipient).subject
        plan.append(
            Delivery(
                recipient.address,
                subject,
                "(dry run)",
                newly_sent=due,
                status=status,
                last_error=error,
            )
        )
    return plan
