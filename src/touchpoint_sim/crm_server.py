"""A HubSpot-compatible CRM API on loopback, serving a simulated data set.

Implements what an extractor needs, for every object type in the data set (contacts, companies,
deals, tickets, calls, meetings, notes, emails, tasks, feedback_submissions):

* ``GET /crm/v3/objects/{type}`` (list, ``limit`` up to 100, ``after`` cursor, ``properties``)
  and ``GET /crm/v3/objects/{type}/{id}``;
* ``POST /crm/v3/objects/{type}/search`` (filters EQ/NEQ/GT/GTE/LT/LTE, sorts, ``limit`` up to
  200, ``after`` cursor, the 10,000-result cap: 400 when ``after`` reaches it);
* ``POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read`` (at most 1,000
  inputs; ids without associations are absent from the results);
* bearer-token auth, and optional injected faults (429 with Retry-After, 500, slow answers) at a
  given rate; ``page_size`` lowers the largest page to exercise an extractor's paging;
* HubSpot's rate limits, on by default: the search endpoints take ``search_per_second`` (5)
  requests a second, every endpoint ``burst_per_ten_seconds`` (190) in a rolling 10 seconds;
  beyond, 429 with ``Retry-After`` and HubSpot's body. Answers other than search carry the
  ``X-HubSpot-RateLimit-*`` headers (HubSpot's search answers do not);
* search index lag: with ``late_index_share``, that share of the objects (chosen by the seed)
  is missing from a search asked less than ``index_lag`` after the object's modification (the
  search's upper bound on the modified time is taken as the moment it is asked);
* ``hs_object_id`` filters and sorts compare object ids as numbers;
* the conversations inbox (Conversations API v3), when the data set has one:
  ``GET /conversations/v3/conversations/threads`` (``limit`` up to 500, an opaque ``after``
  cursor, ``sort=id`` (the default) or ``sort=latestMessageTimestamp``, which needs
  ``latestMessageTimestampAfter``, the smallest ``latestMessageTimestamp`` listed; results
  always ascending; filters ``archived``, ``associatedContactId``, ``inboxId``),
  ``GET .../threads/{threadId}`` and ``GET .../threads/{threadId}/messages`` (paged the same
  way, newest first as HubSpot's example lists them); served as of "now" (below): a thread
  appears with its first message, and its status and latest timestamps follow its messages;
* deletions: an object of the data set with ``archived: true`` and ``archivedAt`` is served as
  live to searches whose window ends before its deletion, and after it only by
  ``GET /crm/v3/objects/{type}?archived=true`` (which lists deleted objects only, without their
  associations); the moment "now" is ``clock`` (the wall clock unless given), so a test can play
  days one after another.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from touchpoint_sim.crm_data import (
    CrmData,
    archived_at_ms,
    as_live,
    as_ms,
    matches,
    search_asked_at,
    select_properties,
)
from touchpoint_sim.population.records import modified_property

SEARCH_CAP = 10_000
MAX_SEARCH_LIMIT = 200
MAX_LIST_LIMIT = 100
MAX_ASSOCIATION_INPUTS = 1000
MAX_CONVERSATIONS_LIMIT = 500

#: HubSpot-defined association type ids, by (from type, to type); a pair's reverse has its own id.
ASSOCIATION_TYPE_IDS = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("tickets", "contacts"): 16,
    ("contacts", "tickets"): 15,
    ("tickets", "companies"): 339,
    ("companies", "tickets"): 340,
    ("calls", "contacts"): 194,
    ("calls", "companies"): 182,
    ("calls", "deals"): 206,
    ("emails", "contacts"): 198,
    ("emails", "companies"): 186,
    ("emails", "deals"): 210,
    ("meetings", "contacts"): 200,
    ("meetings", "companies"): 188,
    ("meetings", "deals"): 212,
    ("notes", "contacts"): 202,
    ("notes", "companies"): 190,
    ("notes", "deals"): 214,
    ("tasks", "contacts"): 204,
    ("tasks", "companies"): 192,
    ("tasks", "deals"): 216,
    ("contacts", "calls"): 193,
    ("contacts", "emails"): 197,
    ("contacts", "meetings"): 199,
    ("contacts", "notes"): 201,
    ("contacts", "tasks"): 203,
}
#: Pairs whose first association is also labelled "Primary" (HubSpot's primary company).
PRIMARY_TYPE_IDS = {
    ("contacts", "companies"): 1,
    ("deals", "companies"): 5,
    ("tickets", "companies"): 26,
}


class _Handler(BaseHTTPRequestHandler):
    server: CrmServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet unless verbose
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in {**getattr(self, "_rate_headers", {}), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, category: str = "VALIDATION_ERROR") -> None:
        self._send(
            status,
            {
                "status": "error",
                "message": message,
                "category": category,
                "correlationId": "00000000-0000-4000-8000-000000000000",
            },
        )

    def _guard(self) -> bool:
        self.server.count_request()
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._send(
                401,
                {
                    "status": "error",
                    "category": "INVALID_AUTHENTICATION",
                    "message": "Authentication credentials not found.",
                },
            )
            return False
        self._rate_headers: dict[str, str] = {}
        is_search = self.command == "POST" and urlsplit(self.path).path.endswith("/search")
        refused, retry_after, self._rate_headers = self.server.admit(is_search)
        if refused:
            self._send(
                429,
                {
                    "status": "error",
                    "message": "You have reached your secondly limit."
                    if refused == "SECONDLY"
                    else "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "policyName": refused,
                    "category": "RATE_LIMITS",
                },
                {"Retry-After": f"{retry_after:g}"},
            )
            return False
        fault = self.server.next_fault()
        if fault == "429":
            self._send(
                429,
                {
                    "status": "error",
                    "category": "RATE_LIMITS",
                    "policyName": "SECONDLY",
                    "message": "You have reached your secondly limit.",
                },
                {"Retry-After": "0.2"},
            )
            return False
        if fault == "500":
            self._send(500, {"status": "error", "message": "internal error"})
            return False
        if fault == "slow":
            time.sleep(0.3)
        return True

    def _route(self, path: str) -> tuple[str, list[str]]:
        parts = path.strip("/").split("/")
        if len(parts) >= 4 and parts[:3] == ["crm", "v3", "objects"]:
            return "v3", parts[3:]
        if (
            len(parts) == 7
            and parts[:3] == ["crm", "v4", "associations"]
            and parts[5:] == ["batch", "read"]
        ):
            return "v4", parts[3:5]
        if len(parts) >= 4 and parts[:4] == ["conversations", "v3", "conversations", "threads"]:
            return "conversations", parts[4:]
        return "", parts

    def _known(self, object_type: str) -> bool:
        if object_type in self.server.data.objects:
            return True
        self._error(400, f"Unable to infer object type from: {object_type}")
        return False

    def do_GET(self) -> None:  # http.server's naming
        if not self._guard():
            return
        url = urlsplit(self.path)
        api, parts = self._route(url.path)
        if api == "conversations":
            self._conversations(parts, url.path, parse_qs(url.query))
            return
        if api != "v3" or len(parts) > 2 or parts[-1] == "search":
            self._error(404, "not found", "OBJECT_NOT_FOUND")
            return
        object_type = parts[0]
        if not self._known(object_type):
            return
        query = parse_qs(url.query)
        wanted = [n for value in query.get("properties", []) for n in value.split(",") if n]
        archived = query.get("archived", ["false"])[0].lower() == "true"
        now = self.server.now_ms()
        if len(parts) == 2:
            record = self.server.data.get(object_type, parts[1])
            deleted_at = archived_at_ms(record) if record is not None else None
            if record is None or archived != (deleted_at is not None and deleted_at <= now):
                self._error(404, "Object not found.", "OBJECT_NOT_FOUND")
                return
            record = record if archived else as_live(record)
            self._send(200, select_properties(record, object_type, wanted) if wanted else record)
            return
        limit = self.server.limit(int(query.get("limit", ["10"])[0]), MAX_LIST_LIMIT)
        offset = int(query.get("after", ["0"])[0] or 0)
        records = [
            r if archived else as_live(r)
            for r in self.server.data.listing(object_type)
            if archived == ((archived_at_ms(r) or float("inf")) <= now)
        ]
        page = records[offset : offset + limit]
        if wanted:
            page = [select_properties(r, object_type, wanted) for r in page]
        body: dict[str, Any] = {"results": page}
        if offset + limit < len(records):
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after, "link": f"{url.path}?after={after}"}}
        self._send(200, body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = None
        if not self._guard():
            return
        if not isinstance(body, dict):
            self._error(400, "Invalid input JSON on line 1")
            return
        api, parts = self._route(urlsplit(self.path).path)
        if api == "v4":
            self._associations(parts[0], parts[1], body)
        elif api == "v3" and len(parts) == 2 and parts[1] == "search":
            self._search(parts[0], body)
        else:
            self._error(404, "not found", "OBJECT_NOT_FOUND")

    def _search(self, object_type: str, body: dict[str, Any]) -> None:
        if not self._known(object_type):
            return
        records = self.server.query(
            object_type, body.get("filterGroups") or [], body.get("sorts") or []
        )
        limit = self.server.limit(int(body.get("limit", 10)), MAX_SEARCH_LIMIT)
        offset = int(body.get("after") or 0)
        if offset >= SEARCH_CAP:
            self._error(400, "The search API cannot page past 10,000 results.")
            return
        page = [as_live(r) for r in records[offset : offset + limit]]
        wanted = list(body.get("properties") or [])
        if wanted:
            page = [select_properties(r, object_type, wanted) for r in page]
        answer: dict[str, Any] = {"total": len(records), "results": page}
        if offset + limit < len(records) and offset + limit < SEARCH_CAP:
            answer["paging"] = {
                "next": {"after": str(offset + limit), "link": "?after=" + str(offset + limit)}
            }
        self._send(200, answer)

    def _conversations(self, parts: list[str], path: str, query: dict[str, list[str]]) -> None:
        inbox = self.server.data.conversations
        now = self.server.now_ms()
        try:
            limit = self.server.limit(int(query.get("limit", ["20"])[0]), MAX_CONVERSATIONS_LIMIT)
            offset = _offset(query.get("after", [""])[0])
        except ValueError:
            self._error(400, "Invalid limit or after")
            return
        if len(parts) == 2 and parts[1] == "messages":
            if not any(str(t.get("id")) == parts[0] for t in inbox.threads_as_of(now)):
                self._error(404, f"Thread {parts[0]} not found", "OBJECT_NOT_FOUND")
                return
            self._page(inbox.messages_as_of(parts[0], now), offset, limit, path)
            return
        threads = inbox.threads_as_of(now)
        archived = query.get("archived", ["false"])[0].lower() == "true"
        threads = [t for t in threads if (t.get("archived") is True) == archived]
        if len(parts) == 1:
            found = [t for t in threads if str(t.get("id")) == parts[0]]
            if not found:
                self._error(404, f"Thread {parts[0]} not found", "OBJECT_NOT_FOUND")
                return
            self._send(200, found[0])
            return
        if parts:
            self._error(404, "not found", "OBJECT_NOT_FOUND")
            return
        for name in ("associatedContactId", "inboxId"):
            if name in query:
                threads = [t for t in threads if str(t.get(name)) == query[name][0]]
        sort = query.get("sort", ["id"])[0]
        if sort == "latestMessageTimestamp":
            if "latestMessageTimestampAfter" not in query:
                self._error(400, "latestMessageTimestampAfter is required to sort by it")
                return
            after_ms = as_ms(query["latestMessageTimestampAfter"][0])
            threads = sorted(
                (
                    t
                    for t in threads
                    if t.get("latestMessageTimestamp")
                    and as_ms(t["latestMessageTimestamp"]) >= after_ms
                ),
                key=lambda t: (as_ms(t["latestMessageTimestamp"]), str(t.get("id"))),
            )
        elif sort != "id":
            self._error(400, f"Unknown sort {sort}: expected id or latestMessageTimestamp")
            return
        self._page(threads, offset, limit, path)

    def _page(self, items: list[dict[str, Any]], offset: int, limit: int, path: str) -> None:
        body: dict[str, Any] = {"results": items[offset : offset + limit]}
        if offset + limit < len(items):
            after = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
            body["paging"] = {"next": {"after": after, "link": f"{path}?after={after}"}}
        self._send(200, body)

    def _associations(self, from_type: str, to_type: str, body: dict[str, Any]) -> None:
        if not (self._known(from_type) and self._known(to_type)):
            return
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            self._error(400, "Invalid input: inputs is required")
            return
        if len(inputs) > MAX_ASSOCIATION_INPUTS:
            self._error(
                400,
                f"Batch input size of {len(inputs)} exceeds the limit of {MAX_ASSOCIATION_INPUTS}.",
            )
            return
        links = self.server.data.associations.get((from_type, to_type), {})
        type_id = ASSOCIATION_TYPE_IDS.get((from_type, to_type), 1)
        primary = PRIMARY_TYPE_IDS.get((from_type, to_type))
        results = []
        for item in inputs:
            from_id = str(item.get("id") if isinstance(item, dict) else item)
            targets = links.get(from_id)
            if not targets:
                continue
            to = []
            for n, to_id in enumerate(targets):
                types = [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]
                if primary is not None and n == 0:
                    types.insert(
                        0, {"category": "HUBSPOT_DEFINED", "typeId": primary, "label": "Primary"}
                    )
                to.append({"toObjectId": int(to_id), "associationTypes": types})
            results.append({"from": {"id": from_id}, "to": to})
        self._send(
            200,
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": "2026-01-01T00:00:00.000Z",
                "completedAt": "2026-01-01T00:00:00.010Z",
            },
        )


def _offset(cursor: str) -> int:
    """The position an opaque ``after`` cursor of the conversations API stands for."""
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(cursor) from exc


#: for a server whose client is not the subject (a fixture's world): HubSpot's limits off, so
#: the tests about something else do not wait out 429s
NO_LIMITS: dict[str, Any] = {"search_per_second": None, "burst_per_ten_seconds": None}


class CrmServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        data: CrmData,
        port: int = 0,
        token: str = "sim-token",
        fault_rate: float = 0.0,
        seed: int = 0,
        verbose: bool = False,
        page_size: int | None = None,
        search_per_second: float | None = 5,
        burst_per_ten_seconds: int | None = 190,
        late_index_share: float = 0.0,
        index_lag: float = 600.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.data = data
        self.token = token
        self.fault_rate = fault_rate
        self.verbose = verbose
        self.page_size = page_size
        self.requests = 0
        self.faults = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.search_per_second = search_per_second
        self.burst_per_ten_seconds = burst_per_ten_seconds
        self._search_times: deque[float] = deque()
        self._request_times: deque[float] = deque()
        #: monotonic times of the 429s the limits answered (faults injected are not counted)
        self.rate_limited_at: list[float] = []
        self.index_lag_ms = index_lag * 1000
        chooser = random.Random(seed + 1)
        self.late_indexed = {
            (object_type, str(record["id"]))
            for object_type, records in data.objects.items()
            for record in records
            if late_index_share and chooser.random() < late_index_share
        }
        #: (type, id) of late-indexed objects a search left out, at least once
        self.hidden_by_lag: set[tuple[str, str]] = set()
        #: what "now" is for deletions (a test playing past days sets it to each day's run)
        self.clock = clock

    def now_ms(self) -> float:
        return (self.clock or (lambda: datetime.now(UTC)))().timestamp() * 1000

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def limit(self, requested: int, maximum: int) -> int:
        """The page size actually served: HubSpot's maximum, or ``page_size`` when set."""
        cap = maximum if self.page_size is None else self.page_size
        return max(1, min(requested, cap))

    def query(
        self, object_type: str, groups: list[dict[str, Any]], sorts: list[Any]
    ) -> list[dict[str, Any]]:
        """The records matching a search's filters, in its order. The data never changes while it
        is served, so a query's answer is kept for the pages that follow (a client pages through
        one query at a time): a large CRM is not filtered and sorted again for every page."""
        as_of = self.now_ms() if self.clock else None  # the wall clock: past windows only
        key = json.dumps([object_type, groups, sorts, as_of], sort_keys=True)
        with self._lock:
            if key in self._queries:
                self._queries.move_to_end(key)
                return self._queries[key]
        records = self.data.listing(object_type)
        if groups:
            records = [
                r
                for r in records
                if any(all(matches(r, f) for f in g.get("filters", [])) for g in groups)
            ]
        asked_at = search_asked_at(object_type, groups)
        # deleted before the search is asked (its window's end, or now): gone from the index
        moment = min(asked_at, self.now_ms()) if asked_at is not None else self.now_ms()
        records = [r for r in records if (archived_at_ms(r) or float("inf")) > moment]
        if self.late_indexed and asked_at is not None:
            modified = modified_property(object_type)
            visible = []
            for r in records:
                key = (object_type, str(r["id"]))
                value = r["properties"].get(modified)
                if (
                    key in self.late_indexed
                    and value
                    and asked_at - as_ms(value) < self.index_lag_ms
                ):
                    with self._lock:
                        self.hidden_by_lag.add(key)
                    continue
                visible.append(r)
            records = visible
        for sort in reversed(sorts):
            name = sort["propertyName"] if isinstance(sort, dict) else str(sort)
            reverse = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            if name == "hs_object_id":
                records = sorted(records, key=lambda r: int(r["id"]), reverse=reverse)
                continue
            records = sorted(
                records,
                key=lambda r: (str(r["properties"].get(name) or ""), int(r["id"])),
                reverse=reverse,
            )
        with self._lock:
            self._queries[key] = records
            while len(self._queries) > 16:
                self._queries.popitem(last=False)
        return records

    def admit(self, search: bool) -> tuple[str | None, float, dict[str, str]]:
        """HubSpot's limits: (the policy refused or None, seconds to wait, rate-limit headers)."""
        now = time.monotonic()
        with self._lock:
            while self._request_times and now - self._request_times[0] >= 10:
                self._request_times.popleft()
            while self._search_times and now - self._search_times[0] >= 1:
                self._search_times.popleft()
            burst = self.burst_per_ten_seconds
            if burst is not None and len(self._request_times) >= burst:
                self.rate_limited_at.append(now)
                return "TEN_SECONDLY_ROLLING", 10 - (now - self._request_times[0]), {}
            per_second = self.search_per_second
            if search and per_second is not None and len(self._search_times) >= per_second:
                self.rate_limited_at.append(now)
                return "SECONDLY", 1.0, {}
            self._request_times.append(now)
            if search:
                self._search_times.append(now)
                return None, 0.0, {}
            if burst is None:
                return None, 0.0, {}
            return (
                None,
                0.0,
                {
                    "X-HubSpot-RateLimit-Max": str(burst),
                    "X-HubSpot-RateLimit-Remaining": str(burst - len(self._request_times)),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                },
            )

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def next_fault(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.fault_rate:
                return None
            self.faults += 1
            return self._rng.choice(("429", "500", "slow"))

    def start_in_thread(self) -> CrmServer:
        threading.Thread(target=self.serve_forever, name="crm-simulator", daemon=True).start()
        return self
