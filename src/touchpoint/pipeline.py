"""The pipeline's steps, each a plain function over explicit resources.

DAG tasks call these with settings resolved from Airflow connections; the CLI and tests can
call them directly. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

from touchpoint.config import Settings
from touchpoint.extract.run import CrmEndpoint, extract_source
from touchpoint.quality.gx_runner import GXValidationFailed, QualityReport, run_quality
from touchpoint.report.content import load_weekly_content
from touchpoint.report.recipients import load_recipients
from touchpoint.report.render import DataQualityAlert, render_alert, render_weekly_report
from touchpoint.report.send import Delivery, SmtpSettings, deliver, iso_week
from touchpoint.transform import run_dbt
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema

log = logging.getLogger(__name__)

WEEKLY_REPORT = "weekly_touchpoints"
DQ_ALERT = "dq_alert"


def extract(source: str, start: datetime, end: datetime, warehouse_url: str, settings: Settings,
            crm: CrmEndpoint | None = None, crm_group: str | None = None) -> dict[str, Any]:
    stats = extract_source(source, warehouse_url, start, end, landing_url=settings.landing_url, crm=crm,
                           crm_group=crm_group)
    return {s.stream: s.as_dict() for s in stats}


def transform(warehouse_url: str, settings: Settings) -> None:
    """Build and test every dbt model (seeds, models, tests) on the warehouse."""
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
    run_dbt(["build"], settings.dbt_project_dir, warehouse_url, settings.var_dir)


def check_quality(start: datetime, end: datetime, warehouse_url: str, settings: Settings,
                  run_id: str | None = None, raise_on_critical: bool = True) -> QualityReport:
    """Run every suite on the interval and store the results; by default raise
    :class:`GXValidationFailed` when a critical expectation fails (the gate)."""
    report = run_quality(warehouse_url, settings.expectations_dir, settings.var_dir / "gx", start, end, run_id=run_id)
    if raise_on_critical and report.critical_failures:
        raise GXValidationFailed(report)
    return report


def send_weekly_report(week_start: date, warehouse_url: str, smtp: SmtpSettings, settings: Settings,
                       quality: dict[str, Any] | None = None, recipients_file: Path | None = None) -> list[Delivery]:
    """The gate and the send. With a critical data-quality failure (``quality["status"] ==
    "fail"``) stakeholders get nothing and the alerts list gets the failures; otherwise the
    week's report goes to every recipient who has not had it, with any warnings as a note."""
    recipients = load_recipients(recipients_file or settings.reports_dir / "recipients.yml")
    templates = settings.reports_dir / "templates"
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        if quality and quality.get("status") == "fail":
            alert = DataQualityAlert.from_dict(quality)
            return deliver(conn, smtp, DQ_ALERT, iso_week(week_start), recipients.sender, recipients.alerts,
                           render=lambda recipient: render_alert(alert, recipient, templates))
        content = load_weekly_content(conn, week_start)
        content.quality_warnings = [f"{f['rule_id']}: observed {f['observed']}" for f in (quality or {}).get("failures", [])]
        return deliver(
            conn, smtp, WEEKLY_REPORT, iso_week(week_start), recipients.sender, recipients.recipients,
            render=lambda recipient: render_weekly_report(content, recipient, templates),
            alerts=recipients.alerts,
        )
