"""`touchpoint simulate` shows its progress when asked (or on a terminal) and stays quiet in logs
and pipes; drawing it changes nothing in the world it writes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from helpers import run_cli

CUSTOMERS = 200
#: the progress lines of a simulation with return visits, in the order they are drawn
STEPS = (
    "simulating journeys",
    "simulating return visits",
    "writing SendGrid batches",
    "writing Segment files",
    "writing CRM objects",
)
BAR_GLYPHS = ("━", "╸", "╺")  # what rich draws a bar with


def _simulate(root: Path, progress: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(
        "simulate",
        "--customers",
        str(CUSTOMERS),
        "--weeks",
        "2",
        "--return-visits-per-week",
        "1",
        "--landing",
        str(root / "landing"),
        "--out",
        str(root / "sim"),
        # "" is neither 0 nor 1: the terminal decides (here a captured pipe)
        env={"TOUCHPOINT_PROGRESS": progress, "AIRFLOW_CTX_DAG_ID": ""},
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """The same world simulated twice: with TOUCHPOINT_PROGRESS=1, and by default (captured)."""
    out = {}
    for name, progress in (("forced", "1"), ("default", "")):
        root = tmp_path_factory.mktemp(name)
        out[name] = root, _simulate(root, progress)
    return out


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_with_touchpoint_progress_1_simulate_draws_every_step_on_stderr(runs):
    _, result = runs["forced"]
    for step in STEPS:
        assert step in result.stderr
    assert any(glyph in result.stderr for glyph in BAR_GLYPHS)
    assert f"{CUSTOMERS}/{CUSTOMERS}" in result.stderr  # every customer's journey counted
    assert result.stderr.index(STEPS[0]) < result.stderr.index(STEPS[2])  # simulated, then written


def test_the_summary_stays_on_stdout_without_any_bar(runs):
    for _, result in runs.values():
        assert result.stdout.startswith(f"simulated {CUSTOMERS} customers over 2 weeks")
        assert not any(glyph in result.stdout for glyph in BAR_GLYPHS)
        assert "\x1b[" not in result.stdout


def test_without_a_terminal_simulate_prints_no_progress(runs):
    _, result = runs["default"]
    assert result.stderr == ""


def test_drawing_progress_changes_nothing_in_the_world_written(runs):
    forced, default = runs["forced"][0], runs["default"][0]
    assert _files(forced) == _files(default)
    assert len(_files(forced)) > 10
