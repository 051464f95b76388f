"""The report's content for one week and one recipient's slice, read from the marts.

Every number here is a row the marts already hold (dbt computes them): a slice is a region and a
business unit ('(all)' for either), and each query only selects the rows of that slice.
Customers at risk and recurring problems are judged per region (a customer or a support case
belongs to no business unit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from touchpoint.intervals import iso_week

ALL = "(all)"
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
TREND_WEEKS = 8

_WEEK_ROWS = """
    select * from marts.agg_touchpoints_weekly
    where week_start = %(week)s and region = %(region)s
      and (%(unit)s = '(all)' or business_unit = %(unit)s)
"""
_HEADLINE_HISTORY = """
    select week_start, touchpoints, customers, conversions
    from marts.agg_touchpoints_weekly
    where grain = %(grain)s and region = %(region)s and business_unit = %(unit)s
      and week_start > %(week)s - 7 * %(weeks)s and week_start <= %(week)s
    order by week_start
"""
_FUNNEL = """
    select journey_stage, customers_entered, previous_customers_entered
    from marts.agg_journey_funnel_weekly
    where week_start = %(week)s and region = %(region)s and business_unit = %(unit)s
    order by stage_order
"""
_PROBLEMS = """
    select category, cases, previous_week_cases, repeat_cases, cases_previous_4_weeks,
           weeks_with_cases_of_previous_4, is_recurring, is_rising
    from marts.agg_support_categories_weekly
    where week_start = %(week)s and region = %(region)s and cases > 0
    order by is_recurring desc, cases desc, category
    limit %(limit)s
"""
_HEALTH = "select health, customers, may_be_named from marts.agg_customer_health where region = %(region)s"
_AT_RISK_NAMED = """
    select coalesce(display_name, email, customer_key) as name, company_name, region, last_touch_at,
           latest_nps, latest_csat, recent_support_cases, has_recent_detractor
    from marts.dim_customers
    where is_at_risk and may_be_named and (%(region)s = '(all)' or region = %(region)s)
    order by purchases desc, touchpoints desc, customer_key
    limit %(limit)s
"""
_DATA_AS_OF = "select max(occurred_at) from marts.fct_touchpoints where occurred_at < %(end)s"


@dataclass(frozen=True)
class Slice:
    region: str = ALL
    business_unit: str = ALL

    @property
    def is_everything(self) -> bool:
        return self.region == ALL and self.business_unit == ALL

    @property
    def label(self) -> str:
        parts = []
        if self.region != ALL:
            parts.append(f"region {self.region}")
        if self.business_unit != ALL:
            parts.append(f"{self.business_unit} channels")
        return ", ".join(parts) or "whole company"


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    current: float | None
    previous: float | None
    #: count | rate (0..1) | csat (1..5) | nps (-100..100)
    kind: str
    #: answers or customers behind a score, shown next to it
    sample: int | None = None

    @property
    def delta(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        """Relative change in percent (counts, rates, CSAT); None for NPS (a -100..100 score
        has no meaningful relative change) and without a base."""
        if self.kind == "nps" or self.delta is None or not self.previous:
            return None
        return 100.0 * self.delta / self.previous


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    business_unit: str
    touchpoints: int
    previous_touchpoints: int | None
    share: float  # 0..1 of the slice's touchpoints
    conversions: dict[str, float]  # attribution model -> credited conversions

    @property
    def percent(self) -> float | None:
        if not self.previous_touchpoints:
            return None
        return 100.0 * (self.touchpoints - self.previous_touchpoints) / self.previous_touchpoints


@dataclass(frozen=True)
class Move:
    """A channel or touchpoint whose satisfaction or conversion moved beyond the thresholds."""

    channel: str
    touchpoint: str  # '(all)' for a whole channel
    metric: str  # csat | nps | conversion_rate
    current: float
    previous: float
    sample: int  # answers (csat, nps) or customers (conversion rate) this week
    trend: str  # needs_attention | improved
    #: the move in units of its threshold (dbt var report_*_change)
    size: float

    @property
    def name(self) -> str:
        return self.channel if self.touchpoint == ALL else f"{self.touchpoint.replace('_', ' ')} ({self.channel})"


@dataclass(frozen=True)
class FunnelStage:
    stage: str
    entered: int
    previous: int | None


@dataclass(frozen=True)
class Problem:
    category: str
    cases: int
    previous_week_cases: int
    repeat_cases: int
    cases_previous_4_weeks: int
    weeks_with_cases_of_previous_4: int
    is_recurring: bool
    is_rising: bool


@dataclass(frozen=True)
class AtRiskCustomer:
    name: str
    company: str | None
    region: str
    last_touch_at: datetime | None
    latest_nps: float | None
    latest_csat: float | None
    recent_cases: int
    recent_detractor: bool


@dataclass(frozen=True)
class AtRisk:
    count: int
    may_be_named: int
    customers_total: int
    named: list[AtRiskCustomer]

    @property
    def withheld_by_consent(self) -> int:
        """At-risk customers whose consent does not allow naming them."""
        return self.count - self.may_be_named

    @property
    def beyond_list(self) -> int:
        """At-risk customers who may be named but did not fit in the list."""
        return self.may_be_named - len(self.named)


@dataclass
class WeeklyContent:
    week_start: date
    slice: Slice
    kpis: list[Kpi]
    channels: list[ChannelRow] = field(default_factory=list)
    attention: list[Move] = field(default_factory=list)
    improved: list[Move] = field(default_factory=list)
    funnel: list[FunnelStage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    at_risk: AtRisk | None = None
    #: (week_start, touchpoints, customers, conversions) for the trend chart, oldest first
    history: list[tuple[date, int, int, float]] = field(default_factory=list)
    data_as_of: datetime | None = None
    #: data-quality warnings of the week (the report goes out with them as a note)
    quality_warnings: list[str] = field(default_factory=list)
    #: 'passed', 'warnings' or 'not checked'
    quality_status: str = "not checked"

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def iso_week(self) -> str:
        return iso_week(self.week_start)

    def kpi(self, key: str) -> Kpi:
        return next(k for k in self.kpis if k.key == key)

    @property
    def has_data(self) -> bool:
        return bool(self.kpi("touchpoints").current)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _kpis(row: dict | None) -> list[Kpi]:
    row = row or {}

    def get(name: str):
        return row.get(name)

    return [
        Kpi("touchpoints", "Touchpoints", get("touchpoints") or 0, get("previous_touchpoints"), "count"),
        Kpi("customers", "Active customers", get("customers") or 0, get("previous_customers"), "count"),
        Kpi("new_customers", "New customers", get("new_customers") or 0, get("previous_new_customers"), "count"),
        Kpi("conversions", "Conversions", _float(get("conversions")) or 0.0, _float(get("previous_conversions")), "count"),
        Kpi("conversion_rate", "Conversion rate", _float(get("conversion_rate")), _float(get("previous_conversion_rate")),
            "rate", get("customers")),
        Kpi("nps", "NPS", _float(get("nps")), _float(get("previous_nps")), "nps", get("nps_responses") or 0),
        Kpi("csat", "CSAT", _float(get("csat")), _float(get("previous_csat")), "csat", get("csat_responses") or 0),
    ]


def _move(row: dict) -> Move:
    metric = row["trend_metric"]
    sample = row["customers"] if metric == "conversion_rate" else row[f"{metric}_responses"]
    return Move(row["channel"], row["touchpoint"], metric, float(row[metric]), float(row[f"previous_{metric}"]),
                int(sample), row["trend"], float(row["trend_size"]))


def load_weekly_content(conn: psycopg.Connection, week_start: date, slice_: Slice = Slice(),
                        top: int = 5) -> WeeklyContent:
    params = {"week": week_start, "region": slice_.region, "unit": slice_.business_unit,
              "weeks": TREND_WEEKS, "limit": top}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_WEEK_ROWS, params).fetchall()
        headline_grain = "week" if slice_.business_unit == ALL else "business_unit"
        headline = next((r for r in rows if r["grain"] == headline_grain
                         and r["business_unit"] == slice_.business_unit), None)
        channel_rows = sorted((r for r in rows if r["grain"] == "channel"), key=lambda r: (-r["touchpoints"], r["channel"]))
        total = sum(r["touchpoints"] for r in channel_rows) or 1
        channels = [ChannelRow(r["channel"], r["business_unit"], r["touchpoints"], r["previous_touchpoints"],
                               r["touchpoints"] / total,
                               {m: float(r[f"conversions_{m}"]) for m in ATTRIBUTION_MODELS})
                    for r in channel_rows]
        moves = [_move(r) for r in rows if r["grain"] in ("channel", "touchpoint")
                 and r["trend"] in ("needs_attention", "improved")]
        attention = sorted((m for m in moves if m.trend == "needs_attention"), key=lambda m: m.size, reverse=True)[:top]
        improved = sorted((m for m in moves if m.trend == "improved"), key=lambda m: m.size, reverse=True)[:top]
        history = [(r["week_start"], r["touchpoints"], r["customers"], float(r["conversions"]))
                   for r in cur.execute(_HEADLINE_HISTORY, {**params, "grain": headline_grain}).fetchall()]
        funnel = [FunnelStage(r["journey_stage"], r["customers_entered"], r["previous_customers_entered"])
                  for r in cur.execute(_FUNNEL, params).fetchall()]
        problems = [Problem(**r) for r in cur.execute(_PROBLEMS, params).fetchall()]
        health = {r["health"]: r for r in cur.execute(_HEALTH, params).fetchall()}
        named = [AtRiskCustomer(r["name"], r["company_name"], r["region"], r["last_touch_at"], _float(r["latest_nps"]),
                                _float(r["latest_csat"]), r["recent_support_cases"], r["has_recent_detractor"])
                 for r in cur.execute(_AT_RISK_NAMED, params).fetchall()]
    at_risk_row = health.get("at_risk") or {"customers": 0, "may_be_named": 0}
    at_risk = AtRisk(count=at_risk_row["customers"], may_be_named=at_risk_row["may_be_named"],
                     customers_total=sum(r["customers"] for r in health.values()), named=named)
    end = datetime.combine(week_start + timedelta(days=7), datetime.min.time(), tzinfo=UTC)
    as_of = conn.execute(_DATA_AS_OF, {"end": end}).fetchone()[0]
    return WeeklyContent(week_start=week_start, slice=slice_, kpis=_kpis(headline), channels=channels,
                         attention=attention, improved=improved, funnel=funnel, problems=problems,
                         at_risk=at_risk, history=history, data_as_of=as_of)
