"""`make airflow`: Airflow's UI on the project's DAGs, with the embedded cluster as its metadata
database, comes up with every DAG listed and no import errors, and stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import free_port


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


@pytest.mark.slow
def test_the_airflow_ui_lists_both_dags_with_no_import_errors(cluster_url, settings, tmp_path):
    port = free_port()
    log = tmp_path / "airflow-ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "touchpoint", "airflow", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_PROXY": "127.0.0.1"},
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api/v2"
    try:
        deadline = time.monotonic() + 120
        dags: set[str] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            listed = _get(f"{api}/dags")
            dags = {d["dag_id"] for d in (listed or {}).get("dags", [])}
            if {"touchpoint_ingest", "touchpoint_weekly_report"} <= dags:
                break
            time.sleep(1)
        tail = log.read_text(errors="replace")[-4000:]
        assert dags == {"touchpoint_ingest", "touchpoint_weekly_report"}, (
            f"DAGs listed: {dags}\n{tail}"
        )
        errors = _get(f"{api}/importErrors")
        assert errors is not None and errors["total_entries"] == 0, f"{errors}\n{tail}"
        assert (settings.var_dir / "airflow-ui" / "airflow.cfg").exists()
    finally:
        # Ctrl-C: SIGINT to the foreground process group, as a terminal sends it
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        text = log.read_text(errors="replace")
        standalone = re.search(r"standalone pid (\d+)", text)
        left = (
            standalone
            and subprocess.run(
                ["ps", "-o", "pid,stat,args", "-s", standalone[1]],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        )
        if standalone and left.count("\n"):
            os.killpg(int(standalone[1]), signal.SIGKILL)
    assert code == 0 and not (left and left.count("\n")), (
        f"after Ctrl-C: exit {code}, left:\n{left}\n{text[-3000:]}"
    )
