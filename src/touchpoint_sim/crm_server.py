"""A HubSpot-compatible CRM v3 API on loopback, serving a simulated data set.

Implements what the extractor uses: ``GET /crm/v3/objects/{type}`` (list) and
``POST /crm/v3/objects/{type}/search`` (filters GTE/LT/GT/LTE/EQ, one sort, ``limit`` up to
200, ``after`` cursor, the 10,000-result cap), bearer-token auth, and optional injected faults
(429 with Retry-After, 500, slow answers) at a given rate.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEARCH_CAP = 10_000
MAX_SEARCH_LIMIT = 200


def _as_ms(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value)
    if text.lstrip("-").isdigit():
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def _matches(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    name, op, value = flt["propertyName"], flt["operator"], flt.get("value")
    raw = record["properties"].get(name)
    if raw is None:
        return False
    if name.endswith("date") or name.startswith("hs_lastmodified") or name == "createdate":
        left, right = _as_ms(raw), _as_ms(value)
    else:
        left, right = str(raw), str(value)
    return {
        "EQ": left == right, "NEQ": left != right, "GT": left > right, "GTE": left >= right,
        "LT": left < right, "LTE": left <= right,
    }.get(op, False)


class CrmData:
    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects

    @classmethod
    def from_dir(cls, crm_dir: Path) -> CrmData:
        return cls({p.stem: json.loads(p.read_text()) for p in sorted(crm_dir.glob("*.json"))})


class _Handler(BaseHTTPRequestHandler):
    server: CrmServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _guard(self) -> bool:
        self.server.requests += 1
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._send(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                             "message": "Authentication credentials not found."})
            return False
        fault = self.server.next_fault()
        if fault == "429":
            self._send(429, {"status": "error", "category": "RATE_LIMITS",
                             "message": "You have reached your secondly limit."}, {"Retry-After": "0.2"})
            return False
        if fault == "500":
            self._send(500, {"status": "error", "message": "internal error"})
            return False
        if fault == "slow":
            time.sleep(0.3)
        return True

    def _collection(self, path: str) -> tuple[list[dict[str, Any]] | None, bool]:
        parts = path.strip("/").split("/")
        if len(parts) >= 4 and parts[:3] == ["crm", "v3", "objects"]:
            return self.server.data.objects.get(parts[3], []), len(parts) == 5 and parts[4] == "search"
        return None, False

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if not self._guard():
            return
        url = urlsplit(self.path)
        records, is_search = self._collection(url.path)
        if records is None or is_search:
            self._send(404, {"status": "error", "message": "not found"})
            return
        query = parse_qs(url.query)
        limit = min(int(query.get("limit", ["10"])[0]), 100)
        offset = int(query.get("after", ["0"])[0] or 0)
        self._page(sorted(records, key=lambda r: int(r["id"])), offset, limit)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self._guard():
            return
        records, is_search = self._collection(urlsplit(self.path).path)
        if records is None or not is_search:
            self._send(404, {"status": "error", "message": "not found"})
            return
        groups = body.get("filterGroups") or []
        if groups:
            records = [r for r in records if any(all(_matches(r, f) for f in g.get("filters", [])) for g in groups)]
        for sort in reversed(body.get("sorts") or []):
            name = sort["propertyName"] if isinstance(sort, dict) else str(sort)
            reverse = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            records = sorted(records, key=lambda r: (str(r["properties"].get(name) or ""), int(r["id"])), reverse=reverse)
        limit = min(int(body.get("limit", 10)), MAX_SEARCH_LIMIT)
        offset = int(body.get("after") or 0)
        if offset >= SEARCH_CAP:
            self._send(400, {"status": "error", "message": "The search API cannot page past 10,000 results."})
            return
        wanted = set(body.get("properties") or [])
        if wanted:
            records = [{**r, "properties": {k: v for k, v in r["properties"].items() if k in wanted or k == "hs_object_id"}}
                       for r in records]
        self._page(records, offset, limit)

    def _page(self, records: list[dict[str, Any]], offset: int, limit: int) -> None:
        page = records[offset:offset + limit]
        body: dict[str, Any] = {"total": len(records), "results": page}
        if offset + limit < len(records) and offset + limit < SEARCH_CAP:
            body["paging"] = {"next": {"after": str(offset + limit), "link": "?after=" + str(offset + limit)}}
        self._send(200, body)


class CrmServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: CrmData, port: int = 0, token: str = "sim-token",
                 fault_rate: float = 0.0, seed: int = 0, verbose: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.data = data
        self.token = token
        self.fault_rate = fault_rate
        self.verbose = verbose
        self.requests = 0
        self.faults = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_fault(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.fault_rate:
                return None
            self.faults += 1
            return self._rng.choice(("429", "500", "slow"))

    def start_in_thread(self) -> CrmServer:
        threading.Thread(target=self.serve_forever, name="crm-simulator", daemon=True).start()
        return self
