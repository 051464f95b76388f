"""Background helper processes (the local SMTP sink) tracked by a pid file under ``var/run``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from touchpoint.errors import TouchpointError
from touchpoint.local.cluster import port_in_use, wait_for_port


def _read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def running_pid(pid_file: Path) -> int | None:
    return _read_pid(pid_file)


def start_background(name: str, args: list[str], pid_file: Path, log_file: Path, port: int) -> int:
    """Start ``python -m touchpoint <args>`` detached, unless it already runs. Returns its pid."""
    pid = _read_pid(pid_file)
    if pid is not None and port_in_use(port):
        return pid
    if port_in_use(port):
        raise TouchpointError(
            f"port {port} on 127.0.0.1 is already in use by another process, so the {name} cannot "
            f"start; stop that process or choose another port"
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "touchpoint", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    if not wait_for_port(port, timeout=15):
        proc.poll()
        raise TouchpointError(f"the {name} did not start listening on port {port}; see {log_file}")
    return proc.pid


def stop_background(pid_file: Path, timeout: float = 10.0) -> bool:
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _read_pid(pid_file) is not None:
        time.sleep(0.1)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    pid_file.unlink(missing_ok=True)
    return True
