"""A corpus of hostile landing files for the web (Segment) and email (SendGrid) sources.

Each case is one file and what must come of it: the natural keys that load (every good record
of the file) and, for each record that must not, a pattern its quarantine reason matches. The
CRM's hostile answers (a 500 on page N, a cursor that never ends, ...) are played by a scripted
server in ``test_hostile_input.py``; the names with markup are rendered there too.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

DAY = "2026-10-05"
NOON = datetime(2026, 10, 5, 12, tzinfo=UTC)
NOON_ISO = "2026-10-05T12:00:00.000Z"
NOON_UNIX = int(NOON.timestamp())

#: names a person may give themselves, which the report must show as text
MARKUP_NAMES = (
    "<script>alert('x')</script>",
    "{{ 7*7 }}",
    "{% include 'x' %}",
    "<img src=x onerror=alert(1)>",
    "Robert'); DROP TABLE raw.segment_events;--",
    "Zoë 🦄 Ünïcødé",
)


@dataclass(frozen=True)
class Case:
    category: str
    source: str  # "web" or "email"
    name: str  # file name in the day folder
    content: bytes
    #: natural keys of the records that must load from this file
    loads: tuple[str, ...] = ()
    #: one pattern per record that must be quarantined, matched against its reason
    quarantined: tuple[str, ...] = ()
    #: natural keys that may load too (the records of a gzip stream just before it breaks off)
    may_load: tuple[str, ...] = ()
    #: extra checks on what loaded: natural key -> {json path: expected value}
    payload: dict[str, dict[str, object]] = field(default_factory=dict)
    #: natural key -> the event time it must be stored with
    event_time: dict[str, datetime] = field(default_factory=dict)
    #: the day folder it lands in (events more than a day ahead of their folder's day are
    #: quarantined, so events of other days land in theirs)
    day: str = DAY


def page(message_id: str, **fields: object) -> dict[str, object]:
    """A Segment page event at noon of DAY."""
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": "anon-1",
        "timestamp": NOON_ISO,
        "properties": {"path": "/pricing"},
        **fields,
    }


def email(event_id: str, **fields: object) -> dict[str, object]:
    """A SendGrid open event at noon of DAY."""
    return {
        "event": "open",
        "sg_event_id": event_id,
        "sg_message_id": "msg-1",
        "email": "ann@example.com",
        "timestamp": NOON_UNIX,
        **fields,
    }


def ndjson(*records: object) -> bytes:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
    ).encode()


def array(*elements: object) -> bytes:
    return (
        "["
        + ",".join(e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in elements)
        + "]"
    ).encode()


def _truncated_gzip() -> tuple[bytes, tuple[str, ...]]:
    lines = [
        page(f"trunc-{i}", properties={"path": f"/p/{i}", "noise": random.Random(i).random()})
        for i in range(2000)
    ]
    data = gzip.compress(ndjson(*lines))
    return data[: len(data) - 200], tuple(f"trunc-{i}" for i in range(2000))


_TRUNCATED, _TRUNCATED_KEYS = _truncated_gzip()
_TEN_MB = "x" * (10 * 1024 * 1024)
_900_KB = "k" * 900_000
_TWO_MB = "m" * 2_000_000
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:+"
_LONG_ID = "".join(random.Random(4000).choices(_ID_CHARS, k=4000))  # too random to compress
_LONG_EMAIL = "x" * 5000 + "@example.com"
#: the decompressed-size bound the corpus is extracted with (TOUCHPOINT_MAX_FILE_BYTES)
FILE_BOUND = 16_000_000


def hashed_key(key: str) -> str:
    """How an over-long natural key is stored."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _noise(size: int) -> bytes:
    """Random bytes on one line (no CR or LF)."""
    rng = random.Random(1)
    return bytes(rng.randrange(256) for _ in range(size)).replace(b"\n", b" ").replace(b"\r", b" ")


_DEEP = "[" * 100_000 + "]" * 100_000

CASES: tuple[Case, ...] = (
    # -- broken containers --------------------------------------------------------------------
    # the records before the break load (at least 1,500 of 2,000), and one quarantine row says why
    Case(
        "truncated gzip",
        "web",
        "truncated.ndjson.gz",
        _TRUNCATED,
        _TRUNCATED_KEYS[:1500],
        ("truncated or corrupt gzip",),
        may_load=_TRUNCATED_KEYS[1500:],
    ),
    Case(
        "corrupt gzip",
        "web",
        "corrupt.ndjson.gz",
        b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4,
        (),
        ("truncated or corrupt gzip",),
    ),
    Case("empty file", "web", "empty.ndjson", b""),
    Case("empty file", "email", "empty.json", b""),
    Case("only whitespace", "web", "blank.ndjson", b"\n\n   \n\t\n"),
    Case("empty array", "email", "empty-array.json", b"[]"),
    Case(
        "not JSON at all: CSV",
        "web",
        "export.csv",
        b"messageId,type,timestamp\nm1,page,2026-10-05\n",
        (),
        ("broken JSON", "broken JSON"),
    ),
    Case(
        "not JSON at all: binary",
        "web",
        "image.ndjson",
        b"\x89PNG\r\n\x1a" + _noise(300),
        (),
        ("not valid UTF-8", "not valid UTF-8"),
    ),
    Case(
        "JSON array cut short",
        "email",
        "cut.json",
        array(email("cut-1"), email("cut-2"))[:-40],
        ("cut-1",),
        ("broken JSON array element",),
    ),
    Case(
        "UTF-8 byte order mark",
        "web",
        "bom.ndjson",
        b"\xef\xbb\xbf" + ndjson(page("bom-1"), page("bom-2")),
        ("bom-1", "bom-2"),
    ),
    Case(
        "UTF-8 byte order mark",
        "email",
        "bom.json",
        b"\xef\xbb\xbf" + array(email("bom-e1")),
        ("bom-e1",),
    ),
    Case(
        "a file name that is not UTF-8",
        "web",
        "name-\udcff.ndjson",
        ndjson(page("odd-name")),
        ("odd-name",),
    ),
    Case(
        "CRLF line ends, no newline at the end",
        "web",
        "crlf.ndjson",
        json.dumps(page("crlf-1")).encode() + b"\r\n" + json.dumps(page("crlf-2")).encode(),
        ("crlf-1", "crlf-2"),
    ),
    # -- text that is not UTF-8, or not storable ---------------------------------------------------
    Case(
        "invalid UTF-8",
        "web",
        "latin1.ndjson",
        ndjson(page("utf-ok-1"))
        + b'{"type":"page","messageId":"utf-bad","anonymousId":"a","timestamp":"'
        + NOON_ISO.encode()
        + b'","properties":{"title":"caf\xe9 cr\xe8me"}}\n'
        + ndjson(page("utf-ok-2")),
        ("utf-ok-1", "utf-ok-2"),
        ("not valid UTF-8",),
    ),
    Case(
        "invalid UTF-8",
        "email",
        "latin1.json",
        b"["
        + json.dumps(email("eutf-ok")).encode()
        + b',{"event":"open","sg_event_id":"eutf-bad","email":"\xff@x",'
        b'"timestamp":'
        + str(NOON_UNIX).encode()
        + b"},"
        + json.dumps(email("eutf-ok-2")).encode()
        + b"]",
        ("eutf-ok", "eutf-ok-2"),
        ("not valid UTF-8",),
    ),
    Case(
        "NUL character",
        "web",
        "nul.ndjson",
        ndjson(page("nul-ok"), page("nul-bad", properties={"t": "a\u0000b"})),
        ("nul-ok",),
        ("NUL",),
    ),
    Case(
        "NaN and Infinity",
        "web",
        "nan.ndjson",
        ndjson(
            page("nan-ok"),
            '{"type":"page","messageId":"nan-1","anonymousId":"a","timestamp":"'
            + NOON_ISO
            + '","properties":{"price":NaN}}',
            '{"type":"page","messageId":"nan-2","anonymousId":"a","timestamp":"'
            + NOON_ISO
            + '","properties":{"price":-Infinity}}',
        ),
        ("nan-ok",),
        ("broken JSON", "broken JSON"),
    ),
    Case(
        "NaN and Infinity",
        "email",
        "nan.json",
        array(
            email("enan-ok"),
            '{"event":"open","sg_event_id":"enan-1","email":"a@x","timestamp":1,"score":NaN}',
            '{"event":"open","sg_event_id":"enan-2","email":"a@x","timestamp":1,"score":Infinity}',
            email("enan-after"),
        ),
        ("enan-ok", "enan-after"),
        ("NaN", "Infinity"),
    ),
    Case(
        "number beyond a double",
        "web",
        "huge-number.ndjson",
        ndjson(
            '{"type":"page","messageId":"big-1","anonymousId":"a","timestamp":"'
            + NOON_ISO
            + '","properties":{"revenue":1e400}}',
            page("big-ok"),
        ),
        ("big-ok",),
        ("broken JSON",),
    ),
    Case(
        "number beyond a double",
        "email",
        "huge-number.json",
        array(
            '{"event":"open","sg_event_id":"ebig-1","email":"a@x","timestamp":1,"n":-1e999}',
            email("ebig-ok"),
        ),
        ("ebig-ok",),
        ("out of range",),
    ),
    Case(
        "nested too deeply",
        "web",
        "deep.ndjson",
        ndjson(page("deep-ok"), _DEEP),
        ("deep-ok",),
        ("nested too deeply",),
    ),
    Case(
        "nested too deeply",
        "email",
        "deep.json",
        array(email("edeep-ok"), _DEEP),
        ("edeep-ok",),
        ("nested too deeply",),
    ),
    # beyond the record bound (1 MB by default): skipped unread, and the stream goes on
    Case(
        "a 10 MB field",
        "web",
        "ten-mb.ndjson",
        ndjson(page("big-field", properties={"blob": _TEN_MB}), page("after-big")),
        ("after-big",),
        ("record larger than 1,000,000 bytes",),
    ),
    Case(
        "a 10 MB field",
        "email",
        "ten-mb.json",
        array(email("ebig-field", note=_TEN_MB), email("eafter-big")),
        ("eafter-big",),
        ("record larger than 1,000,000 bytes",),
    ),
    # within it: kept exactly
    Case(
        "a 900 kB field",
        "web",
        "900-kb.ndjson",
        ndjson(page("kb-field", properties={"blob": _900_KB})),
        ("kb-field",),
        payload={"kb-field": {"properties.blob": _900_KB}},
    ),
    # -- values that must be kept exactly as they came --------------------------------------------
    Case(
        "SQL-looking strings",
        "web",
        "sql.ndjson",
        ndjson(
            page(
                "x'); drop table raw.segment_events; --",
                properties={"q": "' or 1=1 --", "path": "/;\\copy"},
            )
        ),
        ("x'); drop table raw.segment_events; --",),
        payload={"x'); drop table raw.segment_events; --": {"properties.q": "' or 1=1 --"}},
    ),
    Case(
        "SQL-looking strings",
        "email",
        "sql.json",
        array(email("esql", email="robert'); DROP TABLE students;--@example.com")),
        ("esql",),
        payload={"esql": {"email": "robert'); DROP TABLE students;--@example.com"}},
    ),
    Case(
        "HTML, JavaScript and Jinja in names",
        "web",
        "markup.ndjson",
        ndjson(
            *(
                page(f"markup-{i}", type="identify", userId=f"u-{i}", traits={"name": name})
                for i, name in enumerate(MARKUP_NAMES)
            )
        ),
        tuple(f"markup-{i}" for i in range(len(MARKUP_NAMES))),
        payload={f"markup-{i}": {"traits.name": name} for i, name in enumerate(MARKUP_NAMES)},
    ),
    Case(
        "emoji",
        "web",
        "emoji.ndjson",
        ndjson(page("emoji-🦄", anonymousId="👻-device", properties={"title": "🎉 Sale"})),
        ("emoji-🦄",),
        payload={"emoji-🦄": {"anonymousId": "👻-device", "properties.title": "🎉 Sale"}},
    ),
    Case(
        "emoji",
        "email",
        "emoji.json",
        array(email("eemoji", category=["🔥 promo"], subject="Hi 👋")),
        ("eemoji",),
        payload={"eemoji": {"subject": "Hi 👋"}},
    ),
    # -- time --------------------------------------------------------------------------------------
    Case(
        "timestamps in milliseconds",
        "email",
        "millis.json",
        array(email("ems", timestamp=NOON_UNIX * 1000), email("ems-ok")),
        ("ems-ok",),
        ("looks like milliseconds",),
    ),
    Case(
        "timestamps in milliseconds",
        "web",
        "millis.ndjson",
        ndjson(page("wms", timestamp=NOON_UNIX * 1000)),
        (),
        ("not an ISO-8601 string",),
    ),
    Case(
        "the years 1970 and 2100",
        "web",
        "years.ndjson",
        ndjson(
            page("y1970", timestamp="1970-01-01T00:00:00Z"),
            page("y2100", timestamp="2100-06-01T00:00:00Z"),
            page("y-ok"),
        ),
        ("y-ok",),
        ("impossible timestamp", "impossible timestamp"),
    ),
    Case(
        "the years 1970 and 2100",
        "email",
        "years.json",
        array(email("e1970", timestamp=0), email("e2100", timestamp=4_115_000_000), email("ey-ok")),
        ("ey-ok",),
        ("impossible timestamp", "impossible timestamp"),
    ),
    Case(
        "daylight-saving edges",
        "web",
        "dst-fall.ndjson",
        ndjson(
            page("dst-fall-a", timestamp="2026-10-25T02:30:00+02:00"),  # Berlin, first 02:30
            page("dst-fall-b", timestamp="2026-10-25T02:30:00+01:00"),  # Berlin, second 02:30
        ),
        ("dst-fall-a", "dst-fall-b"),
        event_time={
            "dst-fall-a": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "dst-fall-b": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        },
        day="2026-10-25",
    ),
    Case(
        "daylight-saving edges",
        "web",
        "dst-spring.ndjson",
        ndjson(
            page("dst-spring", timestamp="2026-03-29T03:30:00+02:00"),  # right after the gap
            page("dst-naive", timestamp="2026-03-29T02:30:00"),  # no offset: read as UTC
        ),
        ("dst-spring", "dst-naive"),
        event_time={
            "dst-spring": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            "dst-naive": datetime(2026, 3, 29, 2, 30, tzinfo=UTC),
        },
        day="2026-03-29",
    ),
    Case(
        "daylight-saving edges",
        "email",
        "dst.json",
        array(email("edst", timestamp=int(datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()))),
        ("edst",),
        event_time={"edst": datetime(2026, 10, 25, 1, 0, tzinfo=UTC)},
        day="2026-10-25",
    ),
    # -- keys ----------------------------------------------------------------------------------
    Case(
        "duplicate keys in one object",
        "web",
        "dup-keys.ndjson",
        ndjson(
            '{"type":"page","messageId":"dupkey-first","anonymousId":"a","timestamp":"'
            + NOON_ISO
            + '","messageId":"dupkey-last"}'
        ),
        ("dupkey-last",),
        payload={"dupkey-last": {"messageId": "dupkey-last"}},
    ),
    Case(
        "the same event twice",
        "web",
        "twice.ndjson",
        ndjson(page("twice", properties={"copy": 1}), page("twice", properties={"copy": 2})),
        ("twice",),
        payload={"twice": {"properties.copy": 1}},
    ),
    Case(
        "the same event twice",
        "email",
        "twice.json",
        array(email("etwice"), email("etwice")),
        ("etwice",),
    ),
    # -- records of the wrong shape ---------------------------------------------------------------
    Case(
        "JSON that is not an object",
        "web",
        "scalars.ndjson",
        ndjson(42, json.dumps("text"), None, [1, 2], page("scalar-ok")),
        ("scalar-ok",),
        ("expected a JSON object",) * 4,
    ),
    Case(
        "required fields missing",
        "web",
        "missing.ndjson",
        ndjson(
            {"type": "page", "anonymousId": "a", "timestamp": NOON_ISO},
            {"messageId": "no-type", "anonymousId": "a", "timestamp": NOON_ISO},
            {"type": "page", "messageId": "no-who", "timestamp": NOON_ISO},
            {"type": "page", "messageId": "no-time", "anonymousId": "a"},
        ),
        (),
        ("missing messageId", "missing type", "neither userId nor anonymousId", "no timestamp"),
    ),
    Case(
        "required fields missing",
        "email",
        "missing.json",
        array(
            {"event": "open", "sg_event_id": "no-time", "email": "a@x"},
            {"sg_event_id": "no-event", "email": "a@x", "timestamp": NOON_UNIX},
            {"event": "open", "sg_event_id": "bad-time", "email": "a@x", "timestamp": "yesterday"},
        ),
        (),
        ("missing timestamp", "missing event type", "not unix seconds"),
    ),
    # -- bounds: what no real record holds, refused one by one, the stream going on --------------
    Case(
        "a timestamp past the calendar's end",
        "web",
        "year-9999.ndjson",
        ndjson(page("y9999", timestamp="9999-12-31T23:59:59-01:00"), page("y9999-ok")),
        ("y9999-ok",),
        ("impossible timestamp",),
    ),
    Case(
        "a 4,000-character key",
        "web",
        "long-key.ndjson",
        ndjson(page(_LONG_ID)),
        (hashed_key(_LONG_ID),),
        payload={hashed_key(_LONG_ID): {"messageId": _LONG_ID}},
    ),
    Case(
        "a 4,000-character key",
        "email",
        "long-key.json",
        array(email(_LONG_ID), email("elong-ok")),
        (hashed_key(_LONG_ID), "elong-ok"),
    ),
    Case(
        "an event stamped 20 days ahead",
        "web",
        "future.ndjson",
        ndjson(page("future-20d", timestamp="2026-10-25T12:00:00Z"), page("future-ok")),
        ("future-ok",),
        ("more than 24 h ahead of its receipt",),
    ),
    Case(
        "an event stamped 20 days ahead",
        "email",
        "future.json",
        array(email("efuture", timestamp=NOON_UNIX + 20 * 86400), email("efuture-ok")),
        ("efuture-ok",),
        ("more than 24 h ahead of its receipt",),
    ),
    Case(
        "an event before the earliest day",
        "web",
        "year-2014.ndjson",
        ndjson(page("y2014", timestamp="2014-06-01T00:00:00Z")),
        (),
        ("before the earliest accepted day",),
    ),
    Case(
        "an event before the earliest day",
        "email",
        "year-2014.json",
        array(email("e2014", timestamp=1_401_580_800)),
        (),
        ("before the earliest accepted day",),
    ),
    Case(
        "an over-long identifier",
        "web",
        "long-anonymous-id.ndjson",
        ndjson(page("long-anon", anonymousId=_LONG_ID), page("long-anon-ok")),
        ("long-anon-ok",),
        ("identifier object id is 4,000 characters long",),
    ),
    Case(
        "an over-long identifier",
        "web",
        "long-user-id.ndjson",
        ndjson(page("long-user", type="identify", userId=_LONG_ID, anonymousId="a")),
        (),
        ("is 4,000 characters long",),
    ),
    Case(
        "an over-long identifier",
        "web",
        "long-email.ndjson",
        ndjson(page("long-email", type="identify", userId="u", traits={"email": _LONG_EMAIL})),
        (),
        (r"identifier \$\.traits\.email is 5,012 characters long",),
    ),
    Case(
        "an over-long identifier",
        "email",
        "long-email.json",
        array(email("elong-email", email=_LONG_EMAIL)),
        (),
        (r"identifier \$\.email is 5,012 characters long",),
    ),
    Case(
        "an over-long identifier",
        "email",
        "long-message-id.json",
        array(email("elong-msg", sg_message_id=_LONG_ID)),
        (),
        ("identifier object id is 4,000 characters long",),
    ),
    Case(
        "a record over the bound",
        "web",
        "two-mb.ndjson",
        ndjson(page("two-mb", properties={"blob": _TWO_MB}), page("two-mb-ok")),
        ("two-mb-ok",),
        ("record larger than 1,000,000 bytes",),
    ),
    Case(
        "a record over the bound",
        "email",
        "two-mb.json",
        array(email("etwo-mb", note=_TWO_MB), email("etwo-mb-ok")),
        ("etwo-mb-ok",),
        ("record larger than 1,000,000 bytes",),
    ),
    Case(
        "a lone surrogate escape",
        "email",
        "surrogate.json",
        b'[{"event":"open","sg_event_id":"esurr","email":"a@x","timestamp":'
        + str(NOON_UNIX).encode()
        + b',"subject":"half \\ud83d of an emoji"},'
        + json.dumps(email("esurr-ok", subject="whole \U0001f984")).encode()
        + b"]",
        ("esurr-ok",),
        ("lone surrogate",),
        payload={"esurr-ok": {"subject": "whole \U0001f984"}},
    ),
    Case(
        "a lone surrogate escape",
        "web",
        "surrogate.ndjson",
        ndjson(
            '{"type":"page","messageId":"wsurr","anonymousId":"a","timestamp":"'
            + NOON_ISO
            + '","properties":{"title":"\\udc00 alone"}}',
            page("wsurr-ok"),
        ),
        ("wsurr-ok",),
        ("lone surrogate escape",),
    ),
    Case(
        "a file that decompresses beyond the bound",
        "web",
        "bomb.ndjson.gz",
        gzip.compress(ndjson(page("bomb-ok")) + b"\n" * (2 * FILE_BOUND)),
        ("bomb-ok",),
        ("file larger than",),
    ),
)
