"""The semantic layer (dbt_project/models/semantic) gives the weekly report's numbers: MetricFlow's
`mf query`, run as a user runs it (`touchpoint metrics query`, as the analyst), on a built world,
equals the report's headline and its case table for the world's last week."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from helpers import SIM_START, run_cli
from touchpoint.report.content import WeeklyContent, load_weekly_content

# each query parses the dbt project and starts mf: over 8 s, not in make test-fast
pytestmark = pytest.mark.slow

WEEK = SIM_START + timedelta(days=7)  # the small world's last week: it has a week before
#: the report's headline (its Kpi keys) and the metric of each: the Kpi's value, and its sample
HEADLINE = {
    "touchpoints": ("touchpoints", None),
    "customers": ("active_customers", None),
    "new_customers": ("new_customers", None),
    "conversions": ("conversions", None),
    "conversion_rate": ("conversion_rate", None),
    "nps": ("nps", "nps_answers"),
    "csat": ("csat", "csat_answers"),
}
CASE_METRICS = {
    "cases": "cases",
    "first_response_median_hours": "first_response_time",
    "first_response_p90_hours": "first_response_time_p90",
    "resolution_median_hours": "resolution_time",
    "resolution_p90_hours": "resolution_time_p90",
}


def mf_query(url: str, out: Path, *args: str) -> list[dict[str, float | str | None]]:
    """`touchpoint metrics query ARGS` on the warehouse at ``url``: its rows, numbers as floats."""
    result = run_cli(
        "metrics", "query", *args, "--csv", str(out), "--quiet",
        env={"TOUCHPOINT_WAREHOUSE_URL": url},
    )  # fmt: skip
    assert result.returncode == 0 and out.exists(), result.stdout + result.stderr
    with out.open() as rows:
        return [
            {
                k: v if k.startswith(("metric_time", "support_case__")) else number(v)
                for k, v in r.items()
            }
            for r in csv.DictReader(rows)
        ]


def number(text: str) -> float | None:
    return float(text) if text else None


def same(queried: float | str | None, shown: float | None) -> bool:
    """Equal up to float rounding (credit is summed as numeric in the marts, as float here); no
    value (too few answers, no responses) on both sides."""
    if queried is None or shown is None:
        return queried is None and shown is None
    return queried == pytest.approx(shown, rel=1e-9)


def week_of(row: dict) -> date:
    return datetime.fromisoformat(str(row["metric_time__week"])).date()


@pytest.fixture(scope="module")
def report(built_world) -> WeeklyContent:
    with psycopg.connect(built_world) as conn:
        content = load_weekly_content(conn, WEEK)
    # a week with something in every headline number, so that equal means something
    assert content.kpi("touchpoints").current and content.kpi("touchpoints").previous
    assert content.kpi("conversions").current and content.kpi("csat").sample
    assert any(p.cases and p.resolution_median_hours is not None for p in content.problems)
    return content


def test_mf_query_gives_the_weekly_reports_headline_this_week_and_the_week_before(
    built_world, report, tmp_path
):
    metrics = [m for pair in HEADLINE.values() for m in pair if m] + ["touchpoints_change"]
    rows = mf_query(
        built_world,
        tmp_path / "headline.csv",
        "--metrics", ",".join(metrics),
        "--group-by", "metric_time__week",
        "--start-time", str(WEEK - timedelta(days=7)),
        "--end-time", str(WEEK),
    )  # fmt: skip
    by_week = {week_of(r): r for r in rows}
    assert set(by_week) == {WEEK - timedelta(days=7), WEEK}
    this_week, week_before = by_week[WEEK], by_week[WEEK - timedelta(days=7)]

    for key, (metric, sample) in HEADLINE.items():
        kpi = report.kpi(key)
        assert same(this_week[metric], kpi.current), (key, this_week[metric], kpi.current)
        assert same(week_before[metric], kpi.previous), (key, week_before[metric], kpi.previous)
        if sample:
            assert this_week[sample] == kpi.sample, key
    change = this_week["touchpoints_change"]
    assert isinstance(change, float) and same(100 * change, report.kpi("touchpoints").percent)


def test_mf_query_gives_the_reports_cases_and_service_times_per_category(
    built_world, report, tmp_path
):
    rows = mf_query(
        built_world,
        tmp_path / "cases.csv",
        "--metrics", ",".join(CASE_METRICS.values()),
        "--group-by", "metric_time__week,support_case__category",
        "--start-time", str(WEEK),
        "--end-time", str(WEEK),
    )  # fmt: skip
    queried = {r["support_case__category"]: r for r in rows if week_of(r) == WEEK}
    shown = {p.category: p for p in report.problems if p.cases}
    assert set(queried) == set(shown)
    for category, problem in shown.items():
        for column, metric in CASE_METRICS.items():
            shown_value = getattr(problem, column)
            assert same(queried[category][metric], shown_value), (category, metric, shown_value)
