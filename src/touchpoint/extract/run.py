"""Run one source's extraction for one interval: read, key, validate, load, advance the
watermark."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from touchpoint.extract.hubspot import ASSOCIATION_BATCH, HubSpotClient
from touchpoint.extract.landing import RawItem, files_for_interval, read_items
from touchpoint.extract.loader import LoadStats, RawLoader, advance_watermark
from touchpoint.progress import progress
from touchpoint.sources.catalog import FILE_STREAMS, SOURCES, HubSpotObject, hubspot_objects
from touchpoint.sources.stream import InvalidRecord, Stream, key_record
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema

log = logging.getLogger(__name__)

#: log a line every this many landing files
PROGRESS_EVERY = 100


@dataclass(frozen=True)
class CrmEndpoint:
    base_url: str
    token: str
    #: HubSpot private apps get about 10-19 requests/s: stay under it per task
    max_requests_per_second: float = 8.0


def load_items(loader: RawLoader, stream: Stream, items: Iterable[RawItem]) -> None:
    """Key and load parsed items; anything invalid goes to quarantine with its reason."""
    for item in items:
        if item.error is not None:
            loader.quarantine(item.location, item.error, item.text)
        else:
            load_record(loader, stream, item.value, item.location, item.text)


def load_record(
    loader: RawLoader, stream: Stream, value: object, location: str, text: str | None = None
) -> None:
    """Key one parsed record and hand it to the loader: dropped (and counted) when it belongs to
    an erased person, quarantined with its reason when it is invalid. ``text``: what it was
    decoded from, stored as it is (without it the value is encoded)."""
    if loader.is_erased(value):  # before quarantine too: an erased person's text is kept nowhere
        return
    try:
        record = key_record(stream, value, location, text)
    except InvalidRecord as exc:
        loader.quarantine(location, str(exc), text if text is not None else json.dumps(value))
    else:
        if record is not None:
            loader.add(record)


def load_file(conn: psycopg.Connection, stream: Stream, url: str) -> LoadStats:
    """Load one landing file by hand (no watermark is moved)."""
    ensure_schema(conn)
    with RawLoader(conn, stream, url) as loader:
        load_items(loader, stream, read_items(url))
    _log_stats(loader.stats, url)
    return loader.stats


def extract_files(
    conn: psycopg.Connection, stream: Stream, base_url: str, start: datetime, end: datetime
) -> LoadStats:
    files = files_for_interval(base_url, start, end)
    log.info("%s: %d file(s) under %s for %s .. %s", stream.name, len(files), base_url, start, end)
    with (
        RawLoader(conn, stream, f"{base_url} {start.isoformat()}..{end.isoformat()}") as loader,
        progress(f"{stream.name}: files", total=len(files), unit="files") as files_done,
        progress(f"{stream.name}: records", unit="records") as records_done,
    ):
        for number, url in enumerate(files, 1):
            # Chunks span files: SendGrid lands one small file per webhook batch, and a commit
            # per file made the email load four times slower than its COPY.
            before = loader.stats.records_seen
            load_items(loader, stream, read_items(url))
            files_done.advance()
            records_done.advance(loader.stats.records_seen - before)
            if number % PROGRESS_EVERY == 0 or number == len(files):
                log.info(
                    "%s: %d/%d file(s) read (%s), %d row(s) loaded so far",
                    stream.name,
                    number,
                    len(files),
                    url,
                    loader.stats.loaded,
                )
    advance_watermark(conn, stream.name, end)
    _log_stats(loader.stats, base_url)
    return loader.stats


def with_associations(client: HubSpotClient, obj: HubSpotObject, records: list[dict]) -> list[dict]:
    """Attach associations to a page of records, in the v3 single-object shape
    (``associations: {to_type: {results: [{id, type}]}}``)."""
    ids = [str(r["id"]) for r in records if r.get("id")]
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
) -> LoadStats:
    stream = obj.stream
    with (
        RawLoader(
            conn,
            stream,
            f"{client.base_url} {obj.object_type} {start.isoformat()}..{end.isoformat()}",
        ) as loader,
        progress(f"{stream.name}: pages", unit="pages") as pages_done,
        progress(f"{stream.name}: records", unit="records") as records_done,
    ):

        def load(batch: list[tuple[dict, str]]) -> None:
            with_associations(client, obj, [record for record, _ in batch])
            for record, location in batch:
                load_record(loader, stream, record, location)

        # Associations are read for as many records as one v4 batch takes (1,000), not page by
        # page (200): a fifth of the requests.
        batch: list[tuple[dict, str]] = []
        for records, location in client.search_pages(
            obj.object_type, obj.modified_property, obj.properties, start, end
        ):
            batch.extend((record, location) for record in records)
            pages_done.advance()
            records_done.advance(len(records))
            if len(batch) >= ASSOCIATION_BATCH:
                load(batch)
                batch = []
        if batch:
            load(batch)
    advance_watermark(conn, stream.name, end)
    _log_stats(loader.stats, f"{client.base_url} ({client.requests_made} requests so far)")
    return loader.stats


def extract_source(
    source: str,
    warehouse_url: str,
    start: datetime,
    end: datetime,
    landing_url: str | None = None,
    crm: CrmEndpoint | None = None,
    crm_group: str | None = None,
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
            client = HubSpotClient(
                crm.base_url, crm.token, max_requests_per_second=crm.max_requests_per_second
            )
            return [
                extract_hubspot(conn, client, obj, start, end) for obj in hubspot_objects(crm_group)
            ]
        if landing_url is None:
            raise ValueError(f"{source} extraction needs a landing URL (TOUCHPOINT_LANDING_URL)")
        stream, folder = FILE_STREAMS[source]
        return [extract_files(conn, stream, f"{landing_url.rstrip('/')}/{folder}", start, end)]


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
        f" reasons={stats.reasons}" if stats.reasons else "",
    )
