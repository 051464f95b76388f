"""Argument types the command groups share."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from touchpoint.intervals import parse_iso_week


def iso_datetime(text: str) -> datetime:
    """An ISO date or datetime; UTC when it names no zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or datetime") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def week_interval(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, next Monday) of an ISO week such as 2026-W47."""
    start = datetime.combine(parse_iso_week(week), datetime.min.time(), UTC)
    return start, start + timedelta(days=7)
