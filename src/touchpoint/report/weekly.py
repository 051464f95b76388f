"""One week's report for every recipient: content per slice (read once per slice), rendered per
recipient, and written to a folder for preview (``touchpoint report render``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from touchpoint.delivery.message import RenderedReport
from touchpoint.delivery.recipients import Recipient
from touchpoint.report.content import ALL, Slice, WeeklyContent, load_weekly_content
from touchpoint.report.render import render_weekly_report


def quality_notes(quality: dict[str, Any] | None) -> tuple[str, list[str]]:
    """(status, warnings) for the report from a data-quality result (see pipeline.check_quality)."""
    if not quality:
        return "not checked", []
    warnings = [f"{f['rule_id']}: observed {f['observed']}" for f in quality.get("failures", [])]
    return ("warnings" if warnings else "passed"), warnings


@dataclass
class WeeklyReport:
    """The report of one week: reads each slice's content once and renders per recipient."""

    conn: psycopg.Connection
    week_start: date
    templates_dir: Path
    quality: dict[str, Any] | None = None
    #: TOUCHPOINT_REPORT_TREND_URL: where signals link (None: their chart inside the report)
    trend_url: str | None = None
    _contents: dict[Slice, WeeklyContent] = field(default_factory=dict)
    _charts: dict[Slice, dict] = field(default_factory=dict)

    def content(self, slice_: Slice) -> WeeklyContent:
        if slice_ not in self._contents:
            content = load_weekly_content(self.conn, self.week_start, slice_)
            content.quality_status, content.quality_warnings = quality_notes(self.quality)
            self._contents[slice_] = content
        return self._contents[slice_]

    @property
    def has_data(self) -> bool:
        """Whether the week has any touchpoint at all (whole company)."""
        return self.content(Slice(ALL, ALL)).has_data

    def render(self, recipient: Recipient) -> RenderedReport:
        return render_weekly_report(
            self.content(recipient.slice),
            recipient,
            self.templates_dir,
            chart_cache=self._charts.setdefault(recipient.slice, {}),
            trend_url=self.trend_url,
        )


def write_preview(
    report: WeeklyReport, recipients: tuple[Recipient, ...], out_dir: Path
) -> list[Path]:
    """Per recipient, a folder with the HTML (images pointing at the PNG files next to it), the
    text, the PNGs, the CSV and the subject. Returns the HTML files."""
    written = []
    for recipient in recipients:
        rendered = report.render(recipient)
        folder = out_dir / re.sub(r"[^A-Za-z0-9@._-]+", "_", recipient.address)
        folder.mkdir(parents=True, exist_ok=True)
        html = rendered.html
        for image in rendered.images:
            (folder / image.filename).write_bytes(image.data)
            html = html.replace(f"cid:{image.cid}", image.filename)
        for attachment in rendered.attachments:
            (folder / attachment.filename).write_bytes(attachment.data)
        (folder / "report.html").write_text(html, encoding="utf-8")
        (folder / "report.txt").write_text(rendered.text, encoding="utf-8")
        (folder / "subject.txt").write_text(rendered.subject + "\n", encoding="utf-8")
        written.append(folder / "report.html")
    return written
