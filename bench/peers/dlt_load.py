"""The dlt peer's child program: load landing files into Postgres the way a dlt user would.

Run by ``bench.peers.run_dlt`` with the dlt virtualenv's python (never the project's), as
``python dlt_load.py REQUEST.json RESULT.json``. The request names the source, the files, the
DSN, the dataset, the mode and the pipelines dir; the result holds the timings.

dlt's normal behaviour is kept on purpose: schema inference, nested dicts flattened into
``a__b`` columns, lists into child tables, the default ``insert_values`` file format (except in
``append-csv``). Modes:

- ``append``: write_disposition append.
- ``append-csv``: the same with ``loader_file_format="csv"`` (the postgres destination loads
  those files with COPY).
- ``merge``: write_disposition merge (dlt's default delete-insert strategy), primary key
  ``messageId`` for web. For email the key is a column this program adds, ``_peer_key``:
  ``sg_event_id`` where the event has one, else a SHA-256 of the event's canonical JSON (dlt
  refuses a null primary key). Merge deduplicates, so the table holds one row per key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import _landing

MODES = ("append", "append-csv", "merge")
EMAIL_MERGE_KEY = "_peer_key"
PLACEHOLDER_PASSWORD = "unused-by-trust-auth"


def with_password(dsn: str) -> str:
    """dlt's PostgresCredentials require a password even where the server asks for none (trust
    on loopback, as the embedded cluster does): give it a placeholder, which trust ignores."""
    parts = urlsplit(dsn)
    if parts.password is not None or parts.username is None:
        return dsn
    netloc = f"{parts.username}:{PLACEHOLDER_PASSWORD}@{parts.netloc.rsplit('@', 1)[1]}"
    return urlunsplit(parts._replace(netloc=netloc))


def main(request_path: str, result_path: str) -> int:
    with open(request_path) as f:
        request = json.load(f)
    source, files, mode = request["source"], request["files"], request["mode"]
    if mode not in MODES:
        raise SystemExit(f"dlt_load: unknown mode {mode!r} (one of {', '.join(MODES)})")

    import dlt  # after the request is read: a bad request fails fast

    first_open: list[float] = []
    yielded = 0

    def events() -> Iterator[dict[str, Any]]:
        nonlocal yielded
        for path in files:
            if not first_open:
                first_open.append(time.perf_counter())
            for event in _landing.iter_events(path):
                if mode == "merge" and source == "email":
                    event[EMAIL_MERGE_KEY] = event.get("sg_event_id") or _landing.content_key(event)
                yielded += 1
                yield event

    table = f"{source}_events"
    hints: dict[str, Any] = {"name": table, "write_disposition": "append"}
    if mode == "merge":
        hints["write_disposition"] = "merge"
        hints["primary_key"] = "messageId" if source == "web" else EMAIL_MERGE_KEY
    resource = dlt.resource(events, **hints)

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{source}_{mode.replace('-', '_')}",
        destination=dlt.destinations.postgres(credentials=with_password(request["dsn"])),
        dataset_name=request["dataset"],
        pipelines_dir=request["pipelines_dir"],
    )
    run_kwargs: dict[str, Any] = {}
    if mode == "append-csv":
        run_kwargs["loader_file_format"] = "csv"
    started = time.perf_counter()
    info = pipeline.run(resource, **run_kwargs)
    info.raise_on_failed_jobs()
    done = time.perf_counter()

    schema = pipeline.default_schema
    root = schema.naming.normalize_table_identifier(table)
    steps = {}
    if pipeline.last_trace is not None:
        for step in pipeline.last_trace.steps:
            if step.started_at and step.finished_at:
                steps[step.step] = round((step.finished_at - step.started_at).total_seconds(), 3)
    result = {
        "seconds": done - (first_open[0] if first_open else started),
        "run_seconds": done - started,
        "steps": steps,
        "events_yielded": yielded,
        "schema": pipeline.dataset_name,
        "table": root,
        "tables": sorted(schema.data_table_names()),
        "root_columns": len(schema.get_table_columns(root)),
        "dlt_version": version("dlt"),
        "file_formats": sorted(
            {
                job.job_file_info.file_format
                for package in info.load_packages
                for job in package.jobs.get("completed_jobs", [])
                if job.job_file_info.table_name == root
            }
        ),
    }
    return _landing.write_result(result_path, result)


if __name__ == "__main__":
    _landing.run_child(main, "dlt_load.py")
