"""The bench's log lines: on stdout, and in its file when stdout is one, also under progress bars."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """Print ``message`` on stdout. While bars are drawn, rich sends what is printed through the
    bars' console (stderr), so that lines and bars do not tangle on a terminal; when stdout is a
    file or a pipe, the line goes straight to it, where the log is kept."""
    stdout = sys.__stdout__
    print(message, file=sys.stdout if stdout is None or stdout.isatty() else stdout, flush=True)
