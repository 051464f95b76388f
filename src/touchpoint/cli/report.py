"""``touchpoint report``: preview the weekly report, or send it by hand."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from touchpoint.cli.arguments import week_interval
from touchpoint.config import Settings


def _quality(settings: Settings, start: datetime, end: datetime) -> dict[str, Any]:
    from touchpoint import pipeline

    print(f"checking data quality for {start:%Y-%m-%d} .. {end:%Y-%m-%d} ...", file=sys.stderr)
    report = pipeline.check_quality(
        start, end, settings.resolved_warehouse_url, settings, raise_on_critical=False
    )
    print(report.table(), file=sys.stderr)
    return report.as_dict()


def cmd_report_render(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline

    start, end = week_interval(args.week)
    quality = _quality(settings, start, end) if args.check_quality else None
    has_data, written = pipeline.render_weekly_report(
        start.date(),
        settings.resolved_warehouse_url,
        settings,
        args.out,
        quality=quality,
        recipients_file=args.recipients,
    )
    if not has_data:
        print(
            f"note: week {args.week} has no touchpoints in the warehouse "
            "(the report would not be sent)",
            file=sys.stderr,
        )
    for path in written:
        print(path)
    if args.screenshots:
        from touchpoint.report.screenshots import screenshot_previews

        print("screenshots in headless Chromium (phone 390 px, desktop 1280 px):")
        screenshot_previews(written)
    return 0


def cmd_report_send(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline
    from touchpoint.orchestration.connections import smtp_settings_outside_airflow

    start, end = week_interval(args.week)
    quality = None if args.skip_quality_gate else _quality(settings, start, end)
    smtp = smtp_settings_outside_airflow(settings)
    deliveries = pipeline.send_weekly_report(
        start.date(),
        settings.resolved_warehouse_url,
        smtp,
        settings,
        quality=quality,
        recipients_file=args.recipients,
        dry_run=args.dry_run,
    )
    if not deliveries:
        print(f"week {args.week}: nothing sent (no touchpoints that week)")
    for d in deliveries:
        if args.dry_run:
            state = "would send" if d.newly_sent else f"would skip ({d.status})"
        else:
            state = "sent" if d.newly_sent else f"skipped ({d.status})"
        print(f"{d.recipient}: {state} {d.message_id} {d.subject!r}")
    if quality and quality["status"] == "fail":
        print(
            "touchpoint: data-quality gate closed: the report was held and the alerts list told",
            file=sys.stderr,
        )
        return 1
    return 0


def add_commands(sub: Any, settings: Settings) -> None:
    report = sub.add_parser("report", help="the weekly report: preview it, or send it by hand")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    render = report_sub.add_parser(
        "render", help="write each recipient's HTML, text, PNGs and CSV; send nothing"
    )
    render.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    render.add_argument(
        "--out", type=Path, required=True, help="folder for one sub-folder per recipient"
    )
    render.add_argument(
        "--recipients", type=Path, help="recipients file (default reports/recipients.yml)"
    )
    render.add_argument(
        "--check-quality",
        action="store_true",
        help="run the data-quality suites for the week and show their status in the report",
    )
    render.add_argument(
        "--screenshots",
        action="store_true",
        help="also screenshot each HTML in headless Chromium at phone and desktop widths",
    )
    render.set_defaults(func=cmd_report_render)
    send = report_sub.add_parser(
        "send", help="check the week's data quality and send the report once per recipient"
    )
    send.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    send.add_argument(
        "--recipients", type=Path, help="recipients file (default reports/recipients.yml)"
    )
    send.add_argument(
        "--dry-run", action="store_true", help="render and report what would be sent; send nothing"
    )
    send.add_argument(
        "--skip-quality-gate",
        action="store_true",
        help="send without running the data-quality suites",
    )
    send.set_defaults(func=cmd_report_send)
