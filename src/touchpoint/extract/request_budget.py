"""A request rate shared by every task that extracts from one CRM account.

HubSpot limits an account, not a process: every request counts in a rolling 10-second window,
and its search endpoints take about 5 requests per second per account besides. Each request
therefore takes the next free slot from the warehouse (``raw._request_budget``, one row per
account), and a search also the next slot of the account's searches (a row of its own),
whichever task, process or Celery worker asks; a row is locked only for its update.
"""

from __future__ import annotations

import time

import psycopg

from touchpoint.warehouse.connection import connect


class SharedBudget:
    """Call it before each request: it returns once this request's slot has come."""

    def __init__(
        self,
        warehouse_url: str,
        account: str,
        per_second: float,
        searches_per_second: float = 0.0,
    ) -> None:
        if per_second <= 0:
            raise ValueError("a shared budget needs a positive rate")
        #: (budget row, seconds between two of its requests): every request's, then searches'
        self.requests = (account, 1.0 / per_second)
        self.searches = (
            (f"{account} searches", 1.0 / searches_per_second) if searches_per_second > 0 else None
        )
        self.conn: psycopg.Connection = connect(warehouse_url, autocommit=True)
        for row, _ in filter(None, (self.requests, self.searches)):
            self.conn.execute(
                "insert into raw._request_budget (account, next_at) values (%s, clock_timestamp())"
                " on conflict (account) do nothing",
                (row,),
            )

    def _slot(self, row: str, step: float) -> float:
        """Takes the row's next slot; returns the seconds until it comes."""
        found = self.conn.execute(
            "update raw._request_budget"
            " set next_at = greatest(next_at, clock_timestamp()) + make_interval(secs => %s)"
            " where account = %s"
            " returning extract(epoch from next_at - clock_timestamp())::float8 - %s",
            (step, row, step),
        ).fetchone()
        return found[0] if found else 0.0

    def __call__(self, search: bool = False) -> None:
        wait = self._slot(*self.requests)
        if search and self.searches is not None:
            wait = max(wait, self._slot(*self.searches))
        if wait > 0:
            time.sleep(wait)

    def close(self) -> None:
        self.conn.close()
