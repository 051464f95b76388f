"""The SMTP session: connecting and logging in, and what a failed send means for a retry."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    login: str | None = None
    password: str | None = field(
        default=None, repr=False
    )  # never in a log line or a traceback's locals
    use_ssl: bool = False
    #: STARTTLS: True always (a server that does not offer it is refused), False never, None
    #: whenever the server offers it
    starttls: bool | None = None
    timeout: float = 30.0


class CannotConnect(Exception):
    """Connecting (or logging in) failed: no recipient can be served until that changes."""

    def __init__(self, cause: BaseException, retryable: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retryable = retryable


def open_session(settings: SmtpSettings) -> smtplib.SMTP:
    client: smtplib.SMTP | None = None
    try:
        if settings.use_ssl:
            client = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            client.ehlo_or_helo_if_needed()
            if settings.starttls or (settings.starttls is None and client.has_extn("starttls")):
                # verified against the system's CAs (SSL_CERT_FILE names others)
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
        if settings.login:
            client.login(settings.login, settings.password or "")
        return client
    except (OSError, smtplib.SMTPException) as exc:
        close_session(client)
        # A 5xx greeting or a refused login will not change on its own within seconds.
        code = getattr(exc, "smtp_code", None)
        # nor will a server without the STARTTLS the connection requires, or a certificate
        settled = isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError)
        raise CannotConnect(
            exc, retryable=not (settled or (isinstance(code, int) and 500 <= code <= 599))
        ) from exc


def close_session(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def describe_failure(exc: BaseException) -> tuple[bool, str]:
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
    """A server's reply on one line: a multi-line reply (``550-5.1.1 ...``) joined with spaces,
    so it can go into a Subject or a log line."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


#: Replies about the session's credentials (RFC 4954): authentication required, too weak,
#: refused, or needs encryption. They concern every recipient alike, never one address.
AUTH_REPLY_CODES = frozenset({530, 534, 535, 538})


def unreachable_reason(settings: SmtpSettings, exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    if code in AUTH_REPLY_CODES:
        who = f"the login {settings.login!r}" if settings.login else "a session without a login"
        return (
            f"the SMTP server {settings.host}:{settings.port} refused {who}: "
            f"{code} {_text(getattr(exc, 'smtp_error', b''))}; check the login and password of the "
            "Airflow connection smtp_default (TOUCHPOINT_SMTP_LOGIN / TOUCHPOINT_SMTP_PASSWORD "
            "for the CLI)"
        )
    return (
        f"cannot reach the SMTP server {settings.host}:{settings.port}: {exc}; "
        "check the Airflow connection smtp_default"
    )


def refuses_the_session(exc: BaseException) -> bool:
    """A refusal of the sender or of the credentials (MAIL FROM answered 530, say), not of a
    recipient: no recipient can be served until the configuration changes."""
    code = getattr(exc, "smtp_code", None)
    return code in AUTH_REPLY_CODES or (
        isinstance(exc, smtplib.SMTPSenderRefused) and 500 <= exc.smtp_code <= 599
    )
