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
            incidents=[p.incident for p in PLANTED],
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
