"""The marketing and sales sections, read for one week and one recipient's slice: the week's email
campaigns (marts.agg_email_campaigns_weekly), traffic by source (marts.agg_traffic_weekly), the
deal pipeline (marts.agg_pipeline_weekly, marts.agg_deals_lost_weekly) and the revenue each
attribution model credits to each channel (marts.agg_attribution_weekly).

Campaigns and traffic are the marketing unit's, the pipeline the sales unit's, revenue credit
both: a recipient whose slice is another business unit does not get these sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from touchpoint.config import DEFAULT_PROJECT_DIR
from touchpoint.delivery.recipients import ALL, Slice
from touchpoint.transform.project import attribution_models, project_vars

_VARS = project_vars(DEFAULT_PROJECT_DIR / "dbt_project")
#: delivered messages a campaign needs before the report ranks its rates
CAMPAIGN_MIN_DELIVERED = int(_VARS["report_campaign_min_delivered"])
#: the company's currency: deal amounts are in it (var default_currency)
CURRENCY = str(_VARS["default_currency"])
#: the models the marts credit conversions and revenue by, as the dbt project declares them
ATTRIBUTION_MODELS = attribution_models(DEFAULT_PROJECT_DIR / "dbt_project")

#: which business units read each section (a whole-company recipient reads them all)
SECTION_UNITS = {
    "campaigns": frozenset({"marketing"}),
    "traffic": frozenset({"marketing"}),
    "pipeline": frozenset({"sales"}),
    "revenue": frozenset({"marketing", "sales"}),
}
#: rows shown per ranked list
TOP = 3
#: traffic sources shown, busiest first
TOP_SOURCES = 8

_CAMPAIGNS = """
    select campaign, messages_sent, delivered, unique_opens, machine_opens, unique_clicks,
           unsubscribes, spam_reports, open_rate, click_rate, unsubscribe_rate, spam_report_rate
    from marts.agg_email_campaigns_weekly
    where week_start = %(week)s and region = %(region)s and message_kind = 'marketing'
    order by campaign
"""
# Sessions are additive across the mart's finer grain (campaign, landing page group); visitors
# are not, so the section shows sessions and what happened in them.
_TRAFFIC = """
    select session_channel, source, medium,
           sum(sessions) as sessions, sum(engaged_sessions) as engaged_sessions,
           sum(sign_ups) as sign_ups, sum(conversions) as conversions
    from marts.agg_traffic_weekly
    where week_start = %(week)s and region = %(region)s
    group by session_channel, source, medium
    order by sessions desc, session_channel, source, medium
"""
_PIPELINE = """
    select * from marts.agg_pipeline_weekly
    where week_start = %(week)s and region = %(region)s and owner_id = '(all)'
    order by stage_order nulls first
"""
_LOST_REASONS = """
    select closed_lost_reason, deals_lost, amount_lost
    from marts.agg_deals_lost_weekly
    where week_start = %(week)s and region = %(region)s and owner_id = '(all)'
    order by deals_lost desc, amount_lost desc, closed_lost_reason
    limit %(limit)s
"""
# a channel's rows sit under its own business unit (the '(all)' unit holds only the total)
_REVENUE = """
    select channel, attribution_model, currency, value_credited, conversions_credited
    from marts.agg_attribution_weekly
    where week_start = %(week)s and region = %(region)s and campaign = '(all)'
      and channel <> '(all)' and business_unit <> '(all)'
      and (%(unit)s = '(all)' or business_unit = %(unit)s)
    order by currency, channel, attribution_model
"""


def shows(section: str, slice_: Slice) -> bool:
    """Whether a recipient of this slice reads the section."""
    return slice_.business_unit == ALL or slice_.business_unit in SECTION_UNITS[section]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, Decimal | int | float) else None


@dataclass(frozen=True)
class Campaign:
    """One email campaign of the week (a row of marts.agg_email_campaigns_weekly); rates on
    delivered messages, opens by people only (machine opens apart)."""

    campaign: str
    sent: int
    delivered: int
    unique_opens: int
    machine_opens: int
    unique_clicks: int
    unsubscribes: int
    spam_reports: int
    open_rate: float | None
    click_rate: float | None
    unsubscribe_rate: float | None
    spam_report_rate: float | None

    @property
    def ranked(self) -> bool:
        return self.delivered >= CAMPAIGN_MIN_DELIVERED


@dataclass(frozen=True)
class Campaigns:
    """The week's marketing campaigns (newsletters, offers: sent in an unsubscribe group): the
    best and worst by click rate and the most unsubscribed, among those with enough delivered
    messages; the others counted. Transactional mail is not a campaign here."""

    all: list[Campaign]

    @property
    def _ranked(self) -> list[Campaign]:
        return [c for c in self.all if c.ranked and c.click_rate is not None]

    @property
    def _by_click_rate(self) -> list[Campaign]:
        return sorted(self._ranked, key=lambda c: (-(c.click_rate or 0), c.campaign))

    @property
    def best_clicked(self) -> list[Campaign]:
        """The upper half (up to TOP), so that a week of two campaigns shows both ends."""
        ranked = self._by_click_rate
        return ranked[: min(TOP, (len(ranked) + 1) // 2)]

    @property
    def worst_clicked(self) -> list[Campaign]:
        """The lower half (up to TOP), lowest first; never one of the best."""
        ranked = self._by_click_rate
        return ranked[::-1][: min(TOP, len(ranked) // 2)]

    @property
    def most_unsubscribed(self) -> list[Campaign]:
        ranked = [c for c in self._ranked if c.unsubscribes or c.spam_reports]
        return sorted(
            ranked,
            key=lambda c: (-(c.unsubscribe_rate or 0), -(c.spam_report_rate or 0), c.campaign),
        )[:TOP]

    @property
    def too_small(self) -> int:
        """Campaigns of the week with too few delivered messages to rank."""
        return sum(1 for c in self.all if not c.ranked)

    @property
    def delivered(self) -> int:
        return sum(c.delivered for c in self.all)


@dataclass(frozen=True)
class TrafficSource:
    """Sessions of the week from one channel, source and medium (marts.agg_traffic_weekly)."""

    session_channel: str
    source: str
    medium: str
    sessions: int
    engaged_sessions: int
    sign_ups: int
    conversions: int

    @property
    def engaged_share(self) -> float | None:
        return self.engaged_sessions / self.sessions if self.sessions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.sessions if self.sessions else None


@dataclass(frozen=True)
class Traffic:
    sources: list[TrafficSource]
    #: the week's sessions over every source (not only the ones listed)
    sessions: int
    conversions: int


@dataclass(frozen=True)
class PipelineStage:
    stage: str
    #: the stage's name as the pipeline declares it (a data term the catalogs translate)
    label: str
    entered: int
    exited: int
    open_deals: int
    open_amount: float
    median_days_in_stage: float | None


@dataclass(frozen=True)
class LostReason:
    reason: str
    deals: int
    amount: float


@dataclass(frozen=True)
class Pipeline:
    """The deal pipeline of the week (the slice's region, every owner)."""

    deals_created: int
    amount_created: float
    deals_won: int
    amount_won: float
    deals_lost: int
    amount_lost: float
    win_rate: float | None
    median_cycle_days: float | None
    open_deals: int
    open_amount: float
    stages: list[PipelineStage] = field(default_factory=list)
    lost_reasons: list[LostReason] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return bool(self.deals_created or self.deals_won or self.deals_lost or self.open_deals)


@dataclass(frozen=True)
class RevenueRow:
    """The value of the week's conversions credited to one channel by each model."""

    channel: str
    currency: str
    value: dict[str, float]
    conversions: dict[str, float]


@dataclass
class Commercial:
    """The marketing and sales sections of one slice; None for a section it does not read."""

    campaigns: Campaigns | None = None
    traffic: Traffic | None = None
    pipeline: Pipeline | None = None
    revenue: list[RevenueRow] | None = None
    #: the currency of the pipeline's amounts
    currency: str = CURRENCY


def load_commercial(conn: psycopg.Connection, week_start: date, slice_: Slice) -> Commercial:
    params = {
        "week": week_start,
        "region": slice_.region,
        "unit": slice_.business_unit,
        "limit": TOP,
    }
    found = Commercial()
    with conn.cursor(row_factory=dict_row) as cur:
        if shows("campaigns", slice_):
            found.campaigns = Campaigns(
                [
                    Campaign(
                        r["campaign"],
                        r["messages_sent"],
                        r["delivered"],
                        r["unique_opens"],
                        r["machine_opens"],
                        r["unique_clicks"],
                        r["unsubscribes"],
                        r["spam_reports"],
                        _number(r["open_rate"]),
                        _number(r["click_rate"]),
                        _number(r["unsubscribe_rate"]),
                        _number(r["spam_report_rate"]),
                    )
                    for r in cur.execute(_CAMPAIGNS, params).fetchall()
                ]
            )
        if shows("traffic", slice_):
            sources = [
                TrafficSource(
                    r["session_channel"],
                    r["source"],
                    r["medium"],
                    int(r["sessions"]),
                    int(r["engaged_sessions"]),
                    int(r["sign_ups"]),
                    int(r["conversions"]),
                )
                for r in cur.execute(_TRAFFIC, params).fetchall()
            ]
            found.traffic = Traffic(
                sources[:TOP_SOURCES],
                sum(s.sessions for s in sources),
                sum(s.conversions for s in sources),
            )
        if shows("pipeline", slice_):
            found.pipeline = _pipeline(
                cur.execute(_PIPELINE, params).fetchall(),
                cur.execute(_LOST_REASONS, params).fetchall(),
            )
        if shows("revenue", slice_):
            found.revenue = _revenue(cur.execute(_REVENUE, params).fetchall())
    return found


def _pipeline(rows: list[dict], lost: list[dict]) -> Pipeline:
    total = next((r for r in rows if r["stage"] == ALL), None) or {}

    def count(name: str) -> int:
        return int(total.get(name) or 0)

    def amount(name: str) -> float:
        return float(total.get(name) or 0)

    return Pipeline(
        deals_created=count("deals_created"),
        amount_created=amount("amount_created"),
        deals_won=count("deals_won"),
        amount_won=amount("amount_won"),
        deals_lost=count("deals_lost"),
        amount_lost=amount("amount_lost"),
        win_rate=_number(total.get("win_rate")),
        median_cycle_days=_number(total.get("median_cycle_days")),
        open_deals=count("open_deals_at_week_end"),
        open_amount=amount("open_amount_at_week_end"),
        stages=[
            PipelineStage(
                r["stage"],
                r["stage_label"],
                int(r["deals_entered"] or 0),
                int(r["deals_exited"] or 0),
                int(r["open_deals_at_week_end"] or 0),
                float(r["open_amount_at_week_end"] or 0),
                _number(r["median_days_in_stage"]),
            )
            # won and lost are the totals above: the table follows the open stages
            for r in rows
            if r["stage"] != ALL and not r["is_closed_stage"]
        ],
        lost_reasons=[
            LostReason(r["closed_lost_reason"], int(r["deals_lost"]), float(r["amount_lost"] or 0))
            for r in lost
        ],
    )


def _revenue(rows: list[dict]) -> list[RevenueRow]:
    by_channel: dict[tuple[str, str], RevenueRow] = {}
    for r in rows:
        key = (r["channel"], r["currency"])
        row = by_channel.setdefault(
            key,
            RevenueRow(
                r["channel"],
                r["currency"],
                dict.fromkeys(ATTRIBUTION_MODELS, 0.0),
                dict.fromkeys(ATTRIBUTION_MODELS, 0.0),
            ),
        )
        row.value[r["attribution_model"]] = float(r["value_credited"] or 0)
        row.conversions[r["attribution_model"]] = float(r["conversions_credited"] or 0)
    return sorted(
        (r for r in by_channel.values() if any(r.value.values())),
        key=lambda r: (r.currency, -max(r.value.values()), r.channel),
    )
