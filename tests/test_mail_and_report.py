"""The SMTP sink, recipients validation and rendering (delivery: test_report_delivery.py)."""

from __future__ import annotations

import smtplib
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from babel.numbers import format_decimal, format_percent

from conftest import REPO, free_port, run_cli
from touchpoint.errors import ConfigError
from touchpoint.mail_sink import saved_messages
from touchpoint.report.content import (
    ATTRIBUTION_MODELS,
    AtRisk,
    AtRiskCustomer,
    ChannelRow,
    FunnelStage,
    Kpi,
    Move,
    Problem,
    Slice,
    WeeklyContent,
)
from touchpoint.report.recipients import Recipient, load_recipients
from touchpoint.report.render import render_weekly_report

TEMPLATES = REPO / "reports" / "templates"


def parse(path: Path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def test_the_sink_saves_every_accepted_message_as_an_eml_file(mail_sink):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "hello"
    message.set_content("body")
    with smtplib.SMTP("127.0.0.1", mail_sink.port) as client:
        client.send_message(message)
    [saved] = saved_messages(mail_sink.directory)
    assert parse(saved)["Subject"] == "hello"
    assert "X-Envelope-To: b@example.com" in saved.read_text()


def test_mail_start_status_stop_run_the_sink_in_the_background(tmp_path):
    env = {"TOUCHPOINT_VAR_DIR": str(tmp_path), "TOUCHPOINT_SMTP_PORT": str(free_port())}
    started = run_cli("mail", "start", env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert run_cli("mail", "start", env=env).returncode == 0  # idempotent
        assert "running" in run_cli("mail", "status", env=env).stdout
    finally:
        assert "stopped" in run_cli("mail", "stop", env=env).stdout
    assert "stopped" in run_cli("mail", "status", env=env).stdout


def test_the_shipped_recipients_file_is_valid():
    recipients = load_recipients(REPO / "reports" / "recipients.yml")
    assert recipients.recipients and recipients.alerts


@pytest.mark.parametrize("entry, message", [
    ("- {address: a@example.com, name: A, colour: blue}", "unknown key"),
    ("- {address: not-an-address, name: A}", "not an email address"),
    ("- {address: a@example.com, name: A, timezone: Mars/Olympus}", "unknown time zone"),
])
def test_a_bad_recipients_file_is_refused_with_the_entry_named(tmp_path, entry, message):
    path = tmp_path / "recipients.yml"
    path.write_text(f"sender: r@example.com\nrecipients:\n  {entry}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_recipients(path)
    assert "recipients[0]" in str(caught.value)


def content(total: int = 1234) -> WeeklyContent:
    """A week's content built by hand (the mart-backed loading is tested in test_weekly_report)."""
    week = date(2026, 10, 26)
    kpis = [Kpi("touchpoints", "Touchpoints", total, 1000, "count"), Kpi("customers", "Active customers", 80, 90, "count"),
            Kpi("new_customers", "New customers", 12, 10, "count"), Kpi("conversions", "Conversions", 7.5, 5.0, "count"),
            Kpi("conversion_rate", "Conversion rate", 0.094, 0.056, "rate", 80), Kpi("nps", "NPS", 12.5, 20.0, "nps", 16),
            Kpi("csat", "CSAT", 4.1, 4.4, "csat", 20)]
    models = dict.fromkeys(ATTRIBUTION_MODELS, 1.5)
    return WeeklyContent(
        week_start=week, slice=Slice(), kpis=kpis,
        channels=[ChannelRow("web", "marketing", total, 1000, 1.0, models)],
        attention=[Move("support", "delivery_packaging", "csat", 3.1, 4.2, 25, "needs_attention", 2.7)],
        improved=[Move("paid_ads", "(all)", "conversion_rate", 0.12, 0.06, 40, "improved", 3.3)],
        funnel=[FunnelStage(stage, 10, 9) for stage in ("awareness", "consideration", "purchase")],
        problems=[Problem("delivery issue", 9, 3, 4, 10, 4, True, True)],
        at_risk=AtRisk(count=3, may_be_named=2, customers_total=80,
                       named=[AtRiskCustomer("Ada Lovelace", "Analytical Engines", "EMEA",
                                             datetime(2026, 10, 30, tzinfo=UTC), 3.0, None, 2, True)]),
        history=[(week - timedelta(weeks=n), 1000 + n, 80, 5.0) for n in range(3, -1, -1)],
        data_as_of=datetime(2026, 11, 1, 22, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("locale", ["en_GB", "fr_FR", "de_DE"])
def test_numbers_are_formatted_for_the_recipients_locale(locale):
    rendered = render_weekly_report(content(), Recipient("a@example.com", "A", "Europe/Paris", locale), TEMPLATES)
    expected = format_decimal(1234, locale=locale)
    assert expected in rendered.html and expected in rendered.text and expected in rendered.subject
    assert format_percent(0.094, format="#,##0.0%", locale=locale) in rendered.text  # the conversion rate


def test_every_section_is_rendered_in_html_and_text():
    rendered = render_weekly_report(content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES)
    for needle in ("delivery packaging (support)", "CSAT 3.1 / 5 against 4.2 / 5", "paid_ads", "delivery issue",
                   "Ada Lovelace", "counted but not named", "consideration"):
        assert needle in rendered.text, needle
        assert needle in rendered.html or needle.replace("_", " ") in rendered.html, needle
    assert len(rendered.images) == 3 and all(i.data.startswith(b"\x89PNG") for i in rendered.images)
    assert [a.filename for a in rendered.attachments] == ["touchpoint-kpis-2026-W44.csv"]


def test_html_is_autoescaped_and_styles_are_inlined():
    report = content()
    report.at_risk.named[0] = AtRiskCustomer("<script>alert(1)</script> {{ 7*7 }}", None, "EMEA", None, None, None, 2,
                                             False)
    rendered = render_weekly_report(report, Recipient("a@example.com", "<b>A</b>", "UTC", "en_GB"), TEMPLATES)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.html and "{{ 7*7 }}" in rendered.text  # template syntax stays text
    assert "<b>A</b>" not in rendered.html
    assert 'style="' in rendered.html
    assert len(rendered.html.encode()) < 100_000
