"""`touchpoint db start|stop|status|url` and its one-line errors for bad set-ups."""

from __future__ import annotations

import os
import shutil
import socket
import uuid

import psycopg
import pytest

from helpers import TEST_VAR, free_port, run_cli


@pytest.fixture
def own_var():
    """A var dir of its own (under the repo, so the postgres user can reach it)."""
    path = TEST_VAR / "clusters" / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    yield path
    run_cli("db", "stop", env={"TOUCHPOINT_VAR_DIR": str(path)})
    shutil.rmtree(path, ignore_errors=True)


def _with_password(url: str, password: str | None) -> str:
    params = psycopg.conninfo.conninfo_to_dict(url)
    params.pop("password", None)
    return psycopg.conninfo.make_conninfo(**params, **({"password": password} if password else {}))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("touchpoint: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_db_lifecycle_start_is_idempotent_status_and_url_work_and_stop_stops(own_var):
    env = {"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_PG_PORT": str(free_port())}
    first = run_cli("db", "start", env=env)
    assert first.returncode == 0, first.stderr
    assert "running" in first.stdout
    again = run_cli("db", "start", env=env)
    assert again.returncode == 0 and "running" in again.stdout
    assert "initialising" not in again.stderr

    url = run_cli("db", "url", env=env).stdout.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)

    status = run_cli("db", "status", env=env)
    password = psycopg.conninfo.conninfo_to_dict(url)["password"]
    assert status.returncode == 0 and "running" in status.stdout
    assert url.replace(f":{password}@", ":***@") in status.stdout and password not in status.stdout

    stopped = run_cli("db", "stop", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    status = run_cli("db", "status", env=env)
    assert status.returncode == 3 and "stopped" in status.stdout and password not in status.stdout
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)


def test_the_embedded_cluster_is_durable_and_requires_its_generated_password(own_var):
    env = {"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_PG_PORT": str(free_port())}
    started = run_cli("db", "start", env=env)
    assert started.returncode == 0
    url = run_cli("db", "url", env=env).stdout.strip()
    password_file = own_var / "pg" / "password"
    secret = password_file.read_text().strip()
    assert secret not in started.stdout + started.stderr, "only `db url` prints it"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == password_file.read_text().strip()
    with psycopg.connect(url) as conn:
        settings = {
            name: conn.execute(f"show {name}").fetchone()[0]
            for name in ("fsync", "full_page_writes", "synchronous_commit", "password_encryption")
        }
    assert settings == {
        "fsync": "on",
        "full_page_writes": "on",
        "synchronous_commit": "on",
        "password_encryption": "scram-sha-256",
    }
    for wrong in (None, "not-the-password"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_with_password(url, wrong), connect_timeout=5)


def test_a_cluster_made_trusting_every_local_user_gets_a_password_when_started(own_var):
    """Clusters made before passwords (initdb --auth=trust) are secured on their next start."""
    from touchpoint.config import load_settings
    from touchpoint.local.cluster import EmbeddedCluster, find_pg_bin

    env = {"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_PG_PORT": str(free_port())}
    settings = load_settings()
    bin_dir = find_pg_bin(settings)
    data = own_var / "pg" / "data"
    data.parent.mkdir(parents=True)
    cluster = EmbeddedCluster(settings)
    if os.geteuid() == 0:
        shutil.chown(data.parent, "postgres")
    cluster._run(  # as the old code did
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "touchpoint", "--auth=trust"]
    )
    started = run_cli("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    assert "setting a password" in started.stderr
    url = run_cli("db", "url", env=env).stdout.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(_with_password(url, None), connect_timeout=5)


def test_a_port_already_in_use_is_named_with_the_fix(own_var):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "db", "start", env={"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_PG_PORT": str(port)}
        )
    assert_one_line_error(result, f"port {port}", "TOUCHPOINT_PG_PORT")


@pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to create a directory owned by another user"
)
def test_a_data_directory_owned_by_another_user_is_named_with_the_fix(own_var):
    data = own_var / "pg" / "data"
    data.mkdir(parents=True)
    os.chown(data, 65534, 65534)  # nobody
    result = run_cli(
        "db",
        "start",
        env={"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_PG_PORT": str(free_port())},
    )
    assert_one_line_error(result, str(data), "chown")


def test_missing_postgresql_binaries_are_named_with_the_fix(own_var, tmp_path):
    result = run_cli(
        "db", "start", env={"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_PG_BIN": str(tmp_path)}
    )
    assert_one_line_error(result, "TOUCHPOINT_PG_BIN", "pg_ctl")


def test_an_unreachable_external_warehouse_is_named_and_never_replaced_by_a_local_one(own_var):
    url = f"postgresql://someone@127.0.0.1:{free_port()}/warehouse"
    env = {"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_WAREHOUSE_URL": url}
    for command in ("status", "start"):
        result = run_cli("db", command, env=env)
        assert_one_line_error(result, "127.0.0.1", "TOUCHPOINT_WAREHOUSE_URL")
    assert not (own_var / "pg").exists()
    assert run_cli("db", "url", env=env).stdout.strip() == url


def test_an_external_warehouse_password_never_appears_in_errors(own_var):
    url = f"postgresql://someone:s3cret-Value@127.0.0.1:{free_port()}/warehouse"
    result = run_cli(
        "db", "status", env={"TOUCHPOINT_VAR_DIR": str(own_var), "TOUCHPOINT_WAREHOUSE_URL": url}
    )
    assert result.returncode != 0
    assert "s3cret-Value" not in result.stderr + result.stdout
