"""Running a stage in a child process: its wall time, its peak RSS, its output."""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from touchpoint.progress import progress as bar

#: touchpoint.progress's switch: 0 draws no bars
NO_BARS = {"TOUCHPOINT_PROGRESS": "0"}


class StageFailed(RuntimeError):
    """A measured child process exited non-zero."""


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a running process: the peak RSS of its own address space. (``ru_maxrss`` from
    ``wait4`` would not do: Linux keeps the high-water mark across exec, so a child started by a
    large parent reports the parent's size.)"""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


def run_measured(
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 3600,
) -> Measured:
    """Run ``cmd``; its wall time, and its peak RSS sampled every 10 ms from /proc (that of the
    process itself; a grandchild is not counted). The child never draws progress bars, even
    when TOUCHPOINT_PROGRESS=1 asks the bench for them: drawing is not part of what is measured."""
    env = {**(os.environ if env is None else env), **NO_BARS}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=cwd, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _peak_rss_mb(proc.pid) or 0.0)
            if time.perf_counter() - started > timeout:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = (stderr.strip() or stdout.strip() or "no output").splitlines()[-5:]
        raise StageFailed(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: " + " | ".join(tail))
    return Measured(seconds, peak, stdout, stderr)


def _report(
    progress: Callable[[str], None], label: str, n: int, times: int, result: dict[str, Any]
) -> None:
    progress(
        f"  {label} run {n + 1}/{times}: "
        + ", ".join(
            f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in result.items()
            if isinstance(v, int | float)
        )
    )


def repeated(
    times: int,
    once: Callable[[], dict[str, Any]],
    progress: Callable[[str], None],
    label: str,
    before: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Run ``once`` ``times`` times (``before`` ahead of each); the result holds the median of
    every number and the runs."""
    runs = []
    with bar(f"{label} runs", total=times) as done:
        for n in range(times):
            before()
            result = once()
            _report(progress, label, n, times, result)
            runs.append(result)
            done.advance()
    return summarise(runs)


def side_by_side(
    times: int,
    contenders: dict[str, Callable[[], dict[str, Any]]],
    progress: Callable[[str], None],
    before: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, Any]]:
    """Run every contender once per round, ``times`` rounds (``before`` ahead of each run): the
    machine's slow spells fall on all of them alike, so their ratio holds when a shared machine
    does not. The result holds each contender's medians and runs."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in contenders}
    with bar("runs", total=times * len(contenders)) as done:
        for n in range(times):
            for label, once in contenders.items():
                done.update(description=f"{label} run {n + 1}/{times}")
                before()
                result = once()
                _report(progress, label, n, times, result)
                runs[label].append(result)
                done.advance()
    return {label: summarise(results) for label, results in runs.items()}


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes that draw no progress bars: the parent draws them, and workers sharing
    its terminal would draw over them. Spawned, not forked: a fork taken while the parent's bars
    are drawing would copy their thread's locks, held, into the worker."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_no_bars
    )


def _no_bars() -> None:
    os.environ.update(NO_BARS)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number of ``runs``, other values from the first, and the runs."""
    times = len(runs)
    summary: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            summary[key] = statistics.median(r[key] for r in runs)
        else:
            summary[key] = value
    summary["repetitions"] = times
    summary["runs"] = runs
    return summary
