"""The SMTP session as a real relay meets it: STARTTLS whenever offered (a certificate checked
against the trusted CAs), the connection's booleans read as Airflow reads them, multi-line
replies and line breaks in names, and no ledger row left ``sending``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import psycopg
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpers import free_port
from helpers.smtp_server import FlakyHandler
from touchpoint.delivery import deliver as deliver_module
from touchpoint.delivery.deliver import RetryPolicy, deliver
from touchpoint.delivery.message import RenderedReport
from touchpoint.delivery.recipients import Recipient
from touchpoint.delivery.smtp import CannotConnect, SmtpSettings, open_session
from touchpoint.errors import ConfigError
from touchpoint.orchestration.connections import _smtp_from

PERIOD = "2026-W44"
SENDER = "Touchpoint <reports@example.com>"
QUICK = RetryPolicy(attempts=2, first_delay=0.01, factor=2.0, max_delay=0.02)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@contextmanager
def _relay(certificate: tuple[str, str] | None) -> Iterator[tuple[FlakyHandler, int]]:
    """A relay on loopback (offering STARTTLS with ``certificate``): its handler and port."""
    kwargs = {}
    if certificate:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        kwargs["tls_context"] = context
    handler = FlakyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_kwargs=kwargs)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest.fixture
def tls_relay(certificate, monkeypatch) -> Iterator[tuple[FlakyHandler, int]]:
    """A relay that offers STARTTLS, its certificate trusted (SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    with _relay(certificate) as relay:
        yield relay


@pytest.fixture
def plain_relay() -> Iterator[tuple[FlakyHandler, int]]:
    with _relay(None) as relay:
        yield relay


def _report(_recipient: Recipient) -> RenderedReport:
    return RenderedReport(subject="Touchpoints", html="<p>hi</p>", text="hi\n")


def _send(conn, port: int, recipients, **settings) -> list:
    smtp = SmtpSettings(host="127.0.0.1", port=port, timeout=5, **settings)
    return deliver(
        conn, smtp, "weekly", PERIOD, SENDER, recipients, _report, policy=QUICK, sleep=lambda s: 0
    )


def _statuses(conn: psycopg.Connection, report: str = "weekly") -> dict[str, str]:
    rows = conn.execute(
        "select recipient, status from reporting.deliveries where report = %s", (report,)
    ).fetchall()
    conn.commit()
    return dict(rows)


def test_starttls_is_used_whenever_the_server_offers_it(conn, tls_relay):
    handler, port = tls_relay
    _send(conn, port, (Recipient("a@example.com", "A"),))
    assert handler.over_tls == [True]


def test_starttls_explicitly_disabled_is_not_used(conn, tls_relay):
    handler, port = tls_relay
    _send(conn, port, (Recipient("a@example.com", "A"),), starttls=False)
    assert handler.over_tls == [False]


def test_a_server_without_the_required_starttls_is_refused_at_once(plain_relay):
    _handler, port = plain_relay
    with pytest.raises(CannotConnect, match="STARTTLS") as caught:
        open_session(SmtpSettings(host="127.0.0.1", port=port, timeout=5, starttls=True))
    assert not caught.value.retryable


def test_a_certificate_nobody_trusts_is_refused(certificate, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with _relay(certificate) as (handler, port):
        with pytest.raises(CannotConnect, match="CERTIFICATE_VERIFY_FAILED") as caught:
            open_session(SmtpSettings(host="127.0.0.1", port=port, timeout=5))
    assert not caught.value.retryable and handler.received == []


def _connection(**extra: object) -> SimpleNamespace:
    return SimpleNamespace(
        host="mail.example.com", port=587, login="u", password="p", extra_dejson=extra
    )


@pytest.mark.parametrize(
    ("extra", "use_ssl", "starttls"),
    [
        ({}, False, None),
        ({"disable_tls": "false"}, False, True),
        ({"disable_tls": "False", "disable_ssl": "true"}, False, True),
        ({"disable_tls": "true"}, False, False),
        ({"disable_tls": True, "disable_ssl": False}, True, False),
        ({"disable_ssl": "0"}, True, None),
    ],
)
def test_connection_booleans_are_read_as_airflow_reads_strings(extra, use_ssl, starttls):
    smtp = _smtp_from(_connection(**extra))
    assert (smtp.use_ssl, smtp.starttls) == (use_ssl, starttls)


def test_a_connection_boolean_that_is_no_boolean_is_named():
    with pytest.raises(ConfigError, match="disable_tls='maybe' is not a boolean"):
        _smtp_from(_connection(disable_tls="maybe"))


def test_a_multi_line_refusal_reaches_the_alerts_list_on_one_line(conn, plain_relay):
    handler, port = plain_relay
    handler.refuse = {"gone@example.com"}
    handler.refusal = (
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550 5.1.1 Please check the address <{address}>"
    )
    smtp = SmtpSettings(host="127.0.0.1", port=port, timeout=5)
    recipients = (Recipient("gone@example.com", "Gone"), Recipient("ok@example.com", "Ok"))
    alerts = (Recipient("oncall@example.com", "On call"),)
    deliver(
        conn, smtp, "weekly", PERIOD, SENDER, recipients, _report,
        policy=QUICK, sleep=lambda s: 0, alerts=alerts,
    )  # fmt: skip
    [alert] = handler.messages_to("oncall@example.com")
    assert "does not exist. 5.1.1 Please" in alert["Subject"]
    assert "\n" not in alert["Subject"]
    assert _statuses(conn) == {"gone@example.com": "failed", "ok@example.com": "sent"}
    assert set(_statuses(conn, "weekly:delivery_failure").values()) == {"sent"}


def test_line_breaks_in_a_name_or_subject_stay_out_of_the_headers(conn, plain_relay):
    handler, port = plain_relay
    smtp = SmtpSettings(host="127.0.0.1", port=port, timeout=5)
    recipient = Recipient("a@example.com", "Ann\r\nBcc: victim@example.com")

    def report(_r: Recipient) -> RenderedReport:
        return RenderedReport(subject="Week 44\r\nX-Injected: yes", html="<p>hi</p>", text="hi\n")

    deliver(conn, smtp, "weekly", PERIOD, SENDER, (recipient,), report, policy=QUICK)
    [message] = handler.messages_to("a@example.com")
    assert message["Subject"] == "Week 44 X-Injected: yes" and message["X-Injected"] is None
    assert message["Bcc"] is None and "Ann Bcc" in message["To"]


def test_an_attempt_that_fails_unexpectedly_never_leaves_its_row_sending(
    conn, plain_relay, monkeypatch
):
    handler, port = plain_relay
    recipients = (Recipient("a@example.com", "A"),)

    def broken(*args, **kwargs):
        raise ValueError("a message that cannot be built")

    monkeypatch.setattr(deliver_module, "build_message", broken)
    with pytest.raises(ValueError, match="cannot be built"):
        _send(conn, port, recipients)
    assert _statuses(conn) == {"a@example.com": "failed"}
    monkeypatch.undo()
    # the next call (the task's retry, after the fix) sends it
    [delivery] = _send(conn, port, recipients)
    assert delivery.newly_sent and len(handler.messages_to("a@example.com")) == 1
