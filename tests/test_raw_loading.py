"""Extraction into the raw layer: file formats, idempotence, quarantine, watermarks."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import psycopg

from conftest import SIM_START, run_cli
from touchpoint.extract.landing import folder_day, read_items
from touchpoint.extract.run import extract_source

START = datetime.combine(SIM_START, datetime.min.time(), UTC)


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0]
                for t in ("sendgrid_events", "segment_events", "_quarantine")}


def test_json_arrays_ndjson_and_gzip_are_all_read_record_by_record(tmp_path):
    events = [{"event": "open", "n": i} for i in range(5)]
    (tmp_path / "a.json").write_text(json.dumps(events))
    (tmp_path / "b.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    (tmp_path / "c.json.gz").write_bytes(gzip.compress(json.dumps(events).encode()))
    (tmp_path / "d.ndjson.gz").write_bytes(gzip.compress("\n".join(json.dumps(e) for e in events).encode()))
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
        state_before = conn.execute("select stream, watermark from raw._state order by 1").fetchall()
    assert before["sendgrid_events"] > 0 and before["segment_events"] > 0

    again = [extract_source(s, fresh_db, START, end, landing_url=str(small_world["landing"]))[0]
             for s in ("email", "web")]
    assert [s.loaded for s in again] == [0, 0]
    assert counts(fresh_db) == before
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select stream, watermark from raw._state order by 1").fetchall() == state_before


def test_the_same_email_event_delivered_twice_is_stored_once(fresh_db, small_world):
    world = small_world["world"]
    delivered_twice = len(world.email_events) - len({json.dumps(e, sort_keys=True) for e in world.email_events})
    assert delivered_twice > 0, "the simulator should deliver some events twice"
    stats = extract_source("email", fresh_db, START, START + timedelta(weeks=2), landing_url=str(small_world["landing"]))
    assert stats[0].loaded == len(world.email_events) - delivered_twice
    assert stats[0].duplicates == delivered_twice


def test_a_file_with_broken_lines_loads_the_good_ones_and_quarantines_the_rest(fresh_db, tmp_path):
    good = [{"type": "page", "messageId": f"m{i}", "anonymousId": "a1",
             "timestamp": "2026-10-05T10:00:00.000Z"} for i in range(5)]
    broken = [
        '{"type": "page", "messageId": "oops"',                                   # broken JSON
        json.dumps({"type": "page", "anonymousId": "a1", "timestamp": "2026-10-05T10:00:00Z"}),  # no key
        json.dumps({"type": "page", "messageId": "m9", "anonymousId": "a", "timestamp": "1850-01-01T00:00:00Z"}),
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join([*map(json.dumps, good[:3]), *broken, *map(json.dumps, good[3:])]) + "\n")
    result = run_cli("load", "web", str(path), "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"loaded": 5, "duplicates": 0, "quarantined": 3}
    assert "WARNING" in result.stderr and "quarantined" in result.stderr
    with psycopg.connect(fresh_db) as conn:
        reasons = [r[0] for r in conn.execute("select reason from raw._quarantine order by id")]
        assert conn.execute("select count(*) from raw.segment_events").fetchone()[0] == 5
    assert any("broken JSON" in r for r in reasons)
    assert any("messageId" in r for r in reasons)
    assert any("impossible timestamp" in r for r in reasons)

    second = run_cli("load", "web", str(path), "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert json.loads(second.stdout.strip().splitlines()[-1])["loaded"] == 0
