"""The quarantine (raw._quarantine): what an engineer reads of it, and the replay of records
after a fix (a raised limit, a corrected stream declaration).

A replay keys each record again with today's code and limits: what passes is loaded in a batch
of its own and its quarantine row marked replayed (the row stays, as the record of what
happened); what still fails stays as it was, with the reason it fails now reported. A replay
repeated, or interrupted and run again, loads nothing twice (natural keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from touchpoint.config import DEFAULT_LIMITS, IngestLimits
from touchpoint.extract.loader import RawLoader
from touchpoint.sources.catalog import ALL_STREAMS
from touchpoint.sources.stream import InvalidRecord, key_record

_STREAMS = {stream.name: stream for stream in ALL_STREAMS}


@dataclass(frozen=True)
class QuarantineFilter:
    """Which quarantined records: by id, stream, a text in the reason, a first moment; replayed
    ones only when asked."""

    ids: tuple[int, ...] = ()
    stream: str | None = None
    reason: str | None = None
    since: datetime | None = None
    include_replayed: bool = False

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["true"]
        params: list[Any] = []
        if self.ids:
            clauses.append("id = any(%s)")
            params.append(list(self.ids))
        if self.stream:
            if self.stream not in _STREAMS:
                raise ValueError(
                    f"unknown stream {self.stream!r}; expected one of {', '.join(_STREAMS)}"
                )
            clauses.append("stream = %s")
            params.append(self.stream)
        if self.reason:
            clauses.append("strpos(lower(reason), lower(%s)) > 0")
            params.append(self.reason)
        if self.since:
            clauses.append("_loaded_at >= %s")
            params.append(self.since)
        if not self.include_replayed:
            clauses.append("replayed_at is null")
        return " and ".join(clauses), params


@dataclass(frozen=True)
class QuarantinedRecord:
    id: int
    stream: str
    source: str
    reason: str
    quarantined_at: datetime
    replayed_at: datetime | None
    raw_text: str | None = None


def list_quarantine(
    conn: psycopg.Connection, which: QuarantineFilter, limit: int = 50
) -> tuple[list[QuarantinedRecord], int]:
    """The newest ``limit`` records that match, and how many match in all."""
    where, params = which.where()
    total = conn.execute(f"select count(*) from raw._quarantine where {where}", params).fetchone()
    rows = conn.execute(
        "select id, stream, source, reason, _loaded_at, replayed_at from raw._quarantine"
        f" where {where} order by id desc limit %s",
        [*params, limit],
    ).fetchall()
    return [QuarantinedRecord(*row) for row in rows], int(total[0] if total else 0)


def show_quarantined(conn: psycopg.Connection, record_id: int) -> QuarantinedRecord:
    row = conn.execute(
        "select id, stream, source, reason, _loaded_at, replayed_at, raw_text"
        " from raw._quarantine where id = %s",
        (record_id,),
    ).fetchone()
    if row is None:
        raise ValueError(f"no quarantined record with id {record_id}")
    return QuarantinedRecord(*row)


@dataclass
class ReplayResult:
    replayed: int = 0
    #: of the replayed records, those already in raw (a replay run twice) or of erased people
    loaded: int = 0
    duplicates: int = 0
    erased: int = 0
    #: (id, the reason it fails now)
    still_invalid: list[tuple[int, str]] = field(default_factory=list)
    #: rows without a record's text (a broken gzip stream, a record too large to keep)
    not_replayable: list[int] = field(default_factory=list)


def replay_quarantine(
    conn: psycopg.Connection, which: QuarantineFilter, limits: IngestLimits = DEFAULT_LIMITS
) -> ReplayResult:
    """Key the matching records again and load those that pass now (see the module's doc)."""
    where, params = which.where()
    with conn.transaction():  # ended here: the loads below commit chunk by chunk
        rows = conn.execute(
            "select id, stream, source, raw_text, coalesce(received_by, _loaded_at)"
            " from raw._quarantine"
            f" where {where} and replayed_at is null order by id",
            params,
        ).fetchall()
    result = ReplayResult()
    for name in sorted({row[1] for row in rows}):
        stream = _STREAMS.get(name)
        of_stream = [row for row in rows if row[1] == name]
        if stream is None:  # a stream no longer declared: nothing can key its records
            result.still_invalid += [
                (row[0], f"stream {name} is not declared") for row in of_stream
            ]
            continue
        replayed: list[int] = []
        with RawLoader(conn, stream, f"replay of {len(of_stream)} quarantined", limits) as loader:
            for record_id, _, source, text, received in of_stream:
                if not text:
                    result.not_replayable.append(record_id)
                    continue
                try:
                    value = msgspec.json.decode(text)
                except msgspec.MsgspecError as exc:
                    result.still_invalid.append((record_id, f"broken JSON: {exc}"))
                    continue
                if loader.is_erased(value):
                    replayed.append(record_id)
                    continue
                try:
                    # the same bound as at its first load
                    record = key_record(
                        stream, value, source, text, limits=limits, received_by=received
                    )
                except InvalidRecord as exc:
                    result.still_invalid.append((record_id, str(exc)))
                    continue
                if record is not None:
                    loader.add(record)
                replayed.append(record_id)
        with conn.transaction():
            conn.execute(
                "update raw._quarantine set replayed_at = now(), replay_batch_id = %s"
                " where id = any(%s)",
                (loader.batch_id, replayed),
            )
        result.replayed += len(replayed)
        result.loaded += loader.stats.loaded
        result.duplicates += loader.stats.duplicates
        result.erased += loader.stats.erased
    return result
