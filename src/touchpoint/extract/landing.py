"""Reading landing files: day folders under a landing URL, JSON arrays or NDJSON, plain or gzip.

Any fsspec URL works (a local directory by default). Files are read as streams: a JSON array is
decoded element by element, never loaded whole.

Nothing in a file stops the read: a record that is not valid UTF-8, not JSON, holds a value
jsonb cannot store (NaN, Infinity, a NUL character), nests too deeply or is larger than the
record bound becomes an item with an error (the loader quarantines it with that reason; an
over-large record is skipped as it is read, never held whole), and a gzip stream that breaks
off, or a file that decompresses beyond the file bound, yields what came before and then one
error item.
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
from typing import Any

import fsspec
import msgspec

from touchpoint.config import DEFAULT_LIMITS, IngestLimits

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


@dataclass(frozen=True, slots=True)
class LandingFile:
    """A file in a day folder, as listed: its URL, its folder's day, and its version (size and
    etag or modification time: a file rewritten in place is another version)."""

    url: str
    day: date
    size: int
    version: str

    @property
    def location(self) -> str:
        """The URL as the ledger stores it (a name's bytes that are not UTF-8 as U+FFFD)."""
        return printable(self.url)


def list_files(base_url: str, first_day: date, last_day: date) -> list[LandingFile]:
    """Every file in the day folders of ``first_day`` .. ``last_day``, in a stable order."""
    fs, root = fsspec.core.url_to_fs(base_url)
    if not fs.exists(root):
        return []
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    selected: list[LandingFile] = []
    for entry in sorted(fs.ls(root, detail=False)):
        day = folder_day(entry.rstrip("/").rsplit("/", 1)[-1])
        if day is None or not first_day <= day <= last_day or not fs.isdir(entry):
            continue
        for path, info in sorted(fs.find(entry, detail=True).items()):
            if path.rsplit("/", 1)[-1].startswith("."):
                continue
            size = int(info.get("size") or 0)
            stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or ""
            selected.append(
                LandingFile(
                    path if protocol == "file" else f"{protocol}://{path}",
                    day,
                    size,
                    f"{size}:{stamp}",
                )
            )
    return selected


def files_for_interval(base_url: str, start: datetime, end: datetime) -> list[str]:
    """Every file in the day folders whose day falls in ``[start, end)``, in a stable order."""
    last = (end - timedelta(microseconds=1)).date()
    return [f.url for f in list_files(base_url, start.date(), last)]


#: Lone surrogates: where the bytes of a file were not UTF-8 (see ``read_items``).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def printable(text: str) -> str:
    """``text`` as it can be stored: bytes that were not UTF-8 shown as U+FFFD."""
    return _NOT_UTF8.sub("\ufffd", text) if _NOT_UTF8.search(text) else text


class _FileTooLarge(OSError):
    pass


class _Bounded(io.RawIOBase):
    """A binary stream that refuses to give more than ``limit`` bytes (a gzip bomb)."""

    def __init__(self, inner: io.IOBase, limit: int) -> None:
        self.inner, self.limit, self.given = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.given += len(data)
        if self.given > self.limit:
            raise _FileTooLarge(f"file larger than {self.limit:,} bytes decompressed")
        buffer[: len(data)] = data
        return len(data)


def read_items(url: str, limits: IngestLimits = DEFAULT_LIMITS) -> Iterator[RawItem]:
    """Yield every record of one file, detecting gzip and JSON-array vs NDJSON."""
    with fsspec.open(url, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        bounded = io.BufferedReader(_Bounded(stream, limits.max_file_bytes), _READ_SIZE)
        # Bytes that are not UTF-8 are kept as lone surrogates, so the record that holds them
        # can be told apart (and quarantined) from one that holds U+FFFD on purpose; a byte
        # order mark at the start (Windows tools write one) is dropped.
        text = io.TextIOWrapper(bounded, encoding="utf-8-sig", errors="surrogateescape")
        where = printable(url)  # a file name may hold bytes that are not UTF-8 too
        read = 0
        try:
            # Peek one character at a time: a JSON array is often a single huge line.
            skipped_lines = 0
            first = text.read(1)
            while first and first.isspace():
                skipped_lines += first == "\n"
                first = text.read(1)
            bound = limits.max_record_bytes
            if first == "[":
                items = _iter_array("", text, where, bound)
            elif first:
                items = _iter_ndjson(first, text, where, skipped_lines, bound)
            else:
                items = iter(())
            for item in items:
                read += 1
                yield item
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            yield RawItem(
                where, "", error=f"truncated or corrupt gzip after {read} record(s): {exc}"
            )
        except _FileTooLarge as exc:
            yield RawItem(where, "", error=f"{exc}; the rest not read after {read} record(s)")


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _too_large(location: str, head: str, size: int, bound: int) -> RawItem:
    return RawItem(
        location,
        printable(head[:2000]),
        error=f"record larger than {bound:,} bytes ({size:,} or more): skipped unread",
    )


def _iter_ndjson(
    first: str, text: io.TextIOWrapper, where: str, skipped_lines: int, bound: int
) -> Iterator[RawItem]:
    lineno = skipped_lines
    pending = first
    while True:
        line = pending + text.readline(bound + 1 - len(pending))
        pending = ""
        if not line:
            return
        lineno += 1
        if len(line) > bound and not line.endswith("\n"):
            size = len(line)
            while (more := text.readline(_READ_SIZE)) and not more.endswith("\n"):
                size += len(more)
            yield _too_large(f"{where}:{lineno}", line, size + len(more), bound)
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if len(stripped) > bound // 4 and (size := _utf8_size(stripped)) > bound:
            yield _too_large(f"{where}:{lineno}", stripped, size, bound)
            continue
        yield _decode(stripped, f"{where}:{lineno}")


_NUL = "payload contains a NUL character, which jsonb cannot store"
_LONE_SURROGATE = "payload contains a lone surrogate escape (\\uD800-\\uDFFF), which jsonb refuses"


def _decodes_with_lone_surrogates(text: str) -> bool:
    """Whether the stdlib decoder takes what msgspec refused: then only lone surrogate escapes
    (which msgspec reports as truncated input) were wrong."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


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
        if "\\u" in text and _decodes_with_lone_surrogates(text):
            return RawItem(location, text, error=_LONE_SURROGATE)
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


#: what ends a scan step inside a string, and outside one (a scalar at the top ends at , ] or
#: white space)
_IN_STRING = re.compile(r'["\\]')
_NESTED = re.compile(r'["\[\]{}]')
_TOP = re.compile(r'["\[\]{},\s]')


def _iter_array(
    rest_of_line: str, text: io.TextIOWrapper, where: str, bound: int
) -> Iterator[RawItem]:
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

    def skip_element() -> int:
        """Move ``pos`` past the element that starts there without decoding it (it is larger
        than the bound), reading on as needed; returns its size in characters."""
        nonlocal pos
        depth, in_string, i, size = 0, False, pos, 0
        while True:
            if i >= len(buf):
                carry = i - len(buf)  # an escaped character in the next block
                size += len(buf) - pos
                pos = len(buf)
                if eof:
                    return size
                read_more()
                i = carry
                continue
            if in_string:
                m = _IN_STRING.search(buf, i)
                if m is None:
                    i = len(buf)
                elif m.group() == "\\":
                    i = m.start() + 2
                else:
                    in_string, i = False, m.end()
                    if depth == 0:
                        break
                continue
            m = (_TOP if depth == 0 else _NESTED).search(buf, i)
            if m is None:
                i = len(buf)
                continue
            c, i = m.group(), m.end()
            if c == '"':
                in_string = True
            elif c in "[{":
                depth += 1
            elif c in "]}" and depth > 0:
                depth -= 1
                if depth == 0:
                    break
            elif i - 1 > pos:  # the array's end, a comma or white space after a scalar
                i -= 1
                break
        size += i - pos
        pos = i
        return size

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
        skipped = False
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
                if not eof and len(buf) - pos > bound:
                    head = buf[pos : pos + 2000]
                    yield _too_large(location, head, skip_element(), bound)
                    skipped = True
                    break
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
        if skipped:
            index += 1
            continue
        raw_text = buf[pos:end]
        if len(raw_text) > bound // 4 and (size := _utf8_size(raw_text)) > bound:
            yield _too_large(location, raw_text, size, bound)
        elif error is not None:
            yield RawItem(location, printable(raw_text), error=error)
        elif "\\u0000" in raw_text:
            yield RawItem(location, raw_text, error=_NUL)
        elif suspect and _NOT_UTF8.search(raw_text):
            yield _not_utf8(raw_text, location)
        else:
            yield RawItem(location, raw_text, value=value)
        index += 1
        pos = end
