"""Email sends and campaigns (fct_email_sends, agg_email_campaigns_weekly) on the built small
world, against the same numbers computed in Python straight from the SendGrid webhook events
in raw: every message and every campaign row, every column."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

KEYS = ("week_start", "region", "campaign")


def raw_events(url: str) -> list[dict[str, Any]]:
    """Every SendGrid event loaded (raw keeps each once: duplicate deliveries are refused at
    load), with its id and time as staged."""
    with psycopg.connect(url) as conn:
        return [
            {**payload, "_id": key, "_at": at}
            for key, at, payload in conn.execute(
                "select natural_key, event_time, payload from raw.sendgrid_events"
            )
        ]


def customers_by_email(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The identity map (email -> customer_key) and each customer's region: the warehouse's
    identity resolution, which these marts only read."""
    with psycopg.connect(url) as conn:
        keys = dict(
            conn.execute(
                "select identifier, customer_key from intermediate.int_identifiers_mapped"
                " where identifier_type = 'email' and customer_key is not null"
            ).fetchall()
        )
        regions = dict(conn.execute("select customer_key, region from marts.dim_customers"))
    return keys, regions


def categories(event: dict[str, Any]) -> list[str]:
    category = event.get("category")
    if category is None:
        return []
    return [str(c) for c in category] if isinstance(category, list) else [str(category)]


def expected_sends(events: list[dict[str, Any]], keys: dict[str, str]) -> dict[str, dict]:
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event.get("sg_message_id"):
            by_message[event["sg_message_id"].split(".")[0]].append(event)
    sends = {}
    for message_id, mine in by_message.items():

        def times(kind: str, machine: bool | None = None) -> list[datetime]:
            return sorted(
                e["_at"]
                for e in mine
                if e["event"] == kind
                and (machine is None or bool(e.get("sg_machine_open")) == machine)
            )

        processed, dropped = times("processed"), times("dropped")
        if not processed and not dropped:
            continue
        rank = {"processed": 0, "dropped": 1}
        ordered = sorted(mine, key=lambda e: (rank.get(e["event"], 2), e["_at"], e["_id"]))

        def first(field: str, of=lambda e, f: e.get(f)):
            return next((of(e, field) for e in ordered if of(e, field) is not None), None)

        issue = first("newsletter_issue")
        campaign_id = first("campaign_id")
        category = first("category", lambda e, f: (categories(e) or [None])[0])
        bounces = sorted(
            (e for e in mine if e["event"] == "bounce"),
            key=lambda e: (e.get("type", "bounce") != "bounce", e["_at"], e["_id"]),
        )
        hard = any(e.get("type", "bounce") == "bounce" for e in bounces)
        human, machine, clicks = times("open", False), times("open", True), times("click")
        delivered = times("delivered")
        emails = {e["email"].strip().lower() for e in mine if e.get("email")}
        assert len(emails) == 1, (message_id, emails)
        sends[message_id] = {
            "customer_key": keys.get(emails.pop()),
            "campaign": campaign_id or issue or category or "uncategorised",
            "category": category or "uncategorised",
            "categories": first("category", lambda e, f: categories(e) or None),
            "newsletter_issue": issue,
            "message_kind": "marketing" if first("asm_group_id") is not None else "transactional",
            "sent_at": (processed or dropped)[0],
            "delivered_at": delivered[0] if delivered else None,
            "is_delivered": bool(delivered),
            "bounce_type": ("hard" if hard else "soft") if bounces else None,
            "bounce_classification": bounces[0].get("bounce_classification") if bounces else None,
            "is_dropped": bool(dropped),
            "is_deferred": bool(times("deferred")),
            "first_opened_at": human[0] if human else None,
            "opens": len(human),
            "machine_opens": len(machine),
            "is_opened": bool(human),
            "first_clicked_at": clicks[0] if clicks else None,
            "clicks": len(clicks),
            "is_clicked": bool(clicks),
            "is_spam_report": bool(times("spamreport")),
            "is_unsubscribed": bool(times("unsubscribe") or times("group_unsubscribe")),
        }
    return sends


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def expected_campaigns(sends: dict[str, dict], regions: dict[str, str]) -> dict[tuple, dict]:
    rows: dict[tuple, dict] = {}
    for send in sends.values():
        sent = send["sent_at"].astimezone(UTC).date()
        week = sent - timedelta(days=sent.weekday())
        region = regions.get(send["customer_key"]) or "Unknown"
        for slice_ in ("(all)", region):
            row = rows.setdefault(
                (week, slice_, send["campaign"]),
                {"category": send["category"], "message_kind": "transactional"}
                | dict.fromkeys(COUNTS, 0),
            )
            row["category"] = min(row["category"], send["category"])
            if send["message_kind"] == "marketing":
                row["message_kind"] = "marketing"
            row["messages_sent"] += 1
            row["delivered"] += send["is_delivered"]
            row["hard_bounces"] += send["bounce_type"] == "hard"
            row["soft_bounces"] += send["bounce_type"] == "soft"
            row["dropped"] += send["is_dropped"]
            row["deferred"] += send["is_deferred"]
            row["unique_opens"] += send["is_opened"]
            row["total_opens"] += send["opens"]
            row["machine_opens"] += send["machine_opens"]
            row["machine_only_opened"] += send["machine_opens"] > 0 and not send["is_opened"]
            row["unique_clicks"] += send["is_clicked"]
            row["total_clicks"] += send["clicks"]
            row["spam_reports"] += send["is_spam_report"]
            row["unsubscribes"] += send["is_unsubscribed"]
    for row in rows.values():
        sent, delivered = row["messages_sent"], row["delivered"]
        row["delivery_rate"] = ratio(delivered, sent)
        row["bounce_rate"] = ratio(row["hard_bounces"] + row["soft_bounces"], sent)
        row["open_rate"] = ratio(row["unique_opens"], delivered)
        row["click_rate"] = ratio(row["unique_clicks"], delivered)
        row["click_to_open_rate"] = ratio(row["unique_clicks"], row["unique_opens"])
        row["unsubscribe_rate"] = ratio(row["unsubscribes"], delivered)
        row["spam_report_rate"] = ratio(row["spam_reports"], delivered)
    return rows


COUNTS = (
    "messages_sent",
    "delivered",
    "hard_bounces",
    "soft_bounces",
    "dropped",
    "deferred",
    "unique_opens",
    "total_opens",
    "machine_opens",
    "machine_only_opened",
    "unique_clicks",
    "total_clicks",
    "spam_reports",
    "unsubscribes",
)


def differences(expected: dict, actual: dict) -> list[tuple[str, Any, Any]]:
    out = []
    for column, want in expected.items():
        got = actual[column]
        if isinstance(want, float) and got is not None:
            if not math.isclose(want, float(got), rel_tol=0, abs_tol=1e-9):
                out.append((column, want, got))
        elif want != got:
            out.append((column, want, got))
    return out


@pytest.fixture(scope="module")
def email_marts(built_world: str) -> dict[str, Any]:
    events = raw_events(built_world)
    keys, regions = customers_by_email(built_world)
    with psycopg.connect(built_world, row_factory=dict_row) as conn:
        sends = {
            r.pop("message_id"): r for r in conn.execute("select * from marts.fct_email_sends")
        }
        campaigns = {
            tuple(r.pop(k) for k in KEYS): r
            for r in conn.execute("select * from marts.agg_email_campaigns_weekly")
        }
    return {
        "events": events,
        "keys": keys,
        "regions": regions,
        "sends": sends,
        "campaigns": campaigns,
    }


def test_every_message_sent_is_one_row_with_what_its_webhook_events_say(email_marts):
    expected = expected_sends(email_marts["events"], email_marts["keys"])
    actual = email_marts["sends"]
    assert expected and set(actual) == set(expected), set(actual) ^ set(expected)
    wrong = {m: diff for m, want in expected.items() if (diff := differences(want, actual[m]))}
    assert not wrong, dict(list(wrong.items())[:5])
    # no address, user agent or IP reached the mart
    assert not {"email", "useragent", "ip"} & set(next(iter(actual.values())))


def test_the_simulated_account_shows_every_outcome_a_real_one_does(email_marts):
    sends = email_marts["sends"].values()
    assert any(s["bounce_type"] == "hard" for s in sends)
    assert any(s["is_dropped"] for s in sends) and any(s["is_deferred"] for s in sends)
    assert any(s["machine_opens"] and not s["is_opened"] for s in sends)
    assert any(s["machine_opens"] and s["is_opened"] for s in sends)
    assert any(s["is_unsubscribed"] for s in sends)
    assert {"marketing", "transactional"} <= {s["message_kind"] for s in sends}
    assert {"newsletter", "promotion"} <= {s["category"] for s in sends}
    issues = {s["newsletter_issue"] for s in sends if s["newsletter_issue"]}
    assert issues and all(re.fullmatch(r"20\d\d-w\d\d", i) for i in issues), issues


def test_campaign_weeks_per_region_match_the_events_to_the_last_digit(email_marts):
    sends = expected_sends(email_marts["events"], email_marts["keys"])
    expected = expected_campaigns(sends, email_marts["regions"])
    actual = email_marts["campaigns"]
    assert set(actual) == set(expected), set(actual) ^ set(expected)
    wrong = {k: d for k, want in expected.items() if (d := differences(want, actual[k]))}
    assert not wrong, dict(list(wrong.items())[:5])
    weeks = {k[0] for k in actual}
    assert all(isinstance(w, date) and w.weekday() == 0 for w in weeks)
    # '(all)' is the sum of the regions
    for (week, region, campaign), row in actual.items():
        if region == "(all)":
            parts = [
                r
                for k, r in actual.items()
                if k[0] == week and k[2] == campaign and k[1] != "(all)"
            ]
            assert row["messages_sent"] == sum(p["messages_sent"] for p in parts)
