"""Hostile input: the corpus of landing files (tests/hostile_corpus.py) through the real CLI, a
scripted CRM that misbehaves, and names with markup in the email. For every case: no crash,
the good records all loaded, the bad ones quarantined with a reason."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from helpers import REPO, create_db, drop_db, run_cli
from helpers.hostile_corpus import CASES, DAY, FILE_BOUND, MARKUP_NAMES, Case
from touchpoint.extract.hubspot import HubSpotClient, HubSpotError
from touchpoint.extract.landing import printable
from touchpoint.extract.run import extract_hubspot
from touchpoint.sources.catalog import FILE_STREAMS, HUBSPOT_CONTACTS
from touchpoint.warehouse.schema import ensure_schema

START = datetime.fromisoformat(DAY).replace(tzinfo=UTC)
END = START + timedelta(days=1)
RAW = {"web": "raw.segment_events", "email": "raw.sendgrid_events"}


def _folder(source: str) -> str:
    return FILE_STREAMS[source][1]


@pytest.fixture(scope="module")
def corpus_loaded(cluster_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Every corpus file in one day's landing folders, extracted by ``touchpoint extract``."""
    landing = tmp_path_factory.mktemp("hostile") / "landing"
    for case in CASES:
        day = landing / _folder(case.source) / case.day
        day.mkdir(parents=True, exist_ok=True)
        (day / case.name).write_bytes(case.content)
    url = create_db(cluster_url)
    days = sorted(datetime.fromisoformat(case.day).replace(tzinfo=UTC) for case in CASES)
    runs = {
        source: run_cli(
            "extract",
            source,
            "--start",
            days[0].isoformat(),
            "--end",
            (days[-1] + timedelta(days=1)).isoformat(),
            "--json",
            env={
                "TOUCHPOINT_WAREHOUSE_URL": url,
                "TOUCHPOINT_LANDING_URL": str(landing),
                "TOUCHPOINT_MAX_FILE_BYTES": str(FILE_BOUND),
            },
        )
        for source in ("web", "email")
    }
    yield url, runs
    drop_db(cluster_url, url)


def _of_file(case: Case) -> str:
    """A LIKE pattern for the locations of the records of ``case``'s file."""
    return f"%/{_folder(case.source)}/{case.day}/{printable(case.name)}%"


def test_the_corpus_covers_every_kind_of_hostile_input_the_product_promises_to_survive():
    categories = {case.category for case in CASES}
    for promised in (
        "truncated gzip",
        "invalid UTF-8",
        "NaN and Infinity",
        "a 10 MB field",
        "SQL-looking strings",
        "HTML, JavaScript and Jinja in names",
        "emoji",
        "timestamps in milliseconds",
        "the years 1970 and 2100",
        "daylight-saving edges",
        "duplicate keys in one object",
        "empty file",
        "not JSON at all: CSV",
        "not JSON at all: binary",
        "a timestamp past the calendar's end",
        "a 4,000-character key",
        "an event stamped 20 days ahead",
        "an event before the earliest day",
        "an over-long identifier",
        "a record over the bound",
        "a lone surrogate escape",
        "a file that decompresses beyond the bound",
    ):
        assert promised in categories, promised
    records = sum(len(c.loads) + len(c.quarantined) for c in CASES)
    assert len(CASES) >= 60 and records >= 80, (len(CASES), records)
    assert len({(c.source, c.name) for c in CASES}) == len(CASES), "each case is a file of its own"


def test_no_extraction_crashes_on_the_corpus_and_the_counts_add_up(corpus_loaded):
    url, runs = corpus_loaded
    for source, run in runs.items():
        assert run.returncode == 0, f"{source}: {run.stderr[-3000:]}"
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        cases = [c for c in CASES if c.source == source]
        with psycopg.connect(url) as conn:
            loaded = conn.execute(f"select count(*) from {RAW[source]}").fetchone()[0]
            quarantined = conn.execute(
                "select count(*) from raw._quarantine where stream = %s",
                (FILE_STREAMS[source][0].name,),
            ).fetchone()[0]
        assert summary["loaded"] == loaded
        assert summary["quarantined"] == quarantined == sum(len(c.quarantined) for c in cases)
        assert (
            sum(len(c.loads) for c in cases)
            <= loaded
            <= sum(len(c.loads) + len(c.may_load) for c in cases)
        )


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.source}:{c.category}:{c.name}")
def test_each_file_loads_its_good_records_and_quarantines_the_bad_ones_with_a_reason(
    corpus_loaded, case
):
    url, runs = corpus_loaded
    assert runs[case.source].returncode == 0
    with psycopg.connect(url) as conn:
        loaded = {
            key: (time, payload)
            for key, time, payload in conn.execute(
                f"select natural_key, event_time, payload from {RAW[case.source]}"
                " where _source like %s",
                (_of_file(case),),
            )
        }
        reasons = [
            r
            for (r,) in conn.execute(
                "select reason from raw._quarantine where source like %s order by id",
                (_of_file(case),),
            )
        ]
    assert set(case.loads) <= set(loaded) <= set(case.loads) | set(case.may_load), sorted(loaded)[
        :20
    ]
    assert len(reasons) == len(case.quarantined), reasons
    for pattern, reason in zip(case.quarantined, reasons):
        assert re.search(pattern, reason), (pattern, reason)
        assert len(reason) <= 301
    for key, expected in case.payload.items():
        for path, value in expected.items():
            node = loaded[key][1]
            for part in path.split("."):
                node = node[part]
            assert node == value, (key, path)
    for key, moment in case.event_time.items():
        assert loaded[key][0] == moment, key


def test_quarantined_records_keep_their_text_for_a_replay(corpus_loaded):
    url, _ = corpus_loaded
    with psycopg.connect(url) as conn:
        rows = conn.execute("select source, reason, raw_text from raw._quarantine").fetchall()
    nan = [text for _, reason, text in rows if "NaN" in reason]
    assert len(nan) == 1 and '"sg_event_id":"enan-1"' in nan[0]
    latin1 = [
        text for source, reason, text in rows if "UTF-8" in reason and "latin1.ndjson" in source
    ]
    assert (
        len(latin1) == 1 and "caf\ufffd cr\ufffdme" in latin1[0]
    )  # the bytes that were not UTF-8, as U+FFFD


# -- the CRM misbehaving ----------------------------------------------------------------------
def _contact(n: int, **properties: object) -> dict[str, object]:
    return {
        "id": str(n),
        "properties": {
            "email": f"c{n}@example.com",
            "firstname": f"C{n}",
            "lastmodifieddate": (START + timedelta(minutes=n)).isoformat(),
            **properties,
        },
    }


class _ScriptedCrm(ThreadingHTTPServer):
    """Contacts search in pages of ``page_size``; ``script(page_number, answer)`` may replace the
    answer (a status and a body) of any page."""

    def __init__(self, contacts: list[dict], page_size: int, script=None) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.contacts, self.page_size, self.script, self.requests = (
            contacts,
            page_size,
            script,
            Counter(),
        )
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: _ScriptedCrm = self.server  # type: ignore[assignment]
        if "/associations/" in self.path:
            return self._answer(200, {"results": []})
        offset = int(body.get("after") or 0)
        number = offset // server.page_size + 1
        server.requests[number] += 1
        page = server.contacts[offset : offset + server.page_size]
        answer: dict[str, object] = {"total": len(server.contacts), "results": page}
        if offset + server.page_size < len(server.contacts):
            answer["paging"] = {"next": {"after": str(offset + server.page_size)}}
        status: int = 200
        if server.script is not None:
            status, answer = server.script(number, server.requests[number], answer)
        self._answer(status, answer)

    def do_GET(self):  # the archive (deleted contacts): none
        self._answer(200, {"results": []})

    def _answer(self, status: int, answer: object) -> None:
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _client(server: _ScriptedCrm) -> HubSpotClient:
    return HubSpotClient(
        server.url,
        "t",
        max_requests_per_second=0,
        max_retries=2,
        backoff_base=0.01,
        backoff_cap=0.05,
    )


def _contact_keys(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            k for (k,) in conn.execute("select natural_key from raw.hubspot_contacts order by 1")
        ]


def _extract(url: str, server: _ScriptedCrm):
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        return extract_hubspot(conn, _client(server), HUBSPOT_CONTACTS, START, END)


def _watermark(url: str) -> datetime | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select watermark from raw._state where stream = 'hubspot_contacts'"
        ).fetchone()
    return row and row[0]


def test_hubspot_answering_500_on_page_n_a_while_loses_nothing(fresh_db):
    contacts = [_contact(n) for n in range(1, 12)]
    flaky = _ScriptedCrm(
        contacts,
        3,
        lambda number, attempt, answer: (
            (500, {"message": "internal"}) if number == 3 and attempt <= 2 else (200, answer)
        ),
    )
    try:
        stats = _extract(fresh_db, flaky)
    finally:
        flaky.shutdown()
    assert stats.loaded == 11 and flaky.requests[3] == 3
    assert len(_contact_keys(fresh_db)) == 11 and _watermark(fresh_db) == END


def test_hubspot_answering_500_on_page_n_for_good_fails_clearly_and_a_rerun_completes(fresh_db):
    contacts = [_contact(n) for n in range(1, 12)]
    broken = _ScriptedCrm(
        contacts,
        3,
        lambda number, attempt, answer: (
            (500, {"message": "internal"}) if number == 3 else (200, answer)
        ),
    )
    try:
        with pytest.raises(
            HubSpotError, match=r"still failing after 2 retries.*HTTP 500.*re-run the interval"
        ):
            _extract(fresh_db, broken)
    finally:
        broken.shutdown()
    assert _watermark(fresh_db) is None, "the interval must not be marked done"
    healed = _ScriptedCrm(contacts, 3)
    try:
        _extract(fresh_db, healed)
    finally:
        healed.shutdown()
    assert len(_contact_keys(fresh_db)) == 11 and _watermark(fresh_db) == END


@pytest.mark.parametrize("endless", ["new cursor, same page", "new cursor, empty page"])
def test_a_crm_cursor_that_never_ends_is_stopped_with_a_reason(fresh_db, endless):
    contacts = [_contact(n) for n in range(1, 5)]

    def forever(number, attempt, answer):
        results = [] if endless.endswith("empty page") and number > 1 else contacts[:2]
        return 200, {"total": 4, "results": results, "paging": {"next": {"after": str(number * 2)}}}

    server = _ScriptedCrm(contacts, 2, forever)
    try:
        with pytest.raises(HubSpotError, match="stopping instead of looping forever"):
            _extract(fresh_db, server)
    finally:
        server.shutdown()
    assert sum(server.requests.values()) <= 5
    assert _watermark(fresh_db) is None


@pytest.mark.parametrize(
    "body", [b"<html><body>Service temporarily unavailable</body></html>", b'"ok"', b""]
)
def test_a_crm_answer_of_200_that_is_not_a_json_object_is_retried_then_reported(fresh_db, body):
    server = _ScriptedCrm([_contact(1)], 3, lambda number, attempt, answer: (200, body))
    try:
        with pytest.raises(HubSpotError, match="not a JSON object"):
            _extract(fresh_db, server)
    finally:
        server.shutdown()
    assert server.requests[1] == 3  # the first try and 2 retries


def test_hostile_crm_records_load_verbatim_or_are_quarantined_with_a_reason(fresh_db):
    contacts = [
        *(_contact(10 + i, firstname=name) for i, name in enumerate(MARKUP_NAMES)),
        _contact(
            30, lastmodifieddate=str(int(START.timestamp()))
        ),  # seconds where HubSpot sends milliseconds
        _contact(31, lastmodifieddate="last tuesday"),
        {"properties": {"email": "no-id@example.com", "lastmodifieddate": START.isoformat()}},
        _contact(32, lastmodifieddate="2100-01-01T00:00:00Z"),
    ]
    server = _ScriptedCrm(contacts, 4)
    try:
        stats = _extract(fresh_db, server)
    finally:
        server.shutdown()
    assert stats.loaded == len(MARKUP_NAMES) and stats.quarantined == 4
    with psycopg.connect(fresh_db) as conn:
        names = {
            n
            for (n,) in conn.execute(
                "select payload -> 'properties' ->> 'firstname' from raw.hubspot_contacts"
            )
        }
        reasons = [r for (r,) in conn.execute("select reason from raw._quarantine order by id")]
    assert names == set(MARKUP_NAMES)
    for pattern, reason in zip(
        ("impossible timestamp", "not an ISO-8601", "missing id", "impossible timestamp"), reasons
    ):
        assert pattern in reason, (pattern, reason)


def test_crm_records_that_cannot_be_stored_are_quarantined_and_the_others_load(fresh_db):
    """Each of these stopped the CRM stream before (a COPY error or a traceback)."""
    long_id = "9" * 4000
    contacts: list[object] = [
        _contact(40, firstname="nul\x00inside"),
        _contact(41, firstname="half \ud83d of an emoji"),
        {"id": "42", "properties": ["email", "c42@example.com"]},
        {"id": "43", "properties": "not an object"},
        {**_contact(44), "id": long_id},
        "a string where an object belongs",
        _contact(45, lastmodifieddate="9999-12-31T23:59:59-01:00"),
        _contact(46, hs_note="n" * 2_000_000),
        _contact(47, firstname="whole \U0001f984"),
        _contact(48),
    ]
    server = _ScriptedCrm(contacts, 4)  # type: ignore[arg-type]
    try:
        stats = _extract(fresh_db, server)
    finally:
        server.shutdown()
    with psycopg.connect(fresh_db) as conn:
        loaded = [
            (key.split("@")[0], name)
            for key, name in conn.execute(
                "select natural_key, payload -> 'properties' ->> 'firstname'"
                " from raw.hubspot_contacts order by 1"
            )
        ]
        reasons = [r for (r,) in conn.execute("select reason from raw._quarantine")]
    assert loaded == [("47", "whole \U0001f984"), ("48", "C48")]
    assert stats.loaded == 2 and stats.quarantined == 8 and _watermark(fresh_db) == END
    for pattern in (
        "NUL",
        "lone surrogate",
        "properties is a list",
        "properties is a str",
        "identifier object id is 4,000 characters long",
        "expected a JSON object",
        "impossible timestamp",
        "record larger than 1,000,000 bytes",
    ):
        assert sum(pattern in reason for reason in reasons) == 1, (pattern, reasons)


# -- names with markup in the email -----------------------------------------------------------
def test_names_with_markup_or_template_syntax_render_as_plain_text():
    from helpers.report_content import content  # the report content the rendering tests share
    from touchpoint.delivery.recipients import Recipient
    from touchpoint.report.content import AtRiskCustomer
    from touchpoint.report.render import render_weekly_report

    report = content()
    report.at_risk.named[:] = [
        AtRiskCustomer(name, name, "EMEA", None, None, None, 1, True) for name in MARKUP_NAMES
    ]
    rendered = render_weekly_report(
        report,
        Recipient("a@example.com", "{{ 7*7 }} <b>Boss</b>", "UTC", "en_GB"),
        REPO / "reports" / "templates",
    )
    for name in MARKUP_NAMES:
        assert name in rendered.text, name
        escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert escaped in rendered.html.replace("&#39;", "'").replace("&#34;", '"'), name
    assert (
        "<script>" not in rendered.html
        and "<img src=x" not in rendered.html
        and "<b>Boss</b>" not in rendered.html
    )
    assert "{{ 7*7 }}" in rendered.html and "{% include 'x' %}" in rendered.html.replace(
        "&#39;", "'"
    )


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_a_case_category_with_markup_renders_as_plain_text_in_the_signals(name):
    """A HubSpot ticket category is free text: as a flagged case signal it reaches a list item, the
    data-signal attribute, the trend chart's heading and alt text, and the text version."""
    from dataclasses import replace
    from html.parser import HTMLParser

    from helpers.report_content import content
    from touchpoint.delivery.recipients import Recipient
    from touchpoint.report.render import render_weekly_report

    report = content()
    key = f"category:{name}:cases"
    report.problem_signals = [replace(report.problem_signals[0], category=name, key=key)]
    rendered = render_weekly_report(
        report, Recipient("a@example.com", "A", "UTC", "en_GB"), REPO / "reports" / "templates"
    )
    tags, attributes, text = [], [], []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: (tags.append(tag), attributes.extend(attrs))
    parser.handle_data = text.append
    parser.feed(rendered.html)
    assert "script" not in tags and tags.count("img") == len(rendered.images)  # the charts only
    assert not any(a.startswith("on") for a, _ in attributes)
    shown = name.replace("_", " ").lower()  # a category is shown in lower case, words apart
    assert shown in "".join(text)  # as text, template syntax unrendered
    assert ("data-signal", key) in attributes  # the parser unescapes attribute values
    assert any(a == "alt" and shown in (v or "") for a, v in attributes)
    assert f"- {shown}: 96 cases" in rendered.text
