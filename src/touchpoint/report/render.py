"""Render the weekly report to HTML (CSS inlined for mail clients) and plain text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from touchpoint.report.content import WeeklyContent
from touchpoint.report.message import RenderedReport
from touchpoint.report.recipients import Recipient


def _environment(templates_dir: Path, recipient: Recipient) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    locale = recipient.locale
    tz = ZoneInfo(recipient.timezone)
    env.filters["number"] = lambda n: format_decimal(n, locale=locale)
    env.filters["pct"] = lambda x: "n/a" if x is None else format_percent(x / 100, format="#,##0.0%", locale=locale)
    env.filters["signed"] = lambda n: ("+" if n > 0 else "") + format_decimal(n, locale=locale)
    env.filters["signed_pct"] = (
        lambda x: "new" if x is None else ("+" if x > 0 else "") + format_percent(x / 100, format="#,##0.0%", locale=locale)
    )
    env.filters["day"] = lambda d: format_date(d, format="medium", locale=locale)
    env.filters["moment"] = (
        lambda m: "no data" if m is None else format_datetime(m.astimezone(tz), format="medium", tzinfo=tz, locale=locale)
        + f" ({recipient.timezone})"
    )
    return env


@dataclass(frozen=True)
class DataQualityAlert:
    """What the data engineers are told when the gate closes."""

    start: str
    end: str
    failures: list[dict]
    data_docs: str | None

    @classmethod
    def from_dict(cls, quality: dict) -> DataQualityAlert:
        return cls(quality["start"], quality["end"], quality.get("failures", []), quality.get("data_docs"))


def render_alert(alert: DataQualityAlert, recipient: Recipient, templates_dir: Path) -> RenderedReport:
    env = _environment(templates_dir, recipient)
    context = {"alert": alert, "recipient": recipient}
    critical = sum(1 for f in alert.failures if f["severity"] == "critical")
    subject = f"[touchpoint] data-quality gate closed for {alert.start[:10]} .. {alert.end[:10]}: {critical} critical failure(s); report held"
    html = css_inline.inline(env.get_template("dq_alert.html").render(context))
    text = env.get_template("dq_alert.txt").render(context)
    return RenderedReport(subject=subject, html=html, text=text)


def render_weekly_report(content: WeeklyContent, recipient: Recipient, templates_dir: Path) -> RenderedReport:
    env = _environment(templates_dir, recipient)
    context = {"report": content, "recipient": recipient}
    subject = env.get_template("weekly_report.subject.txt").render(context).strip()
    html = env.get_template("weekly_report.html").render(context)
    html = css_inline.inline(html)
    text = env.get_template("weekly_report.txt").render(context)
    return RenderedReport(subject=subject, html=html, text=text)
