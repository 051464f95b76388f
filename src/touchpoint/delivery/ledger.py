"""The delivery ledger ``reporting.deliveries``: one row per (report, period, recipient), what was
tried, what was sent, and the advisory lock that keeps two runs of one report apart."""

from __future__ import annotations

import psycopg

TRANSIENT = "transient: "
PERMANENT = "permanent: "


def lock(conn: psycopg.Connection, key: str) -> None:
    """Wait for the other run of the same report and period, if any, then hold its turn."""
    conn.execute("select pg_advisory_lock(hashtext('touchpoint.deliver'), hashtext(%s))", (key,))
    conn.commit()


def unlock(conn: psycopg.Connection, key: str) -> None:
    try:
        conn.rollback()
        conn.execute(
            "select pg_advisory_unlock(hashtext('touchpoint.deliver'), hashtext(%s))", (key,)
        )
        conn.commit()
    except psycopg.Error:
        pass  # a broken connection has released its session locks already


def recorded(conn: psycopg.Connection, report: str, period: str, recipient: str) -> tuple | None:
    """(status, content_hash, message_id, subject, last_error) of one recipient, or None."""
    row = conn.execute(
        "select status, content_hash, message_id, subject, last_error from reporting.deliveries"
        " where report = %s and period = %s and recipient = %s",
        (report, period, recipient),
    ).fetchone()
    conn.commit()
    return row


def record_attempt(
    conn: psycopg.Connection,
    report: str,
    period: str,
    recipient: str,
    digest: str,
    subject: str,
    new_message_id: str,
) -> tuple[str, int]:
    """Mark the row ``sending`` and commit, before the SMTP server sees anything. The stored
    Message-ID wins over ``new_message_id``, which only a first attempt uses."""
    row = conn.execute(
        """
        insert into reporting.deliveries as d
            (report, period, recipient, content_hash, status, message_id, subject, attempts,
             first_attempt_at, last_attempt_at)
        values (%s, %s, %s, %s, 'sending', %s, %s, 1, now(), now())
        on conflict (report, period, recipient) do update
            set status = 'sending', content_hash = excluded.content_hash,
                subject = excluded.subject,
                attempts = d.attempts + 1, last_attempt_at = now(),
                first_attempt_at = coalesce(d.first_attempt_at, now())
        returning message_id, attempts
        """,
        (report, period, recipient, digest, new_message_id, subject),
    ).fetchone()
    conn.commit()
    assert row is not None
    return row[0], row[1]


def record_result(
    conn: psycopg.Connection,
    report: str,
    period: str,
    recipient: str,
    status: str,
    error: str | None,
) -> None:
    conn.execute(
        "update reporting.deliveries set status = %s, last_error = %s,"
        " sent_at = case when %s = 'sent' then now() end"
        " where report = %s and period = %s and recipient = %s",
        (status, error, status, report, period, recipient),
    )
    conn.commit()


def permanent_failures(conn: psycopg.Connection, report: str, period: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select recipient, substr(last_error, %s) from reporting.deliveries"
        " where report = %s and period = %s and status = 'failed' and starts_with(last_error, %s)"
        " order by recipient",
        (len(PERMANENT) + 1, report, period, PERMANENT),
    ).fetchall()
    conn.commit()
    return [(r[0], r[1]) for r in rows]


def delivery_states(
    conn: psycopg.Connection, report: str, period: str
) -> dict[str, tuple[str, str | None]]:
    """recipient -> (status, last_error) of the deliveries recorded so far (read only)."""
    rows = conn.execute(
        "select recipient, status, last_error from reporting.deliveries"
        " where report = %s and period = %s",
        (report, period),
    ).fetchall()
    return {recipient: (status, error) for recipient, status, error in rows}
