"""HubSpot CRM v3 extraction against the simulator on loopback."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from helpers import SIM_START
from touchpoint.extract.hubspot import HubSpotClient, HubSpotError
from touchpoint.extract.run import CrmEndpoint, extract_source
from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
END = START + timedelta(weeks=2)


def contact_rows(url: str) -> list[tuple]:
    """Every CRM row of every object type (contacts first), payload included."""
    from touchpoint.sources.catalog import HUBSPOT_OBJECTS

    with psycopg.connect(url) as conn:
        return [
            (obj.stream.table, *row)
            for obj in HUBSPOT_OBJECTS
            for row in conn.execute(
                f"select natural_key, payload from {obj.stream.table} order by 1"
            ).fetchall()
        ]


def test_contacts_modified_in_the_interval_are_extracted_page_by_page(
    fresh_db, small_world, crm_server
):
    stats = extract_source(
        "crm",
        fresh_db,
        START,
        END,
        crm=CrmEndpoint(crm_server.url, "sim-token", max_requests_per_second=0),
    )
    assert stats[0].loaded == len(small_world["world"].contacts) > 0
    assert stats[0].quarantined == 0


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_a_faulty_api_yields_exactly_the_same_rows(fresh_db, cluster_url, small_world):
    data = CrmData.from_dir(small_world["sim"] / "crm")
    # injected faults are the subject here; HubSpot's limits are met in test_crm_limits
    faulty = CrmServer(data, port=0, fault_rate=0.2, seed=3, **NO_LIMITS).start_in_thread()
    try:
        client = HubSpotClient(
            faulty.url, "sim-token", backoff_base=0.01, max_requests_per_second=0
        )
        from touchpoint.extract.run import extract_hubspot
        from touchpoint.sources.catalog import HUBSPOT_OBJECTS
        from touchpoint.warehouse.schema import ensure_schema

        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            for obj in HUBSPOT_OBJECTS:
                for day in range(0, 14, 7):
                    extract_hubspot(
                        conn,
                        client,
                        obj,
                        START + timedelta(days=day),
                        START + timedelta(days=day + 7),
                    )
        assert faulty.faults > 0, "the simulator should have injected faults"
    finally:
        faulty.shutdown()
    clean = CrmServer(data, port=0, **NO_LIMITS).start_in_thread()
    try:
        other = fresh_db.rsplit("/", 1)[0] + "/clean_" + fresh_db.rsplit("/", 1)[1]
        with psycopg.connect(cluster_url, autocommit=True) as conn:
            conn.execute(f'create database "{other.rsplit("/", 1)[1]}"')
        try:
            extract_source(
                "crm",
                other,
                START,
                END,
                crm=CrmEndpoint(clean.url, "sim-token", max_requests_per_second=0),
            )
            rows = contact_rows(other)
            assert len({table for table, *_ in rows}) >= 8, "most object types should have rows"
            assert rows == contact_rows(fresh_db)
        finally:
            with psycopg.connect(cluster_url, autocommit=True) as conn:
                conn.execute(f'drop database "{other.rsplit("/", 1)[1]}" with (force)')
    finally:
        clean.shutdown()


def test_a_wrong_token_fails_at_once_with_a_hint(fresh_db, crm_server):
    with pytest.raises(HubSpotError, match=r"401.*crm_hubspot"):
        extract_source("crm", fresh_db, START, END, crm=CrmEndpoint(crm_server.url, "wrong"))


class _RepeatingCursor(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(
            {
                "total": 3,
                "results": [
                    {"id": "1", "properties": {"lastmodifieddate": "2026-10-05T10:00:00Z"}}
                ],
                "paging": {"next": {"after": "1"}},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_cursor_that_repeats_itself_is_reported_not_looped_on():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RepeatingCursor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HubSpotClient(
            f"http://127.0.0.1:{server.server_address[1]}", "t", max_requests_per_second=0
        )
        with pytest.raises(HubSpotError, match="twice"):
            list(client.search_modified("contacts", "lastmodifieddate", ("email",), START, END))
        assert client.requests_made <= 3
    finally:
        server.shutdown()


def test_a_window_over_the_search_caps_10000_results_is_split_until_each_part_fits(fresh_db):
    contacts = []
    for i in range(10_500):
        modified = (START + timedelta(seconds=15 * i)).isoformat().replace("+00:00", "Z")
        contacts.append(
            {
                "id": str(100_000 + i),
                "createdAt": modified,
                "updatedAt": modified,
                "archived": False,
                "properties": {
                    "email": f"p{i}@example.com",
                    "createdate": modified,
                    "lastmodifieddate": modified,
                },
            }
        )
    server = CrmServer(
        CrmData({"contacts": contacts, "companies": []}), port=0, **NO_LIMITS
    ).start_in_thread()
    try:
        from touchpoint.extract.run import extract_hubspot
        from touchpoint.sources.catalog import HUBSPOT_CONTACTS
        from touchpoint.warehouse.schema import ensure_schema

        client = HubSpotClient(server.url, "sim-token", max_requests_per_second=0)
        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            stats = extract_hubspot(
                conn, client, HUBSPOT_CONTACTS, START, START + timedelta(days=3)
            )
    finally:
        server.shutdown()
    assert stats.loaded == 10_500 and stats.duplicates == 0


def test_rerunning_a_crm_interval_changes_neither_raw_nor_state(fresh_db, crm_server):
    endpoint = CrmEndpoint(crm_server.url, "sim-token", max_requests_per_second=0)
    extract_source("crm", fresh_db, START, END, crm=endpoint)
    with psycopg.connect(fresh_db) as conn:
        before = conn.execute(
            "select stream, watermark, updated_at from raw._state order by 1"
        ).fetchall()
        rows_before = conn.execute("select count(*) from raw.hubspot_calls").fetchone()[0]
    again = extract_source("crm", fresh_db, START, END, crm=endpoint)
    assert sum(s.loaded for s in again) == 0
    with psycopg.connect(fresh_db) as conn:
        assert (
            conn.execute(
                "select stream, watermark, updated_at from raw._state order by 1"
            ).fetchall()
            == before
        )
        assert (
            conn.execute("select count(*) from raw.hubspot_calls").fetchone()[0] == rows_before > 0
        )


def test_a_deleted_object_is_read_from_the_archive_once_as_its_last_version(fresh_db, small_world):
    """HubSpot's search never returns a deleted (archived) object: a run before the deletion
    reads it live, a run after reads the deletion from ``?archived=true``, once, however often
    the archive is read again."""
    import copy

    from touchpoint_sim.population import delete_objects

    world = copy.deepcopy(small_world["world"])
    delete_objects(world, deals=1, contacts=1, seed=5)
    (deal_type, deal_id), (contact_type, contact_id) = world.deleted
    deleted_at = {
        r["id"]: datetime.fromisoformat(r["archivedAt"])
        for t in ("deals", "contacts")
        for r in world.crm[t]
        if r.get("archived")
    }
    now = [min(deleted_at.values()) - timedelta(seconds=1)]
    server = CrmServer(
        CrmData(world.crm, world.associations), port=0, clock=lambda: now[0], **NO_LIMITS
    ).start_in_thread()
    endpoint = CrmEndpoint(server.url, "sim-token", max_requests_per_second=0)
    try:
        before = {s.stream: s for s in extract_source("crm", fresh_db, START, END, crm=endpoint)}
        now[0] = max(deleted_at.values()) + timedelta(seconds=1)
        after = {s.stream: s for s in extract_source("crm", fresh_db, START, END, crm=endpoint)}
        again = {s.stream: s for s in extract_source("crm", fresh_db, START, END, crm=endpoint)}
    finally:
        server.shutdown()
    assert before["hubspot_deals"].archived == before["hubspot_contacts"].archived == 0
    assert after["hubspot_deals"].archived == after["hubspot_contacts"].archived == 1
    assert after["hubspot_deals"].loaded == after["hubspot_contacts"].loaded == 1
    assert again["hubspot_deals"].loaded == 0 and again["hubspot_deals"].duplicates >= 1
    with psycopg.connect(fresh_db) as conn:
        for table, object_id in ((deal_type, deal_id), (contact_type, contact_id)):
            versions = conn.execute(
                f"select natural_key, event_time, payload ->> 'archived' from raw.hubspot_{table}"
                " where object_id = %s order by event_time",
                (object_id,),
            ).fetchall()
            # the live version the first run read, then the deletion at its own time
            assert [v[2] for v in versions] == ["false", "true"], versions
            assert versions[1][0] == f"{object_id}@archived:{deleted_at[object_id].isoformat()}"
            assert versions[1][1] == deleted_at[object_id]
