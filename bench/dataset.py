"""The bench data sets: simulated at each scale once, cached under bench/data/.

A data set is rebuilt when its scale or the simulator's code changes (both are in its
fingerprint). Large worlds are built in slices of :data:`~bench.scales.SLICE` people, two
processes at a time, each slice writing its own landing files beside the others'.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.measure import worker_pool
from bench.scales import (
    HISTORY_WEEKS,
    LONG_HISTORY_WEEKS,
    MEASURED_WEEKDAYS,
    RETURN_VISITS_PER_WEEK,
    SEED,
    SLICE,
    START,
    WEEKS,
    Scale,
)
from touchpoint.progress import progress as bar

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data"


@dataclass(frozen=True)
class Dataset:
    scale: Scale
    root: Path
    manifest: dict[str, Any]

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def crm_dir(self) -> Path:
        return self.root / "sim" / "crm"

    @property
    def start(self) -> datetime:
        return datetime.combine(START, datetime.min.time(), UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(weeks=WEEKS)

    @property
    def history_end(self) -> datetime:
        """The end of the history every stage starts from (a Monday, 00:00 UTC)."""
        return self.start + timedelta(weeks=HISTORY_WEEKS)

    @property
    def measured_days(self) -> list[datetime]:
        """The consecutive weekdays after the history on which the daily run is measured."""
        return [self.history_end + timedelta(days=n) for n in range(MEASURED_WEEKDAYS)]

    @property
    def long_history_end(self) -> datetime:
        """The end of the long history: the same weekday as the first measured day, after
        LONG_HISTORY_WEEKS weeks."""
        return self.start + timedelta(weeks=LONG_HISTORY_WEEKS)

    def csv_for(self, source: str) -> Path:
        return self.root / "csv" / f"{source}.csv"


def _fingerprint(scale: Scale) -> str:
    h = hashlib.sha256(
        json.dumps(
            [scale.people, SEED, START.isoformat(), WEEKS, RETURN_VISITS_PER_WEEK, SLICE]
        ).encode()
    )
    simulator = REPO / "src" / "touchpoint_sim"
    for path in [*sorted((simulator / "population").glob("*.py")), simulator / "writers.py"]:
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def _build_slice(index: int, first: int, count: int, landing: str) -> dict[str, Any]:
    from touchpoint_sim.population import generate
    from touchpoint_sim.writers import write_segment, write_sendgrid

    world = generate(count, WEEKS, SEED, START, RETURN_VISITS_PER_WEEK, first_index=first)
    write_sendgrid(world, Path(landing) / "sendgrid", part=index)
    write_segment(world, Path(landing) / "segment", part=index)
    return {
        "web": len(world.web_events),
        "email": len(world.email_events),
        "crm": world.crm,
        "associations": world.associations,
    }


def ensure_dataset(scale: Scale, progress: Callable[[str], None] = print) -> Dataset:
    """The data set of ``scale``, generated (and pre-converted to CSV) unless cached."""
    root = DATA / f"{scale.name}-{_fingerprint(scale)}"
    done = root / "manifest.json"
    if done.exists():
        dataset = Dataset(scale, root, json.loads(done.read_text()))
        if dataset.manifest.get("csv_of") != CSV_OF:
            _write_copy_csvs(dataset, progress)
            done.write_text(json.dumps(dataset.manifest, indent=2))
        return dataset
    for stale in DATA.glob(f"{scale.name}-*"):
        shutil.rmtree(stale)
    started = time.perf_counter()
    progress(
        f"generating data set {scale.name}: {scale.people:,} people x {WEEKS} weeks "
        f"({scale.customers:,} in the {HISTORY_WEEKS}-week history) under {root}"
    )
    slices = [
        (i, first, min(SLICE, scale.people - first))
        for i, first in enumerate(range(0, scale.people, SLICE))
    ]
    from touchpoint_sim.population import ASSOCIATION_PAIRS, CRM_TYPES, World
    from touchpoint_sim.writers import write_crm

    merged = World(start=START, weeks=WEEKS, seed=SEED)
    merged.associations = {pair: {} for pair in ASSOCIATION_PAIRS}
    web = email = 0
    with (
        worker_pool(2) as pool,
        bar(f"data set {scale.name}: slices", total=scale.people, unit="people") as built,
    ):
        futures = [
            pool.submit(_build_slice, i, first, count, str(root / "landing"))
            for i, first, count in slices
        ]
        for n, (future, (_, _, count)) in enumerate(zip(futures, slices), 1):
            part = future.result()
            web, email = web + part["web"], email + part["email"]
            for object_type in CRM_TYPES:
                merged.crm[object_type].extend(part["crm"][object_type])
            for pair, links in part["associations"].items():
                merged.associations[pair].update(links)
            progress(
                f"  slice {n}/{len(slices)} written ({web:,} web, {email:,} email events so far)"
            )
            built.advance(count)
    counts = write_crm(merged, root / "sim" / "crm")
    generated = time.perf_counter() - started
    manifest = {
        "scale": scale.name,
        "customers": scale.customers,
        "people": scale.people,
        "weeks": WEEKS,
        "history_weeks": HISTORY_WEEKS,
        "seed": SEED,
        "start": START.isoformat(),
        "return_visits_per_week": RETURN_VISITS_PER_WEEK,
        "web_events": web,
        "email_events": email,
        "crm_objects": sum(counts.values()),
        "crm": counts,
        "generation_seconds": round(generated, 1),
    }
    dataset = Dataset(scale, root, manifest)
    progress(
        f"  data set {scale.name}: {web:,} web, {email:,} email events, "
        f"{manifest['crm_objects']:,} CRM objects in {generated:.0f} s"
    )
    _write_copy_csvs(dataset, progress)
    done.write_text(json.dumps(manifest, indent=2))
    return dataset


#: what the CSV files hold (a data set with older CSVs gets them written again)
CSV_OF = "history: the first HISTORY_WEEKS weeks; duplicates counted"


def _write_copy_csvs(dataset: Dataset, progress: Callable[[str], None]) -> None:
    started = time.perf_counter()
    rows = {}
    with (
        worker_pool(2) as pool,
        bar(f"data set {dataset.scale.name}: CSV for psql \\copy", total=2) as converted,
    ):
        for source, written in zip(
            ("web", "email"), pool.map(_write_copy_csv, (dataset, dataset), ("web", "email"))
        ):
            rows[source] = written
            converted.advance()
    for source, (count, duplicates) in rows.items():
        dataset.manifest[f"{source}_csv_rows"] = count
        dataset.manifest[f"{source}_duplicates_in_history"] = duplicates
    dataset.manifest["csv_seconds"] = round(time.perf_counter() - started, 1)
    dataset.manifest["csv_of"] = CSV_OF
    progress(
        f"  CSV of the history for psql \\copy: {rows['web'][0]:,} web, "
        f"{rows['email'][0]:,} email rows in {dataset.manifest['csv_seconds']:.0f} s (not counted)"
    )


def _write_copy_csv(dataset: Dataset, source: str) -> tuple[int, int]:
    """The rows our loader inserts for the history, pre-converted to
    CSV for ``psql \\copy`` (the limit): read and keyed by our own reader, so both sides load
    exactly the same rows."""
    from touchpoint.extract.landing import files_for_interval, read_items
    from touchpoint.sources.catalog import FILE_STREAMS
    from touchpoint.sources.stream import InvalidRecord, key_record

    stream, folder = FILE_STREAMS[source]
    path = dataset.csv_for(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = duplicates = 0
    seen: set[str] = set()
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        for url in files_for_interval(
            str(dataset.landing / folder), dataset.start, dataset.history_end
        ):
            for item in read_items(url):
                if item.error is not None:
                    continue
                try:
                    record = key_record(stream, item.value, item.location, item.text)
                except InvalidRecord:
                    continue
                if record is None:  # not a record the stream takes
                    continue
                if record.natural_key in seen:  # delivered twice (SendGrid does): loaded once
                    duplicates += 1
                    continue
                seen.add(record.natural_key)
                writer.writerow(
                    (
                        record.natural_key,
                        record.object_id or "",
                        record.event_time.isoformat(),
                        record.payload_json,
                        "bench",
                        record.source,
                    )
                )
                rows += 1
    return rows, duplicates


def files_of(
    dataset: Dataset, source: str, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    from touchpoint.extract.landing import files_for_interval
    from touchpoint.sources.catalog import FILE_STREAMS

    return files_for_interval(
        str(dataset.landing / FILE_STREAMS[source][1]), start or dataset.start, end or dataset.end
    )
