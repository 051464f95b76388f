"""The dbt docs site: generated against the warehouse, so that its catalog holds every built
column's type, and served on loopback with a plain page per model beside dbt's own app.

dbt's site is a single-page app whose model pages are URL fragments, rendered in the browser
from ``manifest.json`` and ``catalog.json``. The pages under ``/models/`` are rendered here from
the same two files, so a model has a link an analyst can share, and the site can be read
without a browser.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import shutil
import socket
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from jinja2 import DictLoader, Environment, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup

from touchpoint.errors import TouchpointError
from touchpoint.transform.dbt import run_dbt, target_dir
from touchpoint.warehouse.connection import url_parts

log = logging.getLogger(__name__)

#: the generated site: dbt's app, which fetches the manifest and the catalog beside it
SITE_FILES = ("index.html", "manifest.json", "catalog.json")
#: what a model's page leaves out of its neighbours (its tests are on dbt's page)
_NOT_LISTED = ("test", "unit_test")


class DocsSiteError(TouchpointError):
    """The docs site cannot be generated, read or served."""


def site_dir(var_dir: Path, warehouse_url: str) -> Path:
    """Where the site generated for a warehouse database is kept: a copy of dbt's target files,
    since every later dbt run on that database writes its own manifest there."""
    return var_dir / "dbt" / "docs" / url_parts(warehouse_url).dbname


def generate_site(project_dir: Path, warehouse_url: str, var_dir: Path) -> Path:
    """``dbt docs generate`` against the warehouse (the catalog reads its columns and comments);
    returns the folder holding the site. Raises :class:`~touchpoint.transform.dbt.DbtFailed` or
    a :class:`~touchpoint.errors.WarehouseError` naming what failed."""
    run_dbt(["docs", "generate"], project_dir, warehouse_url, var_dir)
    built = target_dir(var_dir, warehouse_url)
    site = site_dir(var_dir, warehouse_url)
    site.mkdir(parents=True, exist_ok=True)
    for name in SITE_FILES:
        if not (built / name).exists():
            raise DocsSiteError(
                f"dbt docs generate wrote no {name} in {built}; see the log in {var_dir / 'dbt'}"
            )
        # replaced whole: a `touchpoint docs --no-generate` reading meanwhile gets old or new
        partial = site / f".{name}.partial"
        shutil.copyfile(built / name, partial)
        partial.replace(site / name)
    return site


@dataclass(frozen=True)
class Column:
    name: str
    #: the warehouse's type (the catalog), or the YAML's declared one for a model not built
    data_type: str
    description: str


@dataclass(frozen=True)
class Link:
    """Another resource of the project: a model's page here, anything else's on dbt's app."""

    name: str
    resource_type: str
    href: str


@dataclass(frozen=True)
class ModelDoc:
    unique_id: str
    name: str
    description: str
    materialized: str
    #: ``schema.table`` in the warehouse
    relation: str
    #: whether the catalog found the relation (the model has been built)
    built: bool
    primary_key: tuple[str, ...]
    tags: tuple[str, ...]
    path: str
    columns: tuple[Column, ...]
    depends_on: tuple[Link, ...]
    used_by: tuple[Link, ...]

    @property
    def app_href(self) -> str:
        return app_href("model", self.unique_id)


def app_href(resource_type: str, unique_id: str) -> str:
    """A resource's page in dbt's app (its router reads the fragment)."""
    return f"/#!/{resource_type}/{unique_id}"


def model_href(name: str) -> str:
    return f"/models/{quote(name)}"


def _resource(manifest: dict[str, Any], unique_id: str) -> dict[str, Any] | None:
    for kind in ("nodes", "sources", "exposures", "metrics", "semantic_models", "saved_queries"):
        found = manifest.get(kind, {}).get(unique_id)
        if found is not None:
            return dict(found)
    return None


def _links(manifest: dict[str, Any], unique_ids: list[str]) -> tuple[Link, ...]:
    """The resources, models first (the pages here), each kind by name."""
    links = (_link(manifest, uid) for uid in unique_ids if uid.split(".")[0] not in _NOT_LISTED)
    return tuple(
        sorted(
            links, key=lambda link: (link.resource_type != "model", link.resource_type, link.name)
        )
    )


def _link(manifest: dict[str, Any], unique_id: str) -> Link:
    resource = _resource(manifest, unique_id) or {}
    kind = str(resource.get("resource_type") or unique_id.split(".")[0])
    name = str(resource.get("name") or unique_id.rsplit(".", 1)[-1])
    if kind == "source":
        name = f"{resource.get('source_name')}.{name}"
    href = model_href(name) if kind == "model" else app_href(kind, unique_id)
    return Link(name=name, resource_type=kind, href=href)


def _columns(node: dict[str, Any], catalogued: dict[str, Any] | None) -> tuple[Column, ...]:
    """The warehouse's columns in their order, each with its YAML description; then the columns
    the YAML documents that the warehouse lacks."""
    documented = {name.lower(): spec for name, spec in node.get("columns", {}).items()}
    in_warehouse = sorted(
        (catalogued or {}).get("columns", {}).values(), key=lambda column: column["index"]
    )
    columns = []
    for column in in_warehouse:
        spec = documented.pop(column["name"].lower(), {})
        columns.append(
            Column(
                name=column["name"],
                data_type=column["type"],
                description=spec.get("description") or column.get("comment") or "",
            )
        )
    for spec in documented.values():
        columns.append(
            Column(
                name=spec["name"],
                data_type=spec.get("data_type") or "",
                description=spec.get("description") or "",
            )
        )
    return tuple(columns)


def read_models(manifest: dict[str, Any], catalog: dict[str, Any]) -> dict[str, ModelDoc]:
    """Every model of the manifest by name (the root project's, where a package has the same
    name), with the catalog's types."""
    root = manifest.get("metadata", {}).get("project_name")
    nodes = sorted(
        (node for node in manifest["nodes"].values() if node["resource_type"] == "model"),
        key=lambda node: (node["package_name"] != root, node["name"]),
    )
    models: dict[str, ModelDoc] = {}
    for node in nodes:
        if node["name"] in models:
            continue
        catalogued = catalog.get("nodes", {}).get(node["unique_id"])
        users = manifest.get("child_map", {}).get(node["unique_id"], [])
        models[node["name"]] = ModelDoc(
            unique_id=node["unique_id"],
            name=node["name"],
            description=node.get("description") or "",
            materialized=node["config"].get("materialized", ""),
            relation=f"{node['schema']}.{node.get('alias') or node['name']}",
            built=catalogued is not None,
            primary_key=tuple(node.get("primary_key") or ()),
            tags=tuple(node.get("tags") or ()),
            path=node.get("original_file_path", ""),
            columns=_columns(node, catalogued),
            depends_on=_links(manifest, node.get("depends_on", {}).get("nodes", [])),
            used_by=_links(manifest, users),
        )
    return models


_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · touchpoint dbt docs</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem;
       color: #1f2933; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .6rem;
         border-bottom: 1px solid #d9dee3; }
th { background: #f3f5f7; }
code, .type { font-family: ui-monospace, monospace; font-size: .9em; }
.muted { color: #616e7c; }
td p:first-child, td p:last-child { margin: 0; }
nav { margin-bottom: 1rem; }
</style></head>
<body><nav><a href="/models/">Models</a> · <a href="/">dbt docs</a></nav>
{% block body %}{% endblock %}
</body></html>
""",
    "models.html": """{% extends "base.html" %}
{% block title %}Models{% endblock %}
{% block body %}
<h1>Models</h1>
{% for schema, group in models | groupby("relation_schema") %}
<h2>{{ schema }}</h2>
<table>
<tr><th>Model</th><th>Materialized</th><th>Description</th></tr>
{% for model in group %}
<tr><td><a href="{{ model.href }}">{{ model.name }}</a></td>
<td>{{ model.materialized }}</td><td>{{ model.summary | markdown }}</td></tr>
{% endfor %}
</table>
{% endfor %}
{% endblock %}
""",
    "model.html": """{% extends "base.html" %}
{% block title %}{{ model.name }}{% endblock %}
{% block body %}
{% macro links(items) %}
{% if items %}<ul>
{% for item in items %}<li><a href="{{ item.href }}">{{ item.name }}</a>
<span class="muted">({{ item.resource_type }})</span></li>
{% endfor %}</ul>
{% else %}<p class="muted">nothing</p>{% endif %}
{% endmacro %}
<h1>{{ model.name }}</h1>
<p class="muted"><code>{{ model.relation }}</code> · {{ model.materialized }}
{% if not model.built %}
· not built in this warehouse
{% endif %}
{% if model.primary_key %}
· primary key <code>{{ model.primary_key | join(", ") }}</code>
{% endif %}
{% if model.tags %}
· tags {{ model.tags | join(", ") }}
{% endif %}
· <a href="{{ model.app_href }}">on dbt's page</a> (SQL, lineage, tests)</p>
{{ model.description | markdown }}
<h2>Columns</h2>
<table>
<tr><th>Column</th><th>Type</th><th>Description</th></tr>
{% for column in model.columns %}
<tr id="{{ column.name }}"><td><code>{{ column.name }}</code></td>
<td class="type">{{ column.data_type }}</td><td>{{ column.description | markdown }}</td></tr>
{% endfor %}
</table>
<h2>Depends on</h2>
{{ links(model.depends_on) }}
<h2>Used by</h2>
{{ links(model.used_by) }}
<p class="muted">Defined in <code>dbt_project/{{ model.path }}</code>.</p>
{% endblock %}
""",
    "not_found.html": """{% extends "base.html" %}
{% block title %}Not found{% endblock %}
{% block body %}
<h1>Not found</h1>
<p>{{ what }}: see the <a href="/models/">models</a>.</p>
{% endblock %}
""",
}

# the descriptions are Markdown, as dbt's app renders them; raw HTML in them stays text
_markdown = MarkdownIt("commonmark", {"html": False})


def _pages() -> Environment:
    env = Environment(
        loader=DictLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = lambda text: Markup(_markdown.render(text))
    return env


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    content_type: str
    body: bytes
    #: a page rendered here, which has no script: the browser runs none, whatever it holds
    scriptless: bool = False


_HTML = "text/html; charset=utf-8"
_JSON = "application/json"


class DocsSite:
    """A generated site in memory: dbt's three files, and the pages rendered from them."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        try:
            manifest, catalog = (json.loads(files[n]) for n in ("manifest.json", "catalog.json"))
        except ValueError as exc:
            raise DocsSiteError(f"the docs site's manifest or catalog is not JSON: {exc}") from None
        self.models = read_models(manifest, catalog)
        self._pages = _pages()

    def model_page(self, name: str) -> str | None:
        model = self.models.get(name)
        if model is None:
            return None
        return self._pages.get_template("model.html").render(model=model)

    def models_index(self) -> str:
        rows = [
            {
                "name": model.name,
                "href": model_href(model.name),
                "relation_schema": model.relation.split(".")[0],
                "materialized": model.materialized,
                "summary": model.description.split("\n\n")[0],
            }
            for model in self.models.values()
        ]
        return self._pages.get_template("models.html").render(models=rows)

    def response(self, path: str) -> Response:
        """What ``GET path`` returns (``path`` without its query: dbt's app adds a cache buster)."""
        if path in ("/", "/index.html"):
            return Response(HTTPStatus.OK, _HTML, self.files["index.html"])
        if path in ("/manifest.json", "/catalog.json"):
            return Response(HTTPStatus.OK, _JSON, self.files[path[1:]])
        if path in ("/models", "/models/"):
            return Response(HTTPStatus.OK, _HTML, self.models_index().encode(), scriptless=True)
        if path.startswith("/models/"):
            name = unquote(path.removeprefix("/models/"))
            page = self.model_page(name)
            if page is not None:
                return Response(HTTPStatus.OK, _HTML, page.encode(), scriptless=True)
            return self._not_found(f"no model named {name!r} in this project")
        return self._not_found(f"nothing at {path!r}")

    def _not_found(self, what: str) -> Response:
        page = self._pages.get_template("not_found.html").render(what=what)
        return Response(HTTPStatus.NOT_FOUND, _HTML, page.encode(), scriptless=True)


def load_site(directory: Path) -> DocsSite:
    """The site generated into ``directory``; raises :class:`DocsSiteError` when it has none."""
    try:
        files = {name: (directory / name).read_bytes() for name in SITE_FILES}
    except FileNotFoundError as exc:
        raise DocsSiteError(
            f"no generated docs site in {directory} ({Path(str(exc.filename)).name} is missing);"
            " run `touchpoint docs` without --no-generate"
        ) from None
    return DocsSite(files)


def loopback_host(host: str) -> str:
    """``host`` as an address to listen on, refused unless it is a loopback one: the site shows
    the whole project, and no login guards it."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise DocsSiteError(
            f"--host {host!r} is not a loopback address; the docs site listens on 127.0.0.1"
            " or ::1 only (reach it from elsewhere through an SSH tunnel)"
        )
    return str(address)


class _Handler(BaseHTTPRequestHandler):
    server: DocsServer

    def version_string(self) -> str:
        return "touchpoint-docs"

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        site = self.server.site
        if site is None:  # serve_forever starts once the site is loaded: never, but typed so
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE)
            return
        response = site.response(urlsplit(self.path).path)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        if response.scriptless:
            self.send_header(
                "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"
            )
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class DocsServer(ThreadingHTTPServer):
    """The site's HTTP server on a loopback address; listening from its creation, answering from
    :meth:`serve_forever` on (so a taken port is known before the site is generated)."""

    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.site: DocsSite | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def bind(host: str, port: int) -> DocsServer:
    """A :class:`DocsServer` listening on ``host`` (a loopback address) and ``port``, or a
    one-line :class:`DocsSiteError` (a port in use, a host that is not loopback)."""
    address = loopback_host(host)
    try:
        return DocsServer(address, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DocsSiteError(
                f"port {port} on {address} is already in use; pass --port with a free port"
            ) from None
        raise DocsSiteError(
            f"cannot listen on {address} port {port}: {exc.strerror or exc}; pass another --port"
        ) from None
