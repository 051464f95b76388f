"""``touchpoint dq``: the data-quality suites, run by hand on an interval."""

from __future__ import annotations

import argparse
import json
from typing import Any

from touchpoint.cli.arguments import iso_datetime
from touchpoint.config import Settings


def cmd_dq(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline

    report = pipeline.check_quality(
        args.start,
        args.end,
        settings.resolved_warehouse_url,
        settings,
        raise_on_critical=False,
        suites=args.suite,
    )
    print(report.table())
    if args.json:
        print(json.dumps(report.as_dict()))
    # Like the gate: a critical failure is a failure of the command.
    return 1 if report.critical_failures else 0


def add_commands(sub: Any, settings: Settings) -> None:
    dq = sub.add_parser("dq", help="data quality: run the expectation suites by hand")
    dq.add_argument("dq_command", choices=("run",))
    dq.add_argument("--start", type=iso_datetime, required=True)
    dq.add_argument("--end", type=iso_datetime, required=True)
    dq.add_argument("--suite", action="append", help="only this suite (repeatable)")
    dq.add_argument("--json", action="store_true", help="last line: the result as one JSON object")
    dq.set_defaults(func=cmd_dq)
