"""Late landing files (the ledger and the lookback), events stamped in the future, and the
quarantine commands an engineer uses after a fix: ``touchpoint quarantine list|show|replay``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from helpers import run_cli
from touchpoint.extract.run import extract_source

DAY = datetime(2026, 11, 10, tzinfo=UTC)


def _events(prefix: str, count: int, at: datetime = DAY + timedelta(hours=12)) -> bytes:
    return "".join(
        json.dumps(
            {
                "type": "page",
                "messageId": f"{prefix}-{n}",
                "anonymousId": f"anon-{prefix}",
                "timestamp": (at + timedelta(minutes=n)).isoformat(),
                "properties": {"path": "/pricing"},
            }
        )
        + "\n"
        for n in range(count)
    ).encode()


def _folder(landing: Path, day: datetime) -> Path:
    folder = landing / "segment" / day.date().isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _segment_checks(url: str, day: datetime):
    """The web suite of the quality gate on one day (in-process: `dq run` is tested apart)."""
    from touchpoint.config import load_settings
    from touchpoint.quality.gx_runner import run_quality

    settings = load_settings()
    return run_quality(
        url,
        settings.expectations_dir,
        settings.var_dir / "gx",
        day,
        day + timedelta(days=1),
        only=["raw_segment_events"],
    )


def _web(url: str, landing: Path, day: datetime):
    return extract_source("web", url, day, day + timedelta(days=1), landing_url=str(landing))[0]


def test_a_file_landing_after_its_days_run_is_loaded_by_the_next_run_once(fresh_db, tmp_path):
    folder = _folder(tmp_path, DAY)
    (folder / "part-1.ndjson").write_bytes(_events("first", 5))
    assert _web(fresh_db, tmp_path, DAY).loaded == 5

    # the last upload of the day lands after midnight, after the day's run
    (folder / "part-2.ndjson").write_bytes(_events("late", 4))
    next_day = _web(fresh_db, tmp_path, DAY + timedelta(days=1))
    assert (next_day.loaded, next_day.files, next_day.late_files) == (4, 1, 1)

    again = _web(fresh_db, tmp_path, DAY + timedelta(days=2))
    assert (again.loaded, again.duplicates, again.files) == (0, 0, 0), "each file read once"

    # a file rewritten with more events is another version: read again, only the new one loads
    (folder / "part-2.ndjson").write_bytes(_events("late", 5))
    rewritten = _web(fresh_db, tmp_path, DAY + timedelta(days=3))
    assert (rewritten.loaded, rewritten.duplicates, rewritten.late_files) == (1, 4, 1)

    with psycopg.connect(fresh_db) as conn:
        ledger = conn.execute(
            "select location, folder_day, late, records, run_start from raw._files"
            " order by loaded_at, location"
        ).fetchall()
        count = conn.execute("select count(*) from raw.segment_events").fetchone()[0]
    assert count == 10
    assert [(Path(loc).name, late, records) for loc, _, late, records, _ in ledger] == [
        ("part-1.ndjson", False, 5),
        ("part-2.ndjson", True, 4),
        ("part-2.ndjson", True, 5),
    ]
    assert ledger[1][4] == DAY + timedelta(days=1)


def test_files_older_than_the_lookback_are_left_to_an_explicit_rerun(fresh_db, tmp_path):
    old_day = DAY - timedelta(days=8)
    (_folder(tmp_path, old_day) / "part-1.ndjson").write_bytes(_events("old", 3, old_day))
    assert _web(fresh_db, tmp_path, DAY).files == 0  # the default lookback is 7 days
    assert _web(fresh_db, tmp_path, old_day).loaded == 3


def test_late_files_are_counted_by_the_cli_and_warned_of_by_the_quality_check(fresh_db, tmp_path):
    folder = _folder(tmp_path, DAY)
    env = {"TOUCHPOINT_WAREHOUSE_URL": fresh_db, "TOUCHPOINT_LANDING_URL": str(tmp_path)}

    def extract(day: datetime):
        run = run_cli(
            "extract",
            "web",
            "--start",
            day.isoformat(),
            "--end",
            (day + timedelta(days=1)).isoformat(),
            "--json",
            env=env,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return run

    (folder / "part-1.ndjson").write_bytes(_events("first", 5))
    extract(DAY)
    (folder / "part-2.ndjson").write_bytes(_events("late", 4))
    _folder(tmp_path, DAY + timedelta(days=1)).joinpath("part-1.ndjson").write_bytes(
        _events("next", 3, DAY + timedelta(days=1, hours=9))
    )
    run = extract(DAY + timedelta(days=1))
    totals = json.loads(run.stdout.splitlines()[-1])
    assert (totals["loaded"], totals["files"], totals["late_files"]) == (7, 2, 1), totals
    assert "late file" in run.stderr and "part-2.ndjson" in run.stderr

    report = _segment_checks(fresh_db, DAY + timedelta(days=1))
    late = [o for o in report.outcomes if o.rule_id == "raw_segment_events.no_late_files"]
    assert late and late[0].severity == "warning" and not late[0].success
    assert not report.critical_failures, "a late file warns, it does not close the gate"


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_an_event_stamped_in_the_future_is_quarantined_then_replayed_after_a_fix(
    fresh_db, tmp_path
):
    folder = _folder(tmp_path, DAY)
    (folder / "part-1.ndjson").write_bytes(
        _events("now", 2) + _events("clock", 1, DAY + timedelta(days=20))
    )
    env = {"TOUCHPOINT_WAREHOUSE_URL": fresh_db, "TOUCHPOINT_LANDING_URL": str(tmp_path)}
    interval = ["--start", DAY.isoformat(), "--end", (DAY + timedelta(days=1)).isoformat()]
    assert run_cli("extract", "web", *interval, env=env).returncode == 0

    # the gate judges what was accepted: the future event is not there to close it
    outcomes = {o.rule_id: o.success for o in _segment_checks(fresh_db, DAY).outcomes}
    assert outcomes["raw_segment_events.no_future_timestamps"] is True

    listing = run_cli("quarantine", "list", "--stream", "segment_events", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "ahead of its receipt" in listing.stdout and "1 of 1 matching" in listing.stdout
    record_id = listing.stdout.split()[0]
    shown = run_cli("quarantine", "show", record_id, env=env)
    assert '"messageId": "clock-0"' in shown.stdout and "replayed:    no" in shown.stdout

    # replayed as it is: still refused, and the row stays
    same = run_cli("quarantine", "replay", record_id, env=env)
    assert "replayed 0" in same.stdout and "still refused" in same.stdout
    # after the fix (a device whose clock is 20 days ahead is to be trusted, say)
    fixed = run_cli(
        "quarantine",
        "replay",
        "--reason",
        "ahead of its receipt",
        env={**env, "TOUCHPOINT_FUTURE_TOLERANCE_HOURS": str(21 * 24)},
    )
    assert "replayed 1: loaded 1" in fixed.stdout, fixed.stdout + fixed.stderr
    twice = run_cli("quarantine", "replay", "--all", env=env)
    assert "replayed 0" in twice.stdout
    with psycopg.connect(fresh_db) as conn:
        keys = [k for (k,) in conn.execute("select natural_key from raw.segment_events")]
    assert sorted(keys) == ["clock-0", "now-0", "now-1"]
    after = run_cli("quarantine", "list", env=env)
    assert "0 of 0 matching" in after.stdout
    replayed = run_cli("quarantine", "list", "--replayed", env=env)
    assert "(replayed " in replayed.stdout


@pytest.mark.parametrize("bad", [["replay"], ["show", "999999"], ["list", "--stream", "nope"]])
def test_quarantine_commands_refuse_what_they_cannot_do_in_one_line(fresh_db, bad):
    run = run_cli("quarantine", *bad, env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "error:" in run.stderr.strip().splitlines()[-1], run.stderr
