"""Tombstones of erased people: the loader drops a record that carries one of their identifiers."""

from __future__ import annotations

from typing import Any

import psycopg

from touchpoint.privacy.identifiers import record_identifiers, tombstone_hash


class Tombstones:
    """The hashed identifiers of everyone erased, read once per load."""

    def __init__(self, hashes: dict[str, set[str]]) -> None:
        self._hashes = {kind: found for kind, found in hashes.items() if found}

    @classmethod
    def read(cls, conn: psycopg.Connection) -> Tombstones:
        hashes: dict[str, set[str]] = {}
        for kind, digest in conn.execute(
            "select identifier_type, identifier_hash from privacy.tombstones"
        ):
            hashes.setdefault(kind, set()).add(digest)
        return cls(hashes)

    def __bool__(self) -> bool:
        return bool(self._hashes)

    def __len__(self) -> int:
        return sum(len(found) for found in self._hashes.values())

    def covers(self, paths: tuple[tuple[str, str], ...], record: Any) -> bool:
        """Whether the record carries an identifier of an erased person."""
        if not self._hashes:  # the usual case: no hashing at all
            return False
        return any(
            value and tombstone_hash(kind, value) in self._hashes.get(kind, ())
            for kind, value in record_identifiers(paths, record)
        )
