"""Reading landing files: day folders under a landing URL, JSON arrays or NDJSON, plain or gzip.

Any fsspec URL works (a local directory by default). Files are read as streams: a JSON array is
decoded element by element, never loaded whole.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import fsspec
import msgspec

_DAY_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_MS = re.compile(r"^\d{13}$")
_READ_SIZE = 1 << 16
_json_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class RawItem:
    """One record as read from a file: its location, the parsed value or the parse error."""

    location: str
    text: str
    value: object = None
    error: str | None = None


def folder_day(name: str) -> date | None:
    """The day a landing folder holds: ``YYYY-MM-DD`` or Segment's day in epoch milliseconds."""
    if _DAY_ISO.match(name):
        return date.fromisoformat(name)
    if _DAY_MS.match(name):
        return datetime.fromtimestamp(int(name) / 1000, tz=UTC).date()
    return None


def files_for_interval(base_url: str, start: datetime, end: datetime) -> list[str]:
    """Every file in the day folders whose day falls in ``[start, end)``, in a stable order."""
    fs, root = fsspec.core.url_to_fs(base_url)
    if not fs.exists(root):
        return []
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    selected: list[str] = []
    for entry in sorted(fs.ls(root, detail=False)):
        day = folder_day(entry.rstrip("/").rsplit("/", 1)[-1])
        if day is None or not first <= day <= last or not fs.isdir(entry):
            continue
        selected.extend(sorted(p for p in fs.find(entry) if not p.rsplit("/", 1)[-1].startswith(".")))
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return [p if protocol == "file" else f"{protocol}://{p}" for p in selected]


def read_items(url: str) -> Iterator[RawItem]:
    """Yield every record of one file, detecting gzip and JSON-array vs NDJSON."""
    with fsspec.open(url, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
        # Peek one character at a time: a JSON array is often a single huge line.
        skipped_lines = 0
        first = text.read(1)
        while first and first.isspace():
            skipped_lines += first == "\n"
            first = text.read(1)
        if first == "[":
            yield from _iter_array("", text, url)
        elif first:
            yield from _iter_ndjson(first + text.readline(), text, url, skipped_lines)


def _iter_ndjson(
    first_line: str, text: io.TextIOWrapper, url: str, skipped_lines: int
) -> Iterator[RawItem]:
    lineno = skipped_lines
    for line in _chain_first(first_line, text):
        lineno += 1
        stripped = line.strip()
        if stripped:
            yield _decode(stripped, f"{url}:{lineno}")


def _chain_first(first_line: str, text: io.TextIOWrapper) -> Iterator[str]:
    if first_line:
        yield first_line
    yield from text


def _decode(text: str, location: str) -> RawItem:
    if "\\u0000" in text:
        return RawItem(location, text, error="payload contains a NUL character, which jsonb cannot store")
    try:
        # msgspec's decoder: the same values as the stdlib's, about twice as fast (the profile of
        # the load path has JSON decoding on top); NaN and Infinity, which jsonb refuses, fail here.
        return RawItem(location, text, value=_json_decode(text))
    except msgspec.MsgspecError as exc:
        return RawItem(location, text, error=f"broken JSON: {exc}")


def _iter_array(rest_of_line: str, text: io.TextIOWrapper, url: str) -> Iterator[RawItem]:
    """Decode ``[obj, obj, ...]`` incrementally with ``raw_decode`` over a sliding buffer (the
    consumed part is dropped only when more is read: dropping it after every element copied the
    rest of the buffer each time)."""
    decoder = json.JSONDecoder()
    buf, pos, eof, index = rest_of_line, 0, False, 0

    def read_more() -> None:
        nonlocal buf, pos, eof
        chunk = text.read(_READ_SIZE)
        eof = chunk == ""
        buf, pos = buf[pos:] + chunk, 0

    while True:
        while True:  # skip separators
            while pos < len(buf) and (buf[pos].isspace() or buf[pos] == ","):
                pos += 1
            if pos < len(buf) or eof:
                break
            read_more()
        if pos >= len(buf) or buf[pos] == "]":
            return
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof:
                    read_more()
                    continue
                # The rest of the array cannot be decoded: quarantine it as one item.
                yield RawItem(f"{url}[{index}]", buf[pos:].strip()[:10000],
                              error=f"broken JSON array element: {exc.msg}")
                return
            break
        raw_text = buf[pos:end]
        if "\\u0000" in raw_text:
            yield RawItem(f"{url}[{index}]", raw_text,
                          error="payload contains a NUL character, which jsonb cannot store")
        else:
            yield RawItem(f"{url}[{index}]", raw_text, value=value)
        index += 1
        pos = end
