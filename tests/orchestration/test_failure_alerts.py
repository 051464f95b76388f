"""Task-failure alerts: a task that fails for good emails the alerts list once, with what an
engineer needs to act (DAG, task, run, interval, try, log location, the error with its secrets
redacted); a callback that runs twice sends nothing twice; a failing alert never raises."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from types import SimpleNamespace

import psycopg
import pytest

from helpers import REPO, SIM_START, free_port
from touchpoint.delivery.recipients import load_recipients
from touchpoint.local.mail_sink import MailSink, saved_messages

ALERTS = "data.engineers@touchpoint.example"
START = datetime.combine(SIM_START, datetime.min.time(), UTC)
SECRETS = ("hunter2", "abc123secret", "eyJhbGciOiJIUzI1NiJ9.payload.sig", "s3cr3t-conn-pw")


def received(sink: MailSink) -> list:
    """Every message the sink got, oldest first (``X-Envelope-To`` is who it went to)."""
    return [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes())
        for p in saved_messages(sink.directory)
    ]


def fake_context(
    exception: BaseException | None,
    task_id: str = "extract_crm_people",
    try_number: int = 1,
    retries: int = 0,
) -> dict:
    """What Airflow's task runner hands an on_failure_callback, reduced to what the alert reads."""
    run_id = "manual__2026-10-06T00:00:00+00:00"
    ti = SimpleNamespace(
        dag_id="touchpoint_ingest",
        task_id=task_id,
        run_id=run_id,
        try_number=try_number,
        max_tries=retries,
        map_index=-1,
        hostname="worker-1",
        log_url=f"http://localhost:8080/dags/touchpoint_ingest/runs/{run_id}/tasks/{task_id}?try_number={try_number}",
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "exception": exception,
        "data_interval_start": START,
        "data_interval_end": START + timedelta(days=1),
        "params": {"start": None, "end": None},
    }


@pytest.fixture
def airflow_home(tmp_path, monkeypatch):
    """Airflow's config is read for the log path: never from (or into) the user's ~/airflow."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "airflow" / "logs"))
    return tmp_path / "airflow"


@pytest.fixture
def alert_connections(monkeypatch, fresh_db, mail_sink):
    """The callback's connections (smtp_default, touchpoint_warehouse) on the test's sink and DB."""
    from touchpoint.delivery.smtp import SmtpSettings
    from touchpoint.orchestration import connections

    monkeypatch.setattr(
        connections, "smtp_settings", lambda: SmtpSettings("127.0.0.1", mail_sink.port)
    )
    monkeypatch.setattr(connections, "warehouse_url", lambda: fresh_db)
    return SimpleNamespace(db=fresh_db, sink=mail_sink)


def test_importing_the_callback_module_imports_nothing_heavy():
    """It is imported at DAG-parse time through dag_defaults."""
    probe = (
        "import sys, touchpoint.orchestration.failure_alerts\n"
        "heavy = ['airflow', 'psycopg', 'jinja2', 'css_inline', 'touchpoint.report',"
        " 'touchpoint.warehouse']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_alert_names_dag_task_run_interval_try_and_log_with_the_error_on_one_redacted_line(
    airflow_home,
):
    from touchpoint.orchestration.failure_alerts import failure_from_context
    from touchpoint.report.render import render_task_failure

    error = RuntimeError(
        "cannot connect to postgresql://etl:hunter2@db.internal:5432/warehouse\n"
        "  (password=abc123secret; header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig)"
    )
    failure = failure_from_context(fake_context(error, try_number=3, retries=2))
    alerts = load_recipients(REPO / "reports" / "recipients.yml").alerts
    message = render_task_failure(failure, alerts[0], REPO / "reports" / "templates")

    assert message.subject == (
        "[touchpoint] task failed: touchpoint_ingest.extract_crm_people "
        "(2026-10-05 .. 2026-10-06), try 3 of 3"
    )
    run_id = "manual__2026-10-06T00:00:00+00:00"
    for body in (message.text, message.html):
        for expected in (
            "touchpoint_ingest",
            "extract_crm_people",
            run_id,
            "2026-10-05T00:00:00+00:00",
            "2026-10-06T00:00:00+00:00",
            "3 of 3",
            "RuntimeError: cannot connect to",
            f"http://localhost:8080/dags/touchpoint_ingest/runs/{run_id}/tasks/extract_crm_people",
            (
                f"{airflow_home}/logs/dag_id=touchpoint_ingest/run_id={run_id}/"
                "task_id=extract_crm_people/attempt=3.log"
            ),
        ):
            assert expected in body, (expected, body)
        assert not any(secret in body for secret in SECRETS), body
    error_line = next(line for line in message.text.splitlines() if line.startswith("Error:"))
    assert (
        "postgresql://etl:***@db.internal:5432/warehouse" in error_line
        and "password=***" in error_line
    )


def test_a_failure_without_an_exception_says_so():
    """The DAG processor runs the callback for a task whose process died: no exception then."""
    from touchpoint.orchestration.failure_alerts import NO_EXCEPTION, one_line_error

    assert one_line_error(None) == NO_EXCEPTION
    assert len(one_line_error(ValueError("x" * 5000))) == 500


def test_a_callback_that_runs_twice_sends_one_alert_per_address(alert_connections, airflow_home):
    from touchpoint.orchestration.failure_alerts import task_failure_alert

    context = fake_context(RuntimeError("boom"))
    task_failure_alert(context)
    task_failure_alert(context)
    messages = received(alert_connections.sink)
    assert [m["X-Envelope-To"] for m in messages] == [ALERTS]
    with psycopg.connect(alert_connections.db) as conn:
        rows = conn.execute(
            "select period, recipient, status from reporting.deliveries"
            " where report = 'task_failure'"
        ).fetchall()
    assert rows == [
        (
            "touchpoint_ingest/manual__2026-10-06T00:00:00+00:00/extract_crm_people/try1",
            ALERTS,
            "sent",
        )
    ]


def test_a_task_that_alerted_the_engineers_itself_gets_no_second_alert(
    alert_connections, airflow_home
):
    from touchpoint.orchestration.failure_alerts import AlreadyAlerted, task_failure_alert

    task_failure_alert(fake_context(AlreadyAlerted("data-quality gate closed: alert sent")))
    assert received(alert_connections.sink) == []


def test_a_callback_that_cannot_send_logs_the_error_and_does_not_raise(
    alert_connections, airflow_home, monkeypatch, caplog
):
    from touchpoint.delivery.smtp import SmtpSettings
    from touchpoint.orchestration import connections
    from touchpoint.orchestration.failure_alerts import task_failure_alert

    monkeypatch.setattr(
        connections, "smtp_settings", lambda: SmtpSettings("127.0.0.1", free_port(), timeout=2)
    )
    task_failure_alert(fake_context(RuntimeError("boom")))  # no exception escapes
    assert (
        "could not send the task-failure alert for touchpoint_ingest.extract_crm_people"
        in caplog.text
    )


def test_an_unreachable_warehouse_still_sends_the_alert_unrecorded(
    alert_connections, airflow_home, monkeypatch
):
    """The warehouse may be why the task failed: the alert must not depend on it."""
    from touchpoint.orchestration import connections
    from touchpoint.orchestration.failure_alerts import task_failure_alert

    monkeypatch.setattr(
        connections, "warehouse_url", lambda: f"postgresql://etl@127.0.0.1:{free_port()}/none"
    )
    task_failure_alert(fake_context(RuntimeError("warehouse down")))
    assert [m["X-Envelope-To"] for m in received(alert_connections.sink)] == [ALERTS]


# -- end to end through Airflow ----------------------------------------------------------------
def ensure_dbt_manifest(settings) -> None:
    """The ingest DAG renders its dbt tasks (Cosmos) from a manifest: write it if missing."""
    try:
        from touchpoint.transform.dbt import ensure_manifest
    except ImportError:  # an ingest DAG without Cosmos needs none
        return
    ensure_manifest(settings.dbt_project_dir, settings.var_dir)


@pytest.mark.slow
def test_failed_tasks_each_email_the_alerts_list_once_and_tasks_that_never_ran_send_nothing(
    fresh_db, settings_for, crm_server, tmp_path
):
    """The ingest DAG for one day with a CRM token the API refuses (401): the four extract_crm_*
    tasks fail (retries are 0 in tests), so the alerts list gets one email per failed task; the
    file extracts succeed, and everything downstream (dbt, checks) is upstream_failed and sends
    nothing. No stakeholder hears about it."""
    from touchpoint.local.airflow_runs import DagRunRequest, local_env, run_dags

    ensure_dbt_manifest(settings_for)
    with MailSink(tmp_path / "mail", port=free_port()) as sink:
        env = local_env(
            settings_for, fresh_db, sink.port, crm_server.url, "a-token-the-crm-refuses"
        )
        day = {"start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat()}
        request = DagRunRequest("touchpoint_ingest", (START + timedelta(days=1)).isoformat(), day)
        results = run_dags([request], env, tmp_path / "airflow.log", echo=lambda m: None)
        messages = received(sink)
    log_text = (tmp_path / "airflow.log").read_text()
    assert results and results[-1]["state"] == "failed", log_text[-3000:]
    tasks = results[-1]["tasks"]
    failed = {t for t, s in tasks.items() if s == "failed"}
    assert failed == {
        "extract_crm_people",
        "extract_crm_sales",
        "extract_crm_service",
        "extract_crm_conversations",
    }, tasks
    assert {s for t, s in tasks.items() if t not in failed} <= {"success", "upstream_failed"}, tasks
    assert "upstream_failed" in tasks.values()

    assert [m["X-Envelope-To"] for m in messages] == [ALERTS] * 4, [m["Subject"] for m in messages]
    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute(
            "select period, recipient, status from reporting.deliveries"
            " where report = 'task_failure' order by period"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [(ALERTS, "sent")] * 4
    run_id = rows[0][0].split("/")[1]
    assert [r[0] for r in rows] == [f"touchpoint_ingest/{run_id}/{t}/try1" for t in sorted(failed)]

    by_task = {}
    for message in messages:
        body = message.get_body(("plain",)).get_content()
        task = next(t for t in failed if f"touchpoint_ingest.{t} " in message["Subject"])
        by_task[task] = body
        assert message["Subject"].endswith("try 1 of 1")
        for expected in (
            "touchpoint_ingest",
            task,
            run_id,
            "2026-10-05T00:00:00+00:00",
            "2026-10-06T00:00:00+00:00",
            "Try: 1 of 1",
            "HubSpotError",
            "401",
            "/dags/touchpoint_ingest/runs/",
            f"/tasks/{task}?try_number=1",
            (
                f"{settings_for.airflow_home}/logs/dag_id=touchpoint_ingest/run_id={run_id}/"
                f"task_id={task}/attempt=1.log"
            ),
        ):
            assert expected in body, (expected, body)
        assert "a-token-the-crm-refuses" not in message.as_string()
    assert set(by_task) == failed
