"""Extraction into the raw layer: file formats, idempotence, quarantine, watermarks."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import psycopg

from helpers import SIM_START, run_cli
from touchpoint.extract.landing import folder_day, read_items
from touchpoint.extract.run import extract_source

START = datetime.combine(SIM_START, datetime.min.time(), UTC)


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("sendgrid_events", "segment_events", "_quarantine")
        }


def test_json_arrays_ndjson_and_gzip_are_all_read_record_by_record(tmp_path):
    events = [{"event": "open", "n": i} for i in range(5)]
    (tmp_path / "a.json").write_text(json.dumps(events))
    (tmp_path / "b.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    (tmp_path / "c.json.gz").write_bytes(gzip.compress(json.dumps(events).encode()))
    (tmp_path / "d.ndjson.gz").write_bytes(
        gzip.compress("\n".join(json.dumps(e) for e in events).encode())
    )
    for name in ("a.json", "b.ndjson", "c.json.gz", "d.ndjson.gz"):
        items = list(read_items(str(tmp_path / name)))
        assert [i.value for i in items] == events, name


def test_day_folders_are_read_as_iso_dates_or_segment_epoch_milliseconds():
    assert folder_day("2026-10-05") == SIM_START
    assert folder_day(str(int(START.timestamp() * 1000))) == SIM_START
    assert folder_day("README") is None


def test_rerunning_an_interval_loads_nothing_twice_and_keeps_the_watermark(fresh_db, small_world):
    end = START + timedelta(weeks=1)
    for source in ("email", "web"):
        extract_source(source, fresh_db, START, end, landing_url=str(small_world["landing"]))
    before = counts(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        state_before = conn.execute(
            "select stream, watermark from raw._state order by 1"
        ).fetchall()
    assert before["sendgrid_events"] > 0 and before["segment_events"] > 0

    again = [
        extract_source(s, fresh_db, START, end, landing_url=str(small_world["landing"]))[0]
        for s in ("email", "web")
    ]
    assert [s.loaded for s in again] == [0, 0]
    assert counts(fresh_db) == before
    with psycopg.connect(fresh_db) as conn:
        assert (
            conn.execute("select stream, watermark from raw._state order by 1").fetchall()
            == state_before
        )


def test_the_same_email_event_delivered_twice_is_stored_once(fresh_db, small_world):
    world = small_world["world"]
    delivered_twice = len(world.email_events) - len(
        {json.dumps(e, sort_keys=True) for e in world.email_events}
    )
    assert delivered_twice > 0, "the simulator should deliver some events twice"
    stats = extract_source(
        "email",
        fresh_db,
        START,
        START + timedelta(weeks=2),
        landing_url=str(small_world["landing"]),
    )
    assert stats[0].loaded == len(world.email_events) - delivered_twice
    assert stats[0].duplicates == delivered_twice


def test_a_file_with_broken_lines_loads_the_good_ones_and_quarantines_the_rest(fresh_db, tmp_path):
    good = [
        {
            "type": "page",
            "messageId": f"m{i}",
            "anonymousId": "a1",
            "timestamp": "2026-10-05T10:00:00.000Z",
        }
        for i in range(5)
    ]
    broken = [
        '{"type": "page", "messageId": "oops"',  # broken JSON
        json.dumps(
            {"type": "page", "anonymousId": "a1", "timestamp": "2026-10-05T10:00:00Z"}
        ),  # no key
        json.dumps(
            {
                "type": "page",
                "messageId": "m9",
                "anonymousId": "a",
                "timestamp": "1850-01-01T00:00:00Z",
            }
        ),
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_text(
        "\n".join([*map(json.dumps, good[:3]), *broken, *map(json.dumps, good[3:])]) + "\n"
    )
    result = run_cli("load", "web", str(path), "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "loaded": 5,
        "duplicates": 0,
        "quarantined": 3,
        "erased": 0,
    }
    assert "WARNING" in result.stderr and "quarantined" in result.stderr
    with psycopg.connect(fresh_db) as conn:
        reasons = [r[0] for r in conn.execute("select reason from raw._quarantine order by id")]
        assert conn.execute("select count(*) from raw.segment_events").fetchone()[0] == 5
    assert any("broken JSON" in r for r in reasons)
    assert any("messageId" in r for r in reasons)
    assert any("impossible timestamp" in r for r in reasons)

    second = run_cli("load", "web", str(path), "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert json.loads(second.stdout.strip().splitlines()[-1])["loaded"] == 0


def _segment_file(path, events) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def test_a_file_overlapping_what_is_loaded_adds_only_the_new_events_keeping_the_earliest_copy(
    fresh_db, tmp_path
):
    def event(n: int, second: int) -> dict:
        return {
            "type": "page",
            "messageId": f"m-{n}",
            "anonymousId": "a1",
            "timestamp": f"2026-10-05T10:00:{second:02d}.000Z",
            "properties": {"copy": second},
        }

    first = _segment_file(tmp_path / "first.ndjson", [event(n, 1) for n in range(4)])
    # overlaps m-2, m-3; m-4 comes twice in the same chunk (the earlier copy must win)
    second = _segment_file(
        tmp_path / "second.ndjson", [event(2, 5), event(3, 5), event(4, 9), event(4, 7)]
    )
    assert json.loads(
        run_cli("load", "web", first, "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
        .stdout.strip()
        .splitlines()[-1]
    ) == {"loaded": 4, "duplicates": 0, "quarantined": 0, "erased": 0}
    assert json.loads(
        run_cli("load", "web", second, "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
        .stdout.strip()
        .splitlines()[-1]
    ) == {"loaded": 1, "duplicates": 3, "quarantined": 0, "erased": 0}
    with psycopg.connect(fresh_db) as conn:
        kept = dict(
            conn.execute(
                "select natural_key, (payload->'properties'->>'copy')::int from raw.segment_events"
            ).fetchall()
        )
    assert kept == {"m-0": 1, "m-1": 1, "m-2": 1, "m-3": 1, "m-4": 7}


def test_payloads_are_stored_as_the_json_that_was_read(fresh_db, tmp_path):
    text = (
        '{"type":"page","messageId":"m-1","anonymousId":"a\\tb\\\\c","timestamp":"2026-10-05T10:00:00Z",'
        '"properties":{"price":1.50,"title":"caf\\u00e9 \\"quoted\\"\\nline"}}'
    )
    path = tmp_path / "one.ndjson"
    path.write_text(text + "\n")
    assert (
        run_cli("load", "web", str(path), env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db}).returncode
        == 0
    )
    with psycopg.connect(fresh_db) as conn:
        (payload,) = conn.execute("select payload from raw.segment_events").fetchone()
    assert payload == json.loads(text)


def test_a_key_taken_by_a_concurrent_loader_falls_back_to_inserting_only_the_new_ones(
    fresh_db, monkeypatch
):
    from touchpoint.extract.loader import RawLoader
    from touchpoint.sources.catalog import SEGMENT_EVENTS
    from touchpoint.sources.stream import key_record
    from touchpoint.warehouse.schema import ensure_schema

    def records(numbers):
        return [
            key_record(
                SEGMENT_EVENTS,
                {
                    "type": "page",
                    "messageId": f"m-{n}",
                    "anonymousId": "a",
                    "timestamp": "2026-10-05T10:00:00Z",
                },
                "test",
            )
            for n in numbers
        ]

    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        with RawLoader(conn, SEGMENT_EVENTS, "first") as loader:
            for r in records(range(3)):
                loader.add(r)
        # As if another loader committed m-1 and m-2 between the check and the COPY.
        monkeypatch.setattr(RawLoader, "_loaded_keys", lambda self, keys: set())
        with RawLoader(conn, SEGMENT_EVENTS, "second") as loader:
            for r in records(range(1, 6)):
                loader.add(r)
        assert (loader.stats.loaded, loader.stats.duplicates) == (3, 2)
        assert conn.execute("select count(*) from raw.segment_events").fetchone()[0] == 6


def test_making_sure_of_the_schema_waits_for_no_loader(fresh_db):
    """Every extract task makes sure of the schema while other tasks' loaders hold raw tables
    and raw._batches in open transactions. On a warehouse that has its tables and indexes the
    DDL must take no lock a loader holds against it (a parallel extract once deadlocked: a
    `create index if not exists` and an `alter table ... add column if not exists` lock the
    table even when there is nothing to do)."""
    from touchpoint.sources.catalog import ALL_STREAMS
    from touchpoint.warehouse.schema import ensure_schema

    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
    tables = ", ".join(["raw._batches", "raw._state", *(stream.table for stream in ALL_STREAMS)])
    with psycopg.connect(fresh_db) as loader, psycopg.connect(fresh_db) as other_task:
        loader.execute(
            f"lock table {tables} in row exclusive mode"
        )  # what inserts and updates take
        other_task.execute("set lock_timeout = '3s'")
        ensure_schema(other_task)  # LockNotAvailable if it waits on the loader
        other_task.commit()
        loader.rollback()
