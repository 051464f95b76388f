"""Deliver rendered reports over SMTP: once per (report, period, recipient), retrying what
can succeed.

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

A row is ``sending`` only while a call is sending it. Any other failure of the attempt (a
message that cannot be built, an unexpected error) records it ``failed`` (``transient:``) before
the error goes on. Only a process killed mid-send, or a warehouse lost between the send and its
record, leaves a row ``sending``: the recovery rule is that the next call treats such a row as
perhaps delivered and sends it again with its stored Message-ID, so a receiving system that
de-duplicates by Message-ID shows one message.
"""

from __future__ import annotations

import hashlib
import html
import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

import psycopg

from touchpoint.delivery import ledger
from touchpoint.delivery.ledger import PERMANENT, TRANSIENT
from touchpoint.delivery.message import RenderedReport, build_message, content_hash, new_message_id
from touchpoint.delivery.recipients import Recipient
from touchpoint.delivery.smtp import (
    CannotConnect,
    SmtpSettings,
    close_session,
    describe_failure,
    open_session,
    refuses_the_session,
    unreachable_reason,
)
from touchpoint.errors import TouchpointError

log = logging.getLogger(__name__)


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


@dataclass
class _Run:
    """One call's SMTP session and what happened to whom."""

    smtp: SmtpSettings
    policy: RetryPolicy
    sleep: Callable[[float], None]
    client: smtplib.SMTP | None = None
    unreachable: str | None = None

    def reset(self) -> None:
        close_session(self.client)
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
    ledger.lock(conn, lock_key)
    alerted: list[Delivery] = []
    try:
        deliveries, refused_now = _deliver_all(
            conn, run, report, period, sender, recipients, render, retry_failed
        )
        # Also when only an earlier call saw the refusal: its alert may not have got out.
        if not run.unreachable and (refused_now or ledger.permanent_failures(conn, report, period)):
            alerted = _alert_refusals(conn, run, report, period, sender, alerts)
    finally:
        run.reset()
        ledger.unlock(conn, lock_key)

    undelivered = [d.recipient for d in deliveries if d.retryable]
    undelivered += [f"{d.recipient} (the delivery-failure alert)" for d in alerted if d.retryable]
    if run.unreachable:
        raise DeliveryIncomplete(
            f"{report} for {period} not delivered to {', '.join(undelivered)}: {run.unreachable}",
            undelivered,
            deliveries,
        )
    if undelivered:
        raise DeliveryIncomplete(
            f"{report} for {period} not delivered to {', '.join(undelivered)} after "
            f"{policy.attempts} attempts each (transient SMTP failures, see "
            "reporting.deliveries.last_error); the task's retry sends to exactly those",
            undelivered,
            deliveries,
        )
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
            deliveries.append(
                Delivery(recipient.address, "", "", newly_sent=False, status="pending")
            )
            continue
        row = ledger.recorded(conn, report, period, recipient.address)
        if row and row[0] == "sent":
            _status, stored_hash, message_id, subject, _ = row
            log.info(
                "%s for %s already sent to %s (%s): skipping",
                report,
                period,
                recipient.address,
                message_id,
            )
            if stored_hash and content_hash(render(recipient)) != stored_hash:
                log.warning(
                    "%s for %s: the content for %s changed since it was sent (%s); "
                    "it is NOT resent",
                    report,
                    period,
                    recipient.address,
                    message_id,
                )
            deliveries.append(
                Delivery(
                    recipient.address, subject or "", message_id, newly_sent=False, status="sent"
                )
            )
            continue
        if row and row[0] == "failed" and (row[4] or "").startswith(PERMANENT) and not retry_failed:
            log.error(
                "%s for %s: %s refused it permanently before (%s): skipping "
                "(retry_failed=True to try again)",
                report,
                period,
                recipient.address,
                row[4],
            )
            deliveries.append(
                Delivery(
                    recipient.address,
                    row[3] or "",
                    row[2],
                    newly_sent=False,
                    status="failed",
                    last_error=row[4],
                )
            )
            continue
        if row and row[0] == "sending":
            log.warning(
                "%s for %s: an earlier attempt to %s ended without a result (it may have arrived); "
                "sending again with the same Message-ID %s",
                report,
                period,
                recipient.address,
                row[2],
            )
        delivery, refusal = _deliver_one(
            conn, run, report, period, sender, recipient, render(recipient)
        )
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
            log.warning(
                "%s for %s to %s: waiting %.2g s before attempt %d of %d",
                report,
                period,
                recipient.address,
                delay,
                attempt,
                run.policy.attempts,
            )
            run.sleep(delay)
        message_id, attempts = ledger.record_attempt(
            conn,
            report,
            period,
            recipient.address,
            digest,
            rendered.subject,
            new_message_id(sender),
        )
        log.info(
            "%s for %s to %s: attempt %d of %d after a %.2g s delay (%d so far in all runs, %s)",
            report,
            period,
            recipient.address,
            attempt,
            run.policy.attempts,
            delay,
            attempts,
            message_id,
        )
        try:
            if run.client is None:
                run.client = open_session(run.smtp)
            message = build_message(rendered, sender, recipient, message_id)
            run.client.send_message(
                message, from_addr=parseaddr(sender)[1], to_addrs=[recipient.address]
            )
        except CannotConnect as exc:
            connect_failures += 1
            error = unreachable_reason(run.smtp, exc.cause)
            _log_failed_attempt(report, period, recipient.address, attempt, error)
            if not exc.retryable:
                break
            continue
        except (OSError, smtplib.SMTPException) as exc:  # timeouts and resets are OSErrors
            run.reset()  # a fresh connection for whatever comes next
            if refuses_the_session(exc):
                # Not this recipient's fault, and no retry within seconds will change it: stop
                # the run as for a server that is down (nobody is marked refused for good).
                error = unreachable_reason(run.smtp, exc)
                _log_failed_attempt(report, period, recipient.address, attempt, error)
                connect_failures = attempt
                break
            transient, error = describe_failure(exc)
            if not transient:
                ledger.record_result(
                    conn, report, period, recipient.address, "failed", PERMANENT + error
                )
                log.error(
                    "%s for %s: %s refused it permanently (%s); not retried",
                    report,
                    period,
                    recipient.address,
                    error,
                )
                return Delivery(
                    recipient.address,
                    rendered.subject,
                    message_id,
                    False,
                    "failed",
                    PERMANENT + error,
                ), error
            _log_failed_attempt(report, period, recipient.address, attempt, error)
            continue
        except Exception as exc:
            # Anything else (a message that cannot be built, a bug) must not leave the row
            # `sending`: it is recorded as failed, and the next call tries again.
            run.reset()
            error = f"{type(exc).__name__}: {exc}"
            ledger.record_result(
                conn, report, period, recipient.address, "failed", TRANSIENT + error
            )
            raise
        ledger.record_result(conn, report, period, recipient.address, "sent", None)
        log.info("sent %s for %s to %s (%s)", report, period, recipient.address, message_id)
        return Delivery(recipient.address, rendered.subject, message_id, True, "sent"), None

    ledger.record_result(conn, report, period, recipient.address, "failed", TRANSIENT + error)
    if connect_failures == attempt:
        # Not one attempt got as far as a connection: the server is down, not this recipient.
        run.unreachable = error
    log.error(
        "%s for %s to %s: not delivered after %d attempts: %s",
        report,
        period,
        recipient.address,
        attempt,
        error,
    )
    return Delivery(
        recipient.address, rendered.subject, message_id, False, "failed", TRANSIENT + error
    ), None


def _alert_refusals(
    conn: psycopg.Connection,
    run: _Run,
    report: str,
    period: str,
    sender: str,
    alerts: tuple[Recipient, ...],
) -> list[Delivery]:
    refused = ledger.permanent_failures(conn, report, period)
    addresses = ", ".join(address for address, _ in refused)
    if not alerts:
        log.error(
            "%s for %s: delivery refused for %s and no alerts recipients are configured",
            report,
            period,
            addresses,
        )
        return []
    first_reply = refused[0][1] if refused else ""
    subject = (
        f"[touchpoint] {report} {period}: delivery refused for {addresses} ({first_reply[:80]})"
    )
    lines = [f"{address}: {reply}" for address, reply in refused]
    text = (
        f"The SMTP server refused {report} for {period} permanently for these recipients:\n\n"
        + "\n".join(lines)
        + "\n\nThey are not retried. Fix the address in reports/recipients.yml (or with the"
        " mail server's administrator), then run the delivery again with retry_failed=True.\n"
    )
    body = (
        f"<p>The SMTP server refused <b>{html.escape(report)}</b> for {html.escape(period)} "
        "permanently for these recipients:</p><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        + "</ul><p>They are not retried. Fix the address in <code>reports/recipients.yml</code>"
        " (or with the mail server's administrator), then run the delivery again with"
        " <code>retry_failed=True</code>.</p>"
    )
    alert = RenderedReport(subject=subject, html=body, text=text)
    deliveries, _ = _deliver_all(
        conn, run, f"{report}:delivery_failure", period, sender, alerts, lambda _r: alert
    )
    return deliveries


def send_unrecorded(
    smtp: SmtpSettings,
    report: str,
    period: str,
    sender: str,
    recipients: tuple[Recipient, ...],
    render: Callable[[Recipient], RenderedReport],
) -> list[Delivery]:
    """Without the ledger (the warehouse is out of reach): one attempt per address, with a
    Message-ID derived from (report, period, recipient), so a second call's duplicate carries
    the same one."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "touchpoint.local"
    client = open_session(smtp)
    deliveries = []
    try:
        for recipient in recipients:
            digest = hashlib.sha256(f"{report}|{period}|{recipient.address}".encode()).hexdigest()[
                :32
            ]
            message_id = f"<{report}.{digest}@{domain}>"
            rendered = render(recipient)
            client.send_message(
                build_message(rendered, sender, recipient, message_id),
                from_addr=parseaddr(sender)[1],
                to_addrs=[recipient.address],
            )
            deliveries.append(
                Delivery(recipient.address, rendered.subject, message_id, True, "sent")
            )
    finally:
        close_session(client)
    return deliveries


def _log_failed_attempt(report: str, period: str, recipient: str, attempt: int, error: str) -> None:
    log.warning("%s for %s to %s: attempt %d failed: %s", report, period, recipient, attempt, error)
