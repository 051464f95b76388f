"""HubSpot Conversations v3 (the inbox's threads and messages) extracted from the simulator on
loopback: paging, HubSpot's 429s, a refused token, quarantine, incremental runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from helpers import SIM_START
from touchpoint.extract.hubspot import HubSpotClient, HubSpotError
from touchpoint.extract.run import CrmEndpoint, extract_conversations, extract_source
from touchpoint.sources.catalog import HUBSPOT_CONVERSATIONS
from touchpoint.warehouse.schema import ensure_schema
from touchpoint_sim.crm_data import ConversationData
from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
END = START + timedelta(weeks=2)
WEEK = START + timedelta(weeks=1)
THREADS = HUBSPOT_CONVERSATIONS.threads.table
MESSAGES = HUBSPOT_CONVERSATIONS.messages.table


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _latest(world, lo: datetime, hi: datetime) -> list[dict]:
    return [t for t in world.conversation_threads if lo <= _at(t["latestMessageTimestamp"]) < hi]


def _client(server: CrmServer, **kwargs: object) -> HubSpotClient:
    defaults: dict[str, object] = {"max_requests_per_second": 0, "backoff_base": 0.01}
    return HubSpotClient(server.url, "sim-token", **{**defaults, **kwargs})  # type: ignore[arg-type]


def _rows(url: str, table: str) -> dict[str, list[dict]]:
    """Payloads by object id, oldest version first."""
    found: dict[str, list[dict]] = {}
    with psycopg.connect(url) as conn:
        for object_id, payload in conn.execute(
            f"select object_id, payload from {table} order by event_time, natural_key"
        ):
            found.setdefault(object_id, []).append(payload)
    return found


def test_every_thread_and_message_of_the_interval_is_read_page_by_page(fresh_db, small_world):
    world = small_world["world"]
    data = CrmData.from_dir(small_world["sim"] / "crm")
    server = CrmServer(data, port=0, page_size=2, **NO_LIMITS).start_in_thread()
    try:
        stats = extract_source(
            "crm",
            fresh_db,
            START,
            END,
            crm=CrmEndpoint(server.url, "sim-token", max_requests_per_second=0),
            crm_group="conversations",
        )
    finally:
        server.shutdown()
    expected = _latest(world, START, END)
    messages = [m for t in expected for m in world.conversation_messages[t["id"]]]
    assert len(expected) > 4 and len(messages) > 2 * len(expected)
    assert [s.stream for s in stats] == [
        "hubspot_conversation_threads",
        "hubspot_conversation_messages",
    ]
    assert (stats[0].loaded, stats[1].loaded) == (len(expected), len(messages))
    # pages of two: far more requests than threads
    assert server.requests > len(expected) + len(expected) // 2
    threads = _rows(fresh_db, THREADS)
    assert {i: v[-1] for i, v in threads.items()} == {t["id"]: t for t in expected}
    stored = _rows(fresh_db, MESSAGES)
    assert set(stored) == {m["id"] for m in messages}
    contact_of = {t["id"]: t.get("associatedContactId") for t in expected}
    for (message,) in stored.values():
        assert not {"text", "richText", "subject"} & set(message), "free text is never stored"
        assert message.get("associatedContactId") == contact_of[message["conversationsThreadId"]]
    channels = {t["originalChannelId"] for t in expected}
    assert channels >= {"1000", "1002"}, channels  # live chat and email at least
    assert any("associatedContactId" not in t for t in expected), "anonymous chats"


def test_429s_and_server_errors_are_retried_to_the_same_rows(fresh_db, small_world):
    data = CrmData.from_dir(small_world["sim"] / "crm")
    faulty = CrmServer(data, port=0, fault_rate=0.3, seed=5, **NO_LIMITS).start_in_thread()
    client = _client(faulty)
    try:
        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            stats = extract_conversations(conn, client, START, END)
    finally:
        faulty.shutdown()
    assert faulty.faults > 0 and client.rate_limited > 0
    world = small_world["world"]
    expected = _latest(world, START, END)
    assert stats[0].loaded == len(expected) and stats[0].quarantined == 0
    assert stats[1].loaded == sum(len(world.conversation_messages[t["id"]]) for t in expected)


@pytest.mark.slow  # waits out a ten-second window: not in make test-fast
def test_hubspots_burst_limit_answers_429_and_the_client_waits_it_out(fresh_db, small_world):
    import requests

    data = CrmData.from_dir(small_world["sim"] / "crm")
    limited = CrmServer(data, port=0, burst_per_ten_seconds=4).start_in_thread()
    try:
        for _ in range(4):  # another task has spent the account's burst
            requests.get(
                f"{limited.url}/conversations/v3/conversations/threads",
                headers={"Authorization": "Bearer sim-token"},
                timeout=5,
            )
        client = _client(limited)
        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            stats = extract_conversations(conn, client, START, START + timedelta(days=2))
    finally:
        limited.shutdown()
    assert limited.rate_limited_at and client.rate_limited >= 1
    assert stats[0].loaded == len(_latest(small_world["world"], START, START + timedelta(days=2)))


def test_a_refused_token_fails_at_once_with_a_clear_error(fresh_db, crm_server):
    client = HubSpotClient(crm_server.url, "a-wrong-token", max_requests_per_second=0)
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        with pytest.raises(HubSpotError, match=r"answered 401: .*INVALID_AUTHENTICATION"):
            extract_conversations(conn, client, START, END)


def test_a_malformed_thread_or_message_is_quarantined_with_its_reason(fresh_db, small_world):
    world = small_world["world"]
    good = _latest(world, START, END)[0]
    messages = {good["id"]: json.loads(json.dumps(world.conversation_messages[good["id"]]))}
    messages[good["id"]][-1]["id"] = {"not": "an id"}
    no_id = {k: v for k, v in good.items() if k != "id"}
    data = CrmData({}, conversations=ConversationData([good, no_id], messages))
    server = CrmServer(data, port=0, **NO_LIMITS).start_in_thread()
    try:
        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            threads, read = extract_conversations(conn, _client(server), START, END)
            reasons = conn.execute(
                "select stream, reason from raw._quarantine order by stream"
            ).fetchall()
    finally:
        server.shutdown()
    assert (threads.loaded, threads.quarantined) == (1, 1)
    assert (read.loaded, read.quarantined) == (len(messages[good["id"]]) - 1, 1)
    assert reasons == [
        ("hubspot_conversation_messages", "missing id, or an id that is not a string or a number"),
        ("hubspot_conversation_threads", "missing id, or an id that is not a string or a number"),
    ]


def test_a_second_run_reads_only_the_threads_with_a_new_message_since(fresh_db, small_world):
    """Day runs as of their interval's end: the first week's run sees the threads as they were
    then; the second week's lists only threads whose latest message is in it (new ones, and
    older ones written to or closed since: one more version each)."""
    world = small_world["world"]
    now = [WEEK]
    data = CrmData.from_dir(small_world["sim"] / "crm")
    server = CrmServer(data, port=0, clock=lambda: now[0], **NO_LIMITS).start_in_thread()
    client = _client(server)
    try:
        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            first = extract_conversations(conn, client, START, WEEK)
            ids_first = set(_rows(fresh_db, THREADS))
            now[0] = END
            second = extract_conversations(conn, client, WEEK, END)
            (watermark,) = conn.execute(
                "select watermark from raw._state where stream = %s",
                (HUBSPOT_CONVERSATIONS.threads.name,),
            ).fetchone()
    finally:
        server.shutdown()
    in_second = _latest(world, WEEK, END)
    assert second[0].loaded == len(in_second) > 0 and second[0].duplicates == 0
    assert first[0].loaded == len(ids_first) > 0
    threads = _rows(fresh_db, THREADS)
    moved = {t["id"] for t in in_second} & ids_first
    assert moved, "some first-week threads had a message in the second week"
    assert {i for i, v in threads.items() if len(v) == 2} == moved
    # the latest version of every thread is the world's at its end
    assert {i: v[-1] for i, v in threads.items()} == {
        t["id"]: t for t in world.conversation_threads
    }
    # a message read in the first week comes again with its thread: loaded once
    assert second[1].duplicates > 0
    assert set(_rows(fresh_db, MESSAGES)) == {
        m["id"] for ms in world.conversation_messages.values() for m in ms
    }
    assert watermark == END


def test_a_message_names_its_thread_contact_and_its_senders_address_for_erasure(small_world):
    from touchpoint.privacy.identifiers import record_identifiers

    world = small_world["world"]
    thread = next(
        t
        for t in world.conversation_threads
        if t["originalChannelId"] == "1002" and t.get("associatedContactId")
    )
    message = next(
        m for m in world.conversation_messages[thread["id"]] if m["direction"] == "INCOMING"
    )
    address = message["senders"][0]["deliveryIdentifier"]["value"]
    stored = {"associatedContactId": thread["associatedContactId"], **message}
    found = set(record_identifiers(HUBSPOT_CONVERSATIONS.messages.identifiers, stored))
    assert {("hubspot_contact", thread["associatedContactId"]), ("email", address)} <= found
    assert set(record_identifiers(HUBSPOT_CONVERSATIONS.threads.identifiers, thread)) == {
        ("hubspot_contact", thread["associatedContactId"])
    }
