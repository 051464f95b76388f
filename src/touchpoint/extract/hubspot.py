"""A HubSpot CRM v3 client: bearer auth, bounded retries with backoff, rate limits, search
paging.

The search endpoint returns at most 10,000 results per query, so a window that holds more is
split in halves until each half fits; a window of one second that still holds more is read in
ranges of object ids. Requests go through a budget shared by every CRM task of the deployment
(``throttle``); a 429's ``Retry-After`` is honoured up to a cap, and the rate-limit headers
(``X-HubSpot-RateLimit-*``) make the client pause before the window runs out.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from touchpoint.errors import TouchpointError
from touchpoint.sources.stream import InvalidRecord
from touchpoint.sources.timeparse import from_unix_millis_or_iso

log = logging.getLogger(__name__)

SEARCH_CAP = 10_000
ASSOCIATION_BATCH = 1000
RETRY_STATUSES = {429, 500, 502, 503, 504}


class HubSpotError(TouchpointError):
    """The CRM API failed in a way retrying cannot fix."""


def _ms(value: datetime) -> str:
    return str(int(value.timestamp() * 1000))


def _seconds(value: str | None) -> float | None:
    """A header's number of seconds, None when absent or not a finite number (``inf``)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _search_body(
    modified_property: str,
    properties: tuple[str, ...],
    start: datetime,
    end: datetime,
    page_size: int,
    sort_by: str | None = None,
    after_id: int | None = None,
) -> dict[str, Any]:
    """A search for the objects modified in ``[start, end)`` (with ``after_id``: only ids above
    it), sorted by the modified time or ``sort_by``."""
    filters: list[dict[str, str]] = [
        {"propertyName": modified_property, "operator": "GTE", "value": _ms(start)},
        {"propertyName": modified_property, "operator": "LT", "value": _ms(end)},
    ]
    if after_id is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)})
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort_by or modified_property, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": page_size,
    }


def _past(thread: Any, end: datetime) -> bool:
    """Whether a listed thread's latest message is at or after ``end`` (one whose time cannot
    be read is kept: the loader quarantines it with its reason)."""
    try:
        return from_unix_millis_or_iso(thread["latestMessageTimestamp"]) >= end
    except (InvalidRecord, KeyError, TypeError):
        return False


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        max_requests_per_second: float = 8.0,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        timeout: float = 30.0,
        max_retry_after: float = 120.0,
        throttle: Callable[[bool], None] | None = None,
        search_overlap: timedelta = timedelta(0),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.min_interval = 1.0 / max_requests_per_second if max_requests_per_second > 0 else 0.0
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        #: a 429 asking to wait longer than this ends the run with a clear error
        self.max_retry_after = max_retry_after
        #: waits for the deployment's shared request budget (extract.request_budget); told
        #: whether the request is a search
        self.throttle = throttle
        #: how far before its window a search starts: records modified just before a window's
        #: end may not be in the search index yet when the run asks (HubSpot's index lags)
        self.search_overlap = search_overlap
        self.requests_made = 0
        self.rate_limited = 0
        self._last_request = 0.0
        self._pause_until = 0.0

    def _wait_turn(self, search: bool) -> None:
        if self.throttle is not None:
            self.throttle(search)
        wait = max(
            self.min_interval - (time.monotonic() - self._last_request),
            self._pause_until - time.monotonic(),
        )
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()

    def _read_rate_headers(self, response: requests.Response) -> None:
        """Pause before the next request when the rolling window has no request left."""
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        interval = _seconds(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        if remaining is not None and remaining.strip() == "0" and interval is not None:
            self._pause_until = time.monotonic() + min(interval / 1000, self.max_retry_after)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        search = method == "POST" and path.endswith("/search")
        for attempt in range(self.max_retries + 1):
            self._wait_turn(search)
            self.requests_made += 1
            try:
                response = self.session.request(method, url, json=body, timeout=self.timeout)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
                retry_after = None
            else:
                self._read_rate_headers(response)
                if response.status_code < 300:
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    if isinstance(answer, dict):
                        return answer
                    # e.g. a proxy's HTML page with 200: retried like a 5xx
                    problem = f"HTTP {response.status_code} with a body that is not a JSON object"
                    retry_after = None
                elif response.status_code not in RETRY_STATUSES:
                    raise HubSpotError(
                        f"CRM API {method} {url} answered {response.status_code}: "
                        f"{response.text[:200]}; check the token and base URL of connection "
                        "crm_hubspot"
                    )
                else:
                    problem = f"HTTP {response.status_code}"
                    retry_after = response.headers.get("Retry-After")
                    if response.status_code == 429:
                        self.rate_limited += 1
                        asked = _seconds(retry_after)
                        if asked is not None and asked > self.max_retry_after:
                            raise HubSpotError(
                                f"CRM API {method} {url} answered 429 asking to wait {asked:g} s"
                                f" (Retry-After), more than the {self.max_retry_after:g} s this"
                                " run waits (TOUCHPOINT_CRM_MAX_RETRY_AFTER_SECONDS): the daily"
                                " limit is probably spent; re-run the interval later"
                            )
            if attempt == self.max_retries:
                break
            delay = min(self.backoff_cap, self.backoff_base * 2**attempt) * (0.5 + random.random())
            asked = _seconds(retry_after)
            if asked is not None:
                delay = max(delay, asked)
            log.warning(
                "CRM API %s %s: %s, retry %d in %.1fs", method, path, problem, attempt + 1, delay
            )
            time.sleep(delay)
        raise HubSpotError(
            f"CRM API {method} {url} still failing after {self.max_retries} retries ({problem}); "
            "the service may be down: re-run the interval later"
        )

    def search_pages(
        self,
        object_type: str,
        modified_property: str,
        properties: tuple[str, ...],
        start: datetime,
        end: datetime,
        page_size: int = 200,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Every object modified in ``[start - search_overlap, end)``, a page at a time, with the
        page's location (objects of the overlap come again: natural keys keep them once)."""
        yield from self._search_window(
            object_type, modified_property, properties, start - self.search_overlap, end, page_size
        )

    def _search_window(
        self,
        object_type: str,
        modified_property: str,
        properties: tuple[str, ...],
        start: datetime,
        end: datetime,
        page_size: int = 200,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        path = f"/crm/v3/objects/{object_type}/search"
        after: str | None = None
        seen_cursors: set[str] = set()
        total = fetched = 0
        while True:
            body = _search_body(modified_property, properties, start, end, page_size)
            if after is not None:
                body["after"] = after
            page = self.request("POST", path, body)
            if after is None and int(page.get("total", 0)) > SEARCH_CAP:
                if end - start <= timedelta(seconds=1):
                    # more than 10,000 modified within one second (a bulk import): by id ranges
                    yield from self._search_by_id(
                        object_type, modified_property, properties, start, end, page_size
                    )
                    return
                # The search API stops at 10,000 results: split the window until each half fits.
                middle = start + (end - start) / 2
                log.info(
                    "%s: %s results in window, splitting at %s", object_type, page["total"], middle
                )
                yield from self._search_window(
                    object_type, modified_property, properties, start, middle, page_size
                )
                yield from self._search_window(
                    object_type, modified_property, properties, middle, end, page_size
                )
                return
            results = page.get("results", [])
            if after is None:
                total = int(page.get("total", 0))
            fetched += len(results)
            yield results, f"{path}?after={after or ''}"
            next_after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                return
            # A cursor that never ends: one seen before, a page with nothing on it that still
            # points further, or more results than the window holds (a window in the past
            # only loses objects while it is read: one modified meanwhile moves out of it).
            if next_after in seen_cursors or not results or fetched > total + len(results):
                raise HubSpotError(
                    f"CRM API {path} returned cursor {next_after!r} after {fetched} of {total} "
                    f"results for window {start}..{end}"
                    + (" (a page without results)" if not results else "")
                    + (" (that cursor twice)" if next_after in seen_cursors else "")
                    + "; stopping instead of looping forever; report this to the API owner"
                )
            seen_cursors.add(next_after)
            after = str(next_after)

    def _search_by_id(
        self,
        object_type: str,
        modified_property: str,
        properties: tuple[str, ...],
        start: datetime,
        end: datetime,
        page_size: int,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """A window too full for the 10,000-result cap and too short to split: the objects in
        ascending id order, each query starting after the last id read, so none pages to the
        cap."""
        path = f"/crm/v3/objects/{object_type}/search"
        last_id = 0
        while True:
            body = _search_body(
                modified_property,
                properties,
                start,
                end,
                page_size,
                sort_by="hs_object_id",
                after_id=last_id,
            )
            page = self.request("POST", path, body)
            results = [r for r in page.get("results", []) if isinstance(r, dict)]
            yield page.get("results", []), f"{path}?hs_object_id>{last_id}"
            ids = [int(r["id"]) for r in results if str(r.get("id", "")).isdigit()]
            if not page.get("results") or not ids or max(ids) <= last_id:
                return
            last_id = max(ids)

    def archived_pages(
        self, object_type: str, properties: tuple[str, ...], page_size: int = 100
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Every archived (deleted) object of ``object_type``, a page at a time: the search never
        returns them, and HubSpot keeps them listable for 90 days after the deletion."""
        path = f"/crm/v3/objects/{object_type}"
        query = f"archived=true&limit={page_size}&properties={','.join(properties)}"
        yield from self.list_pages(path, query, f"{path}?archived=true")

    def list_pages(
        self, path: str, query: str, where: str | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """A GET listing read to its end through its ``paging.next.after`` cursors, a page at a
        time with the page's location (``where``: how locations name the listing)."""
        where = where or path
        after: str | None = None
        seen_cursors: set[str] = set()
        while True:
            cursor = f"&after={quote(after, safe='')}" if after else ""
            page = self.request("GET", f"{path}?{query}{cursor}")
            results = page.get("results", [])
            yield results, f"{where}{'&' if '?' in where else '?'}after={after or ''}"
            next_after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                return
            if next_after in seen_cursors or not results:
                raise HubSpotError(
                    f"CRM API {where} returned cursor {next_after!r} again or after"
                    " an empty page; stopping instead of looping forever"
                )
            seen_cursors.add(str(next_after))
            after = str(next_after)

    def conversation_threads(
        self, start: datetime, end: datetime, page_size: int = 500
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """The inbox's threads whose latest message falls in ``[start - search_overlap, end)``,
        a page at a time. The API filters on the lower bound only and lists in ascending order
        of the latest message: the reading stops at the first page past ``end``."""
        since = (start - self.search_overlap).isoformat().replace("+00:00", "Z")
        query = (
            f"sort=latestMessageTimestamp&latestMessageTimestampAfter={quote(since)}"
            f"&limit={page_size}"
        )
        path = "/conversations/v3/conversations/threads"
        for results, location in self.list_pages(path, query):
            within = [t for t in results if not _past(t, end)]
            yield within, location
            if len(within) < len(results):
                return

    def thread_messages(
        self, thread_id: str, page_size: int = 500
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Every message of a thread, a page at a time."""
        path = f"/conversations/v3/conversations/threads/{quote(thread_id, safe='')}/messages"
        yield from self.list_pages(path, f"limit={page_size}")

    def search_modified(self, *args: Any, **kwargs: Any) -> Iterator[tuple[dict[str, Any], str]]:
        """Like :meth:`search_pages`, one object at a time."""
        for records, location in self.search_pages(*args, **kwargs):
            for record in records:
                yield record, location

    def read_associations(
        self, from_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[str]]:
        """v4 batch read: the ids of ``to_type`` objects associated with each of ``ids``. An
        object with more associations than one answer holds is read on page by page; inputs the
        API could not read (a 207 with errors: deleted meanwhile, say) are logged and left out."""
        found: dict[str, list[str]] = {}
        for offset in range(0, len(ids), ASSOCIATION_BATCH):
            batch = ids[offset : offset + ASSOCIATION_BATCH]
            answer = self.request(
                "POST",
                f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                {"inputs": [{"id": i} for i in batch]},
            )
            errors = answer.get("errors") or []
            if errors:
                first = errors[0] if isinstance(errors[0], dict) else {}
                log.warning(
                    "CRM associations %s -> %s: %d of %d input(s) not read (%s)",
                    from_type,
                    to_type,
                    len(errors),
                    len(batch),
                    str(first.get("message", errors[0]))[:200],
                )
            for result in answer.get("results", []):
                from_id = str(result["from"]["id"])
                linked = [str(t["toObjectId"]) for t in result.get("to", [])]
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                while after:
                    page = self.request(
                        "GET",
                        f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}"
                        f"?limit=500&after={after}",
                    )
                    linked += [str(t["toObjectId"]) for t in page.get("results", [])]
                    following = ((page.get("paging") or {}).get("next") or {}).get("after")
                    after = following if following != after else None
                found[from_id] = found.get(from_id, []) + linked
        return found
