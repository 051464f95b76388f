"""What a stream is: a declaration, not a program (the Singer SDK model).

A stream names its raw table and says how to find a record's natural key, object id and
event time. The shared machinery (``loader``, ``landing``, ``hubspot``) does the rest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from touchpoint.config import DEFAULT_LIMITS, IngestLimits

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


def _steps(path: str) -> list[str]:
    if not path.startswith("$."):
        raise ValueError(f"identifier path {path!r} must start with '$.'")
    return path[2:].split(".")


def values_at(document: Any, path: str) -> Iterator[Any]:
    """The values at a declared ``path`` in a parsed JSON document (``$.a.b``, and ``name[*]``
    walks a list: the subset Python and ``jsonb_path_query`` both understand)."""
    nodes = [document]
    for step in _steps(path):
        name, each = (step[:-3], True) if step.endswith("[*]") else (step, False)
        found: list[Any] = []
        for node in nodes:
            child = node.get(name) if isinstance(node, dict) else None
            if each:
                found.extend(child if isinstance(child, list) else ())
            elif child is not None:
                found.append(child)
        nodes = found
    yield from nodes


@dataclass(frozen=True, slots=True)
class KeyedRecord:
    """A validated record, ready for the raw table (the payload as JSON text: a parsed payload
    is not kept, so the chunks waiting to be written stay small)."""

    natural_key: str
    object_id: str | None
    event_time: datetime
    payload_json: str
    source: str


#: A JSON escape of a UTF-16 surrogate: jsonb refuses one that is not half of a pair.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` as a text column takes it: NUL removed, lone surrogates (text that is not
    Unicode) as U+FFFD."""
    text = text.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _check_escapes(text: str) -> None:
    """Refuse JSON text whose escapes jsonb would refuse: NUL, a lone surrogate."""
    if "\\u0000" in text:
        raise InvalidRecord("payload contains a NUL character, which jsonb cannot store")
    if _SURROGATE_ESCAPE.search(text) and any(
        _SURROGATE.search(s) for s in _strings(json.loads(text))
    ):  # an escape may be half of a pair (an emoji): only the decoded text can tell
        raise InvalidRecord("payload contains a lone surrogate escape (\\uD800-\\uDFFF)")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def key_record(
    stream: Stream,
    payload: Any,
    source: str,
    payload_json: str | None = None,
    *,
    limits: IngestLimits = DEFAULT_LIMITS,
    received_by: datetime | None = None,
) -> KeyedRecord | None:
    """Apply a stream's declarations to one parsed payload: its keyed record, None when the
    stream does not take it (``accept``), or raise :class:`InvalidRecord`. ``payload_json``: the
    text ``payload`` was decoded from, stored as it is (saves encoding it again); without it the
    payload is encoded. ``received_by``: when the record was received at the latest (its
    folder's day end, the CRM window's end); an event stamped further ahead than the tolerance
    is refused, and so is one before the earliest event day."""
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
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise InvalidRecord(f"{type(exc).__name__}: {exc}") from None
    if not natural_key:
        raise InvalidRecord("empty natural key")
    _check_time(event_time, limits, received_by)
    if payload_json is None:  # a CRM answer: its strings are checked here, not by the reader
        payload_json = json.dumps(payload, ensure_ascii=False)
        if _SURROGATE.search(payload_json):
            raise InvalidRecord("payload contains a lone surrogate (text that is not Unicode)")
        if len(payload_json.encode()) > limits.max_record_bytes:
            raise InvalidRecord(f"record larger than {limits.max_record_bytes:,} bytes")
    if "\\u" in payload_json:
        _check_escapes(payload_json)
    bound = limits.max_identifier_chars
    if len(payload_json) > bound:
        # an escaped quote counted as the one character it stands for, not as a string's end
        text = payload_json.replace('\\"', "x") if '\\"' in payload_json else payload_json
        if _long_string(bound).search(text):
            _check_identifiers(stream, payload, object_id, bound)
    if len(natural_key) > limits.max_key_chars:
        # an over-long key (a 4,000-character messageId) would exceed a btree index row: it is
        # stored hashed, the original kept in the payload
        natural_key = "sha256:" + hashlib.sha256(natural_key.encode("utf-8", "replace")).hexdigest()
    return KeyedRecord(natural_key, object_id, event_time, payload_json, source)


@functools.cache
def _long_string(bound: int) -> re.Pattern[str]:
    """Finds a JSON string (or key) of more than ``bound`` characters: the identifiers are
    looked at only in a record that has one, most have none."""
    return re.compile(f'"[^"]{{{bound + 1},}}')


def _check_identifiers(stream: Stream, payload: Any, object_id: str | None, bound: int) -> None:
    values = [("object id", object_id)] + [
        (path, value) for _, path in stream.identifiers for value in values_at(payload, path)
    ]
    for where, value in values:
        if isinstance(value, str) and len(value) > bound:
            raise InvalidRecord(
                f"identifier {where} is {len(value):,} characters long (at most {bound})"
            )


def _check_time(event_time: datetime, limits: IngestLimits, received_by: datetime | None) -> None:
    if event_time < limits.earliest_event_time:
        raise InvalidRecord(
            f"event time {event_time.isoformat()} is before the earliest accepted day "
            f"{limits.earliest_event} (TOUCHPOINT_EARLIEST_EVENT)"
        )
    if received_by is not None and event_time > received_by + limits.future_tolerance:
        raise InvalidRecord(
            f"event time {event_time.isoformat()} is more than "
            f"{limits.future_tolerance_hours:g} h ahead of its receipt "
            f"({received_by.isoformat()}; TOUCHPOINT_FUTURE_TOLERANCE_HOURS)"
        )
