"""The ``touchpoint`` command line: one entry point for engineers and for the demo."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import psycopg

from touchpoint.cli import (
    dbt,
    docs,
    extract,
    metrics,
    privacy,
    quality,
    quarantine,
    report,
    services,
    simulate,
)
from touchpoint.config import Settings, load_settings
from touchpoint.errors import TouchpointError

#: the command groups, in the order ``touchpoint --help`` lists them
GROUPS = (services, simulate, extract, quarantine, quality, dbt, docs, report, metrics, privacy)


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="touchpoint", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub, settings)
    return parser


def keep_var_private(settings: Settings) -> int:
    """Everything this process and its children (dbt, Airflow, PostgreSQL) write is readable by
    its owner only: ``var/`` holds customers' data (landing files, sent reports, logs). ``var/``
    itself may be traversed, not listed, by others: the ``postgres`` user reaches its data
    directory through it (and through its parents, made before the umask). Returns the umask
    before."""
    var = settings.var_dir
    var.mkdir(parents=True, exist_ok=True)
    if var.stat().st_uid == os.geteuid() and var.stat().st_mode & 0o777 != 0o711:
        var.chmod(0o711)
    return os.umask(0o077)


def main(argv: list[str] | None = None) -> int:
    umask: int | None = None
    try:
        settings = load_settings()
        args = build_parser(settings).parse_args(argv)
        umask = keep_var_private(settings)
        logging.basicConfig(
            level=logging.INFO
            if args.verbose or args.command in ("extract", "load")
            else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return int(args.func(args, settings))
    except (TouchpointError, ValueError) as exc:
        print(f"touchpoint: error: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        # the warehouse went away mid-command (a restart, a crash, the network)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(
            f"touchpoint: error: the warehouse connection failed: {reason[:300]}; once it is "
            "back, run the command again (loads and sends are idempotent)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("touchpoint: interrupted", file=sys.stderr)
        return 130
    finally:
        if umask is not None:  # as it was, for a caller in the same process (tests)
            os.umask(umask)
