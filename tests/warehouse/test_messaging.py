"""The conversations inbox in the built small world: response times per thread and per week,
computed again here from the simulator's own threads and messages, and the customers'
messages as `messaging` touchpoints."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg

CHANNELS = {"1000": "live_chat", "1001": "facebook_messenger", "1002": "email", "1007": "whatsapp"}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def expected_threads(world) -> dict[str, dict]:
    """Each thread's row of fct_conversation_threads, from the simulator's JSON."""
    rows = {}
    for thread in world.conversation_threads:
        said = [m for m in world.conversation_messages[thread["id"]] if m["type"] == "MESSAGE"]
        incoming = [_at(m["createdAt"]) for m in said if m["direction"] == "INCOMING"]
        opened = min(incoming) if incoming else _at(thread["createdAt"])
        answers = [
            _at(m["createdAt"])
            for m in said
            if m["direction"] == "OUTGOING" and m["senders"][0]["actorId"].startswith("A-")
        ]
        answered = min((a for a in answers if a >= opened), default=None)
        closed = _at(thread["closedAt"]) if thread["status"] == "CLOSED" else None
        rows[thread["id"]] = {
            "contact": thread.get("associatedContactId"),
            "channel": CHANNELS[thread["originalChannelId"]],
            "opened_at": opened,
            "first_response_at": answered,
            "first_response_minutes": (answered - opened) / timedelta(minutes=1)
            if answered
            else None,
            "closed_at": closed,
            "resolution_hours": (closed - opened) / timedelta(hours=1) if closed else None,
            "messages_in": len(incoming),
            "messages_out": len(answers),
            "is_answered": answered is not None,
            "status": thread["status"].lower(),
        }
    return rows


def _close(a: float | Decimal | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-6)


def percentile(values: list[float], q: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_every_thread_has_its_response_and_resolution_times(built_world, small_world):
    expected = expected_threads(small_world["world"])
    assert len(expected) > 10
    assert any(not e["is_answered"] for e in expected.values()), "some are never answered"
    assert any(e["status"] == "open" for e in expected.values())
    with psycopg.connect(built_world) as conn:
        rows = conn.execute(
            "select t.thread_id, t.customer_key, t.channel, t.opened_at, t.first_response_at,"
            " t.first_response_minutes, t.closed_at, t.resolution_hours, t.messages_in,"
            " t.messages_out, t.is_answered, t.status"
            " from marts.fct_conversation_threads as t"
        ).fetchall()
        # the customer of each contact, as its own touchpoint (contact created) resolved it
        contact_keys = dict(
            conn.execute(
                "select split_part(source_event_id, ':', 2), customer_key"
                " from marts.fct_touchpoints where source_event_type = 'contact_created'"
            ).fetchall()
        )
    assert {r[0] for r in rows} == set(expected)
    for (
        thread_id,
        customer,
        channel,
        opened,
        responded,
        minutes,
        closed,
        hours,
        into,
        out,
        answered,
        status,
    ) in rows:
        want = expected[thread_id]
        assert customer == (contact_keys[want["contact"]] if want["contact"] else None), thread_id
        assert (channel, opened, responded, closed, into, out, answered, status) == (
            want["channel"],
            want["opened_at"],
            want["first_response_at"],
            want["closed_at"],
            want["messages_in"],
            want["messages_out"],
            want["is_answered"],
            want["status"],
        ), thread_id
        assert _close(minutes, want["first_response_minutes"]), thread_id
        assert _close(hours, want["resolution_hours"]), thread_id


def test_the_weekly_medians_per_channel_are_those_of_the_threads(built_world, small_world):
    expected = expected_threads(small_world["world"])
    weeks: dict[tuple, list[dict]] = defaultdict(list)
    for row in expected.values():
        monday = (row["opened_at"] - timedelta(days=row["opened_at"].weekday())).date()
        weeks[(monday, row["channel"])].append(row)
    with psycopg.connect(built_world) as conn:
        got = {
            (week, channel): rest
            for week, channel, *rest in conn.execute(
                "select week_start, channel, threads, answered_threads, anonymous_threads,"
                " first_response_median_minutes, first_response_p90_minutes,"
                " resolution_median_hours, messages_in"
                " from marts.agg_messaging_weekly where region = '(all)'"
            ).fetchall()
        }
        by_region = conn.execute(
            "select week_start, channel, sum(threads) from marts.agg_messaging_weekly"
            " where region <> '(all)' group by 1, 2"
        ).fetchall()
    assert set(got) == set(weeks)
    for key, rows in weeks.items():
        minutes = [r["first_response_minutes"] for r in rows if r["is_answered"]]
        hours = [r["resolution_hours"] for r in rows if r["closed_at"] is not None]
        threads, answered, anonymous, median, p90, resolution, written = got[key]
        assert (threads, answered, anonymous, written) == (
            len(rows),
            len(minutes),
            sum(r["contact"] is None for r in rows),
            sum(r["messages_in"] for r in rows),
        ), key
        assert _close(median, percentile(minutes, 0.5)), key
        assert _close(p90, percentile(minutes, 0.9)), key
        assert _close(resolution, percentile(hours, 0.5)), key
    assert {(w, c): n for w, c, n in by_region} == {k: v[0] for k, v in got.items()}
    # chat is answered in minutes, email in hours
    chat = [r["first_response_minutes"] for r in expected.values() if r["channel"] == "live_chat"]
    mail = [r["first_response_minutes"] for r in expected.values() if r["channel"] == "email"]
    assert percentile([m for m in chat if m is not None], 0.5) < 15
    assert percentile([m for m in mail if m is not None], 0.5) > 60


def test_each_customer_message_is_a_direct_inbound_messaging_touchpoint(built_world, small_world):
    world = small_world["world"]
    incoming = {
        m["id"]: CHANNELS[m["channelId"]]
        for messages in world.conversation_messages.values()
        for m in messages
        if m["type"] == "MESSAGE" and m["direction"] == "INCOMING"
    }
    with psycopg.connect(built_world) as conn:
        touchpoints = conn.execute(
            "select split_part(t.source_event_id, ':', 2), t.source_event_type, t.touchpoint,"
            " t.interaction, t.direction, t.journey_stage, e.event_detail"
            " from marts.fct_touchpoints as t"
            " join intermediate.int_events_classified as e on e.event_key = t.touchpoint_id"
            " where t.channel = 'messaging'"
        ).fetchall()
        replies = conn.execute(
            "select count(*) from intermediate.int_events_classified"
            " where event_type = 'message_reply' and not is_touchpoint and channel = 'messaging'"
        ).fetchone()[0]
        units = conn.execute(
            "select business_unit from seeds.business_units where channel = 'messaging'"
        ).fetchall()
    assert {t[0]: t[6] for t in touchpoints} == incoming
    assert {t[1:6] for t in touchpoints} <= {
        ("message", "messaging", "direct", "inbound", stage)
        for stage in ("consideration", "loyalty")
    }
    answers = sum(
        m["type"] == "MESSAGE" and m["direction"] == "OUTGOING"
        for messages in world.conversation_messages.values()
        for m in messages
    )
    assert replies == answers > 0, "agents' replies are classified, not touchpoints"
    assert units == [("service",)]


def test_no_mart_holds_message_text(built_world):
    with psycopg.connect(built_world) as conn:
        columns = conn.execute(
            "select table_name, column_name from information_schema.columns"
            " where table_schema = 'marts'"
            " and table_name in ('fct_conversation_threads', 'agg_messaging_weekly')"
        ).fetchall()
        texts = conn.execute(
            "select count(*) from raw.hubspot_conversation_messages"
            " where payload ?| array['text', 'richText', 'subject']"
        ).fetchone()[0]
    assert columns and not {c for _, c in columns} & {"text", "rich_text", "subject", "body"}
    assert texts == 0, "message text is not even extracted"
