"""Render the weekly report for one recipient: HTML (CSS inlined for mail clients), a plain-text
alternative from the same context, PNG charts referenced by Content-ID, and the KPI table as CSV."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import css_inline
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from touchpoint.delivery.message import InlineImage, RenderedReport
from touchpoint.delivery.recipients import Recipient
from touchpoint.report import charts
from touchpoint.report.attachments import kpi_csv
from touchpoint.report.content import Kpi, Signal, WeeklyContent, key_name


def _environment(templates_dir: Path, recipient: Recipient) -> Environment:
    return _environment_for(str(templates_dir), recipient.locale, recipient.timezone)


@lru_cache(maxsize=64)
def _environment_for(templates_dir: str, locale: str, timezone: str) -> Environment:
    """One environment per templates folder, locale and time zone, so that its compiled
    templates serve every recipient who shares them (compiling them per recipient was a sixth of
    the time of a send)."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    tz = ZoneInfo(timezone)
    env.filters["number"] = lambda n: format_decimal(n, locale=locale)
    env.filters["pct"] = lambda x: (
        "n/a" if x is None else format_percent(x / 100, format="#,##0.0%", locale=locale)
    )
    env.filters["signed"] = lambda n: ("+" if n > 0 else "") + format_decimal(n, locale=locale)
    env.filters["signed_pct"] = lambda x: (
        "new"
        if x is None
        else ("+" if x > 0 else "") + format_percent(x / 100, format="#,##0.0%", locale=locale)
    )
    env.filters["day"] = lambda d: format_date(d, format="medium", locale=locale)
    env.filters["short_day"] = lambda d: format_date(d, format="d MMM", locale=locale)
    env.filters["kpi_value"] = lambda k: _kpi_value(k, locale)
    env.filters["kpi_change"] = lambda k: _kpi_change(k, locale)
    env.filters["metric_value"] = lambda v, metric: _metric_value(v, metric, locale)
    env.filters["decimal"] = lambda n, digits=1: format_decimal(
        n, format="#,##0." + "0" * digits, locale=locale
    )
    env.filters["signal_facts"] = lambda s: signal_facts(s, locale)
    env.filters["moment"] = lambda m: (
        "no data"
        if m is None
        else format_datetime(m.astimezone(tz), format="medium", tzinfo=tz, locale=locale)
        + f" ({timezone})"
    )
    return env


def _metric_value(value: float | None, kind: str, locale: str) -> str:
    if value is None:
        return "n/a"
    if kind in ("rate", "conversion_rate"):
        return format_percent(value, format="#,##0.0%", locale=locale)
    if kind == "csat":
        return format_decimal(value, format="0.0", locale=locale) + " / 5"
    if kind == "nps":
        return ("+" if value > 0 else "") + format_decimal(value, format="0", locale=locale)
    return format_decimal(round(value, 1), format="#,##0.#", locale=locale)


def _kpi_value(kpi: Kpi, locale: str) -> str:
    return _metric_value(kpi.current, kpi.kind, locale)


def _kpi_change(kpi: Kpi, locale: str) -> str:
    """Counts and rates: relative change; scores: the change in points."""
    if kpi.delta is None:
        return "n/a"
    if kpi.kind in ("csat", "nps"):
        points = format_decimal(
            kpi.delta, format="0.0" if kpi.kind == "csat" else "0", locale=locale
        )
        return ("+" if kpi.delta > 0 else "") + points + " pt"
    if kpi.percent is None:
        return "new"
    return ("+" if kpi.percent > 0 else "") + format_percent(
        kpi.percent / 100, format="#,##0.0%", locale=locale
    )


def _signal_number(value: float, metric: str, locale: str) -> str:
    """A signal's number without its unit (ranges: '4.0–4.3')."""
    if metric == "conversion_rate":
        return format_percent(value, format="#,##0.0%", locale=locale)
    if metric == "csat":
        return format_decimal(value, format="0.0", locale=locale)
    if metric == "nps":
        return ("+" if value > 0 else "") + format_decimal(value, format="0", locale=locale)
    if metric == "cases":
        return format_decimal(value, format="#,##0", locale=locale)
    return format_decimal(value, format="#,##0.0", locale=locale)


_SAMPLE_NOUNS = {
    "csat": "answers",
    "nps": "answers",
    "conversion_rate": "customers reached",
    "engagement": "customers",
}
#: how a signal's line names the touchpoints it shares its answers or customers with
_SHARED_UNITS = {
    "csat": "the same answers follow",
    "nps": "the same answers follow",
    "conversion_rate": "the same customers met",
    "engagement": "the same customers met",
}


def signal_facts(signal: Signal, locale: str) -> dict[str, str | None]:
    """The formatted pieces of a signal's line: what it is now, its baseline (median and range of
    the trailing weeks), the samples behind both, and the change in the metric's natural unit
    (points for scores, relative for rates and engagement, a factor for case counts)."""
    metric = signal.metric

    def number(value: float) -> str:
        return _signal_number(value, metric, locale)

    def with_unit(value: float) -> str:
        return number(value) + (" / 5" if metric == "csat" else "")

    if metric in ("cases", "engagement"):
        now = f"{number(signal.value)} {signal.metric_label}"
    else:
        now = f"{signal.metric_label} {with_unit(signal.value)}"
    if metric in ("csat", "nps"):
        points = format_decimal(
            signal.change, format="0.0" if metric == "csat" else "0", locale=locale
        )
        change = ("+" if signal.change > 0 else "") + points + " pt"
    elif signal.ratio is None:
        change = "new"
    elif metric == "cases":
        change = "×" + format_decimal(signal.ratio, format="0.0", locale=locale)
    else:
        relative = signal.ratio - 1
        change = ("+" if relative > 0 else "") + format_percent(
            relative, format="#,##0%", locale=locale
        )
    noun = _SAMPLE_NOUNS.get(metric)
    sample = (
        None
        if noun is None
        else (
            f"{format_decimal(signal.sample, locale=locale)} {noun}"
            f" ({format_decimal(signal.baseline_sample, locale=locale)} in the weeks before)"
        )
    )
    weeks = signal.baseline_weeks
    shared_with = [key_name(key).replace("_", " ") for key in signal.named_with]
    return {
        "now": now,
        "baseline": with_unit(signal.baseline_value),
        "low": number(signal.baseline_low),
        "high": number(signal.baseline_high),
        "weeks": f"the {weeks} weeks before" if weeks != 1 else "the week before",
        "sample": sample,
        "change": change,
        "shared": (
            f"{_SHARED_UNITS.get(metric, 'the same units belong to')} "
            f"{format_list(shared_with, locale=locale)}"
            if signal.named_with
            else None
        ),
    }


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
    context = {"alert": alert, "recipient": recipient}
    critical = sum(1 for f in alert.failures if f["severity"] == "critical")
    subject = (
        f"[touchpoint] data-quality gate closed for {alert.start[:10]} .. {alert.end[:10]}: "
        f"{critical} critical failure(s); report held"
    )
    html = css_inline.inline(env.get_template("dq_alert.html").render(context))
    text = env.get_template("dq_alert.txt").render(context)
    return RenderedReport(subject=subject, html=html, text=text)


def render_weekly_report(
    content: WeeklyContent,
    recipient: Recipient,
    templates_dir: Path,
    chart_cache: dict[tuple[str, str], InlineImage] | None = None,
    trend_url: str | None = None,
) -> RenderedReport:
    """``chart_cache``: charts already drawn for this ``content``, by (chart, locale); the caller
    keeps one per content, so recipients of the same slice and locale share their PNGs.
    ``trend_url``: the TOUCHPOINT_REPORT_TREND_URL template signals link to (None: their chart
    in the report)."""
    env = _environment(templates_dir, recipient)
    number, short_day = env.filters["number"], env.filters["short_day"]
    # stable across renders, so the same content always hashes the same (reporting.deliveries)
    who = hashlib.sha256(f"{recipient.address}|{content.slice}".encode()).hexdigest()[:12]
    tag = f"{content.iso_week}.{who}@touchpoint.report"
    drawers: dict[str, Callable[[str], InlineImage]] = {
        "trend": lambda cid: charts.trend_chart(content, cid, number, short_day),
        "channels": lambda cid: charts.channel_chart(content, cid, number),
        "funnel": lambda cid: charts.funnel_chart(content, cid, number),
    }
    locale = recipient.locale

    def signal_drawer(signal: Signal) -> Callable[[str], InlineImage]:
        def number(value: float) -> str:
            return _signal_number(value, signal.metric, locale)

        return lambda cid: charts.signal_chart(signal, cid, number, short_day)

    for signal in content.shown_signals:
        drawers[f"trend-{signal.slug}"] = signal_drawer(signal)
    cache = {} if chart_cache is None else chart_cache
    images = {}
    for name, draw in drawers.items():
        cid = f"{name}.{tag}"
        drawn = cache.get((name, recipient.locale))
        if drawn is None:
            drawn = cache[(name, recipient.locale)] = draw(cid)
        images[name] = replace(drawn, cid=cid, filename=f"{cid.split('@')[0]}.png")
    csv_file = kpi_csv(content)
    links = {s.key: trend_link(s, trend_url) for s in content.shown_signals}
    context = {
        "report": content,
        "recipient": recipient,
        "charts": images,
        "csv_name": csv_file.filename,
        "links": links,
        "links_inside": not trend_url,
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
    context = {"failure": failure, "recipient": recipient}
    interval = f"{(failure.interval_start or 'n/a')[:10]} .. {(failure.interval_end or 'n/a')[:10]}"
    subject = (
        f"[touchpoint] task failed: {failure.dag_id}.{failure.task_label} ({interval}), "
        f"try {failure.try_number} of {failure.tries_allowed}"
    )
    html = css_inline.inline(env.get_template("task_failure.html").render(context))
    text = env.get_template("task_failure.txt").render(context)
    return RenderedReport(subject=subject, html=html, text=text)
