"""Planted incidents, end to end: a simulated world with one incident per effect (from the same
week, each on a target the data can single out for its metric), extracted and built by the real
pipeline (real Postgres, real dbt); the weekly report of the incident's week names each planted
target under its section, and the report of the week before does not.

Every post-purchase answer follows order confirmation, delivery and the purchase alike, so the
CSAT drop planted on delivery_packaging is a drop after all three (measured with seed 101: the same
98 answers but one): the report shows one of them and names the others with it ("the same answers
follow ... too"), and the test accepts the planted touchpoint named either way. The NPS drop is
planted on the newsletter, a subset of answerers the data can tell apart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from helpers import REPO, SIM_START, create_db, drop_db
from touchpoint.delivery.recipients import Recipient
from touchpoint.report.weekly import WeeklyReport
from touchpoint_sim.incidents import TOUCHPOINT_CHANNELS
from touchpoint_sim.planted import PlantedWorld, build_planted_world, flags

pytestmark = pytest.mark.slow

CUSTOMERS, WEEKS, SEED = 6000, 7, 21
WEEK = WEEKS  # the incidents start in the last week: the weeks before it are its baseline


@dataclass(frozen=True)
class Planted:
    effect: str
    incident: str
    target: str
    metric: str
    section: str  # the mart's section
    html_id: str  # the report's list for that section


PLANTED = (
    Planted(
        "csat",
        f"delivery_packaging:week={WEEK}:csat=-2",
        "delivery_packaging",
        "csat",
        "needs_attention",
        "needs-attention",
    ),
    Planted(
        "nps",
        f"newsletter:week={WEEK}:nps=-3",
        "newsletter",
        "nps",
        "needs_attention",
        "needs-attention",
    ),
    Planted(
        "conversion",
        f"paid_ads:week={WEEK}:conversion=x0.3",
        "paid_ads",
        "conversion_rate",
        "needs_attention",
        "needs-attention",
    ),
    Planted(
        "tickets",
        f"billing_pricing:week={WEEK}:tickets=x3",
        "billing_pricing",
        "cases",
        "recurring_problems",
        "recurring-problems",
    ),
    Planted(
        "engagement",
        f"newsletter:week={WEEK}:engagement=x0.2",
        "newsletter",
        "engagement",
        "at_risk",
        "at-risk-cohorts",
    ),
)
#: a chronic problem: customer support's CSAT two points low from the first week on, so it never
#: "changes" against its own trailing weeks; the scorecard lists it by its level
CHRONIC = "customer_support:week=1:csat=-2"
EVERYONE = Recipient("all@example.com", "Everyone", "UTC", "en_GB")


@pytest.fixture(scope="module")
def planted_world(cluster_url, settings, tmp_path_factory) -> Iterator[PlantedWorld]:
    url = create_db(cluster_url)
    try:
        yield build_planted_world(
            url,
            settings,
            tmp_path_factory.mktemp("planted"),
            customers=CUSTOMERS,
            weeks=WEEKS,
            seed=SEED,
            start=SIM_START,
            incidents=[*(p.incident for p in PLANTED), CHRONIC],
        )
    finally:
        drop_db(cluster_url, url)


def report_lists(world: PlantedWorld, week: int) -> dict[str, list[str]]:
    """The signal keys the whole-company report of ``week`` names, by the HTML list's id: each
    item's own and those it names with it (data-named-with)."""
    with psycopg.connect(world.url) as conn:
        html = (
            WeeklyReport(conn, world.week_start(week), REPO / "reports" / "templates")
            .render(EVERYONE)
            .html
        )
    lists = {}
    for match in re.finditer(r'<ul[^>]*\bid="([a-z-]+)"[^>]*>(.*?)</ul>', html, re.DOTALL):
        lists[match.group(1)] = [
            key
            for item in re.findall(r'<li[^>]*\bdata-signal="[^>]*>', match.group(2))
            for attribute in re.findall(r'data-(?:signal|named-with)="([^"]+)"', item)
            for key in attribute.split()
        ]
    return lists


def planted_flags(world: PlantedWorld, week: int, planted: Planted):
    """The mart's flags of ``week`` about the planted target's metric."""
    return [
        f
        for f in flags(world.url, world.week_start(week))
        if f.names(planted.target) and f.metric == planted.metric
    ]


@pytest.mark.parametrize("planted", PLANTED, ids=[p.effect for p in PLANTED])
def test_a_planted_incident_is_named_under_its_section_in_its_week(planted_world, planted):
    in_mart = planted_flags(planted_world, WEEK, planted)
    assert in_mart and {f.section for f in in_mart} == {planted.section}, in_mart
    lists = report_lists(planted_world, WEEK)
    assert planted.html_id in lists, f"the report has no list {planted.html_id!r}: {sorted(lists)}"
    assert {f.signal_key for f in in_mart} & set(lists[planted.html_id]), (in_mart, lists)
    if planted.metric != "cases" and planted.target in TOUCHPOINT_CHANNELS:
        # a touchpoint is named by its own row or as one the row's answers or customers follow too
        assert f"touchpoint:{planted.target}:{planted.metric}" in lists[planted.html_id], lists


@pytest.mark.parametrize("planted", PLANTED, ids=[p.effect for p in PLANTED])
def test_the_week_before_an_incident_does_not_name_it(planted_world, planted):
    assert planted_flags(planted_world, WEEK - 1, planted) == []
    lists = report_lists(planted_world, WEEK - 1)
    assert planted.html_id in lists, sorted(lists)
    named_then = {
        f.signal_key for f in planted_flags(planted_world, WEEK, planted)
    }  # the keys it shows in WEEK
    assert not named_then & set(lists[planted.html_id]), lists


def test_the_week_before_the_incidents_is_quiet(planted_world):
    """Nothing else stands out either: the steady weeks before the incidents name nothing."""
    assert flags(planted_world.url, planted_world.week_start(WEEK - 1)) == []


def test_a_chronic_problem_is_listed_by_its_level_though_it_never_changes(planted_world):
    with psycopg.connect(planted_world.url) as conn:
        standing = conn.execute(
            """
            select week_start, has_enough_sample, is_below, weeks_below, worst_rank
            from marts.agg_touchpoint_scorecard_weekly
            where region = '(all)' and grain = 'touchpoint' and key = 'customer_support'
              and metric = 'csat'
            order by week_start
            """
        ).fetchall()
        flagged = conn.execute(
            "select week_start from marts.agg_touchpoint_signals where region = '(all)'"
            " and signal_key = 'touchpoint:customer_support:csat' and status <> 'steady'"
            " and is_judged and week_start < %s",
            (planted_world.week_start(WEEK),),  # in WEEK the other incidents share its answers
        ).fetchall()
    judged = [row for row in standing if row[1]]
    assert len(judged) >= 5 and all(row[2] for row in judged), standing
    assert judged[-1][3] == len(judged)  # below every judged week, counted
    assert flagged == []  # against its own trailing weeks it never changed
    with psycopg.connect(planted_world.url) as conn:
        html = (
            WeeklyReport(conn, planted_world.week_start(WEEK - 1), REPO / "reports" / "templates")
            .render(EVERYONE)
            .html
        )
    furthest = html[html.index('id="furthest-below"') :]
    furthest = furthest[: furthest.index("</ul>")]
    assert 'data-key="touchpoint:customer_support"' in furthest, furthest
    assert "touchpoint:customer_support:csat" not in report_lists(planted_world, WEEK - 1).get(
        "needs-attention", []
    )


#: every customer who had browsed the website keeps a third of their engagement: nearly the
#: whole base, so every cohort falls with it
WHOLE_BASE = f"web:week={WEEK}:engagement=x0.3"


@pytest.fixture(scope="module")
def whole_base_world(cluster_url, settings, tmp_path_factory) -> Iterator[PlantedWorld]:
    url = create_db(cluster_url)
    try:
        yield build_planted_world(
            url,
            settings,
            tmp_path_factory.mktemp("whole-base"),
            customers=3000,
            weeks=WEEKS,
            seed=SEED,
            start=SIM_START,
            incidents=[WHOLE_BASE],
        )
    finally:
        drop_db(cluster_url, url)


def test_a_fall_of_the_whole_base_is_named_company_wide_not_on_a_cohort(whole_base_world):
    shown = report_lists(whole_base_world, WEEK)["at-risk-cohorts"]
    assert shown == ["company:all:engagement"], shown
    with psycopg.connect(whole_base_world.url) as conn:
        cohorts = conn.execute(
            "select signal_key, explained_by from marts.agg_touchpoint_signals"
            " where week_start = %s and region = '(all)' and metric = 'engagement'"
            " and status = 'needs_attention' and grain <> 'company'",
            (whole_base_world.week_start(WEEK),),
        ).fetchall()
        html = (
            WeeklyReport(conn, whole_base_world.week_start(WEEK), REPO / "reports" / "templates")
            .render(EVERYONE)
            .text
        )
    # the cohorts fell as much as everyone: each is explained by the whole base, or by a
    # cohort the whole base explains (a channel by its touchpoint, a touchpoint by a larger one)
    assert cohorts and all(by is not None for _, by in cohorts), cohorts
    assert {key for key, by in cohorts if by == "company:all:engagement"}, cohorts
    assert "Company-wide: the whole customer base" in html
    assert report_lists(whole_base_world, WEEK - 1)["at-risk-cohorts"] == []
