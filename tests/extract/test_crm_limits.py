"""HubSpot as it behaves under load: its rate limits (the simulator enforces them), Retry-After,
the rate-limit headers, a search index that lags, more than 10,000 changes within one second,
and association reads answered in pages or in part (207)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from helpers import SIM_START
from touchpoint.extract.hubspot import HubSpotClient, HubSpotError
from touchpoint.extract.request_budget import SharedBudget
from touchpoint.extract.run import CrmEndpoint, extract_hubspot, extract_source
from touchpoint.sources.catalog import CRM_GROUPS, HUBSPOT_CONTACTS, HUBSPOT_OBJECTS
from touchpoint.warehouse.schema import ensure_schema
from touchpoint_sim.crm_server import CrmData, CrmServer

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
END = START + timedelta(weeks=2)


def _raw_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            obj.stream.name: conn.execute(f"select count(*) from {obj.stream.table}").fetchone()[0]
            for obj in HUBSPOT_OBJECTS
        }


def _groups_at_once(url: str, endpoint: CrmEndpoint) -> None:
    """The ingest DAG's CRM tasks: one per group, all at once."""
    failures: list[BaseException] = []

    def extract(group: str) -> None:
        try:
            extract_source("crm", url, START, END, crm=endpoint, crm_group=group)
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=extract, args=(g,)) for g in CRM_GROUPS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_crm_tasks_at_once_share_one_budget_and_meet_no_rate_limit(fresh_db, small_world):
    crm = CrmServer(CrmData.from_dir(small_world["sim"] / "crm"), port=0).start_in_thread()
    try:
        _groups_at_once(fresh_db, CrmEndpoint(crm.url, "sim-token"))  # the default budget
    finally:
        crm.shutdown()
    assert crm.rate_limited_at == [], "the shared budget stays within HubSpot's limits"
    counts = _raw_counts(fresh_db)
    assert counts["hubspot_contacts"] == len(small_world["world"].contacts)
    assert all(counts.values()), counts


def test_searches_take_their_own_slower_budget_and_other_requests_do_not_wait_for_it(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
    budget = SharedBudget(fresh_db, "http://crm.test", per_second=50, searches_per_second=4)
    other = SharedBudget(fresh_db, "http://crm.test", per_second=50, searches_per_second=4)
    try:
        began = time.monotonic()
        for _ in range(12):  # twelve reads at 50 a second: about 0.2 s (at 4: 2.75 s)
            budget(search=False)
        reads = time.monotonic() - began
        began = time.monotonic()
        for i in range(5):  # five searches from two tasks at 4 a second: at least 1 s
            (budget if i % 2 else other)(search=True)
        searches = time.monotonic() - began
    finally:
        budget.close()
        other.close()
    assert reads < 2.0, reads
    assert searches >= 0.95, searches


def test_without_the_budget_the_429s_come_and_retry_after_is_honoured(fresh_db, small_world):
    crm = CrmServer(CrmData.from_dir(small_world["sim"] / "crm"), port=0).start_in_thread()
    try:
        _groups_at_once(fresh_db, CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0))
    finally:
        crm.shutdown()
    assert crm.rate_limited_at, "unpaced tasks at once meet HubSpot's search limit"
    assert _raw_counts(fresh_db)["hubspot_contacts"] == len(small_world["world"].contacts)


class _Answers(ThreadingHTTPServer):
    """Answers each request with the next of ``script`` (status, headers, body); the last one
    repeats. Keeps the times and paths of the requests."""

    def __init__(self, script: list[tuple[int, dict[str, str], object]]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptHandler)
        self.script, self.seen = script, []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        server: _Answers = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        server.seen.append((time.monotonic(), self.command, self.path))
        status, headers, body = server.script[min(len(server.seen), len(server.script)) - 1]
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


def _client(server: _Answers, **kwargs: object) -> HubSpotClient:
    defaults: dict[str, object] = {"max_requests_per_second": 0, "backoff_base": 0.01}
    return HubSpotClient(server.url, "t", **{**defaults, **kwargs})  # type: ignore[arg-type]


OK = (200, {}, {"results": []})
LIMITED = {"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY"}


@pytest.mark.parametrize("asked", ["86400", "1e9"])
def test_a_retry_after_beyond_the_cap_ends_the_run_at_once_with_a_clear_error(asked):
    server = _Answers([(429, {"Retry-After": asked}, LIMITED)])
    began = time.monotonic()
    with pytest.raises(HubSpotError, match=r"asking to wait .* more than the 120 s this run"):
        _client(server).request("GET", "/crm/v3/objects/contacts")
    assert time.monotonic() - began < 5 and len(server.seen) == 1
    server.shutdown()


@pytest.mark.parametrize("asked", ["inf", "nan", "-3", "soon"])
def test_a_retry_after_that_is_no_number_of_seconds_falls_back_to_the_backoff(asked):
    server = _Answers([(429, {"Retry-After": asked}, LIMITED), OK])
    assert _client(server).request("GET", "/crm/v3/objects/contacts") == {"results": []}
    assert len(server.seen) == 2
    server.shutdown()


def test_an_empty_rate_limit_window_makes_the_client_pause_before_the_next_request():
    spent = {
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "800",
    }
    server = _Answers([(200, spent, {"results": []}), OK])
    client = _client(server)
    client.request("GET", "/crm/v3/objects/contacts")
    client.request("GET", "/crm/v3/objects/contacts")
    (first, *_), (second, *_) = server.seen
    assert second - first >= 0.75
    server.shutdown()


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_more_than_10000_changes_within_one_second_are_read_by_id_ranges(fresh_db):
    moment = (START + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    contacts = [
        {
            "id": str(500_000 + i),
            "properties": {"email": f"bulk{i}@example.com", "lastmodifieddate": moment},
        }
        for i in range(10_250)
    ]
    crm = CrmServer(
        CrmData({"contacts": contacts, "companies": []}), port=0, search_per_second=None
    ).start_in_thread()
    try:
        client = HubSpotClient(crm.url, "sim-token", max_requests_per_second=0)
        with psycopg.connect(fresh_db) as conn:
            ensure_schema(conn)
            stats = extract_hubspot(conn, client, HUBSPOT_CONTACTS, START, START + timedelta(1))
    finally:
        crm.shutdown()
    assert stats.loaded == 10_250 and stats.quarantined == 0


def test_a_change_the_search_index_missed_is_read_by_the_next_days_overlap(fresh_db):
    late = (START + timedelta(days=1) - timedelta(minutes=3)).isoformat()
    contacts = [
        {"id": "7001", "properties": {"email": "late@example.com", "lastmodifieddate": late}},
        {
            "id": "7002",
            "properties": {
                "email": "early@example.com",
                "lastmodifieddate": (START + timedelta(hours=2)).isoformat(),
            },
        },
    ]
    crm = CrmServer(
        CrmData({"contacts": contacts, "companies": []}), port=0, late_index_share=1.0
    ).start_in_thread()
    endpoint = CrmEndpoint(crm.url, "sim-token")
    try:
        day_one = extract_source(
            "crm", fresh_db, START, START + timedelta(days=1), crm=endpoint, crm_group="people"
        )
        day_two = extract_source(
            "crm",
            fresh_db,
            START + timedelta(days=1),
            START + timedelta(days=2),
            crm=endpoint,
            crm_group="people",
        )
    finally:
        crm.shutdown()
    assert ("contacts", "7001") in crm.hidden_by_lag, "the index missed it on the first day"
    assert day_one[0].loaded == 1 and day_two[0].loaded == 1
    assert _raw_counts(fresh_db)["hubspot_contacts"] == 2


def test_association_reads_in_part_207_and_in_pages_are_read_whole(caplog):
    first = {
        "status": "COMPLETE",
        "results": [
            {
                "from": {"id": "1"},
                "to": [{"toObjectId": 11}],
                "paging": {"next": {"after": "cursor-1"}},
            },
            {"from": {"id": "2"}, "to": [{"toObjectId": 21}]},
        ],
        "numErrors": 1,
        "errors": [{"status": "error", "message": "Object 3 not found", "context": {"id": ["3"]}}],
    }
    server = _Answers(
        [
            (207, {}, first),
            (200, {}, {"results": [{"toObjectId": 12}], "paging": {"next": {"after": "c-2"}}}),
            (200, {}, {"results": [{"toObjectId": 13}]}),
        ]
    )
    found = _client(server).read_associations("contacts", "companies", ["1", "2", "3"])
    assert found == {"1": ["11", "12", "13"], "2": ["21"]}
    assert "1 of 3 input(s) not read (Object 3 not found)" in caplog.text
    assert [path for _, method, path in server.seen if method == "GET"] == [
        "/crm/v4/objects/contacts/1/associations/companies?limit=500&after=cursor-1",
        "/crm/v4/objects/contacts/1/associations/companies?limit=500&after=c-2",
    ]
    server.shutdown()
