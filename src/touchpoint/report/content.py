"""The report's content for one week and one recipient's slice, read from the marts.

Every number here is a row the marts already hold (dbt computes them): a slice is a region and a
business unit ('(all)' for either), and each query only selects the rows of that slice.
Customers at risk and recurring problems are judged per region (a customer or a support case
belongs to no business unit).

The flags ("needs attention", "improved most", rising case categories, groups of customers losing
engagement) are rows of ``marts.agg_touchpoint_signals``: dbt judges each metric of a channel,
touchpoint or case category against its own trailing weeks; the report only picks and shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from touchpoint.config import DEFAULT_PROJECT_DIR
from touchpoint.delivery.recipients import ALL, Slice
from touchpoint.i18n import N_
from touchpoint.intervals import iso_week
from touchpoint.report.commercial import ATTRIBUTION_MODELS, Commercial, load_commercial
from touchpoint.report.signals import (
    TOP_SIGNALS,
    TREND_WEEKS,
    Signal,
    load_signals,
)
from touchpoint.report.standing import (
    DetractorTouchpoint,
    Episode,
    HealthWeek,
    ScorecardRow,
    load_episodes,
    load_relationship,
    load_scorecard,
    number_or_none,
)
from touchpoint.transform.project import project_vars
from touchpoint.warehouse.connection import scalar

#: answers a score needs before the report prints it (the signals' own threshold)
_VARS = project_vars(DEFAULT_PROJECT_DIR / "dbt_project")
MIN_ANSWERS = int(_VARS["signal_min_answers"])
#: the trailing weeks the signals and the recurring rule look at
BASELINE_WEEKS = int(_VARS["signal_baseline_weeks"])
#: the share of repeat cases from which a category recurs (with enough repeats)
RECURRING_SHARE = float(_VARS["recurring_min_repeat_share"])

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
           weeks_with_cases_of_previous_4, is_recurring, is_rising, recent_repeat_share,
           reopen_rate, open_cases, first_response_median_hours, first_response_p90_hours,
           previous_first_response_median_hours, previous_first_response_p90_hours,
           resolution_median_hours, resolution_p90_hours, previous_resolution_median_hours,
           previous_resolution_p90_hours
    from marts.agg_support_categories_weekly
    where week_start = %(week)s and region = %(region)s and (cases > 0 or open_cases > 0)
    order by is_recurring desc, cases desc, category
    limit %(limit)s
"""
# What customers wrote behind the categories the report names (most frequent first, a few per
# category and source): the mart holds only consenting customers' texts, names masked.
_VERBATIMS = """
    select category, source, verbatim, mentions, customers
    from (
        select v.*, row_number() over (
            partition by category, source order by mentions desc, customers desc, verbatim
        ) as n
        from marts.agg_support_verbatims_weekly as v
        where week_start = %(week)s and region = %(region)s and category = any(%(categories)s)
    ) as ranked
    where n <= %(per_source)s
    order by category, source desc, n
"""
#: texts shown per category and source (ticket subjects, survey comments)
VERBATIMS_PER_SOURCE = 3
_SIGNALS_JUDGED = """
    select count(*) filter (where is_judged) from marts.agg_touchpoint_signals
    where week_start = %(week)s and region = %(region)s
"""
# Customers at risk in the report's week (not as of today): everyone in the slice's region is
# counted, only those whose consent allows it are named.
_AT_RISK_COUNTS = """
    select count(*) as customers,
           count(*) filter (where health.is_at_risk) as at_risk,
           count(*) filter (where health.is_at_risk and customers.may_be_named) as may_be_named
    from marts.fct_customer_health_weekly as health
    join marts.dim_customers as customers using (customer_key)
    where health.week_start = %(week)s and (%(region)s = '(all)' or customers.region = %(region)s)
"""
_AT_RISK_NAMED = """
    select coalesce(contacts.display_name, contacts.email, customers.customer_key) as name,
           contacts.company_name, customers.region, customers.last_touch_at, customers.latest_nps,
           customers.latest_csat, customers.recent_support_cases, customers.has_recent_detractor,
           health.at_risk_reason
    from marts.fct_customer_health_weekly as health
    join marts.dim_customers as customers using (customer_key)
    left join restricted.dim_customer_contacts as contacts using (customer_key)
    where health.week_start = %(week)s and health.is_at_risk and customers.may_be_named
      and (%(region)s = '(all)' or customers.region = %(region)s)
    order by customers.purchases desc, customers.touchpoints desc, customers.customer_key
    limit %(limit)s
"""
_DATA_AS_OF = "select max(occurred_at) from marts.fct_touchpoints where occurred_at < %(end)s"


@dataclass(frozen=True)
class Kpi:
    key: str
    #: the English label, a message id (translated where it is shown)
    label: str
    current: float | None
    previous: float | None
    #: count | rate (0..1) | csat (1..5) | nps (-100..100)
    kind: str
    #: answers or customers behind a score, shown next to it
    sample: int | None = None
    #: the sample a score needs to be shown (MIN_ANSWERS for CSAT and NPS)
    min_sample: int = 0

    @property
    def too_few(self) -> bool:
        """Whether the score rests on too few answers to be printed as a number."""
        return self.sample is not None and self.sample < self.min_sample

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
class FunnelStage:
    stage: str
    entered: int
    previous: int | None


@dataclass(frozen=True)
class Problem:
    """A case category in the week (a row of marts.agg_support_categories_weekly): times in
    hours, previous_* over the trailing weeks' cases."""

    category: str
    cases: int
    previous_week_cases: int
    repeat_cases: int
    cases_previous_4_weeks: int
    weeks_with_cases_of_previous_4: int
    is_recurring: bool
    is_rising: bool
    recent_repeat_share: float | None = None
    reopen_rate: float | None = None
    open_cases: int = 0
    first_response_median_hours: float | None = None
    first_response_p90_hours: float | None = None
    previous_first_response_median_hours: float | None = None
    previous_first_response_p90_hours: float | None = None
    resolution_median_hours: float | None = None
    resolution_p90_hours: float | None = None
    previous_resolution_median_hours: float | None = None
    previous_resolution_p90_hours: float | None = None


@dataclass(frozen=True)
class Verbatim:
    """A ticket subject or survey comment behind a category (consenting customers only)."""

    category: str
    source: str  # ticket_subject | survey_comment
    text: str
    mentions: int
    customers: int


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
    #: why the customer is at risk this week (fct_customer_health_weekly.at_risk_reason)
    reason: str | None = None


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
    #: satisfaction or conversion below / above its usual level (section needs_attention)
    attention: list[Signal] = field(default_factory=list)
    improved: list[Signal] = field(default_factory=list)
    funnel: list[FunnelStage] = field(default_factory=list)
    #: case categories that rose beyond their usual level (section recurring_problems)
    problem_signals: list[Signal] = field(default_factory=list)
    #: the per-category case table, kept as reference
    problems: list[Problem] = field(default_factory=list)
    #: what customers wrote behind the categories named (rising or recurring)
    verbatims: list[Verbatim] = field(default_factory=list)
    #: groups of customers whose engagement fell beyond its usual level (section at_risk)
    at_risk_signals: list[Signal] = field(default_factory=list)
    at_risk: AtRisk | None = None
    #: channels and touchpoints with their standing against the company, busiest first
    scorecard: list[ScorecardRow] = field(default_factory=list)
    #: signals flagged in an earlier week and still on the bad side of their old normal
    continuing: list[Episode] = field(default_factory=list)
    #: signals back to their old normal this week
    back_to_normal: list[Episode] = field(default_factory=list)
    #: the base's health over the trend weeks, oldest first (the report's week last)
    relationship: list[HealthWeek] = field(default_factory=list)
    #: touchpoints over-represented before detractors' answers, most over-represented first
    detractor_touchpoints: list[DetractorTouchpoint] = field(default_factory=list)
    #: how many signals of the week and region were judged (0: too little history to judge)
    signals_judged: int = 0
    #: the marketing and sales sections the slice reads (campaigns, traffic, pipeline, revenue)
    commercial: Commercial = field(default_factory=Commercial)
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

    @property
    def shown_signals(self) -> list[Signal]:
        """Every signal the report names, in the order of its sections (each has a trend chart)."""
        return [*self.attention, *self.improved, *self.problem_signals, *self.at_risk_signals]

    def scorecard_of(self, grain: str) -> list[ScorecardRow]:
        return [r for r in self.scorecard if r.grain == grain]

    @property
    def company_levels(self) -> dict[str, float]:
        """The company's level of each scorecard metric (every row carries it)."""
        return {
            metric: standing.company_level
            for row in self.scorecard
            for metric, standing in row.standings.items()
        }

    @property
    def furthest_below(self) -> list[ScorecardRow]:
        """The channels and touchpoints furthest below the company, at most TOP_SIGNALS."""
        below = sorted(
            (r for r in self.scorecard if r.worst is not None),
            key=lambda r: (-(r.worst.margins_below or 0), r.grain != "touchpoint", r.key),  # type: ignore[union-attr]
        )
        # a channel standing exactly as one of its touchpoints (the same units) is that one
        shown: list[ScorecardRow] = []
        for row in below:
            worst = row.worst
            same = (worst.metric, worst.sample, worst.level) if worst else None
            if not any(
                s.worst and (s.worst.metric, s.worst.sample, s.worst.level) == same for s in shown
            ):
                shown.append(row)
        return shown[:TOP_SIGNALS]

    def episodes_in(self, section: str, state: str = "continuing") -> list[Episode]:
        episodes = self.continuing if state == "continuing" else self.back_to_normal
        return [e for e in episodes if e.section == section]

    @property
    def health_now(self) -> HealthWeek | None:
        return next((h for h in self.relationship if h.week_start == self.week_start), None)

    @property
    def health_before(self) -> HealthWeek | None:
        before = self.week_start - timedelta(days=7)
        return next((h for h in self.relationship if h.week_start == before), None)

    @property
    def named_categories(self) -> list[str]:
        """The case categories the report says something about: recurring, then rising."""
        recurring = [p.category for p in self.problems if p.is_recurring]
        return list(dict.fromkeys([*recurring, *sorted(self.rising_categories)]))

    def verbatims_of(self, category: str) -> list[Verbatim]:
        return [v for v in self.verbatims if v.category == category]

    @property
    def rising_categories(self) -> set[str]:
        return {s.category for s in self.problem_signals if s.category}


def _kpis(row: dict | None) -> list[Kpi]:
    row = row or {}

    def get(name: str):
        return row.get(name)

    return [
        Kpi(
            "touchpoints",
            N_("Touchpoints"),
            get("touchpoints") or 0,
            get("previous_touchpoints"),
            "count",
        ),
        Kpi(
            "customers",
            N_("Active customers"),
            get("customers") or 0,
            get("previous_customers"),
            "count",
        ),
        Kpi(
            "new_customers",
            N_("New customers"),
            get("new_customers") or 0,
            get("previous_new_customers"),
            "count",
        ),
        Kpi(
            "conversions",
            N_("Conversions"),
            number_or_none(get("conversions")) or 0.0,
            number_or_none(get("previous_conversions")),
            "count",
        ),
        Kpi(
            "conversion_rate",
            N_("Conversion rate"),
            number_or_none(get("conversion_rate")),
            number_or_none(get("previous_conversion_rate")),
            "rate",
            get("customers"),
        ),
        Kpi(
            "nps",
            N_("NPS"),
            number_or_none(get("nps")),
            number_or_none(get("previous_nps")),
            "nps",
            get("nps_responses") or 0,
            MIN_ANSWERS,
        ),
        Kpi(
            "csat",
            N_("CSAT"),
            number_or_none(get("csat")),
            number_or_none(get("previous_csat")),
            "csat",
            get("csat_responses") or 0,
            MIN_ANSWERS,
        ),
    ]


def load_at_risk(
    conn: psycopg.Connection, week_start: date, slice_: Slice = Slice(), top: int = 5
) -> AtRisk:
    """The customers at risk in the report's week (marts.fct_customer_health_weekly), in the
    slice's region: all counted, the first ``top`` whose consent allows it named."""
    params = {"week": week_start, "region": slice_.region, "limit": top}
    with conn.cursor(row_factory=dict_row) as cur:
        counts = cur.execute(_AT_RISK_COUNTS, params).fetchone() or {}
        named = [
            AtRiskCustomer(
                r["name"],
                r["company_name"],
                r["region"],
                r["last_touch_at"],
                number_or_none(r["latest_nps"]),
                number_or_none(r["latest_csat"]),
                r["recent_support_cases"] or 0,
                bool(r["has_recent_detractor"]),
                r["at_risk_reason"],
            )
            for r in cur.execute(_AT_RISK_NAMED, params).fetchall()
        ]
    return AtRisk(
        count=counts.get("at_risk") or 0,
        may_be_named=counts.get("may_be_named") or 0,
        customers_total=counts.get("customers") or 0,
        named=named,
    )


def load_weekly_content(
    conn: psycopg.Connection, week_start: date, slice_: Slice = Slice(), top: int = 5
) -> WeeklyContent:
    params = {
        "week": week_start,
        "region": slice_.region,
        "unit": slice_.business_unit,
        "weeks": TREND_WEEKS,
        "limit": top,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_WEEK_ROWS, params).fetchall()
        headline_grain = "week" if slice_.business_unit == ALL else "business_unit"
        headline = next(
            (
                r
                for r in rows
                if r["grain"] == headline_grain and r["business_unit"] == slice_.business_unit
            ),
            None,
        )
        channel_rows = sorted(
            (r for r in rows if r["grain"] == "channel"),
            key=lambda r: (-r["touchpoints"], r["channel"]),
        )
        total = sum(r["touchpoints"] for r in channel_rows) or 1
        channels = [
            ChannelRow(
                r["channel"],
                r["business_unit"],
                r["touchpoints"],
                r["previous_touchpoints"],
                r["touchpoints"] / total,
                {m: float(r[f"conversions_{m}"]) for m in ATTRIBUTION_MODELS},
            )
            for r in channel_rows
        ]
        history = [
            (r["week_start"], r["touchpoints"], r["customers"], float(r["conversions"]))
            for r in cur.execute(_HEADLINE_HISTORY, {**params, "grain": headline_grain}).fetchall()
        ]
        funnel = [
            FunnelStage(r["journey_stage"], r["customers_entered"], r["previous_customers_entered"])
            for r in cur.execute(_FUNNEL, params).fetchall()
        ]
        problems = [
            Problem(**{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()})  # type: ignore[arg-type]
            for r in cur.execute(_PROBLEMS, params).fetchall()
        ]
        judged = cur.execute(_SIGNALS_JUDGED, params).fetchone()
    signals = load_signals(conn, week_start, slice_, top)
    named = sorted(
        {p.category for p in problems if p.is_recurring}
        | {s.category for s in signals["problems"] if s.category}
    )
    with conn.cursor(row_factory=dict_row) as cur:
        verbatims = [
            Verbatim(r["category"], r["source"], r["verbatim"], r["mentions"], r["customers"])
            for r in cur.execute(
                _VERBATIMS,
                {**params, "categories": named, "per_source": VERBATIMS_PER_SOURCE},
            ).fetchall()
        ]
    at_risk = load_at_risk(conn, week_start, slice_, top)
    episodes = load_episodes(conn, week_start, slice_)
    relationship, detractor_touchpoints = load_relationship(
        conn, week_start, slice_, TREND_WEEKS, top
    )
    end = datetime.combine(week_start + timedelta(days=7), datetime.min.time(), tzinfo=UTC)
    as_of = scalar(conn, _DATA_AS_OF, {"end": end})
    return WeeklyContent(
        week_start=week_start,
        slice=slice_,
        kpis=_kpis(headline),
        channels=channels,
        attention=signals["attention"],
        improved=signals["improved"],
        funnel=funnel,
        problem_signals=signals["problems"],
        problems=problems,
        verbatims=verbatims,
        at_risk_signals=signals["at_risk"],
        at_risk=at_risk,
        scorecard=load_scorecard(conn, week_start, slice_),
        continuing=[e for e in episodes if e.state == "continuing"],
        back_to_normal=[e for e in episodes if e.state == "back_to_normal"],
        relationship=relationship,
        detractor_touchpoints=detractor_touchpoints,
        signals_judged=next(iter(judged.values())) if judged else 0,
        history=history,
        commercial=load_commercial(conn, week_start, slice_),
        data_as_of=as_of,
    )
