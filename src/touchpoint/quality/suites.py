"""Expectation suites as versioned JSON under ``expectations/``.

A suite names the table it guards and holds one or more *batches*: a SQL query over the
run's interval (placeholders ``{start}``, ``{end}`` and ``{epoch}`` become timestamptz
literals, ``{future_tolerance}`` an interval: the loader's own bounds, ``IngestLimits``, so the
gate judges what the loader accepted) and the expectations to run on its rows. Checks that need
a number computed over the interval (a volume ratio, a quarantine rate, hours behind) are
queries whose columns the expectations bound, so every threshold is written once, in the suite
file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from touchpoint.config import DEFAULT_LIMITS, IngestLimits
from touchpoint.errors import TouchpointError

SEVERITIES = ("critical", "warning")


@dataclass(frozen=True)
class Batch:
    name: str
    query: str
    expectations: list[dict[str, Any]]

    def sql(self, start: datetime, end: datetime, limits: IngestLimits = DEFAULT_LIMITS) -> str:
        def literal(moment: datetime) -> str:
            return f"'{moment.isoformat()}'::timestamptz"

        return (
            self.query.replace("{start}", literal(start))
            .replace("{end}", literal(end))
            .replace("{epoch}", literal(limits.earliest_event_time))
            .replace(
                "{future_tolerance}",
                f"interval '{limits.future_tolerance.total_seconds():.0f} seconds'",
            )
        )


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    description: str
    batches: list[Batch]
    path: Path


def load_suite(path: Path) -> Suite:
    try:
        spec = json.loads(path.read_text())
        batches = [Batch(b["name"], b["query"], b["expectations"]) for b in spec["batches"]]
        suite = Suite(spec["suite"], spec["table"], spec.get("description", ""), batches, path)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TouchpointError(
            f"expectation suite {path} is unreadable or incomplete: {exc!r}"
        ) from None
    for batch in suite.batches:
        if not batch.query.lstrip().upper().startswith("SELECT "):
            raise TouchpointError(
                f"{path}: batch {batch.name!r}: the query must start with SELECT (a GX rule)"
            )
        for item in batch.expectations:
            severity = (item.get("meta") or {}).get("severity")
            rule = (item.get("meta") or {}).get("rule_id")
            if severity not in SEVERITIES or not rule:
                raise TouchpointError(
                    f"{path}: every expectation needs meta.rule_id and meta.severity in "
                    f"{SEVERITIES}; got rule_id={rule!r} severity={severity!r}"
                )
    return suite


def load_suites(directory: Path) -> list[Suite]:
    suites = [load_suite(p) for p in sorted(directory.glob("*.json"))]
    if not suites:
        raise TouchpointError(f"no expectation suites in {directory}")
    return suites
