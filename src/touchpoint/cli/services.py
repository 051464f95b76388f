"""``touchpoint db``, ``mail`` and ``airflow``: the warehouse and the local development services."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from touchpoint.config import Settings
from touchpoint.errors import TouchpointError


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.local.cluster import EmbeddedCluster
    from touchpoint.warehouse.connection import connect, redact

    if not settings.uses_embedded_warehouse:
        url = settings.warehouse_url or ""
        if args.db_command == "url":
            print(url)
            return 0
        if args.db_command in ("start", "stop"):
            print(
                f"TOUCHPOINT_WAREHOUSE_URL is set: using the external server {redact(url)}; "
                f"nothing to {args.db_command}"
            )
        with connect(url) as conn:
            row = conn.execute("show server_version").fetchone()
        print(f"external: running (PostgreSQL {row[0] if row else '?'}) {redact(url)}")
        return 0
    cluster = EmbeddedCluster(settings)
    if args.db_command == "url":
        print(settings.embedded_url)
        return 0
    if args.db_command == "start":
        status = cluster.start(log=lambda msg: print(msg, file=sys.stderr))
    elif args.db_command == "stop":
        status = cluster.stop()
    else:
        status = cluster.status()
    # the password only from `db url`, never in a status line that may land in a log
    print(f"embedded: {status.detail} {redact(status.url)}")
    # Like pg_ctl: `status` exits 3 when the cluster is not running.
    return 3 if args.db_command == "status" and not status.running else 0


def cmd_mail(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.local import background

    pid_file = settings.run_dir / "mail.pid"
    if args.mail_command == "serve":
        return _serve_mail(args.port, settings)
    if args.mail_command == "start":
        pid = background.start_background(
            "SMTP sink",
            ["mail", "serve", "--port", str(settings.smtp_port)],
            pid_file,
            settings.log_dir / "mail.log",
            settings.smtp_port,
        )
        print(
            f"SMTP sink running (pid {pid}) on 127.0.0.1:{settings.smtp_port}, "
            f"saving to {settings.mail_dir}"
        )
    elif args.mail_command == "stop":
        stopped = background.stop_background(pid_file)
        print("SMTP sink stopped" if stopped else "SMTP sink was not running")
    else:
        running = background.running_pid(pid_file)
        print(
            f"SMTP sink running (pid {running}) on 127.0.0.1:{settings.smtp_port}"
            if running
            else "SMTP sink stopped"
        )
    return 0


def _serve_mail(port: int, settings: Settings) -> int:
    from touchpoint.local.cluster import port_in_use
    from touchpoint.local.mail_sink import MailSink

    if port_in_use(port):
        raise TouchpointError(
            f"port {port} on 127.0.0.1 is already in use; pass --port "
            "or set TOUCHPOINT_SMTP_PORT to a free port"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    credentials = (
        (settings.smtp_login, settings.smtp_password or "") if settings.smtp_login else None
    )
    with MailSink(settings.mail_dir, port=port, credentials=credentials):
        auth = "; AUTH required (TOUCHPOINT_SMTP_LOGIN)" if credentials else ""
        print(
            f"SMTP sink on 127.0.0.1:{port}, saving to {settings.mail_dir}{auth}; Ctrl-C to stop",
            flush=True,
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.local.airflow_services import airflow_command

    return airflow_command(
        settings, args.port, args.airflow_args, log=lambda msg: print(msg, file=sys.stderr)
    )


def add_commands(sub: Any, settings: Settings) -> None:
    db = sub.add_parser("db", help="the warehouse: embedded cluster or TOUCHPOINT_WAREHOUSE_URL")
    db.add_argument("db_command", choices=("start", "stop", "status", "url"))
    db.set_defaults(func=cmd_db)

    mail = sub.add_parser("mail", help="the local SMTP sink (saves .eml files under var/mail)")
    mail.add_argument("mail_command", choices=("serve", "start", "stop", "status"))
    mail.add_argument("--port", type=int, default=settings.smtp_port)
    mail.set_defaults(func=cmd_mail)

    airflow = sub.add_parser(
        "airflow",
        help="Airflow's UI on the project's DAGs (airflow standalone, metadata DB "
        "'airflow' on the warehouse's server, home var/airflow-ui); with ARGS: airflow ARGS there",
    )
    airflow.add_argument("--port", type=int, default=8080, help="the UI and API port on 127.0.0.1")
    airflow.add_argument(
        "airflow_args", nargs=argparse.REMAINDER, help="e.g. dags list-import-errors"
    )
    airflow.set_defaults(func=cmd_airflow)
