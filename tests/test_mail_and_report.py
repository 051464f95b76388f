"""The SMTP sink, recipients validation and rendering (delivery: test_report_delivery.py)."""

from __future__ import annotations

import smtplib
from datetime import date
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from babel.numbers import format_decimal

from conftest import REPO, free_port, run_cli
from touchpoint.errors import ConfigError
from touchpoint.mail_sink import saved_messages
from touchpoint.report.content import Change, WeeklyContent
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
    return WeeklyContent(week_start=date(2026, 10, 26), touchpoints=Change(total, 1000), customers=Change(80, 90),
                         channels=[("web", Change(total, 1000), 100.0)],
                         top_touchpoints=[("product_research", "web", Change(total, 1000))])


@pytest.mark.parametrize("locale", ["en_GB", "fr_FR", "de_DE"])
def test_numbers_are_formatted_for_the_recipients_locale(locale):
    rendered = render_weekly_report(content(), Recipient("a@example.com", "A", "Europe/Paris", locale), TEMPLATES)
    expected = format_decimal(1234, locale=locale)
    assert expected in rendered.html and expected in rendered.text and expected in rendered.subject


def test_html_is_autoescaped_and_styles_are_inlined():
    report = content()
    report.top_touchpoints = [("<script>alert(1)</script>", "web", Change(1, 1))]
    rendered = render_weekly_report(report, Recipient("a@example.com", "<b>A</b>", "UTC", "en_GB"), TEMPLATES)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<b>A</b>" not in rendered.html
    assert 'style="' in rendered.html
    assert len(rendered.html.encode()) < 100_000
