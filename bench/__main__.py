"""`python -m bench [--scales S,M,L] [--repetitions 3] [--quick]`: measure every stage.

Writes bench/results.json after every stage (a run cut short keeps what it measured) and
prints the Markdown tables at the end (also saved as bench/results.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_VAR = REPO / "var" / "bench"
# The bench's own cluster and var dir, apart from the demo's and the tests'.
os.environ.setdefault("TOUCHPOINT_VAR_DIR", str(BENCH_VAR))
os.environ.setdefault("TOUCHPOINT_PG_PORT", "54359")
os.environ.setdefault("MPLCONFIGDIR", str(BENCH_VAR / "cache" / "matplotlib"))
os.environ.pop("TOUCHPOINT_WAREHOUSE_URL", None)

from bench import daily, stages  # noqa: E402
from bench.dataset import ensure_dataset  # noqa: E402
from bench.measure import repeated, run_measured, side_by_side  # noqa: E402
from bench.scales import SCALES  # noqa: E402
from bench.table import render  # noqa: E402
from bench.targets import judge  # noqa: E402
from touchpoint.progress import progress as bar  # noqa: E402

#: the scales the peers load by default: dlt loads a few thousand rows a second, so at M and L
#: it would take most of the run without saying more than the ratio at S does
PEERS_AT = "S"


def progress(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scales", default="S,M,L", help="comma-separated, from S, M, L")
    parser.add_argument(
        "--repetitions", type=int, default=3, help="runs per load and report measurement"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="S only, one repetition, without the peers (about 10 minutes); results in "
        "bench/results-quick.json unless --out says otherwise",
    )
    parser.add_argument(
        "--peers-at",
        default=PEERS_AT,
        help=f"scales at which dlt and pandas load too (default {PEERS_AT}; e.g. S,M)",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="skip dlt and pandas (ours and psql \\copy only)"
    )
    parser.add_argument("--out", type=Path, default=None, help="default bench/results.json")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on from the results in --out: a scale already measured is skipped, and one "
        "whose daily run was cut short goes on from its last measured step, on the warehouse "
        "it left (a long L run can be done in several sittings)",
    )
    args = parser.parse_args(argv)
    if args.out is None:  # a quick run does not overwrite the results of a complete one
        args.out = REPO / "bench" / ("results-quick.json" if args.quick else "results.json")
    if args.quick:  # dlt and pandas take most of a run at S: the complete run measures them
        args.no_peers = True
    names = (
        ["S"] if args.quick else [s.strip().upper() for s in args.scales.split(",") if s.strip()]
    )
    unknown = [n for n in names if n not in SCALES]
    if unknown or args.repetitions < 1:
        parser.error(
            f"unknown scale(s) {unknown}; choose from {', '.join(SCALES)}"
            if unknown
            else "--repetitions must be at least 1"
        )
    reps = 1 if args.quick else args.repetitions
    peers_at = {n.strip().upper() for n in args.peers_at.split(",") if n.strip()}

    from touchpoint.config import load_settings
    from touchpoint.local.cluster import EmbeddedCluster

    settings = load_settings()
    EmbeddedCluster(settings).start(log=progress)
    wh = stages.Warehouse(settings.embedded_url_for("postgres"), settings.var_dir)
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "postgres": "embedded cluster (the product's durable defaults), one for every contender",
        "repetitions": reps,
        "scales": {},
        "targets": [],
    }
    if args.resume and args.out.exists():
        earlier = json.loads(args.out.read_text())
        if earlier.get("repetitions") != reps:
            parser.error(f"{args.out} was measured with {earlier.get('repetitions')} repetitions")
        results = earlier | {"resumed": [*earlier.get("resumed", []), results["started"]]}

    def save() -> None:
        results["targets"] = judge(results)
        args.out.write_text(json.dumps(results, indent=2, default=str))

    # SIGTERM or SIGINT: stop after the daily run's current step, its results saved (the loads
    # and CRM stages are short and measured whole; they are simply cut)
    stop_signal = threading.Event()

    def request_stop(signum, _frame) -> None:
        if stop_signal.is_set():
            raise KeyboardInterrupt
        progress(f"signal {signum}: stopping after the current step (again to stop at once)")
        stop_signal.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    dlt_python = None
    for name in names:
        scale = SCALES[name]
        # data set, web load, email load, CRM extraction, dbt, report (and the profile at M)
        with bar(f"{name}: data set", total=7 if name == "M" else 6) as done:
            ds = ensure_dataset(scale, progress)
            done.advance()
            missing = [
                what
                for what, have, need in zip(
                    ("web", "email", "CRM"),
                    (  # the events of the history, the CRM objects of the whole data set
                        ds.manifest["web_csv_rows"],
                        ds.manifest["email_csv_rows"],
                        ds.manifest["crm_objects"],
                    ),
                    scale.minimum,
                )
                if have < need
            ]
            if missing:
                progress(
                    f"  WARNING: data set {name} holds fewer {', '.join(missing)} records than "
                    "the scale asks for"
                )
            scale_reps = reps if name != "L" else 1
            earlier = results["scales"].get(name, {})
            if "report" in earlier:
                progress(f"{name}: measured by the run being resumed")
                continue
            cut_day = earlier.get("daily", {}).get("in_progress")
            if cut_day:
                progress(
                    f"{name}: the measured day {cut_day} was cut short and moved the warehouse "
                    "past its start: the scale is measured anew"
                )
            if "daily" in earlier and not cut_day and wh.exists(earlier.get("warehouse", "")):
                # the loads and the CRM extraction were measured and filled this warehouse
                progress(f"{name}: the daily run goes on where it was cut short")
                here, warehouse = earlier, wh.url_of(earlier["warehouse"])
                done.advance(3)
            else:
                if earlier.get("warehouse") and wh.exists(earlier["warehouse"]):
                    wh.drop(wh.url_of(earlier["warehouse"]))  # a cut-short run's: at L, GBs
                here = {"dataset": ds.manifest, "load": {}}
                # The first run of each of our loads fills this warehouse, which the later
                # stages build on.
                warehouse = wh.fresh(f"warehouse_{name}")
                here["warehouse"] = wh.name_of(warehouse)
                results["scales"][name] = here
            if "crm" not in here:  # the history loaded and extracted, measured
                for source in ("web", "email"):
                    done.update(description=f"{name}: {source} load")
                    progress(
                        f"{name} {source} load of the history "
                        f"({ds.manifest[f'{source}_csv_rows']:,} rows), "
                        f"the contenders side by side, {scale_reps} round(s)"
                    )
                    contenders: dict[str, Callable[[], dict[str, Any]]] = {
                        "ours": first_into(
                            warehouse,
                            lambda into, source=source: stages.load_ours(wh, ds, source, into=into),
                        ),
                        "copy": lambda source=source: stages.load_copy(wh, ds, source),
                    }
                    if name in peers_at and not args.no_peers:
                        if dlt_python is None:
                            from bench.peers import ensure_dlt_python

                            dlt_python = ensure_dlt_python(settings.var_dir)
                        # dlt's fastest mode measured (csv files, loaded with COPY): the comparison
                        # is against the best a dlt user gets, not its slower default
                        # (insert_values).
                        contenders["dlt"] = lambda source=source: stages.load_peer(
                            wh, ds, source, "dlt", dlt_python, mode="append-csv"
                        )
                        contenders["pandas"] = lambda source=source: stages.load_peer(
                            wh, ds, source, "pandas"
                        )
                    here["load"][source] = side_by_side(
                        scale_reps, contenders, progress, before=wh.settle
                    )
                    save()
                    done.advance()
                done.update(description=f"{name}: CRM extraction")
                progress(
                    f"{name} CRM extraction of the history "
                    f"({ds.manifest['crm_objects']:,} objects in all)"
                )
                here["crm"] = repeated(
                    scale_reps,
                    first_into(warehouse, lambda into: stages.crm_extract(wh, ds, into=into)),
                    progress,
                    "crm",
                    before=wh.settle,
                )
                save()
                done.advance()
            done.update(description=f"{name}: dbt builds")
            progress(
                f"{name} daily run: full build of the history, then {len(ds.measured_days)} "
                "weekdays ingested, built and checked"
            )
            copy_rates = {s: here["load"][s]["copy"]["rows_per_s"] for s in here["load"]}
            try:
                daily.daily(
                    wh,
                    ds,
                    warehouse,
                    progress,
                    copy_rates,
                    here.setdefault("daily", {}),
                    save,
                    stop_signal.is_set,
                )
            except daily.StopRequested:
                progress(
                    f"stopped on request after a step, results in {args.out}: go on with "
                    "--resume and the same --out"
                )
                return 0
            done.advance()
            done.update(description=f"{name}: report")
            progress(f"{name} report to 50 recipients")
            here["report"] = repeated(
                reps, lambda: stages.report(wh, ds, warehouse), progress, "report", before=wh.settle
            )
            wh.drop(warehouse)
            save()
            done.advance()
            if name == "M":
                done.update(description=f"{name}: profile of the web load")
                here["profile"] = profile_load(wh, ds)
                save()
                done.advance()
    save()
    table = render(results)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


def first_into(
    warehouse: str, run: Callable[[str | None], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """A measurement whose first run loads into ``warehouse`` and the others into fresh
    databases."""
    runs = iter([warehouse])
    return lambda: run(next(runs, None))


def profile_load(wh: stages.Warehouse, ds) -> dict[str, Any]:
    """A pyinstrument CPU profile of ``touchpoint extract web`` (the load path) at this scale,
    saved beside the results: the session, and its text and HTML renderings."""
    out = REPO / "bench" / f"profile-load-{ds.scale.name}"
    dsn = wh.fresh("profile")
    progress(f"profiling the web load at {ds.scale.name} -> {out}.txt / .html")
    pyinstrument = [sys.executable, "-m", "pyinstrument"]
    try:
        run = run_measured(
            [
                *pyinstrument,
                "-r",
                "pyisession",
                "-o",
                f"{out}.pyisession",
                "-m",
                "touchpoint",
                "extract",
                "web",
                "--start",
                ds.start.isoformat(),
                "--end",
                ds.history_end.isoformat(),
            ],
            env=wh.env(dsn, ds),
        )
    finally:
        wh.drop(dsn)
    for renderer in ("text", "html"):
        run_measured(
            [
                *pyinstrument,
                "--load",
                f"{out}.pyisession",
                "-r",
                renderer,
                "--no-color",
                "-o",
                f"{out}.{'txt' if renderer == 'text' else 'html'}",
            ]
            if renderer == "text"
            else [*pyinstrument, "--load", f"{out}.pyisession", "-r", renderer, "-o", f"{out}.html"]
        )
    Path(f"{out}.pyisession").unlink()
    return {
        "text": f"bench/{out.name}.txt",
        "html": f"bench/{out.name}.html",
        "seconds": run.seconds,
    }


if __name__ == "__main__":
    sys.exit(main())
