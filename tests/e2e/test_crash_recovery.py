"""The embedded warehouse killed hard (``kill -9`` of the postmaster) in the middle of a load:
after a restart and a re-run, nothing is lost, nothing is there twice, and the delivery ledger
holds what it held."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from helpers import TEST_VAR, free_port, run_cli
from touchpoint.delivery.deliver import RetryPolicy, deliver
from touchpoint.delivery.message import RenderedReport
from touchpoint.delivery.recipients import Recipient
from touchpoint.delivery.smtp import SmtpSettings
from touchpoint.local.mail_sink import MailSink
from touchpoint.warehouse.schema import ensure_schema

pytestmark = pytest.mark.slow

DAY = datetime(2026, 10, 7, tzinfo=UTC)
EVENTS = 80_000


@pytest.fixture
def own_cluster():
    var = TEST_VAR / "clusters" / uuid.uuid4().hex[:8]
    var.mkdir(parents=True)
    env = {"TOUCHPOINT_VAR_DIR": str(var), "TOUCHPOINT_PG_PORT": str(free_port())}
    started = run_cli("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    yield var, env
    run_cli("db", "stop", env=env)
    shutil.rmtree(var, ignore_errors=True)


def _landing(var) -> int:
    folder = var / "landing" / "segment" / DAY.date().isoformat()
    folder.mkdir(parents=True)
    with (folder / "part-0000.ndjson").open("w") as out:
        for n in range(EVENTS):
            moment = DAY + timedelta(seconds=n % 86_000)
            out.write(
                json.dumps(
                    {
                        "type": "page",
                        "messageId": f"crash-{n}",
                        "anonymousId": f"device-{n % 997}",
                        "timestamp": moment.isoformat(),
                        "properties": {"path": f"/p/{n % 50}", "title": "x" * 200},
                    }
                )
                + "\n"
            )
    return EVENTS


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from raw.segment_events").fetchone()[0]


def test_a_postmaster_killed_mid_load_loses_nothing_and_duplicates_nothing(own_cluster, tmp_path):
    var, env = own_cluster
    url = run_cli("db", "url", env=env).stdout.strip()
    total = _landing(var)
    env = {**env, "TOUCHPOINT_LANDING_URL": str(var / "landing")}

    # a report already sent: its ledger rows must survive the crash
    with psycopg.connect(url) as conn, MailSink(tmp_path / "mail", port=free_port()) as sink:
        ensure_schema(conn)
        conn.commit()
        people = (Recipient("a@example.com", "A"), Recipient("b@example.com", "B"))
        report = RenderedReport(subject="Week", html="<p>w</p>", text="w\n")
        smtp = SmtpSettings(host="127.0.0.1", port=sink.port, timeout=5)
        quick = RetryPolicy(attempts=2, first_delay=0.01)
        sent = deliver(conn, smtp, "weekly", "2026-W41", "r@example.com", people, lambda r: report,
                       policy=quick)  # fmt: skip
        assert [d.newly_sent for d in sent] == [True, True]

    interval = ["--start", DAY.isoformat(), "--end", (DAY + timedelta(days=1)).isoformat()]
    load = subprocess.Popen(
        [sys.executable, "-m", "touchpoint", "extract", "web", *interval],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _count(url) == 0:  # the first chunks are committed
        time.sleep(0.05)
    _killed_at = _count(url)
    postmaster = int((var / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    # the postmaster and every backend at once, as a crash of the machine would (a backend
    # left alone notices its postmaster's death only when it next waits)
    for pid in [postmaster, *_children(postmaster)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # a backend that ended meanwhile
            pass
    _, stderr = load.communicate(timeout=120)
    assert load.returncode != 0, (_killed_at, stderr[-1500:])
    assert "Traceback" not in stderr, stderr[-2000:]

    for _ in range(50):  # the backends notice the postmaster's death and go
        restarted = run_cli("db", "start", env=env)
        if restarted.returncode == 0:
            break
        time.sleep(0.2)
    assert restarted.returncode == 0, restarted.stderr
    committed = _count(url)
    assert 0 < committed < total, "the crash came in the middle of the load"

    rerun = run_cli("extract", "web", *interval, "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    totals = json.loads(rerun.stdout.splitlines()[-1])
    assert totals["loaded"] + totals["duplicates"] == total
    assert totals["loaded"] == total - committed
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "select count(*), count(distinct natural_key) from raw.segment_events"
        ).fetchone() == (total, total)
        ledger = conn.execute(
            "select recipient, status from reporting.deliveries where period = '2026-W41'"
            " order by 1"
        ).fetchall()
        files = conn.execute("select count(*), sum(records) from raw._files").fetchone()
    assert ledger == [("a@example.com", "sent"), ("b@example.com", "sent")]
    assert files == (1, total), "the file is in the ledger once, read whole"
