"""Send rendered reports over SMTP, once per (report, week, recipient), recorded in the send log."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import psycopg

from touchpoint.errors import TouchpointError
from touchpoint.report.recipients import Recipient
from touchpoint.report.render import RenderedReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    login: str | None = None
    password: str | None = None
    use_ssl: bool = False
    starttls: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class Delivery:
    recipient: str
    subject: str
    message_id: str
    newly_sent: bool


def build_message(rendered: RenderedReport, sender: str, recipient: Recipient) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = formataddr((recipient.name, recipient.address))
    message["Message-ID"] = make_msgid(domain="touchpoint.local")
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    try:
        if settings.use_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            if settings.starttls:
                client.starttls(context=ssl.create_default_context())
        if settings.login:
            client.login(settings.login, settings.password or "")
        return client
    except (OSError, smtplib.SMTPException) as exc:
        raise TouchpointError(
            f"cannot reach the SMTP server {settings.host}:{settings.port}: {exc}; "
            "check the Airflow connection smtp_default"
        ) from None


def send_once(
    conn: psycopg.Connection,
    smtp: SmtpSettings,
    report_name: str,
    week_start: date,
    sender: str,
    recipients: tuple[Recipient, ...],
    render: Callable[[Recipient], RenderedReport],
) -> list[Delivery]:
    """Send the report to every recipient who has not had it for this week yet."""
    deliveries: list[Delivery] = []
    client: smtplib.SMTP | None = None
    try:
        for recipient in recipients:
            row = conn.execute(
                "select subject, message_id from report.send_log"
                " where report_name = %s and week_start = %s and recipient = %s",
                (report_name, week_start, recipient.address),
            ).fetchone()
            if row:
                log.info("%s for %s already sent to %s (%s): skipping", report_name, week_start,
                         recipient.address, row[1])
                deliveries.append(Delivery(recipient.address, row[0], row[1], newly_sent=False))
                continue
            rendered = render(recipient)
            message = build_message(rendered, sender, recipient)
            client = client or _open_smtp(smtp)
            client.send_message(message)
            with conn.transaction():
                conn.execute(
                    "insert into report.send_log (report_name, week_start, recipient, subject, message_id)"
                    " values (%s, %s, %s, %s, %s)",
                    (report_name, week_start, recipient.address, rendered.subject, message["Message-ID"]),
                )
            log.info("sent %s for %s to %s (%s)", report_name, week_start, recipient.address, message["Message-ID"])
            deliveries.append(Delivery(recipient.address, rendered.subject, message["Message-ID"], newly_sent=True))
    finally:
        if client is not None:
            try:
                client.quit()
            except smtplib.SMTPException:
                pass
    return deliveries
