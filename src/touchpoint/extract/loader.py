"""Loading into the raw layer: COPY into a temporary table, then insert what is new.

Records are streamed in chunks; each chunk is committed on its own, so a crash loses at most
the chunk in flight, and a re-run skips what is already there (the natural key is the primary
key of every raw table). Watermarks move only after the data they cover is committed.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from touchpoint.extract.stream import KeyedRecord, Stream

log = logging.getLogger(__name__)

CHUNK_SIZE = 5000


@dataclass
class LoadStats:
    stream: str
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"loaded": self.loaded, "duplicates": self.duplicates, "quarantined": self.quarantined}


class RawLoader:
    """Loads one stream's records for one batch; use as a context manager."""

    def __init__(self, conn: psycopg.Connection, stream: Stream, batch_source: str) -> None:
        self.conn = conn
        self.stream = stream
        self.batch_id = uuid.uuid4().hex
        self.stats = LoadStats(stream.name)
        self._pending: list[KeyedRecord] = []
        self._quarantine: list[tuple[str, str, str]] = []
        schema, table = stream.table.split(".")
        self._target = sql.Identifier(schema, table)
        with conn.transaction():
            conn.execute(
                "insert into raw._batches (batch_id, stream, source) values (%s, %s, %s)",
                (self.batch_id, stream.name, batch_source),
            )

    def __enter__(self) -> RawLoader:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.flush()

    def add(self, record: KeyedRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= CHUNK_SIZE:
            self.flush()

    def quarantine(self, source: str, reason: str, raw_text: str) -> None:
        self.stats.quarantined += 1
        self.stats.reasons[reason.split(":")[0]] = self.stats.reasons.get(reason.split(":")[0], 0) + 1
        log.warning("%s: quarantined record at %s: %s", self.stream.name, source, reason)
        self._quarantine.append((source, reason, raw_text))
        if len(self._quarantine) >= CHUNK_SIZE:
            self.flush()

    def flush(self) -> None:
        """Commit what is buffered: new rows, quarantined rows and the batch counters."""
        rows, self._pending = self._pending, []
        bad, self._quarantine = self._quarantine, []
        if not rows and not bad:
            return
        with self.conn.transaction():
            inserted = self._insert_new(rows) if rows else 0
            if bad:
                with self.conn.cursor().copy(
                    "copy raw._quarantine (stream, source, reason, raw_text, _batch_id) from stdin"
                ) as copy:
                    for source, reason, raw_text in bad:
                        copy.write_row((self.stream.name, source, reason, raw_text.replace("\x00", ""), self.batch_id))
            self.stats.loaded += inserted
            self.stats.duplicates += len(rows) - inserted
            self.conn.execute(
                "update raw._batches set loaded = %s, duplicates = %s, quarantined = %s,"
                " finished_at = now() where batch_id = %s",
                (self.stats.loaded, self.stats.duplicates, self.stats.quarantined, self.batch_id),
            )

    def _insert_new(self, rows: list[KeyedRecord]) -> int:
        cur = self.conn.cursor()
        cur.execute(
            "create temp table if not exists _incoming "
            "(natural_key text, object_id text, event_time timestamptz, payload jsonb, _source text)"
            " on commit delete rows"
        )
        with cur.copy(
            "copy _incoming (natural_key, object_id, event_time, payload, _source) from stdin"
        ) as copy:
            for r in rows:
                copy.write_row((r.natural_key, r.object_id, r.event_time, json.dumps(r.payload), r.source))
        # Earliest first, so that within a batch the earliest copy of a key is the one kept.
        cur.execute(
            sql.SQL(
                "insert into {} (natural_key, object_id, event_time, payload, _batch_id, _source)"
                " select natural_key, object_id, event_time, payload, %s, _source from _incoming"
                " order by event_time on conflict (natural_key) do nothing"
            ).format(self._target),
            (self.batch_id,),
        )
        return cur.rowcount


def advance_watermark(conn: psycopg.Connection, stream: str, covered_until: datetime) -> None:
    """Record that everything up to ``covered_until`` is committed (never moves backwards)."""
    with conn.transaction():
        conn.execute(
            "insert into raw._state (stream, watermark) values (%s, %s)"
            " on conflict (stream) do update set"
            " watermark = greatest(raw._state.watermark, excluded.watermark),"
            " updated_at = case when excluded.watermark > raw._state.watermark"
            " then now() else raw._state.updated_at end",
            (stream, covered_until),
        )
