"""An email before it is sent: the rendered parts, the MIME message built from them, its
identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from touchpoint.delivery.recipients import Recipient


@dataclass(frozen=True)
class InlineImage:
    """A PNG shown in the HTML body through ``<img src="cid:{cid}">`` (never a data: URI)."""

    cid: str
    filename: str
    data: bytes
    width: int
    height: int
    mime_subtype: str = "png"


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    mime_type: str = "text/csv"


@dataclass(frozen=True)
class RenderedReport:
    subject: str
    html: str
    text: str
    images: tuple[InlineImage, ...] = field(default_factory=tuple)
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


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


def build_message(
    rendered: RenderedReport, sender: str, recipient: Recipient, message_id: str
) -> EmailMessage:
    """multipart/mixed [ multipart/related [ multipart/alternative [text, html], inline images ],
    attachments ]; without images or attachments the outer layers are left out."""
    message = EmailMessage()
    # a CR or LF inside a header value is refused (header injection): one line each
    message["Subject"] = one_line(rendered.subject)
    message["From"] = one_line(sender)
    message["To"] = formataddr((one_line(recipient.name), recipient.address))
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
        message.add_related(
            image.data,
            maintype="image",
            subtype=image.mime_subtype,
            cid=f"<{image.cid}>",
            disposition="inline",
            filename=image.filename,
        )
    for attachment in rendered.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    return message


def one_line(text: str) -> str:
    """``text`` with every run of white space, line breaks included, as one space."""
    return " ".join(text.split())


def new_message_id(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "touchpoint.local"
    return make_msgid(domain=domain)
