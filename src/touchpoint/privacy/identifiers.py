"""The personal identifiers a raw record carries, and their tombstone hashes.

A stream declares where its identifiers are (``Stream.identifiers``: pairs of an identifier
type and a JSON path). The same declaration serves twice: here, in Python, to check a record
against the tombstones as it is loaded, and in SQL (``jsonb_path_query``), to find the raw rows
of a person being erased. The paths use the subset both understand: ``$.a.b`` and
``$.a.b[*].c``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from touchpoint.sources.stream import values_at

#: The identifier types of the identity graph (int_identifiers_mapped.identifier_type).
IDENTIFIER_TYPES = ("email", "hubspot_contact", "segment_user", "segment_anonymous")


def normalise(identifier_type: str, value: Any) -> str | None:
    """The identifier as the warehouse compares it (emails trimmed and lower-cased), or None."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    if identifier_type == "email":
        text = text.lower()
    return text or None


def tombstone_hash(identifier_type: str, value: str) -> str:
    """sha256 of ``<type>:<normalised value>``: what a tombstone keeps instead of the identifier."""
    return hashlib.sha256(f"{identifier_type}:{value}".encode()).hexdigest()


def record_identifiers(
    paths: tuple[tuple[str, str], ...], record: Any
) -> Iterator[tuple[str, str]]:
    """(type, normalised value) of every identifier a record carries at the declared paths."""
    for identifier_type, path in paths:
        for value in values_at(record, path):
            normalised = normalise(identifier_type, value)
            if normalised is not None:
                yield identifier_type, normalised
