"""``touchpoint docs``: the dbt docs site of the warehouse, generated and served on loopback."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from socketserver import BaseServer
from typing import Any

from touchpoint.config import Settings

#: the site's port when none is given (dbt's own ``docs serve`` takes 8080, as Airflow's UI)
DEFAULT_PORT = 8580


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.progress import progress
    from touchpoint.transform import docs_site
    from touchpoint.warehouse.connection import redact

    url = settings.resolved_warehouse_url
    # listening first: a port in use is said at once, not after dbt's run
    server = docs_site.bind(args.host, args.port)
    try:
        if args.generate:
            print(
                f"generating the dbt docs from {redact(url)} (dbt docs generate) ...",
                file=sys.stderr,
                flush=True,
            )
            with progress("dbt docs generate"):
                directory = docs_site.generate_site(settings.dbt_project_dir, url, settings.var_dir)
        else:
            directory = docs_site.site_dir(settings.var_dir, url)
        server.site = docs_site.load_site(directory)
        print(
            f"serving the dbt docs at {server.url} (a page per model at {server.url}models/);"
            " Ctrl-C to stop",
            flush=True,
        )
        _serve_until_stopped(server)
    finally:
        server.server_close()
    return 0


def _serve_until_stopped(server: BaseServer) -> None:
    """Serve until Ctrl-C or SIGTERM (``kill``, a service manager)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="docs-site", daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()
    print("docs site stopped", file=sys.stderr)


def add_commands(sub: Any, settings: Settings) -> None:
    docs = sub.add_parser(
        "docs",
        help="generate the dbt docs site against the warehouse and serve it on 127.0.0.1,"
        " with a page per model at /models/NAME",
    )
    docs.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    docs.add_argument(
        "--host",
        default="127.0.0.1",
        help="a loopback address to listen on: 127.0.0.1 (default), ::1 or localhost",
    )
    docs.add_argument(
        "--no-generate",
        dest="generate",
        action="store_false",
        help="serve the site generated last for this warehouse, without running dbt",
    )
    docs.set_defaults(func=cmd_docs)
