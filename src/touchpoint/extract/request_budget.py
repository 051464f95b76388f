"""A request rate shared by every task that extracts from one CRM account.

HubSpot limits an account, not a process: its search endpoints take about 5 requests per second
per account, and every request counts in a rolling 10-second window. Each request therefore
takes the next free slot from the warehouse (``raw._request_budget``, one row per account),
whichever task, process or Celery worker asks; the row is locked only for the update.
"""

from __future__ import annotations

import time

import psycopg

from touchpoint.warehouse.connection import connect


class SharedBudget:
    """Call it before each request: it returns once this request's slot has come."""

    def __init__(self, warehouse_url: str, account: str, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("a shared budget needs a positive rate")
        self.account = account
        self.step = 1.0 / per_second
        self.conn: psycopg.Connection = connect(warehouse_url, autocommit=True)
        self.conn.execute(
            "insert into raw._request_budget (account, next_at) values (%s, clock_timestamp())"
            " on conflict (account) do nothing",
            (account,),
        )

    def __call__(self) -> None:
        row = self.conn.execute(
            "update raw._request_budget"
            " set next_at = greatest(next_at, clock_timestamp()) + make_interval(secs => %s)"
            " where account = %s"
            " returning extract(epoch from next_at - clock_timestamp())::float8 - %s",
            (self.step, self.account, self.step),
        ).fetchone()
        wait = row[0] if row else 0.0
        if wait > 0:
            time.sleep(wait)

    def close(self) -> None:
        self.conn.close()
