"""Deliver rendered reports over SMTP: once per (report, period, recipient), retrying what can succeed.

``reporting.deliveries`` is the ledger. A row is marked ``sending`` and committed before the
SMTP server hears about the message, and ``sent`` right after the server accepts it, so a crash
or disconnect at any point never loses the record of what went out: the next call (the Airflow
task's retry) sends exactly what is missing. The Message-ID is chosen once, at the first
attempt, and reused on every retry, so in the one window no ledger can close (the server
accepted, the process died before the commit) a duplicate carries the same Message-ID.

Failures are sorted by what a retry can do:

* transient (disconnects, refused/reset/timed-out connections, 4xx replies): retried in this
  call with exponential backoff, then left ``failed`` with ``last_error`` starting
  ``transient:``; the call ends with :class:`DeliveryIncomplete` and the next call retries them;
* permanent (5xx replies): ``failed`` with ``last_error`` starting ``permanent:``, never retried
  automatically (a refusing server is not hammered), and the alerts list is told once.
"""

from __future__ import annotations

import hashlib
import html
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

import psycopg

from touchpoint.errors import TouchpointError
from touchpoint.report.message import RenderedReport
from touchpoint.report.recipients import Recipient

log = logging.getLogger(__name__)

TRANSIENT = "transient: "
PERMANENT = "permanent: "


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    login: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line or a traceback's locals
    use_ssl: bool = False
    starttls: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often one recipient is tried within one call, and how long to wait in between."""

    attempts: int = 4
    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...)."""
        return min(self.first_delay * self.factor ** (attempt - 2), self.max_delay)


@dataclass(frozen=True)
class Delivery:
    """What happened to one recipient. ``status`` is the ledger's (``sent``, ``failed``) or
    ``pending`` when the call stopped before trying (the SMTP server could not be reached)."""

    recipient: str
    subject: str
    message_id: str
    newly_sent: bool
    status: str
    last_error: str | None = None

    @property
    def retryable(self) -> bool:
        """Not delivered, and the next call will try again."""
        return self.status == "pending" or (self.status == "failed" and not self.permanent)

    @property
    def permanent(self) -> bool:
        return (self.last_error or "").startswith(PERMANENT)


class DeliveryIncomplete(TouchpointError):
    """Some recipients did not get the report because of transient failures; calling
    :func:`deliver` again sends to exactly those."""

    def __init__(self, message: str, undelivered: list[str], deliveries: list[Delivery]) -> None:
        super().__init__(message)
        self.undelivered = undelivered
        self.deliveries = deliveries


def content_hash(rendered: RenderedReport) -> str:
    """sha256 of what the recipient reads (not the Message-ID or Date, which differ per attempt)."""
    digest = hashlib.sha256()
    parts = [rendered.subject.encode(), rendered.text.encode(), rendered.html.encode()]
    parts += [image.data for image in rendered.images] + [a.data for a in rendered.attachments]
    for part in parts:
        # Length-prefixed, so moving bytes from one part to the next changes the hash.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def build_message(rendered: RenderedReport, sender: str, recipient: Recipient, message_id: str) -> EmailMessage:
    """multipart/mixed [ multipart/related [ multipart/alternative [text, html], inline images ],
    attachments ]; without images or attachments the outer layers are left out."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = formataddr((recipient.name, recipient.address))
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    if rendered.images:
        # EmailMessage will not wrap an alternative in a related part itself: build it inside.
        alternative = EmailMessage(policy=message.policy)
        alternative.set_content(rendered.text)
        alternative.add_alternative(rendered.html, subtype="html")
        del alternative["MIME-Version"]
        message.make_related()
        message.attach(alternative)
    else:
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
    for image in rendered.images:
        # The header carries angle brackets; the HTML refers to it as cid:<cid> without them.
        message.add_related(image.data, maintype="image", subtype=image.mime_subtype, cid=f"<{image.cid}>",
                            disposition="inline", filename=image.filename)
    for attachment in rendered.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment.filename)
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    return message


def _new_message_id(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "touchpoint.local"
    return make_msgid(domain=domain)


class _CannotConnect(Exception):
    """Connecting (or logging in) failed: no recipient can be served until that changes."""

    def __init__(self, cause: BaseException, retryable: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retryable = retryable


def _open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    client: smtplib.SMTP | None = None
    try:
        if settings.use_ssl:
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            if settings.starttls:
                client.starttls(context=ssl.create_default_context())
        if settings.login:
            client.login(settings.login, settings.password or "")
        return client
    except (OSError, smtplib.SMTPException) as exc:
        _close(client)
        # A 5xx greeting or a refused login will not change on its own within seconds.
        code = getattr(exc, "smtp_code", None)
        raise _CannotConnect(exc, retryable=not (isinstance(code, int) and 500 <= code <= 599)) from exc


def _close(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _describe(exc: BaseException) -> tuple[bool, str]:
    """(transient?, what the server said) for a failed send."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        text = "; ".join(f"{code} {_text(reply)}" for code, reply in replies)
        return all(400 <= code <= 499 for code, _ in replies), text
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        return not 500 <= exc.smtp_code <= 599, text
    # Disconnects (SMTPServerDisconnected), refused/reset connections, timeouts: the network.
    return True, f"{type(exc).__name__}: {exc}"


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


#: Replies about the session's credentials (RFC 4954): authentication required, too weak,
#: refused, or needs encryption. They concern every recipient alike, never one address.
AUTH_REPLY_CODES = frozenset({530, 534, 535, 538})


def _smtp_unreachable(settings: SmtpSettings, exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    if code in AUTH_REPLY_CODES:
        who = f"the login {settings.login!r}" if settings.login else "a session without a login"
        return (f"the SMTP server {settings.host}:{settings.port} refused {who}: "
                f"{code} {_text(getattr(exc, 'smtp_error', b''))}; check the login and password of the "
                "Airflow connection smtp_default (TOUCHPOINT_SMTP_LOGIN / TOUCHPOINT_SMTP_PASSWORD for the CLI)")
    return (f"cannot reach the SMTP server {settings.host}:{settings.port}: {exc}; "
            "check the Airflow connection smtp_default")


def _refuses_the_session(exc: BaseException) -> bool:
    """A refusal of the sender or of the credentials (MAIL FROM answered 530, say), not of a
    recipient: no recipient can be served until the configuration changes."""
    code = getattr(exc, "smtp_code", None)
    return code in AUTH_REPLY_CODES or (isinstance(exc, smtplib.SMTPSenderRefused) and 500 <= code <= 599)


@dataclass
class _Run:
    """One call's SMTP session and what happened to whom."""

    smtp: SmtpSettings
    policy: RetryPolicy
    sleep: Callable[[float], None]
    client: smtplib.SMTP | None = None
    unreachable: str | None = None

    def reset(self) -> None:
        _close(self.client)
        self.client = None


def deliver(
    conn: psycopg.Connection,
    smtp: SmtpSettings,
    report: str,
    period: str,
    sender: str,
    recipients: tuple[Recipient, ...],
    render: Callable[[Recipient], RenderedReport],
    alerts: tuple[Recipient, ...] = (),
    policy: RetryPolicy = RetryPolicy(),
    retry_failed: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send ``report`` for ``period`` to every recipient who has not had it.

    Already sent: skipped. Refused permanently (5xx) before: skipped unless ``retry_failed``.
    Everyone else is tried, each with its own retries, in order; one recipient's failure never
    holds up or resends another's. When a recipient is refused permanently in this call, the
    ``alerts`` list gets one message about it (also recorded, so also sent once). Raises
    :class:`DeliveryIncomplete` when a transient failure outlasted the retries (the next call
    sends to exactly those) or the SMTP server cannot be reached. Commits on ``conn``.
    """
    run = _Run(smtp, policy, sleep)
    lock_key = f"{report}/{period}"
    # Two overlapping runs (a manual trigger beside the scheduled one) would both see "not sent
    # yet": the second waits here, then finds the rows sent.
    conn.execute("select pg_advisory_lock(hashtext('touchpoint.deliver'), hashtext(%s))", (lock_key,))
    conn.commit()
    alerted: list[Delivery] = []
    try:
        deliveries, refused_now = _deliver_all(conn, run, report, period, sender, recipients, render, retry_failed)
        # Also when only an earlier call saw the refusal: its alert may not have got out.
        if not run.unreachable and (refused_now or _permanent_failures(conn, report, period)):
            alerted = _alert_refusals(conn, run, report, period, sender, alerts)
    finally:
        run.reset()
        try:
            conn.rollback()
            conn.execute("select pg_advisory_unlock(hashtext('touchpoint.deliver'), hashtext(%s))", (lock_key,))
            conn.commit()
        except psycopg.Error:
            pass  # a broken connection has released its session locks already

    undelivered = [d.recipient for d in deliveries if d.retryable]
    undelivered += [f"{d.recipient} (the delivery-failure alert)" for d in alerted if d.retryable]
    if run.unreachable:
        raise DeliveryIncomplete(f"{report} for {period} not delivered to {', '.join(undelivered)}: "
                                 f"{run.unreachable}", undelivered, deliveries)
    if undelivered:
        raise DeliveryIncomplete(
            f"{report} for {period} not delivered to {', '.join(undelivered)} after {policy.attempts} attempts "
            "each (transient SMTP failures, see reporting.deliveries.last_error); the task's retry sends to "
            "exactly those", undelivered, deliveries)
    return deliveries


def _deliver_all(
    conn: psycopg.Connection,
    run: _Run,
    report: str,
    period: str,
    sender: str,
    recipients: tuple[Recipient, ...],
    render: Callable[[Recipient], RenderedReport],
    retry_failed: bool = False,
) -> tuple[list[Delivery], list[tuple[str, str]]]:
    deliveries: list[Delivery] = []
    refused_now: list[tuple[str, str]] = []
    for recipient in recipients:
        if run.unreachable:
            # The server is gone: waiting through the same backoff for everyone helps nobody.
            deliveries.append(Delivery(recipient.address, "", "", newly_sent=False, status="pending"))
            continue
        row = conn.execute(
            "select status, content_hash, message_id, subject, last_error from reporting.deliveries"
            " where report = %s and period = %s and recipient = %s",
            (report, period, recipient.address),
        ).fetchone()
        conn.commit()
        if row and row[0] == "sent":
            status, stored_hash, message_id, subject, _ = row
            log.info("%s for %s already sent to %s (%s): skipping", report, period, recipient.address, message_id)
            if stored_hash and content_hash(render(recipient)) != stored_hash:
                log.warning("%s for %s: the content for %s changed since it was sent (%s); it is NOT resent",
                            report, period, recipient.address, message_id)
            deliveries.append(Delivery(recipient.address, subject or "", message_id, newly_sent=False, status="sent"))
            continue
        if row and row[0] == "failed" and (row[4] or "").startswith(PERMANENT) and not retry_failed:
            log.error("%s for %s: %s refused it permanently before (%s): skipping (retry_failed=True to try again)",
                      report, period, recipient.address, row[4])
            deliveries.append(Delivery(recipient.address, row[3] or "", row[2], newly_sent=False, status="failed",
                                       last_error=row[4]))
            continue
        if row and row[0] == "sending":
            log.warning("%s for %s: an earlier attempt to %s ended without a result (it may have arrived); "
                        "sending again with the same Message-ID %s", report, period, recipient.address, row[2])
        delivery, refusal = _deliver_one(conn, run, report, period, sender, recipient, render(recipient))
        deliveries.append(delivery)
        if refusal:
            refused_now.append((recipient.address, refusal))
    return deliveries, refused_now


def _deliver_one(
    conn: psycopg.Connection,
    run: _Run,
    report: str,
    period: str,
    sender: str,
    recipient: Recipient,
    rendered: RenderedReport,
) -> tuple[Delivery, str | None]:
    """Try one recipient up to ``policy.attempts`` times; returns the delivery and, for a
    permanent refusal, what the server said."""
    digest = content_hash(rendered)
    connect_failures = 0
    error = ""
    message_id = ""
    for attempt in range(1, run.policy.attempts + 1):
        delay = run.policy.delay_before(attempt) if attempt > 1 else 0.0
        if delay:
            log.warning("%s for %s to %s: waiting %.2g s before attempt %d of %d", report, period,
                        recipient.address, delay, attempt, run.policy.attempts)
            run.sleep(delay)
        message_id, attempts = _record_attempt(conn, report, period, recipient.address, digest, rendered.subject,
                                               _new_message_id(sender))
        log.info("%s for %s to %s: attempt %d of %d after a %.2g s delay (%d so far in all runs, %s)", report,
                 period, recipient.address, attempt, run.policy.attempts, delay, attempts, message_id)
        try:
            if run.client is None:
                run.client = _open_smtp(run.smtp)
            message = build_message(rendered, sender, recipient, message_id)
            run.client.send_message(message, from_addr=parseaddr(sender)[1], to_addrs=[recipient.address])
        except _CannotConnect as exc:
            connect_failures += 1
            error = _smtp_unreachable(run.smtp, exc.cause)
            log.warning("%s for %s to %s: attempt %d failed: %s", report, period, recipient.address, attempt, error)
            if not exc.retryable:
                break
            continue
        except (OSError, smtplib.SMTPException) as exc:  # timeouts and resets are OSErrors
            run.reset()  # a fresh connection for whatever comes next
            if _refuses_the_session(exc):
                # Not this recipient's fault, and no retry within seconds will change it: stop
                # the run as for a server that is down (nobody is marked refused for good).
                error = _smtp_unreachable(run.smtp, exc)
                log.warning("%s for %s to %s: attempt %d failed: %s", report, period, recipient.address, attempt,
                            error)
                connect_failures = attempt
                break
            transient, error = _describe(exc)
            if not transient:
                _record_result(conn, report, period, recipient.address, "failed", PERMANENT + error)
                log.error("%s for %s: %s refused it permanently (%s); not retried", report, period,
                          recipient.address, error)
                return Delivery(recipient.address, rendered.subject, message_id, False, "failed",
                                PERMANENT + error), error
            log.warning("%s for %s to %s: attempt %d failed: %s", report, period, recipient.address, attempt, error)
            continue
        _record_result(conn, report, period, recipient.address, "sent", None)
        log.info("sent %s for %s to %s (%s)", report, period, recipient.address, message_id)
        return Delivery(recipient.address, rendered.subject, message_id, True, "sent"), None

    _record_result(conn, report, period, recipient.address, "failed", TRANSIENT + error)
    if connect_failures == attempt:
        # Not one attempt got as far as a connection: the server is down, not this recipient.
        run.unreachable = error
    log.error("%s for %s to %s: not delivered after %d attempts: %s", report, period, recipient.address,
              attempt, error)
    return Delivery(recipient.address, rendered.subject, message_id, False, "failed", TRANSIENT + error), None


def _record_attempt(conn: psycopg.Connection, report: str, period: str, recipient: str, digest: str,
                    subject: str, new_message_id: str) -> tuple[str, int]:
    """Mark the row ``sending`` and commit, before the SMTP server sees anything. The stored
    Message-ID wins over ``new_message_id``, which only a first attempt uses."""
    row = conn.execute(
        """
        insert into reporting.deliveries as d
            (report, period, recipient, content_hash, status, message_id, subject, attempts,
             first_attempt_at, last_attempt_at)
        values (%s, %s, %s, %s, 'sending', %s, %s, 1, now(), now())
        on conflict (report, period, recipient) do update
            set status = 'sending', content_hash = excluded.content_hash, subject = excluded.subject,
                attempts = d.attempts + 1, last_attempt_at = now(),
                first_attempt_at = coalesce(d.first_attempt_at, now())
        returning message_id, attempts
        """,
        (report, period, recipient, digest, new_message_id, subject),
    ).fetchone()
    conn.commit()
    assert row is not None
    return row[0], row[1]


def _record_result(conn: psycopg.Connection, report: str, period: str, recipient: str, status: str,
                   error: str | None) -> None:
    conn.execute(
        "update reporting.deliveries set status = %s, last_error = %s,"
        " sent_at = case when %s = 'sent' then now() end"
        " where report = %s and period = %s and recipient = %s",
        (status, error, status, report, period, recipient),
    )
    conn.commit()


def _permanent_failures(conn: psycopg.Connection, report: str, period: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select recipient, substr(last_error, %s) from reporting.deliveries"
        " where report = %s and period = %s and status = 'failed' and starts_with(last_error, %s)"
        " order by recipient",
        (len(PERMANENT) + 1, report, period, PERMANENT),
    ).fetchall()
    conn.commit()
    return [(r[0], r[1]) for r in rows]


def _alert_refusals(conn: psycopg.Connection, run: _Run, report: str, period: str, sender: str,
                    alerts: tuple[Recipient, ...]) -> list[Delivery]:
    refused = _permanent_failures(conn, report, period)
    addresses = ", ".join(address for address, _ in refused)
    if not alerts:
        log.error("%s for %s: delivery refused for %s and no alerts recipients are configured",
                  report, period, addresses)
        return []
    first_reply = refused[0][1] if refused else ""
    subject = f"[touchpoint] {report} {period}: delivery refused for {addresses} ({first_reply[:80]})"
    lines = [f"{address}: {reply}" for address, reply in refused]
    text = (f"The SMTP server refused {report} for {period} permanently for these recipients:\n\n"
            + "\n".join(lines)
            + "\n\nThey are not retried. Fix the address in reports/recipients.yml (or with the mail server's"
            " administrator), then run the delivery again with retry_failed=True.\n")
    body = (f"<p>The SMTP server refused <b>{html.escape(report)}</b> for {html.escape(period)} permanently "
            "for these recipients:</p><ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
            + "</ul><p>They are not retried. Fix the address in <code>reports/recipients.yml</code> (or with the "
            "mail server's administrator), then run the delivery again with <code>retry_failed=True</code>.</p>")
    alert = RenderedReport(subject=subject, html=body, text=text)
    deliveries, _ = _deliver_all(conn, run, f"{report}:delivery_failure", period, sender, alerts, lambda _r: alert)
    return deliveries


def delivery_states(conn: psycopg.Connection, report: str, period: str) -> dict[str, tuple[str, str | None]]:
    """recipient -> (status, last_error) of the deliveries recorded so far (read only)."""
    rows = conn.execute("select recipient, status, last_error from reporting.deliveries"
                        " where report = %s and period = %s", (report, period)).fetchall()
    return {recipient: (status, error) for recipient, status, error in rows}
