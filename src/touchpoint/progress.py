"""Progress bars for long commands: drawn on a terminal, silent in logs, pipes and Airflow."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# TOUCHPOINT_PROGRESS=1 draws bars even when stderr is not a terminal, =0 never draws them.
_ENV = "TOUCHPOINT_PROGRESS"


def shown() -> bool:
    """Whether bars are drawn: on a terminal, never inside an Airflow task (its log is a file)."""
    wanted = os.environ.get(_ENV, "")
    if wanted in ("0", "1"):
        return wanted == "1"
    if os.environ.get("AIRFLOW_CTX_DAG_ID"):
        return False
    return sys.stderr.isatty()


class _RateColumn(ProgressColumn):
    """Items per second, in the task's own unit (records/s, pages/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "")
        if not speed or not unit:
            return Text("")
        return Text(f"{speed:,.0f} {unit}/s", style="progress.data.speed")


class Step:
    """One line of progress; does nothing when bars are not shown."""

    def __init__(self, bars: Progress | None, task: TaskID | None) -> None:
        self._bars, self._task = bars, task

    def advance(self, amount: float = 1) -> None:
        if self._bars is not None and self._task is not None:
            self._bars.advance(self._task, amount)

    def update(self, **fields: Any) -> None:
        """Change ``total``, ``completed`` or ``description`` (rich's names) while it runs."""
        if self._bars is not None and self._task is not None:
            self._bars.update(self._task, **fields)


_active: Progress | None = None


@contextmanager
def progress(description: str, total: float | None = None, unit: str = "") -> Iterator[Step]:
    """A progress line for ``description``; nested calls add lines to the bars already shown."""
    global _active
    if not shown():
        yield Step(None, None)
        return
    if _active is not None:
        task = _active.add_task(description, total=total, unit=unit)
        try:
            yield Step(_active, task)
        finally:
            _active.remove_task(task)
        return
    bars = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, force_terminal=os.environ.get(_ENV) == "1" or None),
        transient=False,
        # Lines printed while bars are drawn go above them on a terminal, but straight into stdout
        # when it is a file or a pipe (a log kept with `> file` must get them).
        redirect_stdout=sys.stdout.isatty(),
        redirect_stderr=False,
    )
    _active = bars
    try:
        with bars:
            yield Step(bars, bars.add_task(description, total=total, unit=unit))
    finally:
        _active = None
