"""Report delivery: the message's MIME structure, and each recipient getting the report exactly
once through dropped connections, 4xx and 5xx replies and task retries (real SMTP on loopback,
real Postgres)."""

from __future__ import annotations

import logging
import re
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import psycopg
import pytest
from aiosmtpd.controller import Controller

from helpers import free_port
from helpers.smtp_server import FlakyHandler, parse
from touchpoint.delivery.deliver import Delivery, DeliveryIncomplete, RetryPolicy, deliver
from touchpoint.delivery.message import Attachment, InlineImage, RenderedReport
from touchpoint.delivery.recipients import Recipient
from touchpoint.delivery.smtp import SmtpSettings
from touchpoint.intervals import iso_week
from touchpoint.local.mail_sink import saved_messages
from touchpoint.warehouse.schema import ensure_schema

PERIOD = "2026-W44"
SENDER = "Touchpoint <reports@example.com>"
QUICK = RetryPolicy(attempts=3, first_delay=0.01, factor=2.0, max_delay=0.05)
ALERTS = (Recipient("oncall@example.com", "On call"),)


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x1f\x6f\xb4"))
        + chunk(b"IEND", b"")
    )


def rendered(recipient: Recipient, total: int = 1234) -> RenderedReport:
    html = (
        f"<html><body><p>Hello {recipient.name}: {total} touchpoints</p>"
        '<img src="cid:chart-touchpoints" width="1" height="1" alt="touchpoints per day">'
        '<img src="cid:chart-channels" width="1" height="1" alt="channels"></body></html>'
    )
    return RenderedReport(
        subject=f"Touchpoints for the week: {total}",
        html=html,
        text=f"Hello {recipient.name}: {total} touchpoints\n",
        images=(
            InlineImage("chart-touchpoints", "touchpoints.png", png_1x1(), 1, 1),
            InlineImage("chart-channels", "channels.png", png_1x1(), 1, 1),
        ),
        attachments=(
            Attachment("touchpoints-2026-W44.csv", f"channel,touchpoints\nweb,{total}\n".encode()),
        ),
    )


def people(n: int) -> tuple[Recipient, ...]:
    return tuple(Recipient(f"p{i}@example.com", f"Person {i}") for i in range(1, n + 1))


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyHandler, SmtpSettings]]:
    handler = FlakyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, SmtpSettings(host="127.0.0.1", port=controller.port, timeout=5)
    finally:
        controller.stop()


def rows(conn: psycopg.Connection, report: str = "weekly") -> dict[str, tuple]:
    result = conn.execute(
        "select recipient, status, attempts, message_id, last_error from reporting.deliveries"
        " where report = %s and period = %s",
        (report, PERIOD),
    ).fetchall()
    conn.commit()
    return {r[0]: r[1:] for r in result}


def run(conn, smtp, recipients, render=rendered, **kw) -> list[Delivery]:
    kw.setdefault("policy", QUICK)
    kw.setdefault("sleep", lambda s: None)
    return deliver(conn, smtp, "weekly", PERIOD, SENDER, recipients, render, **kw)


def test_the_period_of_a_weekly_report_is_its_iso_week():
    assert iso_week(date(2026, 11, 16)) == "2026-W47"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"


def test_backoff_grows_by_the_factor_up_to_the_cap():
    assert [RetryPolicy().delay_before(a) for a in range(2, 9)] == [1, 2, 4, 8, 16, 30, 30]


def test_the_message_has_text_and_html_inline_images_and_the_csv_attached(conn, mail_sink):
    recipient = Recipient("zoe@example.com", "Zoë Ünal")
    [delivery] = run(
        conn, SmtpSettings(host="127.0.0.1", port=mail_sink.port, timeout=5), (recipient,)
    )
    [saved] = saved_messages(mail_sink.directory)
    message = parse(saved.read_bytes())

    assert message.get_content_type() == "multipart/mixed"
    [related, attachment] = message.iter_parts()
    assert related.get_content_type() == "multipart/related"
    alternative, *images = related.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]

    html = message.get_body(("html",)).get_content()
    assert len(html.encode()) < 100_000
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert cids == ["chart-touchpoints", "chart-channels"]
    by_cid = {p["Content-ID"]: p for p in images}
    assert set(by_cid) == {f"<{cid}>" for cid in cids}
    for part in images:
        assert part.get_content_type() == "image/png"
        assert part.get_content_disposition() == "inline" and part.get_filename().endswith(".png")
        assert part.get_content() == png_1x1()

    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "touchpoints-2026-W44.csv"
    assert attachment.get_content_type() == "text/csv"
    assert "web,1234" in attachment.get_content()

    assert message["Message-ID"] == delivery.message_id and message["Date"]
    assert message["To"].addresses[0].display_name == "Zoë Ünal"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["From"].addresses[0].addr_spec == "reports@example.com"


def test_a_message_without_images_or_attachments_is_plain_and_html_alternatives(conn, mail_sink):
    simple = RenderedReport(subject="s", html="<p>hi</p>", text="hi")
    run(
        conn,
        SmtpSettings(host="127.0.0.1", port=mail_sink.port, timeout=5),
        people(1),
        lambda r: simple,
    )
    message = parse(saved_messages(mail_sink.directory)[0].read_bytes())
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "hi"


def test_each_recipient_gets_the_report_once_however_often_it_is_sent(conn, mail_sink):
    recipients = (
        Recipient("a@example.com", "A"),
        Recipient("b@example.com", "B", "America/New_York", "en_US"),
    )
    smtp = SmtpSettings(host="127.0.0.1", port=mail_sink.port, timeout=5)
    first = run(conn, smtp, recipients)
    second = run(conn, smtp, recipients)
    assert [(d.newly_sent, d.status) for d in first] == [(True, "sent"), (True, "sent")]
    assert [(d.newly_sent, d.status) for d in second] == [(False, "sent"), (False, "sent")]
    assert [d.message_id for d in second] == [d.message_id for d in first]
    assert len(saved_messages(mail_sink.directory)) == 2
    assert {r: (s, a) for r, (s, a, *_) in rows(conn).items()} == {
        "a@example.com": ("sent", 1),
        "b@example.com": ("sent", 1),
    }


def test_changed_content_after_sending_is_not_resent_but_warned_about(conn, flaky, caplog):
    handler, smtp = flaky
    run(conn, smtp, people(2))
    with caplog.at_level(logging.WARNING, logger="touchpoint.delivery.deliver"):
        again = run(conn, smtp, people(2), render=lambda r: rendered(r, total=999))
    assert [d.newly_sent for d in again] == [False, False]
    assert len(handler.received) == 2
    changed = [r for r in caplog.records if "changed since it was sent" in r.getMessage()]
    assert len(changed) == 2 and "NOT resent" in changed[0].getMessage()


def test_an_unreachable_smtp_server_is_named(conn):
    smtp = SmtpSettings(host="127.0.0.1", port=free_port(), timeout=3)
    slept: list[float] = []
    with pytest.raises(DeliveryIncomplete, match="smtp_default") as caught:
        run(conn, smtp, people(3), sleep=slept.append)
    assert caught.value.undelivered == ["p1@example.com", "p2@example.com", "p3@example.com"]
    assert len(slept) == QUICK.attempts - 1  # the first recipient's backoff only
    [(status, attempts, _, error)] = rows(conn).values()
    assert (
        status == "failed"
        and attempts == QUICK.attempts
        and error.startswith("transient: cannot reach")
    )


@pytest.mark.parametrize(
    "outage, error", [("drop", "SMTPServerDisconnected"), ("451", "451 4.3.0")]
)
def test_an_outage_mid_run_fails_the_task_and_its_retry_sends_each_the_missing_report_once(
    conn, flaky, outage, error
):
    handler, smtp = flaky
    # The connection is cut (or 451 answered) while recipient 3's message is being sent, and the
    # server stays unusable for longer than the retries last.
    handler.outage_from, handler.outage = 3, outage
    recipients = people(5)
    with pytest.raises(DeliveryIncomplete) as caught:
        run(conn, smtp, recipients)
    assert caught.value.undelivered == ["p3@example.com", "p4@example.com", "p5@example.com"]
    assert [len(handler.messages_to(r.address)) for r in recipients] == [1, 1, 0, 0, 0]
    before = rows(conn)
    assert [before[r.address][0] for r in recipients] == [
        "sent",
        "sent",
        "failed",
        "failed",
        "failed",
    ]
    assert before["p3@example.com"][1] == QUICK.attempts
    assert before["p3@example.com"][3].startswith(f"transient: {error}")

    handler.outage_from = None  # the outage ends; Airflow retries the task
    retried = run(conn, smtp, recipients)
    assert [d.newly_sent for d in retried] == [False, False, True, True, True]
    assert [len(handler.messages_to(r.address)) for r in recipients] == [1, 1, 1, 1, 1]
    after = rows(conn)
    assert {s for s, *_ in after.values()} == {"sent"}
    assert [after[r.address][1] for r in recipients] == [1, 1] + [QUICK.attempts + 1] * 3
    # The retried message keeps the Message-ID chosen at its first attempt.
    assert handler.messages_to("p3@example.com")[0]["Message-ID"] == before["p3@example.com"][2]
    assert after["p3@example.com"][2] == before["p3@example.com"][2]


@pytest.mark.parametrize("fault", ["dropped connection", "451 to DATA", "450 to RCPT"])
def test_a_single_transient_failure_is_absorbed_by_the_backoff(conn, flaky, fault):
    handler, smtp = flaky
    # Recipient 2's first try fails.
    if fault == "dropped connection":
        handler.drop_at = {2}
    elif fault == "451 to DATA":
        handler.tempfail_at = {2}
    else:
        handler.greylist = {"p2@example.com": 1}
    recipients = people(3)
    slept: list[float] = []
    deliveries = run(conn, smtp, recipients, sleep=slept.append)
    assert [d.newly_sent for d in deliveries] == [True, True, True]
    assert [len(handler.messages_to(r.address)) for r in recipients] == [1, 1, 1]
    assert slept == [QUICK.first_delay]
    assert {r: a for r, (_, a, *_) in rows(conn).items()} == {
        "p1@example.com": 1,
        "p2@example.com": 2,
        "p3@example.com": 1,
    }


def test_a_refused_recipient_is_not_retried_and_the_alerts_list_hears_of_it_once(
    conn, flaky, caplog
):
    handler, smtp = flaky
    handler.refuse = {"p2@example.com"}
    recipients = people(3)
    with caplog.at_level(logging.ERROR, logger="touchpoint.delivery.deliver"):
        first = run(conn, smtp, recipients, alerts=ALERTS)
    assert [(d.status, d.newly_sent) for d in first] == [
        ("sent", True),
        ("failed", False),
        ("sent", True),
    ]
    assert [len(handler.messages_to(r.address)) for r in recipients] == [1, 0, 1]
    status, attempts, _, error = rows(conn)["p2@example.com"]
    assert (
        status == "failed" and attempts == 1 and "550" in error and error.startswith("permanent:")
    )
    assert any(
        "p2@example.com" in r.getMessage() and "permanently" in r.getMessage()
        for r in caplog.records
    )

    [alert] = handler.messages_to("oncall@example.com")
    assert "p2@example.com" in alert["Subject"] and "550" in alert["Subject"]
    assert alert["Subject"].startswith(
        "[touchpoint] weekly 2026-W44: delivery refused for p2@example.com"
    )
    assert "p2@example.com" in alert.get_body(("plain",)).get_content()
    assert rows(conn, "weekly:delivery_failure")["oncall@example.com"][0] == "sent"

    received = len(handler.received)
    second = run(conn, smtp, recipients, alerts=ALERTS)
    assert [d.newly_sent for d in second] == [False, False, False]
    assert len(handler.received) == received  # nothing new: no report, no second alert
    assert rows(conn)["p2@example.com"][1] == 1  # the refusing server was not asked again

    handler.refuse = set()  # the address is fixed: an explicit retry delivers it
    third = run(conn, smtp, recipients, alerts=ALERTS, retry_failed=True)
    assert [d.newly_sent for d in third] == [False, True, False]
    assert len(handler.messages_to("p2@example.com")) == 1


def test_an_alert_that_could_not_be_sent_goes_out_with_the_next_run(conn, flaky):
    handler, smtp = flaky
    handler.refuse = {"p2@example.com"}
    handler.outage_from = 3  # p1 and p3 get through (DATA 1 and 2), the alert (DATA 3) does not
    with pytest.raises(DeliveryIncomplete, match="delivery-failure alert") as caught:
        run(conn, smtp, people(3), alerts=ALERTS)
    assert caught.value.undelivered == ["oncall@example.com (the delivery-failure alert)"]
    assert handler.messages_to("oncall@example.com") == []

    handler.outage_from = None
    run(conn, smtp, people(3), alerts=ALERTS)
    run(conn, smtp, people(3), alerts=ALERTS)
    assert len(handler.messages_to("oncall@example.com")) == 1
    assert [len(handler.messages_to(r.address)) for r in people(3)] == [1, 0, 1]


def test_two_overlapping_runs_send_each_recipient_one_message(fresh_db, conn, flaky):
    handler, smtp = flaky
    handler.data_delay = 0.05
    results: list[object] = []

    def one_run() -> None:
        with psycopg.connect(fresh_db) as own:
            results.append(run(own, smtp, people(3)))

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2
    assert [len(handler.messages_to(r.address)) for r in people(3)] == [1, 1, 1]


def test_a_row_left_sending_by_a_crash_is_sent_again_with_its_message_id(conn, flaky):
    handler, smtp = flaky
    conn.execute(
        "insert into reporting.deliveries (report, period, recipient, status, message_id, attempts)"
        " values ('weekly', %s, 'p1@example.com', 'sending', '<crashed@example.com>', 1)",
        (PERIOD,),
    )
    conn.commit()
    [delivery] = run(conn, smtp, people(1))
    assert delivery.newly_sent and delivery.message_id == "<crashed@example.com>"
    assert handler.messages_to("p1@example.com")[0]["Message-ID"] == "<crashed@example.com>"
    assert rows(conn)["p1@example.com"][:2] == ("sent", 2)


def test_the_old_send_log_is_migrated_into_reporting_deliveries(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            """
            create schema report;
            create table report.send_log (
                report_name text not null, week_start date not null, recipient text not null,
                subject text not null, message_id text not null, sent_at timestamptz not null"""
            """ default now(),
                primary key (report_name, week_start, recipient));
            insert into report.send_log values
                ('weekly_touchpoints', '2026-11-16', 'a@example.com', 'Week 47',"""
            """ '<old@example.com>',
                 '2026-11-23 07:00+00');
        """
        )
        conn.commit()
        ensure_schema(conn)
        ensure_schema(conn)
        row = conn.execute(
            "select report, period, recipient, status, message_id, subject, attempts, sent_at"
            " from reporting.deliveries"
        ).fetchall()
        assert [r[:7] for r in row] == [
            (
                "weekly_touchpoints",
                "2026-W47",
                "a@example.com",
                "sent",
                "<old@example.com>",
                "Week 47",
                1,
            )
        ]
        assert row[0][7].isoformat().startswith("2026-11-23T07:00")
        assert conn.execute("select to_regnamespace('report')").fetchone()[0] is None


def test_a_migrated_delivery_is_not_sent_again(fresh_db, flaky):
    handler, smtp = flaky
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            "create schema report; create table report.send_log (report_name text, week_start date,"
            " recipient text, subject text, message_id text, sent_at timestamptz default now())"
        )
        conn.execute(
            "insert into report.send_log values"
            " ('weekly', '2026-10-26', 'p1@example.com', 's', '<m@x>')"
        )
        conn.commit()
        ensure_schema(conn)
        assert [d.newly_sent for d in run(conn, smtp, people(2))] == [False, True]
    assert handler.messages_to("p1@example.com") == []


def test_the_ddl_applies_again_on_a_database_that_has_it(conn):
    ensure_schema(conn)
    ensure_schema(conn)
    assert rows(conn) == {}


def test_a_relay_that_requires_a_login_gets_it_and_a_wrong_password_is_named_without_it(
    conn, tmp_path
):
    """SMTP AUTH (the local sink with TOUCHPOINT_SMTP_LOGIN / _PASSWORD, as a real relay): the
    report logs in; a wrong password fails the send with the server's reply, which never holds
    the password, in the error, the log and the send log."""
    from touchpoint.local.mail_sink import MailSink

    password, wrong = f"SmtpPw{uuid.uuid4().hex}", f"Wrong{uuid.uuid4().hex}"
    with MailSink(tmp_path / "mail", port=free_port(), credentials=("reports", password)) as sink:
        good = SmtpSettings(
            host="127.0.0.1", port=sink.port, login="reports", password=password, timeout=5
        )
        assert [d.status for d in run(conn, good, people(1))] == ["sent"]
        assert len(saved_messages(sink.directory)) == 1
        # a wrong password (535 at AUTH), then no login at all (530 at MAIL FROM): the session is
        # refused, not the recipient, who stays due for the next run once the connection is fixed
        for tries, (smtp, reply, who) in enumerate(
            (
                (replace(good, password=wrong), "535", "the login 'reports'"),
                (replace(good, login=None, password=None), "530", "a session without a login"),
            ),
            start=1,
        ):
            with pytest.raises(DeliveryIncomplete) as caught:
                run(
                    conn,
                    smtp,
                    (
                        Recipient("later@example.com", "Later"),
                        Recipient("next@example.com", "Next"),
                    ),
                )
            assert f"refused {who}: {reply} 5.7" in str(caught.value), str(caught.value)
            assert caught.value.undelivered == ["later@example.com", "next@example.com"]
            [status, attempts, _, error] = rows(conn)["later@example.com"]
            # one attempt per run (retrying within seconds would not help), counted across runs
            assert (status, attempts) == ("failed", tries) and error.startswith("transient:"), error
            assert wrong not in str(caught.value) + error + repr(smtp) and password not in error
        assert len(saved_messages(sink.directory)) == 1  # nothing got through without the login
        again = run(
            conn,
            good,
            (Recipient("later@example.com", "Later"), Recipient("next@example.com", "Next")),
        )
        assert [d.status for d in again] == ["sent", "sent"] and len(
            saved_messages(sink.directory)
        ) == 3
