"""The report's content for one week, read from the marts (the report computes nothing itself)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg

#: The one query the report needs; the numbers are computed by dbt in agg_touchpoints_weekly.
_WEEK_ROWS = """
    select week_start, grain, channel, touchpoint, touchpoints, customers
    from marts.agg_touchpoints_weekly
    where week_start in (%(week)s, %(previous)s)
"""
_DATA_AS_OF = "select max(occurred_at) from marts.fct_touchpoints where occurred_at < %(end)s"


@dataclass(frozen=True)
class Change:
    current: int
    previous: int

    @property
    def delta(self) -> int:
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        return None if self.previous == 0 else 100.0 * self.delta / self.previous


@dataclass
class WeeklyContent:
    week_start: date
    touchpoints: Change
    customers: Change
    channels: list[tuple[str, Change, float]] = field(default_factory=list)  # name, change, share %
    top_touchpoints: list[tuple[str, str, Change]] = field(default_factory=list)
    data_as_of: datetime | None = None
    #: data-quality warnings of the week (the report goes out with them as a note)
    quality_warnings: list[str] = field(default_factory=list)

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)


def load_weekly_content(conn: psycopg.Connection, week_start: date) -> WeeklyContent:
    previous = week_start - timedelta(days=7)
    rows = conn.execute(_WEEK_ROWS, {"week": week_start, "previous": previous}).fetchall()
    cur = {(g, c, t): (n, k) for w, g, c, t, n, k in rows if w == week_start}
    prev = {(g, c, t): (n, k) for w, g, c, t, n, k in rows if w == previous}

    def change(key: tuple[str, str, str], index: int) -> Change:
        return Change(cur.get(key, (0, 0))[index], prev.get(key, (0, 0))[index])

    week_key = ("week", "(all)", "(all)")
    total = change(week_key, 0)
    channel_keys = sorted({k for k in (*cur, *prev) if k[0] == "channel"}, key=lambda k: -cur.get(k, (0, 0))[0])
    channels = [(k[1], change(k, 0), 100.0 * cur.get(k, (0, 0))[0] / total.current if total.current else 0.0)
                for k in channel_keys]
    tp_keys = sorted({k for k in cur if k[0] == "touchpoint"}, key=lambda k: (-cur[k][0], k))
    top = [(k[2], k[1], change(k, 0)) for k in tp_keys[:10]]
    end = datetime.combine(week_start + timedelta(days=7), datetime.min.time(), tzinfo=UTC)
    as_of = conn.execute(_DATA_AS_OF, {"end": end}).fetchone()[0]
    return WeeklyContent(week_start=week_start, touchpoints=total, customers=change(week_key, 1),
                         channels=channels, top_touchpoints=top, data_as_of=as_of)
