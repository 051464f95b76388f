"""The data-quality gate: each class of defect is caught with the right severity, results are
stored, and end to end a critical defect holds the report while a warning annotates it."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

import psycopg
import pytest

from helpers import REPO, SIM_START, drop_fact_unique_indexes, free_port, run_cli
from touchpoint.delivery.recipients import load_recipients
from touchpoint.i18n import translations
from touchpoint.local.mail_sink import MailSink, saved_messages
from touchpoint.quality.gx_runner import run_quality

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
WEEK = (START + timedelta(weeks=1), START + timedelta(weeks=2))  # the second simulated week


@pytest.fixture
def copy(built_copy):
    """A copy of the built small world for each test to damage."""
    return built_copy


def check(url: str, settings, suite: str | None = None) -> dict[str, tuple[bool, str]]:
    """Outcomes by rule id: every suite, or only ``suite`` (faster) when the defect is local to
    it."""
    report = run_quality(
        url,
        settings.expectations_dir,
        settings.var_dir / "gx",
        *WEEK,
        only=[suite] if suite else None,
    )
    return {o.rule_id: (o.success, o.severity) for o in report.outcomes}


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


IN_WEEK = f"occurred_at >= '{WEEK[0].isoformat()}' and occurred_at < '{WEEK[1].isoformat()}'"
RAW_IN_WEEK = f"event_time >= '{WEEK[0].isoformat()}' and event_time < '{WEEK[1].isoformat()}'"


@pytest.mark.slow
def test_a_clean_dataset_passes_every_expectation(copy, settings):
    results = check(copy, settings)
    assert len(results) > 30
    assert [rule for rule, (ok, _) in results.items() if not ok] == []


def test_a_duplicate_key_fails_critically(copy, settings):
    drop_fact_unique_indexes(copy)
    execute(
        copy,
        "insert into marts.fct_touchpoints select * from marts.fct_touchpoints"
        f" where {IN_WEEK} limit 1",
    )
    assert check(copy, settings, "fct_touchpoints")["fct_touchpoints.key_unique"] == (
        False,
        "critical",
    )


def test_a_null_key_fails_critically(copy, settings):
    drop_fact_unique_indexes(copy)
    execute(
        copy,
        "update marts.fct_touchpoints set touchpoint_id = null where touchpoint_id = "
        f"(select touchpoint_id from marts.fct_touchpoints where {IN_WEEK} limit 1)",
    )
    assert check(copy, settings, "fct_touchpoints")["fct_touchpoints.key_not_null"] == (
        False,
        "critical",
    )


def test_a_future_timestamp_fails_critically(copy, settings):
    execute(
        copy,
        "insert into raw.segment_events"
        " (natural_key, object_id, event_time, payload, _batch_id, _source)"
        " select 'future-1', object_id, now() + interval '30 days', payload, _batch_id, 'test'"
        f" from raw.segment_events where {RAW_IN_WEEK} limit 1",
    )
    assert check(copy, settings, "raw_segment_events")[
        "raw_segment_events.no_future_timestamps"
    ] == (False, "critical")


def test_a_day_without_web_events_fails_critically(copy, settings):
    day = WEEK[0] + timedelta(days=3)
    execute(
        copy,
        f"delete from raw.segment_events where event_time >= '{day.isoformat()}'"
        f" and event_time < '{(day + timedelta(days=1)).isoformat()}'",
    )
    assert check(copy, settings, "raw_segment_events")[
        "raw_segment_events.no_day_without_events"
    ] == (False, "critical")


def test_a_broken_attribution_weight_fails_critically(copy, settings):
    execute(
        copy,
        "update marts.fct_attribution set weight = 1.5"
        " where attribution_key = (select attribution_key"
        f" from marts.fct_attribution where converted_at >= '{WEEK[0].isoformat()}'"
        f" and converted_at < '{WEEK[1].isoformat()}' limit 1)",
    )
    results = check(copy, settings, "fct_attribution")
    assert results["fct_attribution.weights_sum_to_one"] == (False, "critical")
    assert results["fct_attribution.weight_in_unit_interval"] == (False, "critical")


def test_a_quarantine_spike_fails_critically(copy, settings):
    execute(
        copy,
        "insert into raw._quarantine (stream, source, reason, raw_text, _batch_id)"
        " select 'segment_events', 'test', 'broken JSON', '{', b._batch_id"
        f" from (select distinct _batch_id from raw.segment_events where {RAW_IN_WEEK}) as b,"
        " generate_series(1, 200)",
    )
    assert check(copy, settings, "raw_segment_events")[
        "raw_segment_events.quarantine_rate_low"
    ] == (False, "critical")


def test_invalid_recipient_addresses_only_warn(copy, settings):
    execute(
        copy,
        "update raw.sendgrid_events"
        " set payload = jsonb_set(payload, '{email}', '\"not an address\"')"
        f" where {RAW_IN_WEEK}",
    )
    assert check(copy, settings, "raw_sendgrid_events")["raw_sendgrid_events.email_syntax"] == (
        False,
        "warning",
    )


@pytest.mark.slow
def test_every_validation_is_stored_with_its_interval_and_run_id(copy, settings):
    report = run_quality(
        copy, settings.expectations_dir, settings.var_dir / "gx", *WEEK, run_id="run-42"
    )
    with psycopg.connect(copy) as conn:
        suites = conn.execute(
            "select count(*) from dq.validation_runs where run_id = 'run-42'"
        ).fetchone()[0]
        stored = conn.execute(
            "select count(*), min(interval_start), max(interval_end) from dq.expectation_results"
            " where run_id = 'run-42'"
        ).fetchone()
    assert suites == 6 and stored == (len(report.outcomes), WEEK[0], WEEK[1])
    assert report.data_docs and (settings.var_dir / "gx").exists()


@pytest.mark.slow
def test_dq_run_prints_a_table_and_exits_non_zero_on_a_critical_failure(copy):
    env = {"TOUCHPOINT_WAREHOUSE_URL": copy}
    ok = run_cli(
        "dq", "run", "--start", WEEK[0].isoformat(), "--end", WEEK[1].isoformat(), "--json", env=env
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (
        "0 critical failure(s)" in ok.stdout
        and json.loads(ok.stdout.splitlines()[-1])["status"] == "pass"
    )
    drop_fact_unique_indexes(copy)
    execute(
        copy,
        "insert into marts.fct_touchpoints select * from marts.fct_touchpoints"
        f" where {IN_WEEK} limit 1",
    )
    bad = run_cli(
        "dq", "run", "--start", WEEK[0].isoformat(), "--end", WEEK[1].isoformat(), env=env
    )
    assert bad.returncode == 1
    assert re.search(r"FAIL\s+critical\s+fct_touchpoints.key_unique", bad.stdout)


# -- end to end through Airflow and SMTP -------------------------------------------------------
def run_weekly_report(url: str, settings, sink: MailSink, tmp_path):
    from touchpoint.local.airflow_runs import DagRunRequest, local_env, run_dags

    # the session's project-local Airflow home (var/test/airflow): migrated once, reused
    env = local_env(settings, url, sink.port, "http://127.0.0.1:9", "unused")
    request = DagRunRequest(
        "touchpoint_weekly_report", (WEEK[1] + timedelta(hours=12)).isoformat(), {}
    )
    return run_dags([request], env, tmp_path / "airflow.log", echo=lambda m: None)


def recipients_of(sink: MailSink) -> dict[str, object]:
    messages = {}
    for path in saved_messages(sink.directory):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        messages[message["X-Envelope-To"]] = message
    return messages


@pytest.mark.slow
def test_a_critical_defect_holds_the_report_and_alerts_the_engineers(copy, settings, tmp_path):
    drop_fact_unique_indexes(copy)
    execute(
        copy,
        "insert into marts.fct_touchpoints select * from marts.fct_touchpoints"
        f" where {IN_WEEK} limit 1",
    )
    with MailSink(tmp_path / "mail", port=free_port()) as sink:
        results = run_weekly_report(copy, settings, sink, tmp_path)
        received = recipients_of(sink)
    assert results[-1]["state"] == "failed"
    assert set(received) == {"data.engineers@touchpoint.example"}
    alert = received["data.engineers@touchpoint.example"]
    body = alert.get_body(("plain",)).get_content()
    assert "gate closed" in alert["Subject"]
    assert re.search(r"\[critical\] fct_touchpoints.key_unique .*observed [12] unexpected", body), (
        body
    )
    assert "Data Docs:" in body


@pytest.mark.slow
def test_a_warning_only_sends_the_report_with_a_data_quality_note(copy, settings, tmp_path):
    execute(
        copy,
        "update raw.sendgrid_events"
        " set payload = jsonb_set(payload, '{email}', '\"not an address\"')"
        f" where {RAW_IN_WEEK}",
    )
    with MailSink(tmp_path / "mail", port=free_port()) as sink:
        results = run_weekly_report(copy, settings, sink, tmp_path)
        received = recipients_of(sink)
    assert results[-1]["state"] == "success"
    assert "data.engineers@touchpoint.example" not in received
    assert {
        "marketing.lead@touchpoint.example",
        "sales.lead@touchpoint.example",
        "service.lead@touchpoint.example",
    } <= set(received)
    readers = {
        r.address: r for r in load_recipients(REPO / "reports" / "recipients.yml").recipients
    }
    for address, message in received.items():
        html = html_lib.unescape(message.get_body(("html",)).get_content())
        words = translations(REPO / "reports" / "locales", readers[address].reads)
        assert words.gettext("Data-quality note:") in html  # in the reader's language
        assert "raw_sendgrid_events.email_syntax" in html
        as_of = words.gettext("Data as of %(moment)s").split("%(moment)s")[0].strip()
        assert as_of.lower() in html.lower()


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_two_checks_at_once_each_validate_their_own_interval_and_warehouse(
    built_world, copy, settings
):
    """Two ``dq run`` at once (two Airflow tasks, say), on two warehouses and two intervals: each
    has a GX project and a connection variable of its own, so each reports what it would alone.
    (In one process, runs take turns: GX is not thread-safe.)"""
    import subprocess
    import sys

    with psycopg.connect(copy) as conn:  # the copy loses the second week's web events
        conn.execute(f"delete from raw.segment_events where {RAW_IN_WEEK}")
    first_week = (START, START + timedelta(weeks=1))
    jobs = [(built_world, first_week), (copy, WEEK)]

    def command(url: str, interval: tuple[datetime, datetime]) -> tuple[list[str], dict]:
        args = [sys.executable, "-m", "touchpoint", "dq", "run", "--suite", "raw_segment_events"]
        args += ["--start", interval[0].isoformat(), "--end", interval[1].isoformat(), "--json"]
        return args, {**os.environ, "TOUCHPOINT_WAREHOUSE_URL": url}

    def result(stdout: str) -> tuple[str, list]:
        answer = json.loads(stdout.splitlines()[-1])
        return answer["status"], sorted((f["rule_id"], f["observed"]) for f in answer["failures"])

    def alone(url: str, interval: tuple[datetime, datetime]) -> tuple[str, list]:
        report = run_quality(
            url, settings.expectations_dir, settings.var_dir / "gx", *interval,
            only=["raw_segment_events"],
        )  # fmt: skip
        return result(json.dumps(report.as_dict()))

    running = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
        for args, env in (command(*job) for job in jobs)
    ]
    together = [result(p.communicate(timeout=300)[0]) for p in running]
    each_alone = [alone(*job) for job in jobs]
    assert together == each_alone
    assert each_alone[0] != each_alone[1], "the copy's week lost its web events: they differ"
