"""Secrets in error messages: a failure names the server it could not use, never the password
or token it was given. (The whole pipeline with known secrets: test_demo_end_to_end.py.)"""

from __future__ import annotations

import uuid

from helpers import free_port, run_cli

INTERVAL = ("--start", "2026-10-05T00:00:00+00:00", "--end", "2026-10-06T00:00:00+00:00")


def test_an_unreachable_warehouse_is_named_without_its_password(tmp_path):
    password, port = f"Pw{uuid.uuid4().hex}", free_port()
    (tmp_path / "events.ndjson").write_text("{}\n")
    for command in (
        ["extract", "web", *INTERVAL],
        ["load", "web", str(tmp_path / "events.ndjson")],
    ):
        run = run_cli(
            *command,
            env={
                "TOUCHPOINT_WAREHOUSE_URL": f"postgresql://etl:{password}@127.0.0.1:{port}/wh",
                "TOUCHPOINT_LANDING_URL": str(tmp_path),
            },
        )
        assert run.returncode != 0, command
        assert f"127.0.0.1:{port}" in run.stderr, run.stderr[-2000:]
        assert password not in run.stdout + run.stderr, command


def test_a_refused_crm_token_is_reported_without_the_token(fresh_db, crm_server):
    token = f"Tok{uuid.uuid4().hex}"
    run = run_cli(
        "extract",
        "crm",
        *INTERVAL,
        "--crm-url",
        crm_server.url,
        env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db, "TOUCHPOINT_CRM_TOKEN": token},
    )
    assert run.returncode != 0 and "401" in run.stderr, run.stderr[-2000:]
    assert token not in run.stdout + run.stderr
