"""The week's flagged signals for one recipient's slice (rows of marts.agg_touchpoint_signals):
what needs attention, what improved, the case categories rising and the groups of customers
losing engagement, each with its last weeks for the trend chart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import dict_row

from touchpoint.delivery.recipients import Slice
from touchpoint.report.standing import number_or_none

TREND_WEEKS = 8
#: signals shown per list (needs attention, improved most, recurring problems, at-risk groups)
TOP_SIGNALS = 5

# The flagged signals of the week and region. Satisfaction and conversion follow the business
# unit too; cases and engagement follow the region only, like the rest of their sections; the
# whole base's (grain company) is every unit's, first in its list. A row flagged because of
# another (explained_by: a channel through its touchpoint, a cohort through the whole base) is
# shown through that one.
_SIGNALS = """
    select * from marts.agg_touchpoint_signals
    where week_start = %(week)s and region = %(region)s
      and status in ('needs_attention', 'improved') and explained_by is null
      and (%(unit)s = '(all)' or business_unit = %(unit)s or section <> 'needs_attention'
           or grain = 'company')
    order by section, status, grain <> 'company', rank, signal_key
"""
_SIGNAL_HISTORY = """
    select signal_key, week_start, value
    from marts.agg_touchpoint_signals
    where region = %(region)s and signal_key = any(%(keys)s)
      and week_start > %(week)s - 7 * %(weeks)s and week_start <= %(week)s
    order by signal_key, week_start
"""


def signal_keys(column: str | None) -> tuple[str, ...]:
    """The signal_keys of a comma-separated column of agg_touchpoint_signals (named_with)."""
    return tuple(key for key in (column or "").split(",") if key)


def key_name(signal_key: str) -> str:
    """The touchpoint, channel or case category a signal_key is about
    ('touchpoint:delivery_packaging:csat' -> 'delivery_packaging')."""
    return signal_key.split(":")[1]


@dataclass(frozen=True)
class Signal:
    """One metric of a channel, touchpoint or case category in one week, judged against its own
    trailing weeks (a row of marts.agg_touchpoint_signals, whose columns these fields follow)."""

    key: str  # signal_key, e.g. 'touchpoint:delivery_packaging:csat'
    week_start: date
    region: str
    business_unit: str
    grain: str  # channel | touchpoint | category
    channel: str | None
    touchpoint: str | None
    category: str | None
    metric: str  # csat | nps | conversion_rate | cases | engagement
    section: str  # needs_attention | recurring_problems | at_risk
    status: str  # needs_attention | improved
    #: this week: mean CSAT 1..5, NPS -100..100, conversion rate 0..1, cases, inbound touchpoints
    #: per customer
    value: float
    #: answers (csat, nps), reached customers (conversion rate), cases, cohort customers
    #: (engagement)
    sample: int
    #: median, minimum and maximum of the trailing weeks' values, and what they rest on
    baseline_value: float
    baseline_low: float
    baseline_high: float
    baseline_sample: int
    baseline_weeks: int
    change: float  # value - baseline_value
    ratio: float | None  # value / baseline_value (None without a base)
    z: float | None
    rank: int = 1
    explained_by: str | None = None
    #: signal_keys of the touchpoints named with this one (named_with): the same answers or
    #: customers, which the data cannot tell apart (every post-purchase answer follows the purchase
    #: and its delivery alike)
    named_with: tuple[str, ...] = ()
    #: (week_start, value) of the last weeks up to this one, oldest first, for the trend chart
    history: tuple[tuple[date, float | None], ...] = ()

    @property
    def name_key(self) -> str:
        """The grain's own name (the touchpoint, the channel or the case category)."""
        return {"category": self.category, "touchpoint": self.touchpoint}.get(
            self.grain, self.channel
        ) or ""

    @property
    def slug(self) -> str:
        """A stable anchor for the signal's trend chart ('touchpoint-delivery-packaging-csat')."""
        return re.sub(r"[^a-z0-9]+", "-", self.key.lower()).strip("-")


def _signal(row: dict, history: tuple[tuple[date, float | None], ...]) -> Signal:
    return Signal(
        key=row["signal_key"],
        week_start=row["week_start"],
        region=row["region"],
        business_unit=row["business_unit"],
        grain=row["grain"],
        channel=row["channel"],
        touchpoint=row["touchpoint"],
        category=row["category"],
        metric=row["metric"],
        section=row["section"],
        status=row["status"],
        value=float(row["value"]),
        sample=int(row["sample"] or 0),
        baseline_value=float(row["baseline_value"]),
        baseline_low=float(row["baseline_low"]),
        baseline_high=float(row["baseline_high"]),
        baseline_sample=int(row["baseline_sample"] or 0),
        baseline_weeks=int(row["baseline_weeks"] or 0),
        change=float(row["change"]),
        ratio=number_or_none(row["ratio"]),
        z=number_or_none(row["z_score"]),
        rank=int(row["rank"] or 0),
        explained_by=row["explained_by"],
        named_with=signal_keys(row["named_with"]),
        history=history,
    )


def load_signals(
    conn: psycopg.Connection, week_start: date, slice_: Slice = Slice(), top: int = TOP_SIGNALS
) -> dict[str, list[Signal]]:
    """The week's flagged signals for a slice, strongest first, at most ``top`` per list:
    ``attention``, ``improved`` (satisfaction, conversion), ``problems`` (cases) and ``at_risk``
    (engagement), each with the last ``TREND_WEEKS`` weekly values of its metric."""
    params = {
        "week": week_start,
        "region": slice_.region,
        "unit": slice_.business_unit,
        "weeks": TREND_WEEKS,
    }
    lists: dict[str, list[dict]] = {"attention": [], "improved": [], "problems": [], "at_risk": []}
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(_SIGNALS, params).fetchall():
            if row["section"] == "needs_attention":
                name = "attention" if row["status"] == "needs_attention" else "improved"
            elif row["status"] != "needs_attention":
                continue  # falling cases or rising engagement are good news, not a problem to show
            else:
                name = "problems" if row["section"] == "recurring_problems" else "at_risk"
            lists[name].append(row)
        shown = {name: rows[:top] for name, rows in lists.items()}
        keys = [r["signal_key"] for rows in shown.values() for r in rows]
        history: dict[str, list[tuple[date, float | None]]] = {}
        if keys:
            for r in cur.execute(_SIGNAL_HISTORY, {**params, "keys": keys}).fetchall():
                history.setdefault(r["signal_key"], []).append(
                    (r["week_start"], number_or_none(r["value"]))
                )
    return {
        name: [_signal(r, tuple(history.get(r["signal_key"], ()))) for r in rows]
        for name, rows in shown.items()
    }
