"""Reading landing files: day folders under a landing URL, JSON arrays or NDJSON, plain or gzip.

Any fsspec URL works (a local directory by default). Files are read as streams: a JSON array is
decoded element by element, never loaded whole.

Nothing in a file stops the read: a record that is not valid UTF-8, not JSON, holds a value
jsonb cannot store (NaN, Infinity, a NUL character) or nests too deeply becomes an item with an
error (the loader quarantines it with that reason), and a gzip stream that breaks off yields
what came before it and then one error item.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
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
        selected.extend(
            sorted(p for p in fs.find(entry) if not p.rsplit("/", 1)[-1].startswith("."))
        )
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return [p if protocol == "file" else f"{protocol}://{p}" for p in selected]


#: Lone surrogates: where the bytes of a file were not UTF-8 (see ``read_items``).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def printable(text: str) -> str:
    """``text`` as it can be stored: bytes that were not UTF-8 shown as U+FFFD."""
    return _NOT_UTF8.sub("\ufffd", text) if _NOT_UTF8.search(text) else text


def read_items(url: str) -> Iterator[RawItem]:
    """Yield every record of one file, detecting gzip and JSON-array vs NDJSON."""
    with fsspec.open(url, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        # Bytes that are not UTF-8 are kept as lone surrogates, so the record that holds them
        # can be told apart (and quarantined) from one that holds U+FFFD on purpose; a byte
        # order mark at the start (Windows tools write one) is dropped.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape")
        where = printable(url)  # a file name may hold bytes that are not UTF-8 too
        read = 0
        try:
            # Peek one character at a time: a JSON array is often a single huge line.
            skipped_lines = 0
            first = text.read(1)
            while first and first.isspace():
                skipped_lines += first == "\n"
                first = text.read(1)
            if first == "[":
                items = _iter_array("", text, where)
            elif first:
                items = _iter_ndjson(first + text.readline(), text, where, skipped_lines)
            else:
                items = iter(())
            for item in items:
                read += 1
                yield item
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            yield RawItem(
                where, "", error=f"truncated or corrupt gzip after {read} record(s): {exc}"
            )


def _iter_ndjson(
    first_line: str, text: io.TextIOWrapper, where: str, skipped_lines: int
) -> Iterator[RawItem]:
    lineno = skipped_lines
    for line in _chain_first(first_line, text):
        lineno += 1
        stripped = line.strip()
        if stripped:
            yield _decode(stripped, f"{where}:{lineno}")


def _chain_first(first_line: str, text: io.TextIOWrapper) -> Iterator[str]:
    if first_line:
        yield first_line
    yield from text


_NUL = "payload contains a NUL character, which jsonb cannot store"
_DEEP = "JSON nested too deeply to decode"


def _not_utf8(text: str, location: str) -> RawItem:
    return RawItem(location, printable(text), error="not valid UTF-8 (the bytes shown as U+FFFD)")


def _decode(text: str, location: str) -> RawItem:
    if "\\u0000" in text:
        return RawItem(location, text, error=_NUL)
    try:
        # msgspec's decoder: the same values as the stdlib's, about twice as fast (the profile of
        # the load path has JSON decoding on top); NaN, Infinity and numbers beyond a double,
        # which jsonb refuses, fail here, and so does a string that is not UTF-8 (it cannot be
        # encoded to be decoded).
        return RawItem(location, text, value=_json_decode(text))
    except msgspec.MsgspecError as exc:
        if _NOT_UTF8.search(text):  # the more basic fault of the two
            return _not_utf8(text, location)
        return RawItem(location, text, error=f"broken JSON: {exc}")
    except UnicodeEncodeError:
        return _not_utf8(text, location)
    except RecursionError:
        return RawItem(location, printable(text)[:10000], error=_DEEP)


class _NotStorable(ValueError):
    """A JSON constant (NaN, Infinity) or a number beyond a double: valid to Python's decoder,
    refused by jsonb."""


def _refuse_constant(name: str) -> float:
    raise _NotStorable(f"{name} is not a JSON number jsonb can store")


def _checked_float(literal: str) -> float:
    value = float(literal)
    if value in (_INFINITY, -_INFINITY):
        raise _NotStorable(f"number {literal[:40]} is out of range")
    return value


_INFINITY = float("inf")
_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_checked_float)
_LENIENT = json.JSONDecoder()


def _iter_array(rest_of_line: str, text: io.TextIOWrapper, where: str) -> Iterator[RawItem]:
    """Decode ``[obj, obj, ...]`` incrementally with ``raw_decode`` over a sliding buffer (the
    consumed part is dropped only when more is read: dropping it after every element copied the
    rest of the buffer each time). An element jsonb cannot store is quarantined and the read
    goes on after it; one that cannot be decoded at all takes the rest of the array with it."""
    buf, pos, eof, index = rest_of_line, 0, False, 0
    # Whether any bytes read so far were not UTF-8: searched once per block read, so the
    # elements are searched one by one only in a file that has some.
    suspect = bool(_NOT_UTF8.search(buf))

    def read_more() -> None:
        nonlocal buf, pos, eof, suspect
        chunk = text.read(_READ_SIZE)
        eof = chunk == ""
        suspect = suspect or (not chunk.isascii() and bool(_NOT_UTF8.search(chunk)))
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
        location = f"{where}[{index}]"
        error: str | None = None
        while True:
            try:
                try:
                    value, end = _STRICT.raw_decode(buf, pos)
                except _NotStorable as exc:
                    # Decoding stopped inside the element: find its end with the constants
                    # allowed, then quarantine it.
                    value, error = None, f"broken JSON: {exc}"
                    end = _LENIENT.raw_decode(buf, pos)[1]
            except json.JSONDecodeError as exc:
                if not eof:
                    read_more()
                    error = None
                    continue
                # The rest of the array cannot be decoded: quarantine it as one item.
                yield RawItem(
                    location,
                    printable(buf[pos:].strip()[:10000]),
                    error=f"broken JSON array element: {exc.msg}",
                )
                return
            except RecursionError:
                yield RawItem(location, printable(buf[pos : pos + 10000]), error=_DEEP)
                return
            break
        raw_text = buf[pos:end]
        if error is not None:
            yield RawItem(location, printable(raw_text), error=error)
        elif "\\u0000" in raw_text:
            yield RawItem(location, raw_text, error=_NUL)
        elif suspect and _NOT_UTF8.search(raw_text):
            yield _not_utf8(raw_text, location)
        else:
            yield RawItem(location, raw_text, value=value)
        index += 1
        pos = end
