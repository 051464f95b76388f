"""``touchpoint simulate`` and ``demo``: the simulator (development infrastructure) and the demo."""

from __future__ import annotations

import argparse
from typing import Any

from touchpoint.config import Settings


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint_sim.cli import run

    return run(args)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint_sim.demo import run_demo
    from touchpoint_sim.settings import demo_incidents

    incidents = tuple(args.incident) or (() if args.quiet else demo_incidents(args.weeks))
    return run_demo(
        settings,
        customers=args.customers,
        weeks=args.weeks,
        seed=args.seed,
        start_day=args.start,
        incidents=incidents,
    )


def add_commands(sub: Any, settings: Settings) -> None:
    # The simulator is imported only when its commands are built: outside the product's graph.
    from touchpoint_sim.cli import add_arguments, add_world_arguments

    sim = sub.add_parser("simulate", help="generate simulated sources (dev infrastructure)")
    add_arguments(sim, settings)
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="run the whole pipeline end to end on simulated data")
    add_world_arguments(demo)
    demo.add_argument(
        "--quiet",
        action="store_true",
        help="plant nothing (by default a world of 8 weeks or more gets the demo's incident in "
        "its last week: CSAT after a delivery two points down, three times the delivery cases)",
    )
    demo.set_defaults(func=cmd_demo)
