"""``touchpoint metrics``: the semantic layer queried with MetricFlow's ``mf``, on the
configured warehouse, as the analyst role (touchpoint.transform.semantic_layer)."""

from __future__ import annotations

import argparse
from typing import Any

from touchpoint.config import Settings


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.transform.semantic_layer import run_mf

    return run_mf(args.mf_args or ["--help"], settings, settings.resolved_warehouse_url)


def add_commands(sub: Any, settings: Settings) -> None:
    metrics = sub.add_parser(
        "metrics",
        help="query the semantic layer with MetricFlow's mf, on the warehouse, as the analyst",
        description="Runs `mf ARGS` on the warehouse's semantic layer (dbt_project/models/"
        "semantic), e.g. `touchpoint metrics query --metrics csat --group-by"
        " metric_time__week,touchpoint__channel`, `touchpoint metrics list metrics`,"
        " `touchpoint metrics list dimensions --metrics csat`.",
    )
    metrics.add_argument(
        "mf_args", nargs=argparse.REMAINDER, help="mf's command and options (mf --help)"
    )
    metrics.set_defaults(func=cmd_metrics)
