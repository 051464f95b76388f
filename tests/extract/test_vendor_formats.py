"""Each vendor quirk, on payloads shaped like the vendors' documented examples (tests/fixtures)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg

from helpers import FIXTURES, run_cli
from touchpoint.extract.run import extract_source, load_file
from touchpoint.sources.catalog import SEGMENT_EVENTS, SENDGRID_EVENTS
from touchpoint.warehouse.connection import connect


def rows(url: str, table: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            f"select natural_key, event_time, payload, _source from raw.{table} order by event_time"
        )
        return [
            dict(zip([c.name for c in cur.description], r, strict=True)) for r in cur.fetchall()
        ]


# -- SendGrid ---------------------------------------------------------------------------------
def test_sendgrid_events_of_every_type_load_with_unix_seconds_as_utc(fresh_db):
    events = json.loads((FIXTURES / "sendgrid_batch.json").read_text())
    with connect(fresh_db) as conn:
        stats = load_file(conn, SENDGRID_EVENTS, str(FIXTURES / "sendgrid_batch.json"))
    assert (stats.loaded, stats.quarantined) == (len(events), 0)
    loaded = {r["payload"]["event"]: r for r in rows(fresh_db, "sendgrid_events")}
    assert set(loaded) == {
        "processed",
        "deferred",
        "delivered",
        "open",
        "click",
        "dropped",
        "bounce",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    }
    assert loaded["processed"]["event_time"] == datetime.fromtimestamp(1759658400, tz=UTC)


def test_sendgrid_category_as_string_or_array_and_unique_arguments_are_kept(fresh_db):
    with connect(fresh_db) as conn:
        load_file(conn, SENDGRID_EVENTS, str(FIXTURES / "sendgrid_batch.json"))
    loaded = {r["payload"]["event"]: r["payload"] for r in rows(fresh_db, "sendgrid_events")}
    assert loaded["processed"]["category"] == "cat facts"
    assert loaded["delivered"]["category"] == ["newsletter", "october"]
    assert (loaded["delivered"]["purchase"], loaded["delivered"]["uid"]) == (
        "PO1452297845",
        "123456",
    )


def test_a_dropped_event_without_sg_event_id_is_keyed_by_content_and_loaded_once(
    fresh_db, tmp_path
):
    dropped = [
        e
        for e in json.loads((FIXTURES / "sendgrid_batch.json").read_text())
        if e["event"] == "dropped"
    ]
    assert "sg_event_id" not in dropped[0]
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(dropped * 2))  # the webhook delivers at least once: here twice
    with connect(fresh_db) as conn:
        stats = load_file(conn, SENDGRID_EVENTS, str(path))
    assert (stats.loaded, stats.duplicates) == (1, 1)
    [row] = rows(fresh_db, "sendgrid_events")
    assert row["natural_key"].startswith("sha256:")


def test_the_same_batch_landed_twice_loads_nothing_the_second_time(fresh_db):
    first = run_cli(
        "load",
        "email",
        str(FIXTURES / "sendgrid_batch.json"),
        "--json",
        env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db},
    )
    second = run_cli(
        "load",
        "email",
        str(FIXTURES / "sendgrid_batch.json"),
        "--json",
        env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db},
    )
    assert json.loads(first.stdout.splitlines()[-1])["loaded"] == 11
    assert json.loads(second.stdout.splitlines()[-1]) == {
        "loaded": 0,
        "duplicates": 11,
        "quarantined": 0,
        "erased": 0,
    }


# -- Segment ----------------------------------------------------------------------------------
def test_segment_page_track_identify_alias_and_group_are_all_kept(fresh_db):
    with connect(fresh_db) as conn:
        stats = load_file(conn, SEGMENT_EVENTS, str(FIXTURES / "segment_events.ndjson"))
    assert (stats.loaded, stats.quarantined) == (6, 0)
    types = sorted(r["payload"]["type"] for r in rows(fresh_db, "segment_events"))
    assert types == ["alias", "group", "identify", "page", "page", "track"]


def test_segment_event_time_is_the_skew_corrected_timestamp_then_original_timestamp(fresh_db):
    with connect(fresh_db) as conn:
        load_file(conn, SEGMENT_EVENTS, str(FIXTURES / "segment_events.ndjson"))
    by_key = {r["natural_key"]: r for r in rows(fresh_db, "segment_events")}
    page = by_key["ajs-19c084e2f80e70cf62bb62509e79b37e"]
    # originalTimestamp (client clock) is 33 s off; `timestamp` is Segment's corrected time.
    assert page["event_time"] == datetime(2025, 10, 5, 19, 11, 1, 249000, tzinfo=UTC)
    assert by_key["ajs-no-timestamp-0001"]["event_time"] == datetime(
        2025, 10, 5, 19, 11, 58, tzinfo=UTC
    )


def test_segment_context_campaign_user_agent_and_traits_are_kept(fresh_db):
    with connect(fresh_db) as conn:
        load_file(conn, SEGMENT_EVENTS, str(FIXTURES / "segment_events.ndjson"))
    by_type = {}
    for r in rows(fresh_db, "segment_events"):
        by_type.setdefault(r["payload"]["type"], r["payload"])
    assert by_type["page"]["context"]["campaign"]["medium"] == "email"
    assert by_type["page"]["context"]["page"]["path"] == "/academy/"
    assert by_type["page"]["context"]["userAgent"].startswith("Mozilla/5.0")
    assert by_type["identify"]["traits"]["email"] == " Peter@Example.com "


def test_segment_s3_layout_gzipped_ndjson_in_epoch_millisecond_day_folders(fresh_db, tmp_path):
    day = datetime(2025, 10, 5, tzinfo=UTC)
    folder = tmp_path / "segment" / str(int(day.timestamp() * 1000))
    folder.mkdir(parents=True)
    (folder / "part-0000.gz").write_bytes(
        gzip.compress((FIXTURES / "segment_events.ndjson").read_bytes())
    )
    stats = extract_source("web", fresh_db, day, day + timedelta(days=1), landing_url=str(tmp_path))
    assert stats[0].loaded == 6
    outside = extract_source(
        "web", fresh_db, day + timedelta(days=1), day + timedelta(days=2), landing_url=str(tmp_path)
    )
    assert outside[0].loaded == outside[0].duplicates == 0


# -- crash safety -----------------------------------------------------------------------------
def test_a_loader_killed_in_the_middle_of_a_copy_loses_and_duplicates_nothing_on_rerun(
    fresh_db, tmp_path
):
    total = 120_000
    path = tmp_path / "big.ndjson"
    with path.open("w") as f:
        for i in range(total):
            f.write(
                json.dumps(
                    {
                        "type": "page",
                        "messageId": f"m-{i:07d}",
                        "anonymousId": f"a-{i % 977}",
                        "timestamp": "2026-10-05T10:00:00.000Z",
                        "context": {"page": {"path": "/pricing"}},
                    }
                )
                + "\n"
            )
    env = {**os.environ, "TOUCHPOINT_WAREHOUSE_URL": fresh_db}
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchpoint", "load", "web", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    committed = 0
    deadline = time.monotonic() + 120
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                committed = conn.execute("select count(*) from raw.segment_events").fetchone()[0]
            except psycopg.errors.UndefinedTable:
                committed = 0
            if committed > 0:
                break
            time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the loader finished before it could be killed"
    assert 0 < committed < total

    rerun = run_cli("load", "web", str(path), "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.splitlines()[-1])
    with psycopg.connect(fresh_db) as conn:
        stored, distinct = conn.execute(
            "select count(*), count(distinct natural_key) from raw.segment_events"
        ).fetchone()
    assert stored == distinct == total
    assert summary["loaded"] + summary["duplicates"] == total and summary["duplicates"] >= committed


def test_any_fsspec_url_works_as_the_landing_path(fresh_db):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe(
        "/landing-test/sendgrid/2025-10-05/batch-0001.json",
        (FIXTURES / "sendgrid_batch.json").read_bytes(),
    )
    day = datetime(2025, 10, 5, tzinfo=UTC)
    stats = extract_source(
        "email", fresh_db, day, day + timedelta(days=1), landing_url="memory://landing-test"
    )
    assert stats[0].loaded == 11
