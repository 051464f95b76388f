"""Where things stand, beside what changed: each channel's and touchpoint's standing against the
company (marts.agg_touchpoint_scorecard_weekly), the signals not yet back to the normal they left
(marts.agg_signal_episodes), and the relationship with the base
(marts.agg_relationship_health_weekly, marts.agg_detractor_touchpoints_weekly), read for one
week and one recipient's slice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import dict_row

from touchpoint.config import DEFAULT_PROJECT_DIR
from touchpoint.delivery.recipients import Slice
from touchpoint.transform.project import project_vars

_VARS = project_vars(DEFAULT_PROJECT_DIR / "dbt_project")
#: the days an NPS answer speaks for a customer's relationship (agg_relationship_health_weekly)
HEALTH_WINDOW_DAYS = int(_VARS["health_window_days"])
#: the scorecard's metrics, in the order of its columns
SCORECARD_METRICS = ("csat", "nps", "conversion_rate")

# Where each channel and touchpoint stands this week (the scorecard), and the signals still on the
# bad side of the normal they left, or back to it (their episodes).
_SCORECARD = """
    select * from marts.agg_touchpoint_scorecard_weekly
    where week_start = %(week)s and region = %(region)s
      and (%(unit)s = '(all)' or business_unit = %(unit)s)
    order by grain, key, metric
"""
_EPISODES = """
    select * from marts.agg_signal_episodes
    where week_start = %(week)s and region = %(region)s
      and state in ('continuing', 'back_to_normal')
      and (%(unit)s = '(all)' or business_unit = %(unit)s or section <> 'needs_attention')
    order by section, state, weeks_running desc, signal_key
"""
# The relationship with the base over the trend weeks, and the touchpoints detractors met
# before their answer more often than answerers at large (the window's answers).
_RELATIONSHIP = """
    select * from marts.agg_relationship_health_weekly
    where region = %(region)s and week_start > %(week)s - 7 * %(weeks)s and week_start <= %(week)s
    order by week_start
"""
_DETRACTOR_TOUCHPOINTS = """
    select * from marts.agg_detractor_touchpoints_weekly
    where week_start = %(week)s and region = %(region)s
      and detractor_answers_after >= %(min_detractors)s and detractor_lift > 1
    order by detractor_lift desc, detractor_answers_after desc, touchpoint
    limit %(limit)s
"""
#: detractors' answers a touchpoint needs before the report says detractors met it more often
MIN_DETRACTORS = 5


@dataclass(frozen=True)
class Standing:
    """One metric of a channel or touchpoint against the company in the week (a row of
    marts.agg_touchpoint_scorecard_weekly)."""

    metric: str
    sample: int
    has_enough_sample: bool
    level: float | None  # None with too small a sample
    company_level: float
    level_gap: float | None
    margins_below: float | None
    trailing_median: float | None
    is_below: bool
    weeks_below: int


@dataclass(frozen=True)
class ScorecardRow:
    """A channel or touchpoint with its volume and its standing on each metric."""

    grain: str  # channel | touchpoint
    key: str
    channel: str | None
    touchpoint: str | None
    category: str | None
    touchpoints: int
    standings: dict[str, Standing]

    @property
    def worst(self) -> Standing | None:
        """The metric furthest below the company, if any is below."""
        below = [s for s in self.standings.values() if s.is_below]
        return max(below, key=lambda s: s.margins_below or 0) if below else None


@dataclass(frozen=True)
class Episode:
    """A signal still on the bad side of the normal it left, or back to it this week (a row of
    marts.agg_signal_episodes)."""

    key: str  # signal_key
    grain: str
    channel: str | None
    touchpoint: str | None
    category: str | None
    metric: str
    section: str
    state: str  # continuing | back_to_normal
    started_week: date
    weeks_running: int
    normal_value: float
    value: float | None


@dataclass(frozen=True)
class HealthWeek:
    """The base's relationship in one week (a row of marts.agg_relationship_health_weekly)."""

    week_start: date
    customers: int
    answered_customers: int
    healthy_share: float | None
    at_risk_share: float | None
    promoter_share: float | None
    detractor_share: float | None


@dataclass(frozen=True)
class DetractorTouchpoint:
    """A touchpoint detractors met before their answer more often than answerers at large."""

    touchpoint: str
    detractor_answers_after: int
    detractor_answers: int
    detractor_share: float
    answer_share: float
    lift: float


def number_or_none(value) -> float | None:
    return None if value is None else float(value)


def load_scorecard(
    conn: psycopg.Connection, week_start: date, slice_: Slice = Slice()
) -> list[ScorecardRow]:
    """The slice's channels and touchpoints with their standing, busiest first."""
    params = {"week": week_start, "region": slice_.region, "unit": slice_.business_unit}
    rows: dict[tuple[str, str], dict] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for r in cur.execute(_SCORECARD, params).fetchall():
            row = rows.setdefault(
                (r["grain"], r["key"]),
                {
                    "grain": r["grain"],
                    "key": r["key"],
                    "channel": r["channel"],
                    "touchpoint": r["touchpoint"],
                    "category": None,
                    "touchpoints": int(r["touchpoints"] or 0),
                    "standings": {},
                },
            )
            row["standings"][r["metric"]] = Standing(
                metric=r["metric"],
                sample=int(r["sample"] or 0),
                has_enough_sample=bool(r["has_enough_sample"]),
                level=number_or_none(r["level"]),
                company_level=float(r["company_level"]),
                level_gap=number_or_none(r["level_gap"]),
                margins_below=number_or_none(r["margins_below"]),
                trailing_median=number_or_none(r["trailing_median"]),
                is_below=bool(r["is_below"]),
                weeks_below=int(r["weeks_below"] or 0),
            )
    return sorted(
        (ScorecardRow(**row) for row in rows.values()), key=lambda r: (-r.touchpoints, r.key)
    )


def load_episodes(
    conn: psycopg.Connection, week_start: date, slice_: Slice = Slice()
) -> list[Episode]:
    """The slice's signals not yet back to their old normal, or back to it this week."""
    params = {"week": week_start, "region": slice_.region, "unit": slice_.business_unit}
    with conn.cursor(row_factory=dict_row) as cur:
        return [
            Episode(
                key=r["signal_key"],
                grain=r["grain"],
                channel=r["channel"],
                touchpoint=r["touchpoint"],
                category=r["category"],
                metric=r["metric"],
                section=r["section"],
                state=r["state"],
                started_week=r["started_week"],
                weeks_running=int(r["weeks_running"]),
                normal_value=float(r["normal_value"]),
                value=number_or_none(r["value"]),
            )
            for r in cur.execute(_EPISODES, params).fetchall()
        ]


def load_relationship(
    conn: psycopg.Connection, week_start: date, slice_: Slice, trend_weeks: int, top: int
) -> tuple[list[HealthWeek], list[DetractorTouchpoint]]:
    """The slice region's relationship health over the trend weeks, and the week's touchpoints
    detractors met more often than answerers at large."""
    params = {
        "week": week_start,
        "region": slice_.region,
        "weeks": trend_weeks,
        "min_detractors": MIN_DETRACTORS,
        "limit": top,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        weeks = [
            HealthWeek(
                r["week_start"],
                int(r["customers"]),
                int(r["answered_customers"]),
                number_or_none(r["healthy_share"]),
                number_or_none(r["at_risk_share"]),
                number_or_none(r["promoter_share"]),
                number_or_none(r["detractor_share"]),
            )
            for r in cur.execute(_RELATIONSHIP, params).fetchall()
        ]
        touchpoints = [
            DetractorTouchpoint(
                r["touchpoint"],
                int(r["detractor_answers_after"]),
                int(r["detractor_answers"]),
                float(r["detractor_share"]),
                float(r["answer_share"]),
                float(r["detractor_lift"]),
            )
            for r in cur.execute(_DETRACTOR_TOUCHPOINTS, params).fetchall()
        ]
    return weeks, touchpoints
