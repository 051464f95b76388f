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
