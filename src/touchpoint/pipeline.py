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
from touchpoint.quality.gx_runner import ValidationSummary, run_checkpoint
from touchpoint.report.content import load_weekly_content
from touchpoint.report.recipients import load_recipients
from touchpoint.report.render import render_weekly_report
from touchpoint.report.send import Delivery, SmtpSettings, send_once
from touchpoint.transform import run_dbt
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema

log = logging.getLogger(__name__)

WEEKLY_REPORT = "weekly_touchpoints"
CORE_SUITES = ("fct_touchpoints.json",)


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


def check_quality(start: datetime, end: datetime, warehouse_url: str, settings: Settings) -> list[ValidationSummary]:
    """Run the core suites on the interval; raises GXValidationFailed on a critical failure."""
    return [run_checkpoint(warehouse_url, settings.expectations_dir / name, start, end) for name in CORE_SUITES]


def send_weekly_report(week_start: date, warehouse_url: str, smtp: SmtpSettings, settings: Settings,
                       recipients_file: Path | None = None) -> list[Delivery]:
    """Render the week's report per recipient and send it to those who have not had it."""
    recipients = load_recipients(recipients_file or settings.reports_dir / "recipients.yml")
    templates = settings.reports_dir / "templates"
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        content = load_weekly_content(conn, week_start)
        return send_once(
            conn, smtp, WEEKLY_REPORT, week_start, recipients.sender, recipients.recipients,
            render=lambda recipient: render_weekly_report(content, recipient, templates),
        )
