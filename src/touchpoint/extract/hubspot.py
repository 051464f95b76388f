"""A HubSpot CRM v3 client: bearer auth, bounded retries with backoff, rate limit, search paging.

The search endpoint returns at most 10,000 results per query, so a window that holds more is
split in halves until each half fits.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import requests

from touchpoint.errors import TouchpointError

log = logging.getLogger(__name__)

SEARCH_CAP = 10_000
ASSOCIATION_BATCH = 1000
RETRY_STATUSES = {429, 500, 502, 503, 504}


class HubSpotError(TouchpointError):
    """The CRM API failed in a way retrying cannot fix."""


def _ms(value: datetime) -> str:
    return str(int(value.timestamp() * 1000))


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.min_interval = 1.0 / max_requests_per_second if max_requests_per_second > 0 else 0.0
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.requests_made = 0
        self._last_request = 0.0

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            wait = self.min_interval - (time.monotonic() - self._last_request)
            if wait > 0:
                time.sleep(wait)
            self._last_request = time.monotonic()
            self.requests_made += 1
            try:
                response = self.session.request(method, url, json=body, timeout=self.timeout)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
                retry_after = None
            else:
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
            if attempt == self.max_retries:
                break
            delay = min(self.backoff_cap, self.backoff_base * 2**attempt) * (0.5 + random.random())
            if retry_after:
                try:
                    delay = max(delay, float(retry_after))
                except ValueError:
                    pass
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
        """Every object modified in ``[start, end)``, a page at a time, with the page's location."""
        path = f"/crm/v3/objects/{object_type}/search"
        after: str | None = None
        seen_cursors: set[str] = set()
        total = fetched = 0
        while True:
            body: dict[str, Any] = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": modified_property,
                                "operator": "GTE",
                                "value": _ms(start),
                            },
                            {
                                "propertyName": modified_property,
                                "operator": "LT",
                                "value": _ms(end),
                            },
                        ]
                    }
                ],
                "sorts": [{"propertyName": modified_property, "direction": "ASCENDING"}],
                "properties": list(properties),
                "limit": page_size,
            }
            if after is not None:
                body["after"] = after
            page = self.request("POST", path, body)
            if (
                after is None
                and int(page.get("total", 0)) > SEARCH_CAP
                and end - start > timedelta(seconds=1)
            ):
                # The search API stops at 10,000 results: split the window until each half fits.
                middle = start + (end - start) / 2
                log.info(
                    "%s: %s results in window, splitting at %s", object_type, page["total"], middle
                )
                yield from self.search_pages(
                    object_type, modified_property, properties, start, middle, page_size
                )
                yield from self.search_pages(
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

    def search_modified(self, *args: Any, **kwargs: Any) -> Iterator[tuple[dict[str, Any], str]]:
        """Like :meth:`search_pages`, one object at a time."""
        for records, location in self.search_pages(*args, **kwargs):
            for record in records:
                yield record, location

    def read_associations(
        self, from_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[str]]:
        """v4 batch read: the ids of ``to_type`` objects associated with each of ``ids``."""
        found: dict[str, list[str]] = {}
        for offset in range(0, len(ids), ASSOCIATION_BATCH):
            batch = ids[offset : offset + ASSOCIATION_BATCH]
            answer = self.request(
                "POST",
                f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                {"inputs": [{"id": i} for i in batch]},
            )
            for result in answer.get("results", []):
                found[str(result["from"]["id"])] = [
                    str(t["toObjectId"]) for t in result.get("to", [])
                ]
        return found
