"""The measured stages. Each runs the product as a user would (its CLI, dbt, psql) in a child
process on a database of its own, and returns plain numbers for results.json."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.dataset import Dataset, files_of
from bench.measure import Measured, run_measured

Progress = Callable[[str], None]


@dataclass
class Warehouse:
    """The bench's own cluster (var/bench): a fresh database per measurement."""

    admin_url: str
    var_dir: Path

    def fresh(self, label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:6]}".lower()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.url_of(name)

    def url_of(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    @staticmethod
    def name_of(url: str) -> str:
        return url.rsplit("/", 1)[1]

    def exists(self, name: str) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            return bool(
                conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            )

    def drop(self, url: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.name_of(url)}" with (force)')

    def settle(self, limit_seconds: float = 300) -> None:
        """Before a measured run: wait for the autovacuum the previous loads set off (it vacuums
        and analyses what they inserted) and checkpoint, so that neither falls inside the run.
        After ``limit_seconds`` the run goes ahead anyway."""
        deadline = time.monotonic() + limit_seconds
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while (
                time.monotonic() < deadline
                and conn.execute(
                    "select count(*) from pg_stat_activity where backend_type = 'autovacuum worker'"
                    " and state is distinct from 'idle'"
                ).fetchone()[0]
            ):
                time.sleep(1)
            conn.execute("checkpoint")

    def env(self, dsn: str, dataset: Dataset, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env.update(
            {
                "TOUCHPOINT_WAREHOUSE_URL": dsn,
                "TOUCHPOINT_LANDING_URL": str(dataset.landing),
                "TOUCHPOINT_VAR_DIR": str(self.var_dir),
                **extra,
            }
        )
        return env

    def cli(self, dsn: str, dataset: Dataset, *args: str, **extra_env: str) -> Measured:
        return run_measured(
            [sys.executable, "-m", "touchpoint", *args], env=self.env(dsn, dataset, **extra_env)
        )


def iso(moment: datetime) -> str:
    return moment.isoformat()


def last_json(measured: Measured) -> dict[str, Any]:
    return json.loads(measured.stdout.strip().splitlines()[-1])


def _table_rows(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


# -- a. web and email loads -----------------------------------------------------------------
RAW_TABLE = {"web": "raw.segment_events", "email": "raw.sendgrid_events"}


def load_ours(wh: Warehouse, ds: Dataset, source: str, into: str | None = None) -> dict[str, Any]:
    """``touchpoint extract <source>`` over the history into an empty
    raw layer: a fresh database, or ``into`` (kept: the warehouse the later stages build on)."""
    dsn = into or wh.fresh(f"ours_{source}")
    try:
        run = wh.cli(
            dsn,
            ds,
            "extract",
            source,
            "--start",
            iso(ds.start),
            "--end",
            iso(ds.history_end),
            "--json",
        )
        loaded = last_json(run)["loaded"]
        rows = _table_rows(dsn, RAW_TABLE[source])
        if rows != loaded or rows != ds.manifest[f"{source}_csv_rows"]:
            raise RuntimeError(
                f"ours loaded {loaded} / {rows} rows of {source}, "
                f"expected {ds.manifest[f'{source}_csv_rows']}"
            )
        return {
            "rows": rows,
            "seconds": run.seconds,
            "rows_per_s": rows / run.seconds,
            "peak_rss_mb": run.peak_rss_mb,
        }
    finally:
        if into is None:
            wh.drop(dsn)


def _psql() -> str:
    for candidate in (
        shutil.which("psql"),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True),
    ):
        if candidate:
            return str(candidate)
    raise RuntimeError("psql not found: install Debian's postgresql-client")


def load_copy(wh: Warehouse, ds: Dataset, source: str) -> dict[str, Any]:
    """The limit: ``psql \\copy`` of the same rows, pre-converted to CSV, into the same raw table
    (same primary key) as ours."""
    from touchpoint.warehouse.schema import ensure_schema

    dsn = wh.fresh(f"copy_{source}")
    try:
        with psycopg.connect(dsn) as conn:
            ensure_schema(conn)
        columns = "natural_key, object_id, event_time, payload, _batch_id, _source"
        run = run_measured(
            [
                _psql(),
                dsn,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                (
                    f"\\copy {RAW_TABLE[source]} ({columns}) from '{ds.csv_for(source)}'"
                    " with (format csv)"
                ),
            ]
        )
        rows = _table_rows(dsn, RAW_TABLE[source])
        return {
            "rows": rows,
            "seconds": run.seconds,
            "rows_per_s": rows / run.seconds,
            "peak_rss_mb": run.peak_rss_mb,
        }
    finally:
        wh.drop(dsn)


def load_peer(
    wh: Warehouse,
    ds: Dataset,
    source: str,
    peer: str,
    dlt_python: Path | None = None,
    mode: str = "append",
) -> dict[str, Any]:
    from bench.peers import run_dlt, run_pandas

    dsn = wh.fresh(f"{peer}_{source}")
    try:
        files = files_of(ds, source, ds.start, ds.history_end)
        if peer == "dlt":
            result = run_dlt(dlt_python, source, files, dsn, f"dlt_{source}", mode=mode)
        else:
            result = run_pandas(source, files, dsn, f"pandas_{source}")
        # The peer checks its own count against the events in the files (in append mode, the
        # events a vendor delivered twice are rows twice: the same rows ours reads).
        return {
            "rows": result["rows"],
            "seconds": result["wall_seconds"],
            "rows_per_s": result["rows"] / result["wall_seconds"],
            "peak_rss_mb": result["peak_rss_mb"],
            "config": result.get("config", mode),
        }
    finally:
        wh.drop(dsn)


# -- b. CRM extraction ----------------------------------------------------------------------
def crm_request_floor(
    data: Any, start: datetime, end: datetime, page: int = 200
) -> tuple[int, int]:
    """The fewest requests the HubSpot API allows for the CRM objects modified in [start, end):
    search pages of ``page`` objects (at least one per object type), and v4 association
    batches of ASSOCIATION_BATCH objects per association type."""
    from touchpoint.extract.hubspot import ASSOCIATION_BATCH
    from touchpoint.sources.catalog import hubspot_objects
    from touchpoint.sources.timeparse import from_iso

    search = associations = 0
    for obj in hubspot_objects(None):
        n = sum(
            1
            for r in data.listing(obj.object_type)
            if start <= from_iso(r["properties"][obj.modified_property]) < end
        )
        search += max(1, math.ceil(n / page))
        associations += len(obj.associations) * math.ceil(n / ASSOCIATION_BATCH)
    return search, associations


def crm_extract(wh: Warehouse, ds: Dataset, into: str | None = None) -> dict[str, Any]:
    """``touchpoint extract crm`` of the history against the simulator (no request-rate limit):
    records/s, and requests made against the fewest the page size allows."""
    from touchpoint_sim.crm_server import CrmData, CrmServer

    data = CrmData.from_dir(ds.crm_dir)
    server = CrmServer(data, port=0).start_in_thread()
    dsn = into or wh.fresh("crm")
    try:
        run = wh.cli(
            dsn,
            ds,
            "extract",
            "crm",
            "--start",
            iso(ds.start),
            "--end",
            iso(ds.history_end),
            "--crm-url",
            server.url,
            "--json",
            TOUCHPOINT_CRM_MAX_REQUESTS_PER_SECOND="0",
        )
        loaded = last_json(run)["loaded"]
        search_min, assoc_min = crm_request_floor(data, ds.start, ds.history_end)
        minimum = search_min + assoc_min
        return {
            "records": loaded,
            "seconds": run.seconds,
            "records_per_s": loaded / run.seconds,
            "requests": server.requests,
            "requests_minimum": minimum,
            "search_requests_minimum": search_min,
            "association_requests_minimum": assoc_min,
            "requests_over_minimum": server.requests / minimum,
            "peak_rss_mb": run.peak_rss_mb,
            "records_per_s_at_8_requests_per_s": loaded / (server.requests / 8.0),
        }
    finally:
        server.shutdown()
        if into is None:
            wh.drop(dsn)


# -- d. the report: render and send to 50 recipients ----------------------------------------
_SLICES = [
    {},
    {"region": "EMEA"},
    {"region": "Americas"},
    {"business_unit": "marketing"},
    {"business_unit": "sales"},
    {"business_unit": "service"},
    {"region": "EMEA", "business_unit": "sales"},
    {"region": "Americas", "business_unit": "service"},
    {"region": "APAC"},
    {"region": "EMEA", "business_unit": "marketing"},
]
_PEOPLE = [
    ("en_GB", "Europe/London"),
    ("fr_FR", "Europe/Paris"),
    ("en_US", "America/New_York"),
    ("de_DE", "Europe/Berlin"),
    ("es_ES", "Europe/Madrid"),
]


def recipients_file(path: Path, count: int = 50) -> Path:
    recipients = []
    for n in range(count):
        locale, zone = _PEOPLE[n % len(_PEOPLE)]
        entry: dict[str, Any] = {
            "address": f"reader{n:02d}@touchpoint.example",
            "name": f"Reader {n}",
            "timezone": zone,
            "locale": locale,
        }
        if _SLICES[n % len(_SLICES)]:
            entry["filters"] = _SLICES[n % len(_SLICES)]
        recipients.append(entry)
    path.write_text(
        yaml.safe_dump(
            {
                "sender": "Touchpoint reports <reports@touchpoint.example>",
                "recipients": recipients,
                "alerts": [
                    {
                        "address": "data.engineers@touchpoint.example",
                        "name": "Data engineering",
                        "timezone": "UTC",
                        "locale": "en_GB",
                    }
                ],
            },
            sort_keys=False,
        )
    )
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def report(wh: Warehouse, ds: Dataset, dsn: str, count: int = 50) -> dict[str, Any]:
    """``touchpoint report send`` of the last full week to ``count`` recipients through the
    local SMTP server; every message must arrive."""
    from touchpoint.intervals import iso_week
    from touchpoint.local.mail_sink import MailSink

    week = iso_week((ds.long_history_end - timedelta(weeks=1)).date())
    mail_dir = wh.var_dir / "mail" / uuid.uuid4().hex[:8]
    recipients = recipients_file(wh.var_dir / "bench-recipients.yml", count)
    with MailSink(mail_dir, port=_free_port()) as sink:
        run = wh.cli(
            dsn,
            ds,
            "report",
            "send",
            "--week",
            week,
            "--recipients",
            str(recipients),
            "--skip-quality-gate",
            TOUCHPOINT_SMTP_PORT=str(sink.port),
        )
    received = len(list(mail_dir.glob("*.eml")))
    shutil.rmtree(mail_dir, ignore_errors=True)
    with psycopg.connect(dsn) as conn:  # so that the next repetition sends again
        conn.execute("delete from reporting.deliveries")
    if received != count:
        raise RuntimeError(f"the report reached {received} of {count} recipients")
    return {
        "recipients": count,
        "received": received,
        "seconds": run.seconds,
        "seconds_per_recipient": run.seconds / count,
        "peak_rss_mb": run.peak_rss_mb,
        "week": week,
    }
