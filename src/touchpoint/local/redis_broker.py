"""A Redis server on loopback: the Celery broker of a local scale-out Airflow.

Debian's ``redis-server`` is installed with apt-get (as root) when missing, like the
PostgreSQL binaries of the embedded cluster. The server keeps nothing on disk (no RDB
snapshots, no AOF): a broker's queue is transient, and its files stay under the given folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Self

from touchpoint.errors import TouchpointError
from touchpoint.local.cluster import port_in_use

_PACKAGE = "redis-server"


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )


def ensure_redis_server(log=print) -> str:
    """Return the path of ``redis-server``, installing Debian's package first if it is missing."""
    found = find_redis_server()
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("redis-server not found: installing Debian's redis-server package")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", _PACKAGE]):
            if subprocess.run(cmd, env=env, check=False).returncode != 0:
                break
        found = find_redis_server()
        if found:
            return found
    raise TouchpointError(
        "redis-server not found and could not be installed; install it "
        "(apt-get install redis-server) or point AIRFLOW__CELERY__BROKER_URL at an existing Redis"
    )


class RedisServer:
    """``redis-server`` on 127.0.0.1:PORT in the foreground of a child process; a context
    manager."""

    def __init__(self, port: int, work_dir: Path, log=print) -> None:
        self.port = port
        self.work_dir = work_dir
        self.log_file = work_dir / "redis.log"
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        binary = ensure_redis_server(self._log)
        if port_in_use(self.port):
            raise TouchpointError(
                f"port {self.port} on 127.0.0.1 is already in use; choose another port for Redis"
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--dir",
                str(self.work_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                str(self.log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not port_in_use(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else "no log"
                raise TouchpointError(
                    f"redis-server did not start on port {self.port}; see {self.log_file}:\n{tail}"
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
