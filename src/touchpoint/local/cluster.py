"""The embedded PostgreSQL cluster under ``var/pg``.

Used only when ``TOUCHPOINT_WAREHOUSE_URL`` is unset. The cluster listens on 127.0.0.1 at a
non-default port, has no Unix socket (so no system directory is touched), and runs as the
``postgres`` system user when this process is root, because PostgreSQL refuses to run as root.

It is durable and private: PostgreSQL's own defaults for durability (fsync, full-page writes,
synchronous commit: a crash loses no committed row, the delivery ledger included), and
password authentication (scram-sha-256) with a password generated at its creation, kept in
``var/pg/password`` readable by its owner only. A cluster made before (trusting every local
connection) gets a password and the same rule when it is next started.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from touchpoint.config import Settings
from touchpoint.errors import WarehouseError

_SEARCH_GLOB = "/usr/lib/postgresql/*/bin"
_SERVICE_USER = "postgres"


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    url: str
    data_dir: Path
    detail: str


def _is_root() -> bool:
    return os.geteuid() == 0


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return (int(path.parent.name),)
    except ValueError:
        return (0,)


def find_pg_bin(settings: Settings) -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None if absent."""
    if settings.pg_bin:
        candidate = Path(settings.pg_bin)
        return candidate if (candidate / "pg_ctl").exists() else None
    found = sorted(Path("/").glob(_SEARCH_GLOB.lstrip("/")), key=_version_key, reverse=True)
    for candidate in found:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    on_path = shutil.which("pg_ctl")
    if on_path and Path(on_path).with_name("initdb").exists():
        return Path(on_path).parent
    return None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class EmbeddedCluster:
    """Start, stop and inspect the project's own PostgreSQL cluster."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.pg_data_dir
        self.log_file = settings.pg_log_file
        self.port = settings.pg_port

    # -- public ---------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        bin_dir = find_pg_bin(self.settings)
        url = self.settings.embedded_url
        if not (self.data_dir / "PG_VERSION").exists():
            return ClusterStatus(False, url, self.data_dir, "not initialised")
        if bin_dir is None:
            return ClusterStatus(False, url, self.data_dir, "PostgreSQL binaries not found")
        result = self._run(
            [str(bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
        )
        running = result.returncode == 0
        return ClusterStatus(running, url, self.data_dir, "running" if running else "stopped")

    def start(self, log=print) -> ClusterStatus:
        """Start the cluster, initialising it first if needed. Idempotent."""
        bin_dir = self._ensure_binaries(log)
        self._check_data_dir_owner()
        current = self.status()
        if current.running:
            self._require_password(bin_dir, log)
            self._ensure_database(bin_dir)
            return current
        if port_in_use(self.port):
            raise WarehouseError(
                f"port {self.port} on 127.0.0.1 is already in use by another process; "
                f"set TOUCHPOINT_PG_PORT to a free port (or stop that process)"
            )
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, log)
        log(f"starting PostgreSQL on 127.0.0.1:{self.port} (data in {self.data_dir})")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        result = self._run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
            ],
            check=False,
        )
        if result.returncode != 0:
            raise WarehouseError(
                f"PostgreSQL did not start: {self._last_log_line()}; see {self.log_file}"
            )
        self._require_password(bin_dir, log)
        self._ensure_database(bin_dir)
        return self.status()

    def stop(self) -> ClusterStatus:
        bin_dir = find_pg_bin(self.settings)
        current = self.status()
        if current.running and bin_dir is not None:
            self._run(
                [str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)]
            )
        return self.status()

    # -- steps ----------------------------------------------------------------------------
    def _ensure_binaries(self, log) -> Path:
        bin_dir = find_pg_bin(self.settings)
        if bin_dir is not None:
            return bin_dir
        if self.settings.pg_bin:
            raise WarehouseError(
                f"TOUCHPOINT_PG_BIN={self.settings.pg_bin} holds no pg_ctl/initdb; point it at "
                f"PostgreSQL's bin directory, or unset it to use Debian's postgresql package"
            )
        if _is_root() and shutil.which("apt-get"):
            log("PostgreSQL server binaries not found: installing Debian's postgresql package")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            for cmd in (
                ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "postgresql"],
            ):
                if subprocess.run(cmd, env=env, check=False).returncode != 0:
                    break
            bin_dir = find_pg_bin(self.settings)
            if bin_dir is not None:
                return bin_dir
        raise WarehouseError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found and could not be installed; "
            "install them (apt-get install postgresql), set TOUCHPOINT_PG_BIN, "
            "or set TOUCHPOINT_WAREHOUSE_URL to an existing server"
        )

    def _service_user(self) -> str:
        return _SERVICE_USER if _is_root() else pwd.getpwuid(os.geteuid()).pw_name

    def _check_data_dir_owner(self) -> None:
        user = self._service_user()
        if _is_root():
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise WarehouseError(
                    "running as root but there is no 'postgres' system user to run PostgreSQL; "
                    "install Debian's postgresql package or run as a normal user"
                ) from None
        if self.data_dir.exists():
            owner = pwd.getpwuid(self.data_dir.stat().st_uid).pw_name
            if owner != user:
                raise WarehouseError(
                    f"data directory {self.data_dir} is owned by {owner!r} but the cluster runs as "
                    f"{user!r}; fix with: chown -R {user} {self.data_dir} "
                    "(or remove it to start afresh)"
                )
        # PostgreSQL must be able to reach its data directory through every parent.
        probe = self.data_dir.parent
        probe.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(probe, user)
            check = subprocess.run(
                ["runuser", "-u", user, "--", "test", "-w", str(probe)], check=False
            )
            if check.returncode != 0:
                raise WarehouseError(
                    f"user {user!r} cannot reach {probe} (a parent directory is not traversable); "
                    f"move the repository somewhere world-readable or set TOUCHPOINT_VAR_DIR"
                )

    def _new_password(self) -> str:
        """Generate the login password and keep it in ``pg_password_file`` (0600)."""
        password = secrets.token_urlsafe(24)
        path = self.settings.pg_password_file
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(password + "\n")
        os.chmod(path, 0o600)
        return password

    def _initdb(self, bin_dir: Path, log) -> None:
        log(f"initialising PostgreSQL cluster in {self.data_dir}")
        password = self._new_password()
        # initdb runs as the service user: it reads the password from a file of that user's own
        handover = self.data_dir.parent / f".initdb-{secrets.token_hex(4)}"
        descriptor = os.open(handover, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(password + "\n")
        try:
            if _is_root():
                shutil.chown(handover, _SERVICE_USER)
            result = self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.settings.pg_user,
                    f"--pwfile={handover}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                check=False,
            )
        finally:
            handover.unlink(missing_ok=True)
        if result.returncode != 0:
            raise WarehouseError(
                f"initdb failed for {self.data_dir}: {result.stderr.strip().splitlines()[-1:]}"
            )

    def _require_password(self, bin_dir: Path, log) -> None:
        """A cluster made before passwords (``trust`` in pg_hba.conf): give its login user a
        password, then require it (scram-sha-256) and reload."""
        hba = self.data_dir / "pg_hba.conf"
        rules = self._run(["cat", str(hba)]).stdout
        if not any(
            line.split()[-1:] == ["trust"]
            for line in rules.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ):
            return
        import psycopg

        log("this cluster trusted every local connection: setting a password and requiring it")
        with psycopg.connect(
            f"postgresql://{self.settings.pg_user}@127.0.0.1:{self.port}/postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            password = self._new_password()
            conn.execute("set password_encryption = 'scram-sha-256'")
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(self.settings.pg_user), sql.Literal(password)
                )
            )
        secured = "\n".join(
            line.rsplit("trust", 1)[0] + "scram-sha-256"
            if line.strip() and not line.lstrip().startswith("#") and line.split()[-1] == "trust"
            else line
            for line in rules.splitlines()
        )
        self._run(["sh", "-c", 'umask 077 && cat > "$0"', str(hba)], stdin=secured + "\n")
        self._run([str(bin_dir / "pg_ctl"), "reload", "-D", str(self.data_dir)])

    def _ensure_database(self, bin_dir: Path) -> None:
        """Create the configured database if it does not exist yet."""
        import psycopg

        admin_url = self.settings.embedded_url_for("postgres")
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (self.settings.pg_database,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{self.settings.pg_database}"')

    # -- helpers --------------------------------------------------------------------------
    def _run(
        self, cmd: list[str], check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if _is_root():
            cmd = ["runuser", "-u", _SERVICE_USER, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, input=stdin)
        if check and result.returncode != 0:
            raise WarehouseError(f"{Path(cmd[-1]).name} failed: {result.stderr.strip()}")
        return result

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text().splitlines() if ln.strip()]
        except OSError:
            return "no log written"
        errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
        return (errors or lines or ["no log written"])[-1]


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port, host):
            return True
        time.sleep(0.1)
    return False
