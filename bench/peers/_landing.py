"""Reading landing files the way a peer's user would: the standard library only.

Shared by the parent (which counts the events it expects) and both child programs; the dlt
child runs under the dlt virtualenv's python, so nothing here may import the project or any
third-party package.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

#: the natural key of each source's events (some SendGrid events have none)
NATURAL_KEY = {"web": "messageId", "email": "sg_event_id"}

_GZIP_MAGIC = b"\x1f\x8b"


def read_text(path: str) -> str:
    """A landing file's text, gunzipped when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return data.decode("utf-8")


def iter_events(path: str) -> Iterator[dict[str, Any]]:
    """Every event of one file: a JSON array or NDJSON (told by the first non-space character)."""
    text = read_text(path)
    stripped = text.lstrip()
    if not stripped:
        return
    if stripped[0] == "[":
        yield from json.loads(stripped)
        return
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def count_events(files: list[str]) -> int:
    return sum(1 for path in files for _ in iter_events(path))


def content_key(event: dict[str, Any]) -> str:
    """A deterministic key for an event that has no natural key: a hash of its canonical JSON."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def run_child(main: Callable[[str, str], int], program: str) -> None:
    """The command line of a peer's child program: ``program REQUEST.json RESULT.json``."""
    if len(sys.argv) != 3:
        raise SystemExit(f"usage: {program} REQUEST.json RESULT.json")
    sys.exit(main(sys.argv[1], sys.argv[2]))


def write_result(path: str, result: dict[str, Any]) -> int:
    with open(path, "w") as f:
        json.dump(result, f)
    return 0
