"""Run one source's extraction for one interval: read, key, validate, load, advance the
watermark."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from touchpoint.config import DEFAULT_LIMITS, IngestLimits, Settings
from touchpoint.extract.hubspot import ASSOCIATION_BATCH, HubSpotClient
from touchpoint.extract.landing import RawItem, folder_day, list_files, read_items
from touchpoint.extract.loader import (
    FileRead,
    LoadStats,
    RawLoader,
    advance_watermark,
    loaded_versions,
)
from touchpoint.extract.request_budget import SharedBudget
from touchpoint.progress import progress
from touchpoint.sources.catalog import (
    FILE_STREAMS,
    HUBSPOT_CONVERSATIONS,
    SOURCES,
    ConversationStreams,
    HubSpotObject,
    hubspot_objects,
)
from touchpoint.sources.stream import InvalidRecord, Stream, key_record
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema

log = logging.getLogger(__name__)

#: log a line every this many landing files
PROGRESS_EVERY = 100


@dataclass(frozen=True)
class CrmEndpoint:
    """A HubSpot account and how to treat it (defaults: the product's settings)."""

    base_url: str
    token: str
    #: for every task of the deployment together (a budget kept in the warehouse); 0: none
    max_requests_per_second: float = Settings.crm_max_requests_per_second
    #: of them, searches (HubSpot limits its search endpoints apart); 0: no limit of their own
    max_searches_per_second: float = Settings.crm_max_searches_per_second
    max_retry_after_seconds: float = Settings.crm_max_retry_after_seconds
    search_overlap_minutes: float = Settings.crm_search_overlap_minutes


def load_items(
    loader: RawLoader, stream: Stream, items: Iterable[RawItem], received_by: datetime | None
) -> int:
    """Key and load parsed items; anything invalid goes to quarantine with its reason. Returns
    how many items there were. ``received_by``: when the items were received at the latest
    (see :func:`key_record`)."""
    count = 0
    for item in items:
        count += 1
        if item.error is not None:
            loader.quarantine(item.location, item.error, item.text, received_by)
        else:
            load_record(loader, stream, item.value, item.location, item.text, received_by)
    return count


def load_record(
    loader: RawLoader,
    stream: Stream,
    value: object,
    location: str,
    text: str | None = None,
    received_by: datetime | None = None,
) -> None:
    """Key one parsed record and hand it to the loader: dropped (and counted) when it belongs to
    an erased person, quarantined with its reason when it is invalid. ``text``: what it was
    decoded from, stored as it is (without it the value is encoded)."""
    if loader.is_erased(value):  # before quarantine too: an erased person's text is kept nowhere
        return
    try:
        record = key_record(
            stream, value, location, text, limits=loader.limits, received_by=received_by
        )
    except InvalidRecord as exc:
        text = text if text is not None else json.dumps(value)
        loader.quarantine(location, str(exc), text, received_by)
    else:
        if record is not None:
            loader.add(record)


def _received_by(day: date | None) -> datetime:
    """When a file's records were received at the latest: the end of its day folder's day, or
    now if that is earlier (or the file is in no day folder)."""
    now = datetime.now(UTC)
    if day is None:
        return now
    return min(now, datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC))


def load_file(
    conn: psycopg.Connection, stream: Stream, url: str, limits: IngestLimits = DEFAULT_LIMITS
) -> LoadStats:
    """Load one landing file by hand (no watermark is moved, no ledger row written). Its events
    count as received by the end of its day folder's day, or now when it is in none."""
    ensure_schema(conn)
    day = folder_day(url.rstrip("/").rsplit("/", 2)[-2]) if "/" in url else None
    with RawLoader(conn, stream, url, limits) as loader:
        load_items(loader, stream, read_items(url, limits), _received_by(day))
    _log_stats(loader.stats, url)
    return loader.stats


def extract_files(
    conn: psycopg.Connection,
    stream: Stream,
    base_url: str,
    start: datetime,
    end: datetime,
    limits: IngestLimits = DEFAULT_LIMITS,
    reread: bool = False,
) -> LoadStats:
    """Load every file version of the interval's day folders, and of the lookback before them,
    that the ledger (raw._files) does not hold yet: a file landed after its day's run is loaded
    by the next run, and counted late. ``reread``: read the interval's files again even when
    the ledger holds them (after a fix in the reader; natural keys keep it idempotent)."""
    first_day = start.date() - timedelta(days=limits.lookback_days)
    listed = list_files(base_url, first_day, (end - timedelta(microseconds=1)).date())
    done = loaded_versions(conn, stream.name, [f.location for f in listed])
    files = [
        f
        for f in listed
        if (f.location, f.version) not in done or (reread and f.day >= start.date())
    ]
    late = sum(f.day < start.date() for f in files)
    log.info(
        "%s: %d new file(s) under %s for %s .. %s (%d of earlier days, late; %d already loaded)",
        stream.name,
        len(files),
        base_url,
        start,
        end,
        late,
        len(listed) - len(files),
    )
    batch = f"{base_url} {start.isoformat()}..{end.isoformat()}"
    with (
        RawLoader(conn, stream, batch, limits) as loader,
        progress(f"{stream.name}: files", total=len(files), unit="files") as files_done,
        progress(f"{stream.name}: records", unit="records") as records_done,
    ):
        for number, file in enumerate(files, 1):
            # Chunks span files: SendGrid lands one small file per webhook batch, and a commit
            # per file made the email load four times slower than its COPY.
            quarantined = loader.stats.quarantined
            items = read_items(file.url, limits)
            records = load_items(loader, stream, items, _received_by(file.day))
            loader.file_read(
                FileRead(
                    file.location,
                    file.version,
                    file.size,
                    file.day,
                    start,
                    end,
                    file.day < start.date(),
                    records,
                    loader.stats.quarantined - quarantined,
                )
            )
            if file.day < start.date():
                log.warning("%s: late file %s (day %s) loaded now", stream.name, file.url, file.day)
            files_done.advance()
            records_done.advance(records)
            if number % PROGRESS_EVERY == 0 or number == len(files):
                log.info(
                    "%s: %d/%d file(s) read (%s), %d row(s) loaded so far",
                    stream.name,
                    number,
                    len(files),
                    file.url,
                    loader.stats.loaded,
                )
    advance_watermark(conn, stream.name, end)
    _log_stats(loader.stats, base_url)
    return loader.stats


def with_associations(client: HubSpotClient, obj: HubSpotObject, records: list[dict]) -> list[dict]:
    """Attach associations to a page of records, in the v3 single-object shape
    (``associations: {to_type: {results: [{id, type}]}}``)."""
    ids = [str(r["id"]) for r in records if r.get("id") and isinstance(r["id"], str | int)]
    if not ids:
        return records
    for to_type in obj.associations:
        links = client.read_associations(obj.object_type, to_type, ids)
        for record in records:
            linked = links.get(str(record.get("id")), [])
            if linked:
                record.setdefault("associations", {})[to_type] = {
                    "results": [
                        {"id": i, "type": f"{obj.object_type}_to_{to_type}"} for i in linked
                    ]
                }
    return records


def extract_hubspot(
    conn: psycopg.Connection,
    client: HubSpotClient,
    obj: HubSpotObject,
    start: datetime,
    end: datetime,
    limits: IngestLimits = DEFAULT_LIMITS,
) -> LoadStats:
    stream = obj.stream
    with (
        RawLoader(
            conn,
            stream,
            f"{client.base_url} {obj.object_type} {start.isoformat()}..{end.isoformat()}",
            limits,
        ) as loader,
        progress(f"{stream.name}: pages", unit="pages") as pages_done,
        progress(f"{stream.name}: records", unit="records") as records_done,
    ):

        def load(batch: list[tuple[dict, str]]) -> None:
            with_associations(client, obj, [record for record, _ in batch])
            received_by = min(end, datetime.now(UTC))  # found modified before the window's end
            for record, location in batch:
                load_record(loader, stream, record, location, received_by=received_by)

        # Associations are read for as many records as one v4 batch takes (1,000), not page by
        # page (200): a fifth of the requests.
        batch: list[tuple[dict, str]] = []
        for records, location in client.search_pages(
            obj.object_type, obj.modified_property, obj.properties, start, end
        ):
            for record in records:
                if isinstance(record, dict):
                    batch.append((record, location))
                else:  # nothing to attach associations to: quarantined
                    load_record(loader, stream, record, location, received_by=end)
            pages_done.advance()
            records_done.advance(len(records))
            if len(batch) >= ASSOCIATION_BATCH:
                load(batch)
                batch = []
        if batch:
            load(batch)
        # Deletions: the search never returns an archived object, so the archive is read whole
        # every run (HubSpot keeps it 90 days and offers no time filter on it); each deletion is
        # one more version of its object, and one already loaded is a duplicate.
        for records, location in client.archived_pages(obj.object_type, obj.properties):
            loader.stats.archived += len(records)
            for record in records:
                # listed now: a deletion is as recent as this run at the latest
                load_record(loader, stream, record, location, received_by=datetime.now(UTC))
            pages_done.advance()
    advance_watermark(conn, stream.name, end)
    _log_stats(loader.stats, f"{client.base_url} ({client.requests_made} requests so far)")
    return loader.stats


def extract_conversations(
    conn: psycopg.Connection,
    client: HubSpotClient,
    start: datetime,
    end: datetime,
    limits: IngestLimits = DEFAULT_LIMITS,
    inbox: ConversationStreams = HUBSPOT_CONVERSATIONS,
) -> list[LoadStats]:
    """The inbox's threads whose latest message falls in ``[start, end)`` (a thread moves with
    every message, its closing included: each version is one more row), then every message of
    each of them, with the thread's ``associatedContactId`` attached and without their text.
    Messages already loaded come again with their thread: their natural key keeps them once."""
    received_by = min(end, datetime.now(UTC))  # listed as having a message before the end
    threads: dict[str, str | None] = {}
    where = f"{client.base_url} conversations {start.isoformat()}..{end.isoformat()}"
    with (
        RawLoader(conn, inbox.threads, where, limits) as loader,
        progress(f"{inbox.threads.name}: pages", unit="pages") as pages_done,
    ):
        for records, location in client.conversation_threads(start, end):
            for record in records:
                before = loader.stats.quarantined
                load_record(loader, inbox.threads, record, location, received_by=received_by)
                if loader.stats.quarantined == before and isinstance(record, dict):
                    contact = record.get("associatedContactId")
                    threads[str(record["id"])] = str(contact) if contact is not None else None
            pages_done.advance()
    thread_stats = loader.stats
    with (
        RawLoader(conn, inbox.messages, where, limits) as loader,
        progress(f"{inbox.messages.name}: threads", total=len(threads), unit="threads") as done,
    ):
        for thread_id, contact in threads.items():
            for records, location in client.thread_messages(thread_id):
                for record in records:
                    if isinstance(record, dict):
                        record = {k: v for k, v in record.items() if k not in inbox.dropped_fields}
                        if contact is not None:
                            record["associatedContactId"] = contact
                    load_record(loader, inbox.messages, record, location, received_by=received_by)
            done.advance()
    for stats in (thread_stats, loader.stats):
        advance_watermark(conn, stats.stream, end)
        _log_stats(stats, f"{client.base_url} ({client.requests_made} requests so far)")
    return [thread_stats, loader.stats]


def extract_source(
    source: str,
    warehouse_url: str,
    start: datetime,
    end: datetime,
    landing_url: str | None = None,
    crm: CrmEndpoint | None = None,
    crm_group: str | None = None,
    limits: IngestLimits = DEFAULT_LIMITS,
    reread: bool = False,
) -> list[LoadStats]:
    """Extract every stream of ``source`` for ``[start, end)`` into the raw layer
    (for the CRM, only the objects of ``crm_group`` when given)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if end <= start:
        raise ValueError(f"empty interval {start} .. {end}: end must be after start")
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        if source == "crm":
            if crm is None:
                raise ValueError("CRM extraction needs the API endpoint (connection crm_hubspot)")
            budget = (
                SharedBudget(
                    warehouse_url,
                    crm.base_url,
                    crm.max_requests_per_second,
                    crm.max_searches_per_second,
                )
                if crm.max_requests_per_second > 0
                else None
            )
            client = HubSpotClient(
                crm.base_url,
                crm.token,
                max_requests_per_second=0,  # the shared budget paces every task
                max_retry_after=crm.max_retry_after_seconds,
                throttle=budget,
                search_overlap=timedelta(minutes=crm.search_overlap_minutes),
            )
            try:
                stats = [
                    extract_hubspot(conn, client, obj, start, end, limits)
                    for obj in hubspot_objects(crm_group)
                ]
                if crm_group in (None, HUBSPOT_CONVERSATIONS.group):
                    stats += extract_conversations(conn, client, start, end, limits)
                return stats
            finally:
                if budget is not None:
                    budget.close()
        if landing_url is None:
            raise ValueError(f"{source} extraction needs a landing URL (TOUCHPOINT_LANDING_URL)")
        stream, folder = FILE_STREAMS[source]
        base = f"{landing_url.rstrip('/')}/{folder}"
        return [extract_files(conn, stream, base, start, end, limits, reread)]


def _log_stats(stats: LoadStats, where: str) -> None:
    level = logging.WARNING if stats.quarantined else logging.INFO
    log.log(
        level,
        "%s from %s: loaded=%d duplicates=%d quarantined=%d erased=%d%s",
        stats.stream,
        where,
        stats.loaded,
        stats.duplicates,
        stats.quarantined,
        stats.erased,
        (f" archived={stats.archived}" if stats.archived else "")
        + (f" reasons={stats.reasons}" if stats.reasons else ""),
    )
