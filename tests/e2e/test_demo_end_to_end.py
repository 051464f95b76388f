"""`touchpoint demo` end to end: real Postgres, real Airflow, real dbt, real GX, real SMTP."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path

import psycopg
import pytest
from babel.numbers import format_decimal

from helpers import REPO, TEST_VAR, free_port, run_cli
from touchpoint.config import load_settings
from touchpoint.delivery.recipients import load_recipients
from touchpoint.local.airflow_services import METADATA_DB, ensure_database
from touchpoint.local.cluster import find_pg_bin
from touchpoint.warehouse.connection import url_parts

pytestmark = pytest.mark.slow

RAW_TABLES = ("hubspot_contacts", "sendgrid_events", "segment_events", "_quarantine")
SECRETS = {
    "warehouse password": "",  # the test cluster's generated one (the demo fixture)
    "CRM token": f"CrmTok{uuid.uuid4().hex}",
    "SMTP password": f"SmtpPw{uuid.uuid4().hex}",
}


def metadata_url(demo: dict) -> str:
    """The Airflow metadata database the demo ran on, beside its warehouse (it exists)."""
    return ensure_database(demo["url"], METADATA_DB)


def raw_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in RAW_TABLES}


@pytest.fixture(scope="module")
def demo(cluster_url, tmp_path_factory):
    from helpers import create_db, drop_db

    url = create_db(cluster_url)
    var = TEST_VAR / f"demo-{uuid.uuid4().hex[:8]}"
    home = tmp_path_factory.mktemp("home")
    # Known secrets, to look for afterwards: the cluster's own password is the warehouse's.
    SECRETS["warehouse password"] = url_parts(url).password or ""
    assert len(SECRETS["warehouse password"]) >= 20, "the cluster requires a generated password"
    env = {
        "HOME": str(home),
        "TOUCHPOINT_VAR_DIR": str(var),
        "TOUCHPOINT_WAREHOUSE_URL": url,
        "TOUCHPOINT_CRM_TOKEN": SECRETS["CRM token"],
        # the demo's SMTP sink then requires this login, so the report only arrives if it logs in
        "TOUCHPOINT_SMTP_LOGIN": "reports",
        "TOUCHPOINT_SMTP_PASSWORD": SECRETS["SMTP password"],
        "TOUCHPOINT_SMTP_PORT": str(free_port()),
        "TOUCHPOINT_CRM_URL": f"http://127.0.0.1:{free_port()}",
        "TOUCHPOINT_LANDING_URL": str(var / "landing"),
    }
    first = run_cli("demo", "--customers", "80", "--weeks", "2", env=env)
    counts_after_first = raw_counts(url) if first.returncode == 0 else None
    mails_after_first = sorted((var / "mail").glob("*.eml"))
    second = run_cli("demo", "--customers", "80", "--weeks", "2", env=env)
    yield {
        "url": url,
        "var": var,
        "home": home,
        "first": first,
        "second": second,
        "counts_after_first": counts_after_first,
        "mails_after_first": mails_after_first,
    }
    run_cli("mail", "stop", env=env)
    drop_db(cluster_url, url)
    shutil.rmtree(var, ignore_errors=True)


def test_the_demo_runs_end_to_end_and_prints_what_was_delivered(demo):
    first = demo["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    recipients = load_recipients(REPO / "reports" / "recipients.yml").recipients
    for recipient in recipients:
        assert f"to {recipient.address}" in first.stdout
    saved = re.findall(r"saved:\s+(\S+\.eml)", first.stdout)
    assert len(saved) == len(recipients) and all(Path(p).exists() for p in saved)


def test_the_emailed_report_carries_the_weeks_touchpoint_count_from_the_warehouse(demo):
    assert demo["first"].returncode == 0
    week = re.search(
        r"weekly report for the week of (\d{4}-\d{2}-\d{2})", demo["first"].stdout
    ).group(1)
    with psycopg.connect(demo["url"]) as conn:
        count = conn.execute(
            "select count(*) from marts.fct_touchpoints where occurred_at >= %s::date"
            " and occurred_at < %s::date + 7",
            (week, week),
        ).fetchone()[0]
    assert count > 0
    recipients = {
        r.address: r for r in load_recipients(REPO / "reports" / "recipients.yml").recipients
    }
    whole_company = 0
    for path in demo["mails_after_first"]:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        recipient = recipients[message["X-Envelope-To"]]
        html = message.get_body(("html",)).get_content()
        kpi = (
            re.search(r'data-kpi="touchpoints".*?class="kpi-value"[^>]*>([^<]+)<', html, re.DOTALL)
            .group(1)
            .strip()
        )
        grain = "week" if recipient.slice.business_unit == "(all)" else "business_unit"
        with psycopg.connect(demo["url"]) as conn:
            in_slice = conn.execute(
                "select touchpoints from marts.agg_touchpoints_weekly where week_start = %s"
                " and grain = %s and region = %s and business_unit = %s",
                (week, grain, recipient.slice.region, recipient.slice.business_unit),
            ).fetchone()[0]
        assert kpi == format_decimal(in_slice, locale=recipient.locale)
        if recipient.slice.is_everything:
            assert in_slice == count
            whole_company += 1
        assert message.get_body(("plain",)) is not None
    assert whole_company == sum(r.slice.is_everything for r in recipients.values())


def test_marketing_and_sales_read_their_sections_with_six_attribution_models(demo):
    assert demo["first"].returncode == 0
    recipients = {
        r.address: r for r in load_recipients(REPO / "reports" / "recipients.yml").recipients
    }
    sections = {"revenue", "campaigns", "traffic", "pipeline"}
    expected = {
        "(all)": sections,
        "marketing": {"revenue", "campaigns", "traffic"},
        "sales": {"revenue", "pipeline"},
        "service": set(),
    }
    for path in demo["mails_after_first"]:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        recipient = recipients[message["X-Envelope-To"]]
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        shown = {s for s in sections if f'id="section-{s}"' in html}
        assert shown == expected[recipient.slice.business_unit], recipient.address
        if recipient.reads == "en":  # the text part has the same sections
            assert ("DEAL PIPELINE" in text) == ("pipeline" in shown), recipient.address
        # the attribution table: a column per model, six of them
        attribution = re.search(r'id="attribution".*?</tr>', html, re.DOTALL).group(0)
        assert attribution.count("<th") == 1 + 6, recipient.address


def test_a_second_demo_reuses_everything_and_duplicates_nothing(demo):
    second = demo["second"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert raw_counts(demo["url"]) == demo["counts_after_first"]
    assert sorted((demo["var"] / "mail").glob("*.eml")) == demo["mails_after_first"]
    with psycopg.connect(demo["url"]) as conn:
        assert conn.execute(
            "select count(*) from reporting.deliveries where status = 'sent'"
        ).fetchone()[0] == len(demo["mails_after_first"])


def test_nothing_is_written_to_the_home_directory(demo):
    assert demo["first"].returncode == 0
    assert list(demo["home"].iterdir()) == []


def test_no_secret_reaches_a_log_a_report_an_error_or_xcom(demo):
    """The warehouse password, the CRM token and the SMTP password go in through the environment
    (as connections): they must appear in nothing the demo wrote (Airflow's task logs and
    metadata DB with its XComs, dbt's logs and artifacts, the rendered reports and sent mail, GX
    results) nor in anything it printed."""
    assert demo["first"].returncode == 0
    files = [p for p in demo["var"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".eml" for p in files) and any("log" in p.name for p in files)
    # the Airflow metadata database (the one `make airflow` serves), XComs included
    metadata = subprocess.run(
        [str(find_pg_bin(load_settings()) / "pg_dump"), "--data-only", metadata_url(demo)],
        capture_output=True,
        check=True,
    ).stdout
    assert b"COPY public.xcom " in metadata and b"touchpoint_ingest" in metadata
    # var/ holds customers' data: readable by its owner only
    shared = [str(p.relative_to(demo["var"])) for p in files if p.stat().st_mode & 0o077]
    assert shared == [], f"files others may read: {shared[:10]}"
    assert demo["var"].stat().st_mode & 0o777 == 0o711
    for what, secret in SECRETS.items():
        needle = secret.encode()
        leaks = [str(p.relative_to(demo["var"])) for p in files if needle in p.read_bytes()]
        leaks += ["the Airflow metadata database"] if needle in metadata else []
        assert leaks == [], f"the {what} is in {leaks}"
        for run in (demo["first"], demo["second"]):
            assert secret not in run.stdout and secret not in run.stderr, what


def test_the_airflow_ui_shows_the_demos_runs_and_their_task_logs(demo):
    """``make airflow`` serves the metadata database and home the demo ran on: its runs are
    there, and each task's log lies where the UI reads it (Airflow's default
    log_filename_template, from the run id and attempt the metadata database holds)."""
    assert demo["first"].returncode == 0
    with psycopg.connect(metadata_url(demo)) as conn:
        runs = conn.execute(
            "select dag_id, run_id, state from dag_run"
            " where dag_id in ('touchpoint_ingest', 'touchpoint_weekly_report')"
            " order by start_date desc"
        ).fetchall()
        states = {dag_id: state for dag_id, _, state in reversed(runs)}
        ingest_run = next(run_id for dag_id, run_id, _ in runs if dag_id == "touchpoint_ingest")
        tasks = conn.execute(
            "select task_id, try_number from task_instance where run_id = %s and dag_id = %s",
            (ingest_run, "touchpoint_ingest"),
        ).fetchall()
    assert states == {"touchpoint_ingest": "success", "touchpoint_weekly_report": "success"}
    assert len(tasks) > 50  # the Cosmos dbt tasks among them
    logs = demo["var"] / "airflow-ui" / "logs" / "dag_id=touchpoint_ingest" / f"run_id={ingest_run}"
    for task_id, try_number in tasks:
        path = logs / f"task_id={task_id}" / f"attempt={try_number}.log"
        assert path.exists(), path
    web = (logs / "task_id=extract_web" / f"attempt={dict(tasks)['extract_web']}.log").read_text()
    assert "segment_events from" in web and "loaded=" in web
