"""Web traffic by source, medium, campaign and landing page (marts.agg_traffic_weekly), and the
social_media touchpoint, checked on the built small world against a direct computation from the
sessions, the customers and the raw Segment events."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import UTC, date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from touchpoint_sim.population import taxonomy as sim_taxonomy

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"
GRAIN = (
    "week_start",
    "region",
    "session_channel",
    "source",
    "medium",
    "campaign",
    "landing_page_group",
)
SESSION_TIMEOUT = timedelta(minutes=30)
PAID_MEDIUMS = {"cpc", "ppc", "display", "paid_social"}
# Written out here, not read from the seeds: the networks a visitor can come from.
SOCIAL_DOMAINS = (
    "facebook.com",
    "instagram.com",
    "linkedin.com",
    "lnkd.in",
    "t.co",
    "twitter.com",
    "x.com",
    "pinterest.com",
    "youtube.com",
    "tiktok.com",
    "reddit.com",
)
SOCIAL_SOURCES = {"facebook", "instagram", "linkedin", "twitter", "x", "youtube", "reddit"}


def rows(url: str, sql: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def raw_web_events(built_world) -> list[dict]:
    return rows(
        built_world,
        "select natural_key as message_id, event_time, payload from raw.segment_events"
        " where payload ->> 'type' in ('page', 'track')",
    )


@pytest.fixture(scope="module")
def sessions(built_world) -> list[dict]:
    return rows(
        built_world,
        "select s.*, c.region from marts.fct_sessions as s"
        " left join marts.dim_customers as c using (customer_key)",
    )


def raw_sessions(events: list[dict]) -> list[dict]:
    """The visitors' page and track events cut after 30 idle minutes, in Python."""
    by_visitor: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        p = e["payload"]
        by_visitor[p.get("anonymousId") or "user:" + p["userId"]].append(e)
    found = []
    for visitor_events in by_visitor.values():
        visitor_events.sort(key=lambda e: (e["event_time"], e["message_id"]))
        current: list[dict] = []
        for e in visitor_events:
            if current and e["event_time"] - current[-1]["event_time"] >= SESSION_TIMEOUT:
                found.append(current)
                current = []
            current.append(e)
        found.append(current)
    return [
        {
            "key": (
                s[0]["event_time"],
                s[-1]["event_time"],
                len(s),
                sum(e["payload"]["type"] == "page" for e in s),
            ),
            "has_sign_up": any(e["payload"].get("event") == "Signed Up" for e in s),
            "landing": next((e for e in s if e["payload"]["type"] == "page"), s[0]),
        }
        for s in found
    ]


def session_key(s: dict) -> tuple:
    return (s["started_at"], s["ended_at"], s["events"], s["page_views"])


def host(url: str | None) -> str | None:
    if not url:
        return None
    return (urlsplit(url).hostname or url).lower() if "://" in url else url.lower()


def expected_traffic(sessions: list[dict]) -> dict[tuple, dict]:
    with (SEEDS / "landing_page_groups.csv").open() as f:
        groups = {r["path_prefix"]: r["landing_page_group"] for r in csv.DictReader(f)}
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for s in sessions:
        day = s["started_at"].astimezone(UTC).date()
        referrer = None
        if s["session_channel"] != "direct" and s["landing_referrer"]:
            referrer = re.sub(r"^www\.", "", host(s["landing_referrer"]) or "")
        if s["utm_source"]:
            source = s["utm_source"]
        elif s["utm_medium"]:
            source = "(not set)"
        else:
            source = referrer or "(direct)"
        if s["utm_medium"]:
            medium = s["utm_medium"]
        elif s["utm_source"]:
            medium = "(not set)"
        elif referrer is None:
            medium = "(none)"
        else:
            medium = "organic" if s["session_channel"] == "organic_search" else "referral"
        path = s["landing_path"]
        group = (
            "(not set)"
            if path is None
            else groups.get("/" + path.lower().lstrip("/").split("/")[0], "other")
        )
        for region in ("(all)", s["region"] or "Unknown"):
            key = (
                day - timedelta(days=day.weekday()),
                region,
                s["session_channel"],
                source,
                medium,
                s["utm_campaign"] or "(not set)",
                group,
            )
            cells[key].append(s)
    expected = {}
    for key, cell in cells.items():
        visitors = {s["visitor_key"] for s in cell}
        new = {s["visitor_key"] for s in cell if s["session_number"] == 1}
        expected[key] = {
            "sessions": len(cell),
            "engaged_sessions": sum(s["is_engaged"] for s in cell),
            "engagement_rate": sum(s["is_engaged"] for s in cell) / len(cell),
            "visitors": len(visitors),
            "new_visitors": len(new),
            "returning_visitors": len(visitors - new),
            "sign_ups": sum(s["has_sign_up"] for s in cell),
            "conversions": sum(s["has_conversion"] for s in cell),
            "conversion_rate": sum(s["has_conversion"] for s in cell) / len(cell),
            "page_views": sum(s["page_views"] for s in cell),
            "avg_session_seconds": sum(float(s["duration_seconds"]) for s in cell) / len(cell),
        }
    return expected


def test_sessions_have_a_sign_up_exactly_when_their_events_hold_a_signed_up(
    sessions, raw_web_events
):
    computed = raw_sessions(raw_web_events)
    assert Counter(s["key"] for s in computed) == Counter(session_key(s) for s in sessions)
    with_sign_up = Counter(s["key"] for s in computed if s["has_sign_up"])
    assert with_sign_up, "the small world has no sign-up in a session"
    assert with_sign_up == Counter(session_key(s) for s in sessions if s["has_sign_up"])


def test_traffic_weekly_equals_the_sessions_counted_in_python(built_world, sessions):
    expected = expected_traffic(sessions)
    built = {
        tuple(r[c] for c in GRAIN): r
        for r in rows(built_world, "select * from marts.agg_traffic_weekly")
    }
    assert set(built) == set(expected)
    for key, want in expected.items():
        got = built[key]
        for column, value in want.items():
            if isinstance(value, float):
                assert isinstance(got[column], Decimal)
                assert float(got[column]) == pytest.approx(value, abs=1e-9), (key, column)
            else:
                assert got[column] == value, (key, column)
    # every session counts once in '(all)' and once in its region
    assert sum(r["sessions"] for r in built.values() if r["region"] == "(all)") == len(sessions)
    assert sum(r["sessions"] for r in built.values() if r["region"] != "(all)") == len(sessions)
    # the small world has the kinds of traffic the mart tells apart
    assert {"(direct)", "google.com", "google"} <= {k[3] for k in built}
    assert {"(none)", "organic", "referral", "cpc"} <= {k[4] for k in built}
    assert len({k[5] for k in built}) > 3
    assert all(isinstance(k[0], date) and k[0].weekday() == 0 for k in built)


def is_social_visit(payload: dict) -> bool:
    """A page arriving from a social network: tagged as social or naming a network as source
    (not with a paid medium), or untagged with a network's referrer."""
    campaign = payload.get("context", {}).get("campaign") or {}
    medium = (campaign.get("medium") or "").lower()
    source = (campaign.get("source") or "").lower()
    if medium or source:
        return medium in ("social", "organic_social") or (
            source in SOCIAL_SOURCES and medium not in PAID_MEDIUMS | {"email"}
        )
    referrer = host(payload.get("context", {}).get("page", {}).get("referrer"))
    return bool(referrer) and any(
        referrer == d or referrer.endswith("." + d) for d in SOCIAL_DOMAINS
    )


def test_visits_from_social_networks_are_the_social_media_touchpoint(built_world, raw_web_events):
    pages = [e for e in raw_web_events if e["payload"]["type"] == "page"]
    expected = {e["message_id"] for e in pages if is_social_visit(e["payload"])}
    found = {
        r["source_event_id"]
        for r in rows(
            built_world,
            "select source_event_id from marts.fct_touchpoints"
            " where source = 'web' and touchpoint = 'social_media' and channel = 'social'",
        )
    }
    assert expected, "the small world has no visit from a social network"
    assert found == expected
    # tagged posts and bare referrers both arrive
    kinds = {
        bool(e["payload"]["context"].get("campaign")) for e in pages if e["message_id"] in expected
    }
    assert kinds == {True, False}
    # the simulator's own tracking of touches (planted incidents) classifies them the same way
    assert {e["message_id"] for e in pages if sim_taxonomy.from_social_network(e["payload"])} == (
        expected
    )


def test_a_session_landing_from_a_social_network_is_organic_social(sessions, raw_web_events):
    computed = raw_sessions(raw_web_events)
    social = Counter(
        s["key"]
        for s in computed
        if s["landing"]["payload"]["type"] == "page" and is_social_visit(s["landing"]["payload"])
    )
    assert social
    assert social == Counter(
        session_key(s) for s in sessions if s["session_channel"] == "organic_social"
    )


def test_the_simulators_social_rules_are_the_channel_grouping_seeds():
    with (SEEDS / "channel_grouping.csv").open() as f:
        social = [r for r in csv.DictReader(f) if r["session_channel"] == "organic_social"]
    assert {r["utm_medium"] for r in social} - {""} == {sim_taxonomy.SOCIAL_MEDIUM}
    assert {r["utm_source"] for r in social} - {""} == {sim_taxonomy.SOCIAL_SOURCE}
    assert {r["referrer_host"] for r in social} - {""} == {sim_taxonomy.SOCIAL_HOST}
