"""`touchpoint extract` shows files and records as it goes when asked (or on a terminal), and
stays quiet in logs and pipes."""

from __future__ import annotations

import pytest

from helpers import SIM_START, run_cli

BAR_GLYPHS = ("━", "╸", "╺")  # what rich draws a bar with
INTERVAL = ("--start", SIM_START.isoformat(), "--end", "2026-10-12")


@pytest.mark.parametrize(
    "source, stream", [("web", "segment_events"), ("email", "sendgrid_events")]
)
def test_with_touchpoint_progress_1_extract_counts_files_and_records(
    fresh_db, small_world, source, stream
):
    env = {
        "TOUCHPOINT_WAREHOUSE_URL": fresh_db,
        "TOUCHPOINT_LANDING_URL": str(small_world["landing"]),
    }
    drawn = run_cli("extract", source, *INTERVAL, env={**env, "TOUCHPOINT_PROGRESS": "1"})
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert f"{stream}: files" in drawn.stderr and f"{stream}: records" in drawn.stderr
    assert any(glyph in drawn.stderr for glyph in BAR_GLYPHS)
    assert not any(glyph in drawn.stdout for glyph in BAR_GLYPHS)  # the summary stays plain

    quiet = run_cli("extract", source, *INTERVAL, env={**env, "TOUCHPOINT_PROGRESS": ""})
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert f"{stream}: files" not in quiet.stderr
    assert not any(glyph in quiet.stderr + quiet.stdout for glyph in BAR_GLYPHS)
