"""Loading into the raw layer: COPY into a temporary table, then insert what is new.

Records are streamed in chunks; each chunk is committed on its own, so a crash loses at most
the chunk in flight, and a re-run skips what is already there (the natural key is the primary
key of every raw table). Watermarks move only after the data they cover is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

import psycopg
from psycopg import sql

from touchpoint.config import DEFAULT_LIMITS, IngestLimits
from touchpoint.privacy.tombstones import Tombstones
from touchpoint.sources.stream import KeyedRecord, Stream, storable_text
from touchpoint.warehouse.locks import release_shared, take_shared

log = logging.getLogger(__name__)

CHUNK_SIZE = 5000


@dataclass
class LoadStats:
    stream: str
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: records of erased people, dropped (privacy.tombstones)
    erased: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    #: landing files read, and of them the late ones (their day's run had passed)
    files: int = 0
    late_files: int = 0
    #: CRM objects listed as deleted (archived), each loaded once (later reads: duplicates)
    archived: int = 0

    @property
    def records_seen(self) -> int:
        """Records settled so far (loaded rows count once their chunk is written)."""
        return self.loaded + self.duplicates + self.quarantined + self.erased

    def as_dict(self) -> dict[str, int]:
        return {
            "loaded": self.loaded,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "erased": self.erased,
            **({"files": self.files, "late_files": self.late_files} if self.files else {}),
            **({"archived": self.archived} if self.archived else {}),
        }


@dataclass(frozen=True, slots=True)
class FileRead:
    """A landing file version read to its end: its ledger row (raw._files), written in the
    transaction that commits its last records."""

    location: str
    version: str
    size_bytes: int
    folder_day: object
    run_start: datetime | None
    run_end: datetime | None
    late: bool
    records: int
    quarantined: int


_COPY_BLOCK = 1 << 20
_REASON_CHARS = 300


def copy_text(value: str | None) -> str:
    """A value in COPY's text format (``\\N`` for null). Chained ``replace`` calls, each skipped
    when its character is absent: many times faster than ``str.translate`` on a long payload."""
    if value is None:
        return "\\N"
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    return value


#: a refused record: its location, the reason, its text, when it was received at the latest
_Refused = tuple[str, str, str, datetime | None]
_Chunk = tuple[list[KeyedRecord], list[_Refused], list[FileRead]]


class RawLoader:
    """Loads one stream's records for one batch; use as a context manager.

    Chunks are written by a thread of the loader's own while the caller reads and keys the next
    one (the profile of the load path showed the reader idle for a third of the time, waiting
    for the server to insert). At most two chunks wait in memory; they are committed in order,
    and the first failure is raised from the caller's next :meth:`flush` or from ``__exit__``.
    The connection belongs to the writer until the loader is closed.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        stream: Stream,
        batch_source: str,
        limits: IngestLimits = DEFAULT_LIMITS,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.limits = limits
        self._files: list[FileRead] = []
        self.batch_id = uuid.uuid4().hex
        self.stats = LoadStats(stream.name)
        self._pending: list[KeyedRecord] = []
        self._quarantine: list[_Refused] = []
        schema, table = stream.table.split(".")
        self._target = sql.Identifier(schema, table)
        # no dbt build reads raw while this load writes it (warehouse.locks); taken before the
        # tombstones are read, so an erasure's deletes come wholly before or after this load
        take_shared(conn, f"{stream.name} load")
        with conn.transaction():
            conn.execute(
                "insert into raw._batches (batch_id, stream, source) values (%s, %s, %s)",
                (self.batch_id, stream.name, batch_source),
            )
            self.tombstones = Tombstones.read(conn)
        self._chunks: queue.Queue[_Chunk | None] = queue.Queue(1)
        self._failure: BaseException | None = None
        self._writer = threading.Thread(
            target=self._write_chunks, name=f"raw-loader-{stream.name}", daemon=True
        )
        self._writer.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # What was read before a failure is committed too (a re-run skips it).
        try:
            self.flush()
        finally:
            self._chunks.put(None)
            self._writer.join()
            release_shared(self.conn)
        self._raise_failure()

    def is_erased(self, payload: object) -> bool:
        """Whether the payload belongs to an erased person (then it is counted, never stored)."""
        if self.tombstones.covers(self.stream.identifiers, payload):
            self.stats.erased += 1
            return True
        return False

    def add(self, record: KeyedRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= CHUNK_SIZE:
            self.flush()

    def file_read(self, file: FileRead) -> None:
        """Note a landing file read to its end: its ledger row goes with the next chunk."""
        self.stats.files += 1
        self.stats.late_files += file.late
        self._files.append(file)

    def quarantine(
        self, source: str, reason: str, raw_text: str, received_by: datetime | None = None
    ) -> None:
        if len(reason) > _REASON_CHARS:  # a reason quotes the value: a 10 MB one is not read
            reason = reason[:_REASON_CHARS] + "…"
        # text that is not Unicode (a CRM's lone surrogate) is kept as U+FFFD, never refused
        source, reason, raw_text = map(storable_text, (source, reason, raw_text))
        self.stats.quarantined += 1
        self.stats.reasons[reason.split(":")[0]] = (
            self.stats.reasons.get(reason.split(":")[0], 0) + 1
        )
        log.warning("%s: quarantined record at %s: %s", self.stream.name, source, reason)
        self._quarantine.append((source, reason, raw_text, received_by))
        if len(self._quarantine) >= CHUNK_SIZE:
            self.flush()

    def flush(self) -> None:
        """Hand what is buffered (new rows, quarantined rows) to the writer, to be committed with
        the batch counters."""
        self._raise_failure()
        rows, self._pending = self._pending, []
        bad, self._quarantine = self._quarantine, []
        files, self._files = self._files, []
        if rows or bad or files:
            self._chunks.put((rows, bad, files))

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _write_chunks(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            # after a failure, later chunks are dropped, never committed out of order
            if self._failure is None:
                try:
                    self._commit(*chunk)
                except BaseException as exc:  # noqa: BLE001
                    # handed to the caller's thread, raised there
                    self._failure = exc

    def _commit(self, rows: list[KeyedRecord], bad: list[_Refused], files: list[FileRead]) -> None:
        with self.conn.transaction():
            inserted = self._insert_new(rows) if rows else 0
            if bad:
                with self.conn.cursor().copy(
                    "copy raw._quarantine"
                    " (stream, source, reason, raw_text, received_by, _batch_id) from stdin"
                ) as copy:
                    for source, reason, raw_text, received_by in bad:
                        copy.write_row(
                            (self.stream.name, source, reason, raw_text, received_by, self.batch_id)
                        )
            if files:
                self.conn.cursor().executemany(
                    "insert into raw._files (stream, location, version, size_bytes, folder_day,"
                    " run_start, run_end, late, records, quarantined, _batch_id)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " on conflict (stream, location, version) do update set"
                    " loaded_at = now(), run_start = excluded.run_start,"
                    " run_end = excluded.run_end, late = excluded.late,"
                    " records = excluded.records, quarantined = excluded.quarantined,"
                    " _batch_id = excluded._batch_id",
                    [
                        (
                            self.stream.name,
                            f.location,
                            f.version,
                            f.size_bytes,
                            f.folder_day,
                            f.run_start,
                            f.run_end,
                            f.late,
                            f.records,
                            f.quarantined,
                            self.batch_id,
                        )
                        for f in files
                    ],
                )
            self.stats.loaded += inserted
            self.stats.duplicates += len(rows) - inserted
            self.conn.execute(
                "update raw._batches set loaded = %s, duplicates = %s, quarantined = %s,"
                " erased = %s, finished_at = now() where batch_id = %s",
                (
                    self.stats.loaded,
                    self.stats.duplicates,
                    self.stats.quarantined,
                    self.stats.erased,
                    self.batch_id,
                ),
            )

    def _insert_new(self, rows: list[KeyedRecord]) -> int:
        """Insert the rows whose natural key is new; returns how many. Of a key that comes twice
        in the chunk, the earliest copy is the one kept."""
        loaded = self._loaded_keys([r.natural_key for r in rows])
        new: dict[str, KeyedRecord] = {}
        for r in sorted(rows, key=lambda r: r.event_time):
            if r.natural_key not in loaded and r.natural_key not in new:
                new[r.natural_key] = r
        if not new:
            return 0
        # Only new keys are left: straight into the table, as fast as COPY goes.
        try:
            with self.conn.transaction():  # a savepoint: a concurrent loader may take a key first
                self._copy(
                    list(new.values()),
                    sql.SQL(
                        "copy {} (natural_key, object_id, event_time, payload, _source, _batch_id)"
                        " from stdin"
                    ).format(self._target),
                    self.batch_id,
                )
            return len(new)
        except psycopg.errors.UniqueViolation:
            log.info(
                "%s: a key of this chunk was loaded meanwhile; inserting only the new ones",
                self.stream.name,
            )
        return self._insert_new_by_conflict(rows)

    def _insert_new_by_conflict(self, rows: list[KeyedRecord]) -> int:
        """The slower way, safe against a concurrent loader: a temp table, then insert what does
        not conflict."""
        cur = self.conn.cursor()
        cur.execute(
            "create temp table if not exists _incoming "
            "(natural_key text, object_id text, event_time timestamptz, payload jsonb,"
            " _source text)"
            " on commit delete rows"
        )
        self._copy(
            rows,
            sql.SQL(
                "copy _incoming (natural_key, object_id, event_time, payload, _source) from stdin"
            ),
        )
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

    def _loaded_keys(self, keys: list[str]) -> set[str]:
        query = sql.SQL("select natural_key from {} where natural_key = any(%s)").format(
            self._target
        )
        return {row[0] for row in self.conn.execute(query, (keys,))}

    def _copy(
        self,
        rows: list[KeyedRecord],
        statement: sql.SQL | sql.Composed,
        batch_id: str | None = None,
    ) -> None:
        """COPY rows (natural key, object id, event time, payload, source[, batch id]), the text
        built in blocks: a fraction of the cost of formatting them row by row."""
        tail = f"\t{batch_id}\n" if batch_id else "\n"
        with self.conn.cursor().copy(statement) as copy:
            block: list[str] = []
            size = 0
            for r in rows:
                line = (
                    f"{copy_text(r.natural_key)}\t{copy_text(r.object_id)}\t"
                    f"{r.event_time.isoformat()}\t"
                    f"{copy_text(r.payload_json)}\t{copy_text(r.source)}{tail}"
                )
                block.append(line)
                size += len(line)
                if size >= _COPY_BLOCK:
                    copy.write("".join(block))
                    block, size = [], 0
            if block:
                copy.write("".join(block))


def loaded_versions(conn: psycopg.Connection, stream: str, locations: list[str]) -> set[tuple]:
    """(location, version) of the files of ``locations`` the ledger has loaded."""
    with conn.transaction():  # ended here: the load's chunks must each commit on their own
        return {
            (location, version)
            for location, version in conn.execute(
                "select location, version from raw._files where stream = %s and location = any(%s)",
                (stream, locations),
            )
        }


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
