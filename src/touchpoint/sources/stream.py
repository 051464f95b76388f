"""What a stream is: a declaration, not a program (the Singer SDK model).

A stream names its raw table and says how to find a record's natural key, object id and
event time. The shared machinery (``loader``, ``landing``, ``hubspot``) does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Record = dict[str, Any]


class InvalidRecord(ValueError):
    """A record that cannot be loaded; its message is the quarantine reason."""


@dataclass(frozen=True)
class Stream:
    """A declared stream: where it lands and how its records are keyed and timed."""

    name: str
    #: raw table, schema-qualified
    table: str
    source: str
    natural_key: Callable[[Record], str]
    event_time: Callable[[Record], datetime]
    object_id: Callable[[Record], str | None] = lambda record: None
    #: keep a record only if this returns True (e.g. the event types the slice handles)
    accept: Callable[[Record], bool] = lambda record: True
    #: the personal identifiers a record carries: (identifier type, JSON path) pairs
    #: (touchpoint.privacy.identifiers); erasure finds a person's rows by them, and the loader
    #: drops a record whose identifier belongs to an erased person
    identifiers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class KeyedRecord:
    """A validated record, ready for the raw table (the payload as JSON text: a parsed payload
    is not kept, so the chunks waiting to be written stay small)."""

    natural_key: str
    object_id: str | None
    event_time: datetime
    payload_json: str
    source: str


def key_record(
    stream: Stream, payload: Any, source: str, payload_json: str | None = None
) -> KeyedRecord | None:
    """Apply a stream's declarations to one parsed payload: its keyed record, None when the
    stream does not take it (``accept``), or raise :class:`InvalidRecord`. ``payload_json``: the
    text ``payload`` was decoded from, stored as it is (saves encoding it again); without it the
    payload is encoded."""
    if not isinstance(payload, dict):
        raise InvalidRecord(f"expected a JSON object, got {type(payload).__name__}")
    if not stream.accept(payload):
        return None
    try:
        natural_key = stream.natural_key(payload)
        event_time = stream.event_time(payload)
        object_id = stream.object_id(payload)
    except InvalidRecord:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecord(f"{type(exc).__name__}: {exc}") from None
    if not natural_key:
        raise InvalidRecord("empty natural key")
    return KeyedRecord(
        natural_key,
        object_id,
        event_time,
        payload_json if payload_json is not None else json.dumps(payload),
        source,
    )
