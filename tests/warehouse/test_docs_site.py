"""`touchpoint docs`: the dbt docs site generated against the warehouse and served on loopback,
with a plain page per model; and its one-line errors."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import free_port, run_cli
from touchpoint.transform.docs_site import DocsSite

# straight to 127.0.0.1, whatever proxy the environment names
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> tuple[int, str]:
    try:
        with _LOOPBACK.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("touchpoint: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def docs_server(built_world: str, tmp_path: Path):
    """``touchpoint docs`` on the built world, as a user starts it; stopped as ``kill`` does."""
    port = free_port()
    out, err = (tmp_path / "docs.out").open("w+"), (tmp_path / "docs.err").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "touchpoint", "docs", "--port", str(port)],
        env={**os.environ, "TOUCHPOINT_WAREHOUSE_URL": built_world, "TOUCHPOINT_PROGRESS": "0"},
        stdout=out,
        stderr=err,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    try:
        while "serving" not in Path(out.name).read_text():
            assert process.poll() is None, f"touchpoint docs exited: {Path(err.name).read_text()}"
            assert time.monotonic() < deadline, "touchpoint docs did not start serving in 10 min"
            time.sleep(0.5)
        yield base, process, Path(out.name), Path(err.name)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        out.close()
        err.close()


@pytest.mark.slow
def test_touchpoint_docs_serves_the_dbt_site_and_a_page_per_model(docs_server):
    base, process, out, err = docs_server
    assert "generating" in err.read_text()
    assert f"serving the dbt docs at {base}/" in out.read_text()

    status, index = fetch(f"{base}/")
    assert status == 200 and "<title>dbt Docs</title>" in index
    status, manifest_text = fetch(f"{base}/manifest.json?cb=1")  # dbt's app busts its cache
    assert status == 200
    fact = json.loads(manifest_text)["nodes"]["model.touchpoint.fct_touchpoints"]
    status, catalog_text = fetch(f"{base}/catalog.json")
    assert status == 200
    built_columns = json.loads(catalog_text)["nodes"]["model.touchpoint.fct_touchpoints"]["columns"]

    status, models = fetch(f"{base}/models/")
    assert status == 200 and 'href="/models/fct_touchpoints"' in models

    status, page = fetch(f"{base}/models/fct_touchpoints")
    assert status == 200
    described = fact["columns"]["touchpoint_id"]["description"]
    assert described and " ".join(described.replace("`", "").split()) in text_of(page)
    row = page[page.index('<tr id="touchpoint_id">') :].split("</tr>")[0]
    assert f'<td class="type">{built_columns["touchpoint_id"]["type"]}</td>' in row
    assert text_of(fact["description"].split("\n\n")[0].replace("`", ""))[:60] in text_of(page)
    for parent in fact["depends_on"]["nodes"]:
        if parent.startswith("model."):
            assert f'href="/models/{parent.rsplit(".", 1)[1]}"' in page
    assert fact["config"]["materialized"] in page and "marts.fct_touchpoints" in page

    status, missing = fetch(f"{base}/models/no_such_model")
    assert status == 404 and "no_such_model" in missing

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "stopped" in err.read_text()


def test_a_port_in_use_is_a_one_line_error_before_dbt_runs():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # a warehouse no one serves: the port is refused before it is reached
        result = run_cli(
            "docs",
            "--port",
            str(port),
            env={"TOUCHPOINT_WAREHOUSE_URL": f"postgresql://x:y@127.0.0.1:{free_port()}/none"},
            timeout=60,
        )
    assert_one_line_error(result, f"port {port}", "already in use", "--port")


def test_the_site_listens_on_a_loopback_address_only():
    result = run_cli("docs", "--host", "0.0.0.0", timeout=60)
    assert_one_line_error(result, "'0.0.0.0' is not a loopback address")


def test_an_unreachable_warehouse_is_a_one_line_error():
    result = run_cli(
        "docs",
        "--port",
        str(free_port()),
        env={"TOUCHPOINT_WAREHOUSE_URL": f"postgresql://x:secret@127.0.0.1:{free_port()}/none"},
        timeout=60,
    )
    assert_one_line_error(result, "cannot connect to the warehouse", "127.0.0.1")
    assert "secret" not in result.stderr
    assert "serving" not in result.stdout


def test_no_generate_without_a_generated_site_says_how_to_make_one():
    result = run_cli(
        "docs",
        "--no-generate",
        "--port",
        str(free_port()),
        env={"TOUCHPOINT_WAREHOUSE_URL": "postgresql://x:y@127.0.0.1:1/never_generated"},
        timeout=60,
    )
    assert_one_line_error(result, "no generated docs site", "without --no-generate")


def test_model_pages_show_what_the_project_wrote_as_text():
    """A description is Markdown rendered without its HTML: what a model's YAML holds cannot
    put a script on the page."""
    manifest = {
        "metadata": {"project_name": "p"},
        "nodes": {
            "model.p.m": {
                "unique_id": "model.p.m",
                "resource_type": "model",
                "package_name": "p",
                "name": "m",
                "schema": "marts",
                "alias": "m",
                "description": "Has **bold** and <script>alert(1)</script>",
                "config": {"materialized": "table"},
                "columns": {"id": {"name": "id", "description": "<img src=x onerror=alert(1)>"}},
                "depends_on": {"nodes": ["source.p.raw.events"]},
            }
        },
        "sources": {
            "source.p.raw.events": {
                "resource_type": "source",
                "name": "events",
                "source_name": "raw",
            }
        },
        "child_map": {"model.p.m": []},
    }
    catalog = {
        "nodes": {"model.p.m": {"columns": {"id": {"name": "id", "type": "bigint", "index": 1}}}}
    }
    site = DocsSite(
        {
            "index.html": b"<title>dbt Docs</title>",
            "manifest.json": json.dumps(manifest).encode(),
            "catalog.json": json.dumps(catalog).encode(),
        }
    )
    page = site.response("/models/m")
    assert page.status == 200 and page.scriptless
    body = page.body.decode()
    assert "<strong>bold</strong>" in body
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "<img" not in body
    assert '<td class="type">bigint</td>' in body
    assert 'href="/#!/source/source.p.raw.events"' in body and "raw.events" in body
    assert site.response("/models/m%3Cx%3E").status == 404
    assert "&lt;x&gt;" in site.response("/models/m%3Cx%3E").body.decode()
    assert site.response("/../manifest.json").status == 404
    assert site.response("/index.html").body == b"<title>dbt Docs</title>"
