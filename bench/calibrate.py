"""`python -m bench.calibrate` (`make calibrate`): how often the weekly signals find a planted
incident, and how often they flag something in a week where nothing was planted.

For every seed: one world per effect with that incident alone (isolated: nothing else can
explain the flag), planted in the last week, and one world without any incident. Each world is
simulated, extracted and built (only the models the signals need) on the calibration's own
cluster, then read as the report reads it (``touchpoint_sim.planted.flags``).

- **detection**: the planted target's metric is flagged in its section in the incident's week;
- **false alarm**: a quiet report-week (every judged week of a quiet world) in which the report
  would name anything in needs attention, recurring problems or customers at risk. The weeks
  before an incident are not counted again: the simulator makes them the quiet world's weeks of
  the same seed, so they would repeat the same evidence. Quiet worlds run longer
  (``--quiet-weeks``), with as many people arriving per week, to give more report-weeks each.

The thresholds are the dbt vars ``signal_*`` (dbt_project.yml), read, never set, here.
Prints the tables and writes bench/calibration.json and bench/calibration.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CALIBRATE_VAR = REPO / "var" / "calibrate"
# Its own cluster and var dir, apart from the demo's, the tests' and the bench's.
os.environ.setdefault("TOUCHPOINT_VAR_DIR", str(CALIBRATE_VAR))
os.environ.setdefault("TOUCHPOINT_PG_PORT", "54369")
os.environ.setdefault("MPLCONFIGDIR", str(CALIBRATE_VAR / "cache" / "matplotlib"))
os.environ.pop("TOUCHPOINT_WAREHOUSE_URL", None)

START = date(2026, 10, 5)


@dataclass(frozen=True)
class Effect:
    name: str
    spec: str  # the incident without its week: TARGET:EFFECT
    target: str
    metric: str
    section: str


#: One canonical incident per effect of the issue (the same as tests/test_planted_incidents.py).
EFFECTS = (
    Effect("csat", "delivery_packaging:csat=-2", "delivery_packaging", "csat", "needs_attention"),
    Effect("nps", "newsletter:nps=-3", "newsletter", "nps", "needs_attention"),
    Effect(
        "conversion", "paid_ads:conversion=x0.3", "paid_ads", "conversion_rate", "needs_attention"
    ),
    Effect(
        "tickets", "billing_pricing:tickets=x3", "billing_pricing", "cases", "recurring_problems"
    ),
    Effect("engagement", "newsletter:engagement=x0.2", "newsletter", "engagement", "at_risk"),
)


@dataclass
class Outcome:
    """What one world showed."""

    effect: str  # an Effect's name, or "none"
    seed: int
    detected: bool | None = None  # None for a quiet world
    planted_z: float | None = None
    quiet_weeks: list[str] = field(default_factory=list)
    alarmed_weeks: dict[str, list[str]] = field(default_factory=dict)  # week -> signal keys flagged
    #: the regional reports of the quiet weeks (a recipient with a region reads that slice):
    #: "week region" -> signal keys flagged, of the report-weeks in regional_weeks
    regional_weeks: list[str] = field(default_factory=list)
    regional_alarms: dict[str, list[str]] = field(default_factory=dict)
    collateral: list[str] = field(default_factory=list)  # other flags in the incident's week
    seconds: float = 0.0


def incident(effect: Effect, week: int) -> str:
    target, _, change = effect.spec.partition(":")
    return f"{target}:week={week}:{change}"


def run_world(admin_url: str, effect_name: str, seed: int, customers: int, weeks: int) -> Outcome:
    """Build one world in a fresh database and read its flags (a worker process's job)."""
    import psycopg

    from touchpoint.config import load_settings
    from touchpoint_sim.planted import SIGNAL_MODELS, build_planted_world, flags, judged_weeks

    began = time.monotonic()
    effect = next((e for e in EFFECTS if e.name == effect_name), None)
    name = f"calibrate_{effect_name}_{seed}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    root = Path(tempfile.mkdtemp(prefix=f"calibrate-{effect_name}-{seed}-"))
    try:
        world = build_planted_world(
            url,
            load_settings(),
            root,
            customers=customers,
            weeks=weeks,
            seed=seed,
            start=START,
            incidents=[incident(effect, weeks)] if effect else [],
            select=SIGNAL_MODELS,
        )
        outcome = Outcome(effect_name, seed)
        incident_week = world.week_start(weeks)
        judged_regions = [] if effect else regions(url)
        for week in judged_weeks(url):
            flagged = flags(url, week)
            if effect and week == incident_week:
                planted = [
                    f
                    for f in flagged
                    if f.names(effect.target)
                    and f.metric == effect.metric
                    and f.section == effect.section
                ]
                outcome.detected = bool(planted)
                outcome.planted_z = planted[0].z_score if planted else None
                outcome.collateral = [f.signal_key for f in flagged if f not in planted]
            elif not effect:
                outcome.quiet_weeks.append(week.isoformat())
                if flagged:
                    outcome.alarmed_weeks[week.isoformat()] = [f.signal_key for f in flagged]
                for region in judged_regions:
                    outcome.regional_weeks.append(f"{week.isoformat()} {region}")
                    if regional := flags(url, week, region):
                        outcome.regional_alarms[f"{week.isoformat()} {region}"] = [
                            f.signal_key for f in regional
                        ]
        if effect and outcome.detected is None:
            outcome.detected = False  # the incident's week was not even judged
        outcome.seconds = time.monotonic() - began
        return outcome
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
        shutil.rmtree(root, ignore_errors=True)


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a rate (95 % by default): 10 of 10 is 72-100 %, not 100 %."""
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z
        * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
        / (1 + z * z / trials)
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def interval(successes: int, trials: int) -> str:
    low, high = wilson(successes, trials)
    return f"{low:.1%}–{high:.1%}"


def regions(url: str) -> list[str]:
    """The regions the mart judges apart from the whole company ('(all)')."""
    import psycopg

    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select distinct region from marts.agg_touchpoint_signals"
                " where region <> '(all)' order by 1"
            )
        ]


def tables(
    outcomes: list[Outcome], seeds: int, customers: int, weeks: int, quiet_weeks: int
) -> str:
    lines = [
        f"#### Calibration: {seeds} seeds per effect ({customers} customers x {weeks} weeks,"
        f" incident from week {weeks}) and {seeds} quiet worlds ({quiet_weeks} weeks)",
        "",
        "| effect | incident | worlds | detected | detection rate (95% interval) |"
        " median z of the planted flag | other flags in that week (per world) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for effect in EFFECTS:
        runs = [o for o in outcomes if o.effect == effect.name]
        if not runs:
            continue
        found = sum(1 for o in runs if o.detected)
        zs = [o.planted_z for o in runs if o.planted_z is not None]
        low, high = wilson(found, len(runs))
        lines.append(
            f"| {effect.name} | `{incident(effect, weeks)}` | {len(runs)} | {found} |"
            f" {found / len(runs):.0%} ({low:.0%}–{high:.0%}) |"
            + (f" {statistics.median(zs):.1f} |" if zs else " — |")
        )
        lines[-1] += f" {statistics.mean(len(o.collateral) for o in runs):.1f} |"
    quiet = [(o, week) for o in outcomes for week in o.quiet_weeks]
    alarmed = [(o, week) for o, week in quiet if week in o.alarmed_weeks]
    lines += [
        "",
        "| quiet report-weeks | from | with a flag | false-alarm rate (95% interval) |",
        "|---:|---|---:|---:|",
        f"| {len(quiet)} | {sum(1 for o in outcomes if o.effect == 'none')} quiet worlds |"
        f" {len(alarmed)} | {len(alarmed) / len(quiet):.1%}"
        f" ({interval(len(alarmed), len(quiet))}) |"
        if quiet
        else "| 0 | — | — | — |",
    ]
    regional = [(o, week) for o in outcomes for week in o.regional_weeks]
    regional_alarmed = [(o, week) for o, week in regional if week in o.regional_alarms]
    if regional:
        lines += [
            "",
            "The same quiet weeks in the regional reports (each region's slice, judged on its own"
            " customers):",
            "",
            "| regional report-weeks | with a flag | false-alarm rate (95% interval) |",
            "|---:|---:|---:|",
            f"| {len(regional)} | {len(regional_alarmed)} |"
            f" {len(regional_alarmed) / len(regional):.1%}"
            f" ({interval(len(regional_alarmed), len(regional))}) |",
        ]
    if alarmed or regional_alarmed:
        lines += ["", "False alarms:"] + [
            f"- {o.effect} seed {o.seed}, week of {week}: {', '.join(o.alarmed_weeks[week])}"
            for o, week in alarmed
        ]
        lines += [
            f"- {o.effect} seed {o.seed}, week of {week.replace(' ', ', region ')}: "
            f"{', '.join(o.regional_alarms[week])}"
            for o, week in regional_alarmed
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seeds", type=int, default=10, help="seeds per effect, and quiet worlds (default 10)"
    )
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument(
        "--effects",
        default=",".join(e.name for e in EFFECTS),
        help="comma-separated, from " + ", ".join(e.name for e in EFFECTS),
    )
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument(
        "--weeks", type=int, default=7, help="weeks of an incident world (the incident: the last)"
    )
    parser.add_argument(
        "--quiet-weeks", type=int, default=10, help="weeks of a quiet world (default 10)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worlds built at once (default 2)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "calibration.json")
    args = parser.parse_args(argv)
    chosen = [e.strip() for e in args.effects.split(",") if e.strip()]
    unknown = sorted(set(chosen) - {e.name for e in EFFECTS})
    if unknown or args.seeds < 1 or args.jobs < 1:
        parser.error(
            f"unknown effect(s) {unknown}" if unknown else "--seeds and --jobs must be at least 1"
        )

    from bench.measure import worker_pool
    from touchpoint.config import load_settings
    from touchpoint.local.cluster import EmbeddedCluster
    from touchpoint.progress import progress as bar
    from touchpoint.transform.dbt import ensure_manifest

    settings = load_settings()
    EmbeddedCluster(settings).start(log=lambda m: print(m, flush=True))
    ensure_manifest(
        settings.dbt_project_dir, settings.var_dir
    )  # parse once, before the workers run dbt
    admin_url = settings.embedded_url_for("postgres")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(name, seed) for seed in seeds for name in [*chosen, "none"]]
    print(
        f"{len(jobs)} worlds of {args.customers} customers ({args.weeks} weeks with an incident,"
        f" {args.quiet_weeks} without), {args.jobs} at a time",
        flush=True,
    )
    began = time.monotonic()
    outcomes: list[Outcome] = []
    with (
        worker_pool(args.jobs) as pool,
        bar("worlds simulated, built and judged", total=len(jobs)) as finished,
    ):
        # a quiet world runs longer with as many people per week as an incident world
        quiet_customers = round(args.customers * args.quiet_weeks / args.weeks)
        futures = [
            pool.submit(
                run_world,
                admin_url,
                name,
                seed,
                *(
                    (quiet_customers, args.quiet_weeks)
                    if name == "none"
                    else (args.customers, args.weeks)
                ),
            )
            for name, seed in jobs
        ]
        for done, future in enumerate(futures, start=1):
            outcome = future.result()
            outcomes.append(outcome)
            verdict = (
                "quiet"
                if outcome.detected is None
                else "detected"
                if outcome.detected
                else "MISSED"
            )
            alarms = (
                f", false alarms in {sorted(outcome.alarmed_weeks)}"
                if outcome.alarmed_weeks
                else ""
            )
            print(
                f"[{done}/{len(jobs)}] {outcome.effect} seed {outcome.seed}: {verdict}{alarms}"
                f" ({outcome.seconds:.0f} s; {time.monotonic() - began:.0f} s in all)",
                flush=True,
            )
            finished.advance()
    table = tables(outcomes, args.seeds, args.customers, args.weeks, args.quiet_weeks)
    print("\n" + table)
    args.out.write_text(
        json.dumps(
            {
                "finished": datetime.now().isoformat(timespec="seconds"),
                "arguments": vars(args) | {"out": str(args.out)},
                "outcomes": [asdict(o) for o in outcomes],
            },
            indent=2,
        )
    )
    args.out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
