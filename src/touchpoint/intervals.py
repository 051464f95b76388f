"""Which interval a run owns.

Scheduled runs own their data interval. A manual run (``airflow dags test DAG DATE``) has
``data_interval_start == data_interval_end``; it then owns the period its DAG's schedule
would have given it: the day starting at DATE for the daily ingest, the full week (Monday to
Monday) that ended on or before DATE for the weekly report. Explicit ``start``/``end``
params override both, for ranges and backfills by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from touchpoint.errors import ConfigError


def _parse(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"param {name}={value!r} is not an ISO date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _explicit(params: dict[str, Any] | None) -> tuple[datetime, datetime] | None:
    params = params or {}
    start, end = params.get("start"), params.get("end")
    if not start and not end:
        return None
    if not (start and end):
        raise ConfigError("give both params start and end (ISO dates), or neither")
    first, last = _parse(start, "start"), _parse(end, "end")
    if last <= first:
        raise ConfigError(f"param end={end} must be after start={start}")
    return first, last


def daily_interval(
    params: dict[str, Any] | None,
    data_start: datetime | None,
    data_end: datetime | None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The ingest run's interval. Without a data interval (a run triggered with no logical
    date): the last complete UTC day before ``now``."""
    explicit = _explicit(params)
    if explicit:
        return explicit
    if data_start is None or data_end is None:
        today = datetime.combine(
            (now or datetime.now(UTC)).astimezone(UTC).date(), datetime.min.time(), UTC
        )
        return today - timedelta(days=1), today
    if data_end > data_start:
        return data_start, data_end
    day = datetime.combine(data_start.astimezone(UTC).date(), datetime.min.time(), UTC)
    return day, day + timedelta(days=1)


def week_start_of(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def weekly_interval(
    params: dict[str, Any] | None,
    data_start: datetime | None,
    data_end: datetime | None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The report run's week: Monday 00:00 UTC to the next Monday. Without a data interval (a
    run triggered with no logical date): the last full week before ``now``."""
    explicit = _explicit(params)
    if explicit:
        start = explicit[0]
    elif data_start is None or data_end is None:
        start = datetime.combine(
            week_start_of(now or datetime.now(UTC)) - timedelta(days=7), datetime.min.time(), UTC
        )
    elif data_end > data_start:
        start = data_start
    else:
        # the last full week that ended on or before this moment
        start = datetime.combine(
            week_start_of(data_start) - timedelta(days=7), datetime.min.time(), UTC
        )
    week = week_start_of(start)
    first = datetime.combine(week, datetime.min.time(), UTC)
    return first, first + timedelta(days=7)


_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_iso_week(text: str) -> date:
    """'2026-W47' -> the Monday of that ISO week."""
    match = _ISO_WEEK.match(text.strip())
    if not match:
        raise ConfigError(f"week {text!r} is not an ISO week like 2026-W47")
    year, week = int(match[1]), int(match[2])
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ConfigError(f"week {text!r} does not exist: {year} has no week {week}") from None


def iso_week(week_start: date) -> str:
    """The Monday of an ISO week -> '2026-W47' (the report's period)."""
    year, week, _ = week_start.isocalendar()
    return f"{year}-W{week:02d}"
