"""An SMTP handler for aiosmtpd that fails on demand (cut connections, 4xx, 5xx, slow DATA)."""

from __future__ import annotations

import asyncio
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser


def parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


class FlakyHandler:
    """An SMTP server that keeps what it accepts and fails on demand:

    * ``drop_at``: DATA commands (counted from 1) during which the connection is cut before any
      reply, as a network failure or a crashed server would;
    * ``tempfail_at``: DATA commands answered ``451``;
    * ``outage_from``: from that DATA command on, every one fails as ``outage`` says (``drop``
      or ``451``), until it is set back to None;
    * ``greylist``: addresses answered ``450`` at RCPT that many times;
    * ``refuse``: addresses answered ``550`` at RCPT;
    * ``data_delay``: seconds each DATA takes (a slow server).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data_commands = 0
        self.drop_at: set[int] = set()
        self.tempfail_at: set[int] = set()
        self.outage_from: int | None = None
        self.outage = "drop"
        self.greylist: dict[str, int] = {}
        self.refuse: set[str] = set()
        #: the reply to a refused address (``{address}`` filled in); may span several lines
        self.refusal = "550 5.1.1 <{address}>: mailbox unavailable"
        #: whether each accepted message came over TLS (STARTTLS)
        self.over_tls: list[bool] = []
        self.data_delay = 0.0
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refusal.format(address=address)
        with self.lock:
            if self.greylist.get(address, 0) > 0:
                self.greylist[address] -= 1
                return "450 4.2.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.data_delay)
        with self.lock:
            self.data_commands += 1
            number = self.data_commands
            in_outage = self.outage_from is not None and number >= self.outage_from
            if number in self.drop_at or (in_outage and self.outage == "drop"):
                server.transport.abort()  # no reply reaches the client
                return "421 never seen: the connection is gone"
            if number in self.tempfail_at or in_outage:
                return "451 4.3.0 try again later"
            self.received.append(
                (list(envelope.rcpt_tos), envelope.original_content or envelope.content)
            )
            self.over_tls.append(getattr(session, "ssl", None) is not None)
        return "250 OK"

    def messages_to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [parse(data) for rcpts, data in self.received if address in rcpts]
