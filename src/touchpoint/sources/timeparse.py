"""Timestamp parsing shared by all streams: every event time becomes an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime

from touchpoint.sources.stream import InvalidRecord

#: Events before this or far in the future are impossible for this product.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _checked(value: datetime, raw: object) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise InvalidRecord(
            f"impossible timestamp {raw!r} ({value.isoformat()}): expected from "
            f"{EARLIEST.year} to before {LATEST.year}"
        )
    return value


#: Unix seconds beyond this are LATEST in milliseconds' range: a sender writing milliseconds.
_MILLIS_FROM = LATEST.timestamp() * 10


def from_unix_seconds(raw: object) -> datetime:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InvalidRecord(f"timestamp {raw!r} is not unix seconds")
    try:
        seconds = float(raw)
        moment = None if abs(seconds) >= _MILLIS_FROM else datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidRecord(f"timestamp {raw!r} is not unix seconds") from None
    if moment is None:
        # not converted: a sender that changed its unit is a bug to see, not to guess around
        raise InvalidRecord(f"timestamp {raw!r} looks like milliseconds; expected unix seconds")
    return _checked(moment, raw)


def from_iso(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise InvalidRecord(f"timestamp {raw!r} is not an ISO-8601 string")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRecord(f"timestamp {raw!r} is not an ISO-8601 string") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past the last representable moment
        raise InvalidRecord(
            f"impossible timestamp {raw!r}: expected from {EARLIEST.year} to before {LATEST.year}"
        ) from None
    return _checked(in_utc, raw)


def from_unix_millis_or_iso(raw: object) -> datetime:
    """HubSpot sends ISO strings in v3 properties, epoch milliseconds in filters and some fields."""
    if isinstance(raw, str) and raw.isdigit():
        return from_unix_seconds(int(raw) / 1000)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return from_unix_seconds(raw / 1000)
    return from_iso(raw)
