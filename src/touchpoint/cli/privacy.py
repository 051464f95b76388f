"""``touchpoint privacy``: erase a person from every table, with tombstones for later loads."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from touchpoint.config import Settings


def cmd_privacy_erase(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.privacy.erase import erase

    result = erase(
        settings.resolved_warehouse_url,
        args.email or [],
        args.crm_id or [],
        settings.dbt_project_dir,
        settings.var_dir,
        dry_run=args.dry_run,
        note=lambda msg: print(msg, file=sys.stderr),
    )
    verb = "would remove" if result.dry_run else "removed"
    for table, rows in result.rows.items():
        if rows:
            print(f"{table}: {verb} {rows} row(s)")
    kinds = ", ".join(
        f"{n} {kind}" for kind, values in result.person.identifiers.items() if (n := len(values))
    )
    print(
        f"identifiers: {result.person.count()} ({kinds}); "
        f"customer keys: {len(result.person.customer_keys)}"
    )
    if result.dry_run:
        print("dry run: nothing was changed")
    else:
        print(
            f"erasure {result.erasure_id}: {result.person.count()} tombstone(s) written"
            + (
                f"; marts rebuilt; {result.searched_tables} tables searched, none holds the person"
                if result.rebuilt
                else ""
            )
        )
    return 0


def add_commands(sub: Any, settings: Settings) -> None:
    privacy = sub.add_parser("privacy", help="personal data: erase a person")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    erase = privacy_sub.add_parser(
        "erase",
        help=(
            "remove a person from raw, the marts (rebuilt) and the send log; "
            "tombstones keep them out"
        ),
    )
    erase.add_argument("--email", action="append", help="the person's email address (repeatable)")
    erase.add_argument(
        "--crm-id", action="append", help="the person's HubSpot contact id (repeatable)"
    )
    erase.add_argument(
        "--dry-run", action="store_true", help="count what would be removed; change nothing"
    )
    erase.set_defaults(func=cmd_privacy_erase)
