"""Planted incidents in a steady simulated world (pure Python, no warehouse).

Each effect is measured on the generated data the way the warehouse will see it (who met the
target is read from the events, not from the simulator's bookkeeping), against the world with
the same seed and no incident.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from statistics import mean

import pytest

from helpers import REPO
from touchpoint.cli import main
from touchpoint_sim.incidents import (
    CATEGORY_TOUCHPOINTS,
    CHANNELS,
    TOUCHPOINT_CHANNELS,
    Incident,
    parse_incident,
)
from touchpoint_sim.population import World, generate
from touchpoint_sim.writers import write_world

START = date(2026, 10, 5)
T0 = datetime.combine(START, datetime.min.time(), UTC)
CUSTOMERS, WEEKS, SEED = 3000, 8, 21
WEEK = 5  # incidents start in week 5: four quiet weeks before, four weeks of effect
N0 = T0 + timedelta(weeks=WEEK - 1)
SATISFACTION = (
    "delivery_packaging:week=5:csat=-2",
    "order_confirmation:week=5:nps=-3",
    "newsletter:week=5:engagement=x0.2",
)
BEHAVIOUR = ("paid_ads:week=5:conversion=x0.3", "DELIVERY_ISSUE:week=5:tickets=x3")
PAID_MEDIUMS = ("cpc", "ppc", "display", "paid_social")


@pytest.fixture(scope="module")
def quiet() -> World:
    return generate(CUSTOMERS, WEEKS, SEED, START)


@pytest.fixture(scope="module")
def satisfaction() -> World:
    """Effects on answers and on browsing (they leave every journey as it was)."""
    return generate(
        CUSTOMERS, WEEKS, SEED, START, incidents=[parse_incident(t) for t in SATISFACTION]
    )


@pytest.fixture(scope="module")
def behaviour() -> World:
    """Effects on purchases and on support cases (they change what people go on to do)."""
    return generate(CUSTOMERS, WEEKS, SEED, START, incidents=[parse_incident(t) for t in BEHAVIOUR])


# -- reading a world as the warehouse would ---------------------------------------------------
def _at(value: str | int) -> datetime:
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value)


def _week(moment: datetime) -> int:
    return (moment - T0).days // 7 + 1


def _category(event: dict) -> str | None:
    category = event.get("category")
    kind = category[0] if isinstance(category, list) else category
    # the weekly offers (category promotion) are the newsletter touchpoint, as the taxonomy says
    return "newsletter" if kind == "promotion" else kind


def _persons(world: World) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    by_anonymous = {p.anonymous_id: p.index for p in world.people}
    by_email = {p.crm_email: p.index for p in world.people}
    by_contact = {p.contact_id: p.index for p in world.people}
    return by_anonymous, by_email, by_contact


def _email_touches(world: World, category: str) -> dict[int, list[datetime]]:
    """When each person met an email category (delivered, opened, clicked)."""
    _, by_email, _ = _persons(world)
    touches: dict[int, list[datetime]] = defaultdict(list)
    for event in world.email_events:
        if (
            event["event"] in ("delivered", "open", "click")
            and _category(event) == category
            and not event.get("sg_machine_open")  # a mail client's proxy, not the person
        ):
            touches[by_email[event["email"]]].append(_at(event["timestamp"]))
    return touches


def _answers(world: World, survey_type: str) -> list[tuple[str, int, datetime, int]]:
    """(feedback id, person, answered at, value) of one survey type."""
    _, _, by_contact = _persons(world)
    contact_of = world.associations[("feedback_submissions", "contacts")]
    return [
        (
            f["id"],
            by_contact[contact_of[f["id"]][0]],
            _at(f["properties"]["hs_submission_timestamp"]),
            int(f["properties"]["hs_value"]),
        )
        for f in world.crm["feedback_submissions"]
        if f["properties"]["hs_survey_type"] == survey_type
    ]


def _after_touch(answers, touches, days: int) -> list[tuple[str, int, datetime, int]]:
    return [
        a
        for a in answers
        if any(a[2] - timedelta(days=days) <= t < a[2] for t in touches.get(a[1], ()))
    ]


def _conversions(world: World) -> list[tuple[int, datetime]]:
    """Self-serve orders and new-business deals won: (person, when)."""
    by_anonymous, _, by_contact = _persons(world)
    out = [
        (by_anonymous[e["anonymousId"]], _at(e["timestamp"]))
        for e in world.web_events
        if e["type"] == "track" and e["event"] == "Order Completed"
    ]
    contact_of = world.associations[("deals", "contacts")]
    out += [
        (by_contact[contact_of[d["id"]][0]], _at(d["properties"]["closedate"]))
        for d in world.crm["deals"]
        if d["properties"]["dealstage"] == "closedwon"
        and d["properties"]["dealtype"] == "newbusiness"
    ]
    return out


def _paid_ad_visits(world: World) -> dict[int, list[datetime]]:
    by_anonymous, _, _ = _persons(world)
    visits: dict[int, list[datetime]] = defaultdict(list)
    for event in world.web_events:
        if (
            event["type"] == "page"
            and (event["context"].get("campaign") or {}).get("medium") in PAID_MEDIUMS
        ):
            visits[by_anonymous[event["anonymousId"]]].append(_at(event["timestamp"]))
    return visits


def _cases(world: World, category: str | None = None) -> Counter:
    return Counter(
        _week(_at(t["createdAt"]))
        for t in world.crm["tickets"]
        if category is None or t["properties"]["hs_ticket_category"] == category
    )


def _browsing(world: World, people: set[int]) -> int:
    """Browsing from week N by these people: pages (not forms or checkout), recommendation
    clicks, newsletter and renewal opens and clicks."""
    by_anonymous, by_email, _ = _persons(world)
    pages = sum(
        1
        for e in world.web_events
        if by_anonymous[e["anonymousId"]] in people
        and _at(e["timestamp"]) >= N0
        and (
            (
                e["type"] == "page"
                and e["context"]["page"]["path"]
                not in ("/signup", "/checkout", "/newsletter", "/contact-sales")
            )
            or (e["type"] == "track" and e["event"] == "Product Clicked")
        )
    )
    mail = sum(
        1
        for e in world.email_events
        if by_email[e["email"]] in people
        and e["event"] in ("open", "click")
        and _category(e) in ("newsletter", "renewal")
        and not e.get("sg_machine_open")
        and _at(e["timestamp"]) >= N0
    )
    return pages + mail


def _before(world: World) -> tuple[list, list, dict]:
    web = [e for e in world.web_events if _at(e["timestamp"]) < N0]
    mail = [e for e in world.email_events if _at(e["timestamp"]) < N0]
    created = {
        t: sorted((o["id"], o["createdAt"]) for o in objects if _at(o["createdAt"]) < N0)
        for t, objects in world.crm.items()
    }
    return web, mail, created


# -- the flag --------------------------------------------------------------------------------
def test_an_incident_reads_its_target_week_and_effects():
    incident = parse_incident("delivery_packaging:week=3:csat=-2:tickets=x3")
    assert incident == Incident(
        "delivery_packaging:week=3:csat=-2:tickets=x3",
        "delivery_packaging",
        "touchpoint",
        3,
        {"csat": -2.0, "tickets": 3.0},
    )
    assert incident.categories() == ("DELIVERY_ISSUE",)
    assert parse_incident("paid_ads:week=2:conversion=x0.3").kind == "channel"
    assert parse_incident("BILLING_ISSUE:week=1:tickets=x2").kind == "category"
    fixed = parse_incident("checkout_page:week=2..4:conversion=x0.5")
    assert (fixed.week, fixed.last_week) == (2, 4) and incident.last_week is None
    assert fixed.ends(START) == T0 + timedelta(weeks=4)
    assert fixed.holds(T0 + timedelta(weeks=4) - timedelta(seconds=1), START)
    assert not fixed.holds(T0 + timedelta(weeks=4), START)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            "delivry:week=3:csat=-2",
            ["'delivry'", "delivery_packaging", "paid_ads", "DELIVERY_ISSUE"],
        ),
        ("delivery_packaging:wk=3:csat=-2", ["'wk=3'", "week=N"]),
        ("delivery_packaging:week=0:csat=-2", ["'week=0'"]),
        ("delivery_packaging:week=3:mood=-2", ["'mood=-2'", "csat=-D", "engagement=xF"]),
        ("delivery_packaging:week=3:csat=x2", ["'csat=x2'", "csat=-2"]),
        ("paid_ads:week=3:conversion=0.3", ["'conversion=0.3'", "conversion=x0.3"]),
        ("paid_ads:week=3:conversion=x1.5", ["'conversion=x1.5'", "0 to 1"]),
        ("newsletter:week=3:tickets=x3", ["'newsletter'", "DELIVERY_ISSUE", "billing_pricing"]),
        ("delivery_packaging:week=3:csat=-1:csat=-2", ["'csat' given twice"]),
        ("delivery_packaging:week=3", ["TARGET:week=N[..M]:EFFECT"]),
        ("delivery_packaging:week=3..2:csat=-2", ["'week=3..2'", "M >= N"]),
        ("delivery_packaging:week=3..:csat=-2", ["'week=3..'", "week=N..M"]),
    ],
)
def test_a_bad_incident_names_the_bad_part_and_the_choices(text, names):
    with pytest.raises(ValueError) as error:
        parse_incident(text)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"--incident {text!r}: ")
    for name in names:
        assert name in message


def test_the_cli_refuses_a_bad_incident_in_one_line_with_exit_2(tmp_path, capsys):
    args = [
        "simulate",
        "--customers",
        "20",
        "--weeks",
        "2",
        "--landing",
        str(tmp_path / "l"),
        "--out",
        str(tmp_path / "s"),
    ]
    assert main([*args, "--incident", "delivry:week=1:csat=-2"]) == 2
    assert main([*args, "--incident", "delivery_packaging:week=3:csat=-2"]) == 2
    assert main([*args, "--incident", "delivery_packaging:week=1..3:csat=-2"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        "touchpoint: error: --incident 'delivry:week=1:csat=-2': unknown touchpoint"
    )
    assert err[1] == (
        "touchpoint: error: --incident 'delivery_packaging:week=3:csat=-2': "
        "week=3 is past the world's 2 weeks"
    )
    assert err[2].endswith(
        "'delivery_packaging:week=1..3:csat=-2': week 3 is past the world's 2 weeks"
    )
    assert not (tmp_path / "s").exists()


def test_every_target_is_a_name_of_the_taxonomy_seed():
    with (REPO / "dbt_project" / "seeds" / "touchpoint_taxonomy.csv").open() as f:
        rows = list(csv.DictReader(f))
    pairs = {(r["touchpoint"], r["channel"]) for r in rows if r["is_touchpoint"] == "true"}
    for touchpoint, channels in TOUCHPOINT_CHANNELS.items():
        for channel in channels:
            assert (touchpoint, channel) in pairs, (
                f"{touchpoint} ({channel}) is not in the taxonomy seed"
            )
    assert set(CHANNELS) <= {channel for _, channel in pairs}
    tickets = {
        r["event_detail"]: r["touchpoint"]
        for r in rows
        if r["source"] == "crm" and r["event_type"] == "ticket"
    }
    for category, touchpoint in CATEGORY_TOUCHPOINTS.items():
        assert tickets.get(category, tickets["*"]) == touchpoint


def test_the_manifest_and_the_ground_truth_name_the_incidents(tmp_path):
    text = "delivery_packaging:week=2:csat=-2:tickets=x3"
    world = generate(300, 3, 4, START, incidents=[parse_incident(text)])
    manifest = write_world(world, tmp_path / "landing", tmp_path / "sim")
    assert manifest == json.loads((tmp_path / "sim" / "manifest.json").read_text())
    (planted,) = manifest["incidents"]
    assert planted["incident"] == text and planted["target"] == "delivery_packaging"
    assert planted["week"] == 2 and planted["from"] == "2026-10-12"
    assert planted["effects"] == {"csat": -2.0, "tickets": 3.0}
    with (tmp_path / "sim" / "truth" / "incidents.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert Counter(f"{r['effect']}:{r['object_type']}" for r in rows) == planted["changed"]
    assert (
        planted["changed"]["tickets:tickets"] > 0
        and planted["changed"]["csat:feedback_submissions"] > 0
    )
    ticket_ids = {t["id"] for t in world.crm["tickets"]}
    assert {r["natural_id"] for r in rows if r["effect"] == "tickets"} <= ticket_ids
    quiet = write_world(generate(300, 3, 4, START), tmp_path / "l2", tmp_path / "s2")
    assert "incidents" not in quiet and not (tmp_path / "s2" / "truth" / "incidents.csv").exists()


def test_the_same_incidents_give_the_same_world():
    incidents = [parse_incident(t) for t in (*SATISFACTION, *BEHAVIOUR)]
    first, second = (generate(300, 6, 9, START, incidents=incidents) for _ in range(2))
    assert first.web_events == second.web_events and first.email_events == second.email_events
    assert first.crm == second.crm and first.incident_truth == second.incident_truth


# -- a steady world --------------------------------------------------------------------------
def test_a_quiet_world_is_steady_once_journeys_have_warmed_up(quiet):
    """Arrivals cover the whole span; what follows a purchase (answers, cases) lags it by up to
    three weeks, so those are steady from week 4."""
    sign_ups = Counter(
        _week(_at(e["timestamp"]))
        for e in quiet.web_events
        if e["type"] == "track" and e["event"] in ("Signed Up", "Form Submitted")
    )
    answers = Counter(_week(_at(f["createdAt"])) for f in quiet.crm["feedback_submissions"])
    for name, counts, first in (
        ("sign-ups", sign_ups, 2),
        ("cases", _cases(quiet), 4),
        ("answers", answers, 4),
    ):
        weeks = [counts[w] for w in range(first, WEEKS + 1)]
        assert all(abs(n - mean(weeks)) <= 0.25 * mean(weeks) for n in weeks), (name, weeks)
    arrivals = Counter(_week(p.arrived_at) for p in quiet.people)
    assert min(arrivals[w] for w in range(1, WEEKS + 1)) >= 0.75 * CUSTOMERS / WEEKS, arrivals


def test_weekends_are_quieter_than_weekdays(quiet):
    arrivals = Counter(p.arrived_at.weekday() for p in quiet.people)
    visits = Counter(_at(e["timestamp"]).weekday() for e in quiet.web_events if e["type"] == "page")
    assert max(arrivals[5], arrivals[6]) < 0.8 * mean(arrivals[d] for d in range(5)), arrivals
    # Visits follow arrivals by hours to days, which smooths the shape (Friday's arrivals browse
    # on Saturday), but the weekend stays quieter.
    assert mean((visits[5], visits[6])) < 0.9 * mean(visits[d] for d in range(5)), visits


# -- each effect, from week N and not before -----------------------------------------------------
@pytest.mark.parametrize("planted", ["satisfaction", "behaviour"])
def test_the_weeks_before_an_incident_are_those_of_the_quiet_world(planted, quiet, request):
    world = request.getfixturevalue(planted)
    web, mail, created = _before(world)
    quiet_web, quiet_mail, quiet_created = _before(quiet)
    assert web == quiet_web and mail == quiet_mail
    assert created == quiet_created
    before = {a[0]: a[3] for a in _answers(world, "CSAT") + _answers(world, "NPS") if a[2] < N0}
    assert before == {
        a[0]: a[3] for a in _answers(quiet, "CSAT") + _answers(quiet, "NPS") if a[2] < N0
    }


def _delivery_cases(world: World) -> dict[int, list[datetime]]:
    _, _, by_contact = _persons(world)
    contact_of = world.associations[("tickets", "contacts")]
    cases: dict[int, list[datetime]] = defaultdict(list)
    for ticket in world.crm["tickets"]:
        if ticket["properties"]["hs_ticket_category"] == "DELIVERY_ISSUE":
            cases[by_contact[contact_of[ticket["id"]][0]]].append(_at(ticket["createdAt"]))
    return cases


@pytest.mark.parametrize(("survey_type", "change"), [("CSAT", -2), ("NPS", -3)])
def test_answers_after_the_target_drop_by_the_planted_points_from_week_n(
    survey_type, change, quiet, satisfaction
):
    """CSAT after delivery_packaging (shipping emails, delivery cases), NPS after
    order_confirmation: answers given from week N by customers who met it in the 14 days before."""

    def met(world):
        if survey_type == "NPS":
            return _email_touches(world, "order_confirmation")
        touches = _email_touches(world, "shipping")
        for person, cases in _delivery_cases(world).items():
            touches[person].extend(cases)
        return touches

    def after(world):
        answers = _after_touch(_answers(world, survey_type), met(world), 14)
        return [a for a in answers if a[2] >= N0], [a for a in answers if a[2] < N0]

    (quiet_after, quiet_before), (planted_after, planted_before) = after(quiet), after(satisfaction)
    assert [a[:3] for a in planted_after] == [
        a[:3] for a in quiet_after
    ]  # the same answers, other values
    assert len(quiet_after) >= 80 and planted_before == quiet_before
    drop = mean(a[3] for a in planted_after) - mean(a[3] for a in quiet_after)
    assert change <= drop <= change * 0.75, (
        drop
    )  # a little less than planted: clamped at the scale's bottom
    moved = {a[0] for a in planted_after}
    assert {a[0]: a[3] for a in _answers(satisfaction, survey_type) if a[0] not in moved} == {
        a[0]: a[3] for a in _answers(quiet, survey_type) if a[0] not in moved
    }


def test_purchases_after_a_paid_ad_happen_with_the_planted_probability_from_week_n(
    quiet, behaviour
):
    def split(world):
        ads = _paid_ad_visits(world)
        paid, other = Counter(), Counter()
        for person, at in _conversions(world):
            touched = any(at - timedelta(days=30) <= t < at for t in ads.get(person, ()))
            (paid if touched else other)[at >= N0] += 1
        return paid, other

    (quiet_paid, quiet_other), (paid, other) = split(quiet), split(behaviour)
    assert paid[False] == quiet_paid[False] and quiet_paid[True] >= 100
    assert 0.15 <= paid[True] / quiet_paid[True] <= 0.45, (paid, quiet_paid)
    assert other == quiet_other  # nobody else's purchases moved


def test_support_cases_of_the_target_category_multiply_from_week_n(quiet, behaviour):
    planted, before = _cases(behaviour, "DELIVERY_ISSUE"), _cases(quiet, "DELIVERY_ISSUE")
    assert all(planted[w] == before[w] for w in range(1, WEEK))
    after, quiet_after = (
        sum(planted[w] for w in range(WEEK, WEEKS + 1)),
        sum(before[w] for w in range(WEEK, WEEKS + 1)),
    )
    assert quiet_after >= 60 and 2.5 <= after / quiet_after <= 3.5, (planted, before)
    assert all(planted[w] >= 2 * before[w] for w in range(WEEK, WEEKS + 1)), (planted, before)
    # fewer buyers (the conversion incident), not more cases
    for category in ("PRODUCT_ISSUE", "BILLING_ISSUE"):
        assert sum(_cases(behaviour, category)[w] for w in range(WEEK, WEEKS + 1)) <= 1.05 * sum(
            _cases(quiet, category)[w] for w in range(WEEK, WEEKS + 1)
        )


def test_the_engagement_cohort_keeps_the_planted_share_of_its_browsing_from_week_n(
    quiet, satisfaction
):
    cohort = {
        person
        for person, touches in _email_touches(quiet, "newsletter").items()
        if min(touches) < N0
    }
    everyone = {p.index for p in quiet.people}
    assert len(cohort) >= 300
    quiet_browsing, browsing = _browsing(quiet, cohort), _browsing(satisfaction, cohort)
    assert quiet_browsing >= 1000 and 0.12 <= browsing / quiet_browsing <= 0.3, (
        browsing,
        quiet_browsing,
    )
    assert _browsing(satisfaction, everyone - cohort) == _browsing(quiet, everyone - cohort)


def test_an_incident_with_an_end_changes_nothing_after_it():
    """``week=N..M``: a problem fixed after week M; what changed lies in weeks N to M only."""
    text = "delivery_packaging:week=2..3:csat=-2:tickets=x3"
    world = generate(1000, 4, 4, START, incidents=[parse_incident(text)])
    created = {t["id"]: t["properties"]["createdate"] for t in world.crm["tickets"]}
    answered = {
        f["id"]: f["properties"]["hs_submission_timestamp"]
        for f in world.crm["feedback_submissions"]
    }
    weeks = Counter(
        (effect, _week(_at(created.get(natural_id) or answered[natural_id])))
        for _, effect, object_type, natural_id, _ in world.incident_truth
        if object_type in ("tickets", "feedback_submissions")
    )
    assert set(weeks) == {(e, w) for e in ("tickets", "csat") for w in (2, 3)}, weeks
