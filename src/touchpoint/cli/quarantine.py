"""``touchpoint quarantine list|show|replay``: the records the loader refused, and their replay
after a fix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from touchpoint.cli.arguments import iso_datetime
from touchpoint.config import Settings
from touchpoint.sources.catalog import ALL_STREAMS


def _filter(args: argparse.Namespace) -> Any:
    from touchpoint.extract.quarantine import QuarantineFilter

    return QuarantineFilter(
        ids=tuple(getattr(args, "ids", None) or ()),
        stream=args.stream,
        reason=args.reason,
        since=args.since,
        include_replayed=getattr(args, "replayed", False),
    )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline

    records, total = pipeline.quarantined(
        _filter(args), settings.resolved_warehouse_url, settings, limit=args.limit
    )
    if args.json:
        print(json.dumps([{**r.__dict__, "raw_text": None} for r in records], default=str))
        return 0
    for r in records:
        state = f" (replayed {r.replayed_at:%Y-%m-%d %H:%M})" if r.replayed_at else ""
        print(
            f"{r.id:>8}  {r.quarantined_at:%Y-%m-%d %H:%M}  {r.stream:<28} "
            f"{_short(r.source, 48):<48}  {r.reason[:120]}{state}"
        )
    print(f"{len(records)} of {total} matching record(s) shown, newest first")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline

    r = pipeline.quarantined_record(args.id, settings.resolved_warehouse_url, settings)
    text = r.raw_text or ""
    shown = text if args.full or len(text) <= 4000 else text[:4000] + f"… ({len(text):,} chars)"
    print(f"id:          {r.id}\nstream:      {r.stream}\nsource:      {r.source}")
    print(f"quarantined: {r.quarantined_at.isoformat()}\nreason:      {r.reason}")
    print(f"replayed:    {r.replayed_at.isoformat() if r.replayed_at else 'no'}")
    print(f"record:\n{shown}" if text else "record:      (not kept: nothing to replay)")
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint import pipeline

    which = _filter(args)
    if not (which.ids or which.stream or which.reason or which.since or args.all):
        raise ValueError("say which records to replay: ids, --stream, --reason, --since or --all")
    result = pipeline.replay(which, settings.resolved_warehouse_url, settings)
    print(
        f"replayed {result.replayed}: loaded {result.loaded}, already in raw "
        f"{result.duplicates}, of erased people {result.erased}"
    )
    for record_id, reason in result.still_invalid:
        print(f"still refused {record_id}: {reason}")
    if result.not_replayable:
        print(
            f"{len(result.not_replayable)} without a record's text (nothing to replay): "
            + ", ".join(map(str, result.not_replayable[:20]))
        )
    return 0


def add_commands(sub: Any, settings: Settings) -> None:
    group = sub.add_parser("quarantine", help="records the loader refused: list, show, replay")
    commands = group.add_subparsers(dest="quarantine_command", required=True)

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--stream", choices=[s.name for s in ALL_STREAMS])
        parser.add_argument("--reason", help="only reasons containing this text")
        parser.add_argument("--since", type=iso_datetime, help="quarantined at or after")

    listing = commands.add_parser("list", help="the newest quarantined records and their reasons")
    filters(listing)
    listing.add_argument("--replayed", action="store_true", help="include replayed records")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="one quarantined record, its reason and its text")
    show.add_argument("id", type=int)
    show.add_argument("--full", action="store_true", help="the whole text, however long")
    show.set_defaults(func=cmd_show)

    replay = commands.add_parser(
        "replay", help="load the matching records that pass the checks now (after a fix)"
    )
    replay.add_argument("ids", type=int, nargs="*", help="quarantine ids")
    filters(replay)
    replay.add_argument("--all", action="store_true", help="every record not replayed yet")
    replay.set_defaults(func=cmd_replay)
