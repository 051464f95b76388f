"""The SMTP sink, recipients validation and rendering (delivery: test_report_delivery.py)."""

from __future__ import annotations

import html
import re
import smtplib
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.numbers import format_decimal, format_percent

from helpers import REPO, free_port, run_cli
from helpers.report_content import content, quiet_content, signal
from touchpoint.delivery.recipients import Recipient, load_recipients
from touchpoint.errors import ConfigError
from touchpoint.local.mail_sink import saved_messages
from touchpoint.report.content import (
    AtRiskCustomer,
)
from touchpoint.report.render import render_weekly_report, trend_link, wording

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


@pytest.mark.parametrize(
    "entry, message",
    [
        ("- {address: a@example.com, name: A, colour: blue}", "unknown key"),
        ("- {address: not-an-address, name: A}", "not an email address"),
        ("- {address: a@example.com, name: A, timezone: Mars/Olympus}", "unknown time zone"),
    ],
)
def test_a_bad_recipients_file_is_refused_with_the_entry_named(tmp_path, entry, message):
    path = tmp_path / "recipients.yml"
    path.write_text(f"sender: r@example.com\nrecipients:\n  {entry}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_recipients(path)
    assert "recipients[0]" in str(caught.value)


def plain(html: str) -> str:
    """The text of an HTML fragment, spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def section(html: str, list_id: str) -> str:
    """The inner HTML of the list ``<ul id="list_id">``."""
    start = html.index(f'<ul id="{list_id}"')
    return html[start : html.index("</ul>", start)]


@pytest.mark.parametrize("locale", ["en_GB", "fr_FR", "de_DE"])
def test_numbers_are_formatted_for_the_recipients_locale(locale):
    rendered = render_weekly_report(
        content(), Recipient("a@example.com", "A", "Europe/Paris", locale), TEMPLATES
    )
    expected = format_decimal(1234, locale=locale)
    assert expected in rendered.html and expected in rendered.text and expected in rendered.subject
    assert (
        format_percent(0.094, format="#,##0.0%", locale=locale) in rendered.text
    )  # the conversion rate


def test_every_section_is_rendered_in_html_and_text():
    rendered = render_weekly_report(
        content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    for needle in (
        "delivery packaging (email)",
        "CSAT 2.3 / 5 this week against 4.2 / 5",
        "paid ads",
        "delivery issue",
        "96 cases this week against 31",
        "customers who met newsletter (email)",
        "Ada Lovelace",
        "counted but not named",
        "consideration",
        "CSAT 3.1 / 5 against the company's 4.2 / 5 (84 answers); below for 6 weeks",
        "too few answers (6)",
        "newsletter (email): NPS -5, not yet back to the normal of +25",
        "needs attention for 3 weeks",
        "back to its normal of 20 after 3 weeks",
        "before 60.0% of detractors' answers, against 30.0% of all answers",
        "ticket: “Parcel not delivered (again)” × 7",
        "2.5 / 9.0 h",
        # the marketing and sales sections
        "€1,250",
        "newsletter-2026-w44",
        "promo-autumn",
        "1 campaign had fewer than 50 delivered messages and is not ranked.",
        "l.facebook.com / social",
        "Win rate: 62.5% of the deals closed this week",
        "Median sales cycle: 18.5 d from creation to close",
        "Appointment scheduled",
        "Chose a competitor: 2 deals, €5,000",
    ):
        assert needle in rendered.text, needle
        assert needle in html.unescape(plain(rendered.html)), needle
    # campaigns ranked by click rate, then by unsubscribe rate, with their sample sizes
    assert "- newsletter-2026-w44: 8.0% (62 of 780 delivered)" in rendered.text
    assert "- promo-autumn: 2.3% (9 of 390 delivered); 2 spam reports" in rendered.text
    assert "Lowest click rate:\n- promo-autumn: 2.0% (8 of 390 delivered)" in rendered.text
    assert "tiny-test" not in rendered.text  # 5 delivered: not ranked
    # four report charts and one trend chart per shown signal
    assert len(rendered.images) == 4 + 4 and all(
        i.data.startswith(b"\x89PNG") for i in rendered.images
    )
    assert [a.filename for a in rendered.attachments] == ["touchpoint-kpis-2026-W44.csv"]


@pytest.mark.parametrize(
    ("list_id", "key"),
    [
        ("needs-attention", "touchpoint:delivery_packaging:csat"),
        ("improved", "channel:paid_ads:conversion_rate"),
        ("recurring-problems", "category:DELIVERY_ISSUE:cases"),
        ("at-risk-cohorts", "touchpoint:newsletter:engagement"),
    ],
)
def test_each_signal_is_listed_under_its_section_with_its_key(list_id, key):
    html = render_weekly_report(
        content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    ).html
    listed = re.findall(r'data-signal="([^"]+)"', section(html, list_id))
    assert listed == [key]


def test_a_signal_says_what_changed_by_how_much_against_what_baseline():
    rendered = render_weekly_report(
        content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    csat = (
        "CSAT 2.3 / 5 this week against 4.2 / 5 (median of the 4 weeks before, range 4.0–4.3);"
        " 84 answers (312 in the weeks before); -1.9 pt"
    )
    assert csat in rendered.text
    assert csat in plain(section(rendered.html, "needs-attention"))
    assert (
        "conversion rate 12.0% this week against 6.0% (median of the 4 weeks before,"
        " range 5.0%–7.0%);"
        " 640 customers reached (2,500 in the weeks before); +100%" in rendered.text
    )
    assert (
        "96 cases this week against 31 (median of the 4 weeks before, range 25–36); ×3.1"
        in rendered.text
    )
    assert (
        "0.6 inbound touchpoints per customer this week against 2.9 (median of the 4 weeks before,"
        " range 2.7–3.1); 1,480 customers (5,900 in the weeks before); -79%" in rendered.text
    )


def test_a_signal_names_the_touchpoints_whose_answers_it_cannot_tell_apart():
    """A CSAT drop after order confirmation is a drop after the delivery and the purchase too (the
    same answers): the line names them, the list item carries their keys."""
    report = content()
    report.attention = [
        signal(
            "touchpoint:order_confirmation:csat",
            named_with=("touchpoint:delivery_packaging:csat", "touchpoint:purchase:csat"),
        )
    ]
    rendered = render_weekly_report(
        report, Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    line = (
        "order confirmation (email) (the same answers follow delivery packaging and purchase too:"
        " the data cannot tell them apart): CSAT 2.3 / 5 this week"
    )
    assert line in rendered.text
    assert line in plain(section(rendered.html, "needs-attention"))
    assert (
        'data-named-with="touchpoint:delivery_packaging:csat touchpoint:purchase:csat"'
        in section(rendered.html, "needs-attention")
    )
    # a signal without such touchpoints says nothing of the kind
    assert (
        "cannot tell them apart"
        not in render_weekly_report(
            content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
        ).text
    )


def test_a_signal_links_to_its_trend_chart_inlined_in_the_report():
    rendered = render_weekly_report(
        content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    slug = "touchpoint-delivery-packaging-csat"
    assert f'href="#trend-{slug}"' in section(rendered.html, "needs-attention")
    anchor = re.search(rf'<div id="trend-{slug}"[^>]*>(.*?)</div>', rendered.html, re.DOTALL)
    assert anchor, "no trend chart with the signal's anchor"
    cid = re.search(r'src="cid:([^"]+)"', anchor[1])[1]
    [image] = [i for i in rendered.images if i.cid == cid]
    assert image.data.startswith(b"\x89PNG") and image.filename.startswith(f"trend-{slug}.")
    assert f"[chart: trend-{slug}]" in rendered.text


def test_with_a_trend_url_a_signal_links_there_with_its_fields_quoted():
    template = "https://bi.example/touchpoint?grain={grain}&key={key}&metric={metric}&week={week}&region={region}"
    report = content()
    report.problem_signals = [
        replace(report.problem_signals[0], category="R&D <x>", key="category:R&D <x>:cases")
    ]
    rendered = render_weekly_report(
        report, Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES, trend_url=template
    )
    url = "https://bi.example/touchpoint?grain=touchpoint&key=delivery_packaging&metric=csat&week=2026-10-26&region=%28all%29"
    assert f'href="{url.replace("&", "&amp;")}"' in rendered.html
    assert f"trend: {url}" in rendered.text
    quoted = trend_link(report.problem_signals[0], template)
    assert "key=R%26D%20%3Cx%3E&" in quoted
    assert f'href="{quoted.replace("&", "&amp;")}"' in rendered.html
    # the charts stay in the report below
    assert 'id="trend-touchpoint-delivery-packaging-csat"' in rendered.html


@pytest.mark.parametrize("locale", ["fr_FR", "de_DE"])
def test_signal_numbers_follow_the_recipients_locale(locale):
    # the locale's numbers in English words: the language is the recipient's other choice
    reader = Recipient("a@example.com", "A", "UTC", locale, language="en")
    facts = wording(TEMPLATES, reader).signal_facts(content().attention[0])
    assert facts["now"] == f"CSAT {format_decimal(2.3, format='0.0', locale=locale)} / 5"
    assert facts["change"] == format_decimal(-1.9, format="0.0", locale=locale) + " pt"
    rendered = render_weekly_report(content(), reader, TEMPLATES)
    assert f"{format_decimal(1480, locale=locale)} customers" in rendered.text


def test_a_week_without_signals_says_so_in_each_section():
    rendered = render_weekly_report(
        quiet_content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    for list_id, sentence in (
        ("needs-attention", "No touchpoint needs attention this week."),
        ("improved", "No touchpoint improved beyond its usual level this week."),
        ("recurring-problems", "No case category rose beyond its usual level this week."),
        (
            "at-risk-cohorts",
            "No group of customers lost engagement beyond its usual level this week.",
        ),
    ):
        assert sentence in section(rendered.html, list_id) and "data-signal" not in section(
            rendered.html, list_id
        )
        assert f"- {sentence}" in rendered.text
    assert "No signal this week, so no trend to show." in rendered.html
    assert len(rendered.images) == 4  # the report's own charts, no signal's
    assert "Not judged this week" not in rendered.text


def test_a_week_too_early_to_judge_says_so():
    report = quiet_content()
    report.signals_judged = 0
    rendered = render_weekly_report(
        report, Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    assert 'id="signals-not-judged"' in rendered.html and "Not judged this week" in rendered.text


def test_the_rising_label_of_the_case_table_follows_the_signals():
    html = render_weekly_report(
        content(), Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    ).html
    table = html[html.index('id="problems"') :]
    table = table[: table.index("</table>")]
    delivery, billing = (
        re.search(rf"<td[^>]*>{name}(.*?)</td>", table, re.DOTALL)[1]
        for name in ("delivery issue", "billing")  # the categories by their catalog names
    )
    assert "rising" in delivery and "rising" not in billing  # BILLING only grew week over week


class Elements(HTMLParser):
    """The elements of an HTML document, and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_a_signal_whose_name_holds_markup_shows_it_as_text():
    """A case category is whatever HubSpot users typed: it reaches the list item, its data-signal
    attribute, the trend anchor and the chart's alt text, and opens no element anywhere."""
    hostile = "<script>alert(2)</script><img src=x onerror=alert(3)>"
    report = content()
    report.problem_signals = [
        replace(report.problem_signals[0], category=hostile, key=f"category:{hostile}:cases")
    ]
    rendered = render_weekly_report(
        report, Recipient("a@example.com", "A", "UTC", "en_GB"), TEMPLATES
    )
    elements = Elements(rendered.html)
    assert "script" not in elements.tags
    assert elements.tags.count("img") == len(rendered.images)  # the charts, nothing else
    assert hostile.lower() in "".join(elements.text)
    assert f"- {hostile.lower()}: 96 cases" in rendered.text
    listed = re.search(
        r'<ul id="recurring-problems">.*?data-signal="([^"]*)"', rendered.html, re.DOTALL
    )[1]
    assert html.unescape(listed) == f"category:{hostile}:cases"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("touchpoint:delivery_packaging:csat", "delivery packaging (email)"),
        ("channel:paid_ads:conversion_rate", "paid ads"),
        ("category:DELIVERY_ISSUE:cases", "delivery issue"),
    ],
)
def test_a_signal_is_named_after_its_grain(key, name):
    made = signal(key)
    assert wording(TEMPLATES, Recipient("a@example.com", "A")).signal_name(made) == name
    assert made.slug == key.lower().replace(":", "-").replace("_", "-")


def test_html_is_autoescaped_and_styles_are_inlined():
    report = content()
    report.at_risk.named[0] = AtRiskCustomer(
        "<script>alert(1)</script> {{ 7*7 }}", None, "EMEA", None, None, None, 2, False
    )
    rendered = render_weekly_report(
        report, Recipient("a@example.com", "<b>A</b>", "UTC", "en_GB"), TEMPLATES
    )
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert (
        "{{ 7*7 }}" in rendered.html and "{{ 7*7 }}" in rendered.text
    )  # template syntax stays text
    assert "<b>A</b>" not in rendered.html
    assert 'style="' in rendered.html
    assert len(rendered.html.encode()) < 100_000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://bi.example/t?grain={grain}&key={key}&metric={metric}&week={week}", None),
        ("bi.example/t?key={key}", "not an http(s) URL"),
        ("https://bi.example/t?key={name}", "unknown field(s) {name}"),
        ("https://bi.example/t?key={key", "not a valid template"),
    ],
)
def test_the_trend_url_setting_is_checked_when_read(monkeypatch, value, message):
    from touchpoint.config import load_settings

    monkeypatch.setenv("TOUCHPOINT_REPORT_TREND_URL", value)
    if message is None:
        assert load_settings().report_trend_url == value
    else:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_settings()
