"""``touchpoint extract`` and ``load``: sources into the raw layer, as the loader role."""

from __future__ import annotations

import argparse
import json
from typing import Any

from touchpoint.cli.arguments import iso_datetime
from touchpoint.config import Settings
from touchpoint.sources.catalog import CRM_GROUPS, FILE_STREAMS, SOURCES


def _print_summary(stats: dict[str, dict[str, int]], as_json: bool) -> None:
    for stream, counts in stats.items():
        print(f"{stream}: " + " ".join(f"{key}={value}" for key, value in counts.items()))
    if as_json:
        totals: dict[str, int] = {}
        for counts in stats.values():
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
        print(json.dumps(totals))


def cmd_extract(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline
    from touchpoint.extract.run import CrmEndpoint

    crm = CrmEndpoint(
        args.crm_url or settings.crm_url,
        settings.crm_token,
        max_requests_per_second=settings.crm_max_requests_per_second,
        max_searches_per_second=settings.crm_max_searches_per_second,
        max_retry_after_seconds=settings.crm_max_retry_after_seconds,
        search_overlap_minutes=settings.crm_search_overlap_minutes,
    )
    stats = pipeline.extract(
        args.source,
        args.start,
        args.end,
        settings.resolved_warehouse_url,
        settings,
        crm=crm,
        crm_group=args.crm_group,
        reread=args.reread,
    )
    _print_summary(stats, args.json)
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline

    stats = pipeline.load_file(
        args.source, str(args.path), settings.resolved_warehouse_url, settings
    )
    _print_summary(stats, args.json)
    return 0


def add_commands(sub: Any, settings: Settings) -> None:
    from pathlib import Path

    extract = sub.add_parser("extract", help="extract one source for an interval into raw")
    extract.add_argument("source", choices=SOURCES)
    extract.add_argument("--start", type=iso_datetime, required=True)
    extract.add_argument("--end", type=iso_datetime, required=True)
    extract.add_argument(
        "--crm-url", help=f"HubSpot API base URL (default TOUCHPOINT_CRM_URL, {settings.crm_url})"
    )
    extract.add_argument(
        "--crm-group", choices=CRM_GROUPS, help="only this group of CRM objects (default: all)"
    )
    extract.add_argument(
        "--reread",
        action="store_true",
        help="read the interval's landing files again, even those the file ledger has loaded",
    )
    extract.add_argument("--json", action="store_true", help="last line: totals as one JSON object")
    extract.set_defaults(func=cmd_extract)

    load = sub.add_parser("load", help="load one landing file by hand")
    load.add_argument("source", choices=tuple(FILE_STREAMS))
    load.add_argument("path", type=Path)
    load.add_argument("--json", action="store_true")
    load.set_defaults(func=cmd_load)
