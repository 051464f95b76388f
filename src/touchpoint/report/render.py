"""Render the weekly report for one recipient: HTML (CSS inlined for mail clients), a plain-text
alternative from the same context, PNG charts referenced by Content-ID, and the KPI table as CSV."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from touchpoint.delivery.message import InlineImage, RenderedReport
from touchpoint.delivery.recipients import Recipient
from touchpoint.i18n import N_, translations
from touchpoint.report import charts
from touchpoint.report.attachments import kpi_csv
from touchpoint.report.commercial import CAMPAIGN_MIN_DELIVERED
from touchpoint.report.content import (
    ATTRIBUTION_MODELS,
    BASELINE_WEEKS,
    RECURRING_SHARE,
    WeeklyContent,
)
from touchpoint.report.signals import Signal
from touchpoint.report.standing import HEALTH_WINDOW_DAYS, SCORECARD_METRICS
from touchpoint.report.wording import Wording


def locales_dir(templates_dir: Path) -> Path:
    """The catalogs sit beside the templates (reports/locales)."""
    return templates_dir.parent / "locales"


def wording(templates_dir: Path, recipient: Recipient) -> Wording:
    return _wording_for(str(templates_dir), recipient.locale, recipient.timezone, recipient.reads)


@lru_cache(maxsize=64)
def _wording_for(templates_dir: str, locale: str, timezone: str, language: str) -> Wording:
    return Wording(translations(locales_dir(Path(templates_dir)), language), locale, timezone)


def _environment(templates_dir: Path, recipient: Recipient) -> Environment:
    return _environment_for(
        str(templates_dir), recipient.locale, recipient.timezone, recipient.reads
    )


@lru_cache(maxsize=64)
def _environment_for(templates_dir: str, locale: str, timezone: str, language: str) -> Environment:
    """One environment per templates folder, locale, time zone and language, so that its
    compiled templates serve every recipient who shares them (compiling them per recipient was
    a sixth of the time of a send)."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    words = _wording_for(templates_dir, locale, timezone, language)
    # newstyle: a message's %(name)s placeholders are filled (and escaped) by gettext itself
    env.install_gettext_translations(words.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = words.number
    env.filters["pct"] = lambda x: words.percent(None if x is None else x / 100)
    env.filters["signed"] = words.signed
    env.filters["signed_pct"] = lambda x: words.signed_percent(None if x is None else x / 100)
    env.filters["day"] = words.day
    env.filters["short_day"] = words.short_day
    env.filters["kpi_value"] = words.kpi_value
    env.filters["kpi_change"] = words.kpi_change
    env.filters["metric_value"] = words.metric_value
    env.filters["decimal"] = words.decimal
    env.filters["signal_facts"] = words.signal_facts
    env.filters["signal_name"] = words.signal_name
    env.filters["metric_label"] = words.metric_label
    env.filters["term"] = words.term
    env.filters["category"] = words.category
    env.filters["risk_reason"] = words.risk_reason
    env.filters["slice_label"] = words.slice_label
    env.filters["moment"] = words.moment
    env.filters["share"] = words.percent
    env.filters["hours"] = words.hours
    env.filters["money"] = words.money
    env.filters["days"] = words.days
    env.filters["standing"] = words.standing
    env.filters["standing_sample"] = words.standing_sample
    env.filters["below_company"] = words.below_company
    env.filters["episode_facts"] = words.episode_facts
    return env


def trend_link(signal: Signal, url_template: str | None) -> str:
    """Where a signal's name links: its chart in the report, or the configured trend page
    (TOUCHPOINT_REPORT_TREND_URL) with the signal's fields URL-quoted."""
    if not url_template:
        return f"#trend-{signal.slug}"
    return url_template.format(
        grain=quote(signal.grain, safe=""),
        key=quote(signal.name_key, safe=""),
        metric=quote(signal.metric, safe=""),
        week=signal.week_start.isoformat(),
        region=quote(signal.region, safe=""),
    )


#: a failed expectation's severity, as the alert names it
SEVERITIES = (N_("critical"), N_("warning"))


@dataclass(frozen=True)
class DataQualityAlert:
    """What the data engineers are told when the gate closes."""

    start: str
    end: str
    failures: list[dict]
    data_docs: str | None

    @classmethod
    def from_dict(cls, quality: dict) -> DataQualityAlert:
        return cls(
            quality["start"], quality["end"], quality.get("failures", []), quality.get("data_docs")
        )


def render_alert(
    alert: DataQualityAlert, recipient: Recipient, templates_dir: Path
) -> RenderedReport:
    env = _environment(templates_dir, recipient)
    words = wording(templates_dir, recipient)
    context = {"alert": alert, "recipient": recipient}
    critical = sum(1 for f in alert.failures if f["severity"] == "critical")
    subject = "[touchpoint] " + words.plural(
        "data-quality gate closed for %(start)s .. %(end)s: %(num)d critical failure; report held",
        "data-quality gate closed for %(start)s .. %(end)s: %(num)d critical failures; report held",
        critical,
    ) % {"start": alert.start[:10], "end": alert.end[:10], "num": critical}
    html = css_inline.inline(env.get_template("dq_alert.html").render(context))
    text = env.get_template("dq_alert.txt").render(context)
    return RenderedReport(subject=subject, html=html, text=text)


def render_weekly_report(
    content: WeeklyContent,
    recipient: Recipient,
    templates_dir: Path,
    chart_cache: dict[tuple[str, str, str], InlineImage] | None = None,
    trend_url: str | None = None,
) -> RenderedReport:
    """``chart_cache``: charts already drawn for this ``content``, by (chart, locale,
    language); the caller keeps one per content, so recipients of the same slice, locale and
    language share their PNGs.
    ``trend_url``: the TOUCHPOINT_REPORT_TREND_URL template signals link to (None: their chart
    in the report)."""
    env = _environment(templates_dir, recipient)
    words = wording(templates_dir, recipient)
    # stable across renders, so the same content always hashes the same (reporting.deliveries)
    who = hashlib.sha256(f"{recipient.address}|{content.slice}".encode()).hexdigest()[:12]
    tag = f"{content.iso_week}.{who}@touchpoint.report"
    drawers: dict[str, Callable[[str], InlineImage]] = {
        "trend": lambda cid: charts.trend_chart(content, cid, words),
        "channels": lambda cid: charts.channel_chart(content, cid, words),
        "funnel": lambda cid: charts.funnel_chart(content, cid, words),
        "health": lambda cid: charts.health_chart(content, cid, words),
    }

    def signal_drawer(signal: Signal) -> Callable[[str], InlineImage]:
        return lambda cid: charts.signal_chart(signal, cid, words)

    for signal in content.shown_signals:
        drawers[f"trend-{signal.slug}"] = signal_drawer(signal)
    cache = {} if chart_cache is None else chart_cache
    images = {}
    for name, draw in drawers.items():
        cid = f"{name}.{tag}"
        key = (name, recipient.locale, recipient.reads)
        drawn = cache.get(key)
        if drawn is None:
            drawn = cache[key] = draw(cid)
        images[name] = replace(drawn, cid=cid, filename=f"{cid.split('@')[0]}.png")
    csv_file = kpi_csv(content, words)
    links = {s.key: trend_link(s, trend_url) for s in content.shown_signals}
    context = {
        "report": content,
        "recipient": recipient,
        "charts": images,
        "csv_name": csv_file.filename,
        "links": links,
        "links_inside": not trend_url,
        "attribution_models": ATTRIBUTION_MODELS,
        "scorecard_metrics": SCORECARD_METRICS,
        "health_window_days": HEALTH_WINDOW_DAYS,
        "baseline_weeks": BASELINE_WEEKS,
        "recurring_share": RECURRING_SHARE,
        "campaign_min_delivered": CAMPAIGN_MIN_DELIVERED,
    }
    subject = env.get_template("weekly_report.subject.txt").render(context).strip()
    html = css_inline.inline(env.get_template("weekly_report.html").render(context))
    text = env.get_template("weekly_report.txt").render(context)
    return RenderedReport(
        subject=subject,
        html=html,
        text=text,
        images=tuple(images.values()),
        attachments=(csv_file,),
    )


@dataclass(frozen=True)
class TaskFailure:
    """What the data engineers are told when an Airflow task has failed for good (no retry left).

    Times are ISO strings (or None when Airflow had none); ``error`` is one redacted line."""

    dag_id: str
    task_id: str
    run_id: str
    interval_start: str | None
    interval_end: str | None
    try_number: int
    #: the first try and its retries (Airflow's ``max_tries`` + 1)
    tries_allowed: int
    error: str
    log_url: str | None
    log_file: str | None
    hostname: str | None = None
    map_index: int = -1
    params_start: str | None = None
    params_end: str | None = None

    @property
    def task_label(self) -> str:
        """``task_id``, with ``[map_index]`` for one instance of a mapped task."""
        return f"{self.task_id}[{self.map_index}]" if self.map_index >= 0 else self.task_id


def render_task_failure(
    failure: TaskFailure, recipient: Recipient, templates_dir: Path
) -> RenderedReport:
    env = _environment(templates_dir, recipient)
    words = wording(templates_dir, recipient)
    context = {"failure": failure, "recipient": recipient}
    unknown = words._("n/a")
    subject = "[touchpoint] " + words._(
        "task failed: %(task)s (%(start)s .. %(end)s), try %(try)s of %(tries)s"
    ) % {
        "task": f"{failure.dag_id}.{failure.task_label}",
        "start": (failure.interval_start or unknown)[:10],
        "end": (failure.interval_end or unknown)[:10],
        "try": failure.try_number,
        "tries": failure.tries_allowed,
    }
    html = css_inline.inline(env.get_template("task_failure.html").render(context))
    text = env.get_template("task_failure.txt").render(context)
    return RenderedReport(subject=subject, html=html, text=text)
