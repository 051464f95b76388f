"""What a rendered report is, before it becomes an email: the parts the sender assembles."""

from __future__ import annotations

from dataclasses import dataclass, field


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
