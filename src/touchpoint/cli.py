"""The ``touchpoint`` command line: one entry point for engineers and for the demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from touchpoint.config import Settings, load_settings
from touchpoint.errors import TouchpointError


def _iso_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or datetime") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- db ------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.warehouse.cluster import EmbeddedCluster
    from touchpoint.warehouse.connection import connect, redact

    if not settings.uses_embedded_warehouse:
        url = settings.warehouse_url or ""
        if args.db_command == "url":
            print(url)
            return 0
        if args.db_command in ("start", "stop"):
            print(f"TOUCHPOINT_WAREHOUSE_URL is set: using the external server {redact(url)}; "
                  f"nothing to {args.db_command}")
        with connect(url) as conn:
            version = conn.execute("show server_version").fetchone()[0]
        print(f"external: running (PostgreSQL {version}) {redact(url)}")
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
    print(f"embedded: {status.detail} {status.url}")
    # Like pg_ctl: `status` exits 3 when the cluster is not running.
    return 3 if args.db_command == "status" and not status.running else 0


# -- mail ----------------------------------------------------------------------------------
def cmd_mail(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import services

    pid_file = settings.run_dir / "mail.pid"
    if args.mail_command == "serve":
        import signal
        import threading

        from touchpoint.mail_sink import MailSink
        from touchpoint.warehouse.cluster import port_in_use

        if port_in_use(args.port):
            raise TouchpointError(f"port {args.port} on 127.0.0.1 is already in use; pass --port "
                                  "or set TOUCHPOINT_SMTP_PORT to a free port")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        credentials = (settings.smtp_login, settings.smtp_password) if settings.smtp_login else None
        with MailSink(settings.mail_dir, port=args.port, credentials=credentials):
            auth = "; AUTH required (TOUCHPOINT_SMTP_LOGIN)" if credentials else ""
            print(f"SMTP sink on 127.0.0.1:{args.port}, saving to {settings.mail_dir}{auth}; Ctrl-C to stop",
                  flush=True)
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        return 0
    if args.mail_command == "start":
        pid = services.start_background(
            "SMTP sink", ["mail", "serve", "--port", str(settings.smtp_port)], pid_file,
            settings.log_dir / "mail.log", settings.smtp_port)
        print(f"SMTP sink running (pid {pid}) on 127.0.0.1:{settings.smtp_port}, saving to {settings.mail_dir}")
    elif args.mail_command == "stop":
        stopped = services.stop_background(pid_file)
        print("SMTP sink stopped" if stopped else "SMTP sink was not running")
    else:
        pid = services.running_pid(pid_file)
        print(f"SMTP sink running (pid {pid}) on 127.0.0.1:{settings.smtp_port}" if pid
              else "SMTP sink stopped")
    return 0


# -- simulate ------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: the simulator is dev infrastructure, outside the product's import graph.
    from touchpoint_sim.cli import run

    return run(args)


# -- extract / load ------------------------------------------------------------------------
def _print_summary(stats_list, as_json: bool) -> None:
    for stats in stats_list:
        print(f"{stats.stream}: loaded={stats.loaded} duplicates={stats.duplicates} "
              f"quarantined={stats.quarantined} erased={stats.erased}")
    if as_json:
        totals = {"loaded": 0, "duplicates": 0, "quarantined": 0, "erased": 0}
        for stats in stats_list:
            for key, value in stats.as_dict().items():
                totals[key] += value
        print(json.dumps(totals))


def cmd_extract(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.extract.run import CrmEndpoint, extract_source
    from touchpoint.warehouse.schema import stage_url

    crm = CrmEndpoint(args.crm_url or f"http://127.0.0.1:{settings.crm_port}", settings.crm_token,
                      max_requests_per_second=settings.crm_max_requests_per_second)
    # as the loader role, like the DAG's extract tasks (README, "Roles")
    stats = extract_source(args.source, stage_url(settings.resolved_warehouse_url, settings.roles.loader),
                           args.start, args.end, landing_url=settings.landing_url, crm=crm,
                           crm_group=args.crm_group)
    _print_summary(stats, args.json)
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.extract.run import load_file
    from touchpoint.extract.sources import FILE_STREAMS
    from touchpoint.warehouse.connection import connect
    from touchpoint.warehouse.schema import stage_url

    stream, _folder = FILE_STREAMS[args.source]
    with connect(stage_url(settings.resolved_warehouse_url, settings.roles.loader)) as conn:
        stats = load_file(conn, stream, str(args.path))
    _print_summary([stats], args.json)
    return 0


# -- dq ------------------------------------------------------------------------------------
def cmd_dq(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.quality.gx_runner import run_quality
    from touchpoint.warehouse.schema import stage_url

    report = run_quality(stage_url(settings.resolved_warehouse_url, settings.roles.transformer),
                         settings.expectations_dir, settings.var_dir / "gx", args.start, args.end,
                         only=args.suite or None)
    print(report.table())
    if args.json:
        print(json.dumps(report.as_dict()))
    # Like the gate: a critical failure is a failure of the command.
    return 1 if report.critical_failures else 0


# -- report --------------------------------------------------------------------------------
def _week_interval(week: str) -> tuple[datetime, datetime]:
    from datetime import timedelta

    from touchpoint.intervals import parse_iso_week

    start = datetime.combine(parse_iso_week(week), datetime.min.time(), UTC)
    return start, start + timedelta(days=7)


def _quality(args: argparse.Namespace, settings: Settings, start: datetime, end: datetime) -> dict | None:
    from touchpoint.pipeline import check_quality

    print(f"checking data quality for {start:%Y-%m-%d} .. {end:%Y-%m-%d} ...", file=sys.stderr)
    report = check_quality(start, end, settings.resolved_warehouse_url, settings, raise_on_critical=False)
    print(report.table(), file=sys.stderr)
    return report.as_dict()


def cmd_report_render(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.report.recipients import SliceValues, load_recipients
    from touchpoint.report.weekly import WeeklyReport, write_preview
    from touchpoint.warehouse.connection import connect
    from touchpoint.warehouse.schema import stage_url

    start, end = _week_interval(args.week)
    recipients = load_recipients(args.recipients or settings.reports_dir / "recipients.yml",
                                 SliceValues.from_seeds(settings.dbt_project_dir))
    quality = _quality(args, settings, start, end) if args.check_quality else None
    with connect(stage_url(settings.resolved_warehouse_url, settings.roles.reporter)) as conn:
        report = WeeklyReport(conn, start.date(), settings.reports_dir / "templates", quality,
                              trend_url=settings.report_trend_url)
        if not report.has_data:
            print(f"note: week {args.week} has no touchpoints in the warehouse (the report would not be sent)",
                  file=sys.stderr)
        written = write_preview(report, recipients.recipients, args.out)
    for path in written:
        print(path)
    if args.screenshots:
        from touchpoint.report.screenshots import screenshot_previews

        print("screenshots in headless Chromium (phone 390 px, desktop 1280 px):")
        screenshot_previews(written)
    return 0


def cmd_report_send(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.connections import smtp_settings_outside_airflow
    from touchpoint.pipeline import send_weekly_report

    start, end = _week_interval(args.week)
    quality = None if args.skip_quality_gate else _quality(args, settings, start, end)
    deliveries = send_weekly_report(start.date(), settings.resolved_warehouse_url,
                                    smtp_settings_outside_airflow(settings), settings, quality=quality,
                                    recipients_file=args.recipients, dry_run=args.dry_run)
    if not deliveries:
        print(f"week {args.week}: nothing sent (no touchpoints that week)")
    for d in deliveries:
        if args.dry_run:
            state = "would send" if d.newly_sent else f"would skip ({d.status})"
        else:
            state = "sent" if d.newly_sent else f"skipped ({d.status})"
        print(f"{d.recipient}: {state} {d.message_id} {d.subject!r}")
    if quality and quality["status"] == "fail":
        print("touchpoint: data-quality gate closed: the report was held and the alerts list told", file=sys.stderr)
        return 1
    return 0


# -- dbt -----------------------------------------------------------------------------------
def cmd_dbt_manifest(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.transform import ensure_manifest

    path, rebuilt = ensure_manifest(settings.dbt_project_dir, settings.var_dir, force=args.force)
    print(f"{path} ({'written' if rebuilt else 'up to date'})")
    return 0


# -- privacy -------------------------------------------------------------------------------
def cmd_privacy_erase(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.privacy.erase import erase

    result = erase(settings.resolved_warehouse_url, args.email or [], args.crm_id or [], settings.dbt_project_dir,
                   settings.var_dir, dry_run=args.dry_run, progress=lambda msg: print(msg, file=sys.stderr))
    verb = "would remove" if result.dry_run else "removed"
    for table, rows in result.rows.items():
        if rows:
            print(f"{table}: {verb} {rows} row(s)")
    print(f"identifiers: {result.person.count()} ({', '.join(f'{n} {kind}' for kind, values in result.person.identifiers.items() if (n := len(values)))})"
          f"; customer keys: {len(result.person.customer_keys)}")
    if result.dry_run:
        print("dry run: nothing was changed")
    else:
        print(f"erasure {result.erasure_id}: {result.person.count()} tombstone(s) written"
              + (f"; marts rebuilt; {result.searched_tables} tables searched, none holds the person"
                 if result.rebuilt else ""))
    return 0


# -- demo ----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    # The demo is a harness around the simulator (dev infrastructure), imported only here.
    from touchpoint_sim.demo import run_demo

    return run_demo(settings, customers=args.customers, weeks=args.weeks, seed=args.seed,
                    incidents=tuple(args.incident))


# -- airflow -------------------------------------------------------------------------------
def cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.airflow_services import airflow_command

    return airflow_command(settings, args.port, args.airflow_args, log=lambda msg: print(msg, file=sys.stderr))


def _simulate_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
    from datetime import date

    parser.add_argument("--customers", type=int, default=settings.demo_customers)
    parser.add_argument("--weeks", type=int, default=settings.demo_weeks)
    parser.add_argument("--seed", type=int, default=settings.demo_seed)
    parser.add_argument("--start", type=date.fromisoformat, default=settings.demo_start,
                        help="first day (a Monday), ISO date")
    parser.add_argument("--landing", type=Path, default=Path(settings.landing_url),
                        help="where to write the SendGrid and Segment files (local dir)")
    parser.add_argument("--out", type=Path, default=settings.sim_dir,
                        help="where to write the CRM data set and the ground truth")
    parser.add_argument("--return-visits-per-week", type=float, default=0.0,
                        help="how often a signed-up customer comes back to the site, on average (default 0:"
                             " only the visits of their journey)")
    parser.add_argument("--incident", action="append", default=[], metavar="TARGET:week=N:EFFECT[:EFFECT...]",
                        help="plant an incident from week N (repeatable): TARGET a touchpoint, channel or ticket"
                             " category; EFFECT csat=-D, nps=-D, conversion=xF, tickets=xF or engagement=xF,"
                             " e.g. delivery_packaging:week=3:csat=-2:tickets=x3")
    sub = parser.add_subparsers(dest="sim_command")
    serve = sub.add_parser("serve-crm", help="serve the generated CRM as a HubSpot-compatible API")
    serve.add_argument("--port", type=int, default=settings.crm_port)
    serve.add_argument("--fault-rate", type=float, default=0.0,
                       help="share of requests answered 429, 500 or slowly (0..1)")
    serve.add_argument("--page-size", type=int, default=None,
                       help="cap every page at N results (HubSpot: 100 for lists, 200 for search)")
    serve.add_argument("--token", default=settings.crm_token)
    serve.add_argument("--verbose", action="store_true")


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="touchpoint", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the warehouse: embedded cluster or TOUCHPOINT_WAREHOUSE_URL")
    db.add_argument("db_command", choices=("start", "stop", "status", "url"))
    db.set_defaults(func=cmd_db)

    mail = sub.add_parser("mail", help="the local SMTP sink (saves .eml files under var/mail)")
    mail.add_argument("mail_command", choices=("serve", "start", "stop", "status"))
    mail.add_argument("--port", type=int, default=settings.smtp_port)
    mail.set_defaults(func=cmd_mail)

    sim = sub.add_parser("simulate", help="generate simulated sources (dev infrastructure)")
    _simulate_arguments(sim, settings)
    sim.set_defaults(func=cmd_simulate)

    extract = sub.add_parser("extract", help="extract one source for an interval into raw")
    extract.add_argument("source", choices=("crm", "email", "web"))
    extract.add_argument("--start", type=_iso_datetime, required=True)
    extract.add_argument("--end", type=_iso_datetime, required=True)
    extract.add_argument("--crm-url", help="HubSpot API base URL (default: the local simulator)")
    extract.add_argument("--crm-group", choices=("people", "sales", "service"),
                         help="only this group of CRM objects (default: all)")
    extract.add_argument("--json", action="store_true", help="last line: totals as one JSON object")
    extract.set_defaults(func=cmd_extract)

    load = sub.add_parser("load", help="load one landing file by hand")
    load.add_argument("source", choices=("email", "web"))
    load.add_argument("path", type=Path)
    load.add_argument("--json", action="store_true")
    load.set_defaults(func=cmd_load)

    dq = sub.add_parser("dq", help="data quality: run the expectation suites by hand")
    dq.add_argument("dq_command", choices=("run",))
    dq.add_argument("--start", type=_iso_datetime, required=True)
    dq.add_argument("--end", type=_iso_datetime, required=True)
    dq.add_argument("--suite", action="append", help="only this suite (repeatable)")
    dq.add_argument("--json", action="store_true", help="last line: the result as one JSON object")
    dq.set_defaults(func=cmd_dq)

    dbt = sub.add_parser("dbt", help="the dbt project")
    dbt_sub = dbt.add_subparsers(dest="dbt_command", required=True)
    manifest = dbt_sub.add_parser("manifest", help="write the manifest the Airflow DAGs render dbt from"
                                  " (when missing or older than the project)")
    manifest.add_argument("--force", action="store_true", help="write it even when it is up to date")
    manifest.set_defaults(func=cmd_dbt_manifest)

    report = sub.add_parser("report", help="the weekly report: preview it, or send it by hand")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    render = report_sub.add_parser("render", help="write each recipient's HTML, text, PNGs and CSV; send nothing")
    render.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    render.add_argument("--out", type=Path, required=True, help="folder for one sub-folder per recipient")
    render.add_argument("--recipients", type=Path, help="recipients file (default reports/recipients.yml)")
    render.add_argument("--check-quality", action="store_true",
                        help="run the data-quality suites for the week and show their status in the report")
    render.add_argument("--screenshots", action="store_true",
                        help="also screenshot each HTML in headless Chromium at phone and desktop widths")
    render.set_defaults(func=cmd_report_render)
    send = report_sub.add_parser("send", help="check the week's data quality and send the report once per recipient")
    send.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    send.add_argument("--recipients", type=Path, help="recipients file (default reports/recipients.yml)")
    send.add_argument("--dry-run", action="store_true", help="render and report what would be sent; send nothing")
    send.add_argument("--skip-quality-gate", action="store_true", help="send without running the data-quality suites")
    send.set_defaults(func=cmd_report_send)

    privacy = sub.add_parser("privacy", help="personal data: erase a person")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    erase = privacy_sub.add_parser(
        "erase", help="remove a person from raw, the marts (rebuilt) and the send log; tombstones keep them out")
    erase.add_argument("--email", action="append", help="the person's email address (repeatable)")
    erase.add_argument("--crm-id", action="append", help="the person's HubSpot contact id (repeatable)")
    erase.add_argument("--dry-run", action="store_true", help="count what would be removed; change nothing")
    erase.set_defaults(func=cmd_privacy_erase)

    demo = sub.add_parser("demo", help="run the whole pipeline end to end on simulated data")
    demo.add_argument("--customers", type=int, default=settings.demo_customers)
    demo.add_argument("--weeks", type=int, default=settings.demo_weeks)
    demo.add_argument("--seed", type=int, default=settings.demo_seed)
    demo.add_argument("--incident", action="append", default=[], metavar="TARGET:week=N:EFFECT[:EFFECT...]",
                      help="plant an incident in the simulated world (as `touchpoint simulate --incident`)")
    demo.set_defaults(func=cmd_demo)

    airflow = sub.add_parser("airflow", help="Airflow's UI on the project's DAGs (airflow standalone, metadata DB "
                             "'airflow' on the warehouse's server, home var/airflow-ui); with ARGS: airflow ARGS there")
    airflow.add_argument("--port", type=int, default=8080, help="the UI and API port on 127.0.0.1")
    airflow.add_argument("airflow_args", nargs=argparse.REMAINDER, help="e.g. dags list-import-errors")
    airflow.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
        args = build_parser(settings).parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose or args.command in ("extract", "load") else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return args.func(args, settings)
    except TouchpointError as exc:
        print(f"touchpoint: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"touchpoint: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("touchpoint: interrupted", file=sys.stderr)
        return 130
