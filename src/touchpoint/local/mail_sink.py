"""The local SMTP sink for the demo and tests: aiosmtpd on 127.0.0.1, one ``.eml`` per message.

The product never talks to this module: it speaks SMTP through the ``smtp_default`` connection,
which the demo and the tests point at this server.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import warnings
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _SaveToDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._counter = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        message_id = message_from_bytes(data).get("Message-ID", "") or ""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", message_id.strip("<>"))[:80] or "no-message-id"
        with self._lock:
            self._counter += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = self.directory / f"{stamp}-{self._counter:04d}-{slug}.eml"
        header = "".join(f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        header += f"X-Envelope-From: {envelope.mail_from}\r\n"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(header.encode() + data)
        tmp.rename(path)  # readers never see a half-written file
        return "250 Message accepted for delivery"


class _OneAccount:
    """SMTP AUTH (PLAIN, LOGIN) against one login and password, compared in constant time."""

    def __init__(self, login: str, password: str) -> None:
        self._login, self._password = login.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self._login)
            and hmac.compare_digest(auth_data.password, self._password)
        )
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd replies 535 itself


# The sink listens on 127.0.0.1 only, so AUTH without TLS is what it means to offer: say so
# once in MailSink's docstring rather than warn on every connection.
warnings.filterwarnings(
    "ignore", message="Requiring AUTH while not requiring TLS", module="aiosmtpd"
)


class _NoAuthTlsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "auth_require_tls == False" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_NoAuthTlsWarning())


class MailSink:
    """An SMTP server in a background thread that saves every message under ``directory``.

    With ``credentials`` (login, password) it refuses mail from a client that has not logged in
    with them, as a real relay would. The sink listens on loopback only and offers no TLS, so
    the login travels in clear over 127.0.0.1 (``auth_require_tls`` off)."""

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        credentials: tuple[str, str] | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        auth: dict[str, Any] = (
            {
                "authenticator": _OneAccount(*credentials),
                "auth_required": True,
                "auth_require_tls": False,
            }
            if credentials
            else {}
        )
        self.controller = Controller(_SaveToDir(directory), hostname=host, port=port, **auth)

    def start(self) -> Self:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def saved_messages(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))
