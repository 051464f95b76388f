"""The daily run, measured as the product runs it: a full build of the history, then each
weekday after it ingested (the CRM at the product's request budget), built incrementally and
checked; the plans of the slowest nodes; the same weekday after twice the history.

Every figure is a plain number for results.json; the node timings of every measured build and
the plans go to text files beside the results (bench/dbt-days-<scale>.txt,
bench/dbt-plans-<scale>.txt).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from bench.dataset import REPO, Dataset, files_of
from bench.measure import Measured, run_measured
from bench.stages import Warehouse, crm_request_floor, iso, last_json
from touchpoint.progress import progress as bar

Progress = Callable[[str], None]
#: slowest nodes listed per build in bench/dbt-days-<scale>.txt
LISTED_NODES = 20
#: nodes whose plans are saved
EXPLAINED_NODES = 5


# -- dbt ------------------------------------------------------------------------------------
def dbt_build(wh: Warehouse, dsn: str, full: bool = False) -> tuple[Measured, list[dict[str, Any]]]:
    """The daily ingest's ``dbt build`` as the product runs it (``full``: the full build of the
    history, its tests on every row); its wall time and every node's timing."""
    from touchpoint.transform.dbt import BUILD, DAILY_BUILD, dbt_env, dbt_executable, target_dir

    project = REPO / "dbt_project"
    env = {**os.environ, **dbt_env(dsn, wh.var_dir)}
    build = [*BUILD, "--full-refresh"] if full else DAILY_BUILD
    run = run_measured(
        [dbt_executable(), *build, *("--project-dir", project, "--profiles-dir", project)],
        env=env,
        cwd=str(project),
    )
    results = json.loads((target_dir(wh.var_dir, dsn) / "run_results.json").read_text())["results"]
    nodes = sorted(
        (
            {
                "node": r["unique_id"],
                "seconds": round(r["execution_time"], 2),
                "status": r["status"],
            }
            for r in results
        ),
        key=lambda r: -r["seconds"],
    )
    return run, nodes


def _thread_time(nodes: list[dict[str, Any]]) -> dict[str, float]:
    kinds: dict[str, float] = {}
    for n in nodes:
        kind = n["node"].split(".", 1)[0]
        kinds[kind] = round(kinds.get(kind, 0.0) + n["seconds"], 1)
    return kinds


def _short(node: str) -> str:
    return node.split(".", 2)[-1]


def _slowest(nodes: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return [{"node": _short(n["node"]), "seconds": n["seconds"]} for n in nodes[:count]]


# -- ingest ---------------------------------------------------------------------------------
def ingest(
    wh: Warehouse,
    ds: Dataset,
    dsn: str,
    start: datetime,
    end: datetime,
    server: Any,
    **env: str,
) -> dict[str, Any]:
    """``touchpoint extract web|email|crm`` of [start, end) with the product's defaults (the CRM
    paced by its request budget) unless ``env`` says otherwise: seconds, rows and peak RSS per
    source, CRM requests made."""
    sources: dict[str, Any] = {}
    for source in ("web", "email", "crm"):
        before = server.requests
        run = wh.cli(
            dsn, ds, "extract", source, "--start", iso(start), "--end", iso(end),
            "--crm-url", server.url, "--json", **env,
        )  # fmt: skip
        sources[source] = {
            "seconds": run.seconds,
            "rows": last_json(run)["loaded"],
            "peak_rss_mb": run.peak_rss_mb,
        }
        if source == "crm":
            sources[source]["requests"] = server.requests - before
    return {
        "seconds": sum(s["seconds"] for s in sources.values()),
        "rows": sum(s["rows"] for s in sources.values()),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in sources.values()),
        "sources": sources,
    }


def _file_rows(ds: Dataset, start: datetime, end: datetime) -> dict[str, int]:
    """Lines in the day's landing files per source: what the loader has to read."""
    from touchpoint.extract.landing import read_items

    return {
        source: sum(1 for url in files_of(ds, source, start, end) for _ in read_items(url))
        for source in ("web", "email")
    }


def ingest_floor(
    ds: Dataset, data: Any, day: datetime, copy_rows_per_s: dict[str, float], budget: float
) -> dict[str, Any]:
    """What no loader can beat for ``day``: its file rows at the ``psql \\copy`` rate measured
    at this scale, plus the CRM requests the API needs at the request budget."""
    start, end = day, day + timedelta(days=1)
    rows = _file_rows(ds, start, end)
    files = sum(rows[s] / copy_rows_per_s[s] for s in rows)
    requests = sum(crm_request_floor(data, start, end))
    return {
        "seconds": files + requests / budget,
        "files_seconds": files,
        "file_rows": rows,
        "crm_requests": requests,
        "crm_seconds": requests / budget,
    }


def quality(wh: Warehouse, ds: Dataset, dsn: str, start: datetime, end: datetime) -> Measured:
    """``touchpoint dq run`` of the interval: the daily run's quality checks."""
    return wh.cli(dsn, ds, "dq", "run", "--start", iso(start), "--end", iso(end), "--json")


# -- the measured days ----------------------------------------------------------------------
def one_day(
    wh: Warehouse,
    ds: Dataset,
    dsn: str,
    day: datetime,
    server: Any,
    floor: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    wh.settle()
    took = ingest(wh, ds, dsn, day, day + timedelta(days=1), server)
    build, nodes = dbt_build(wh, dsn)
    checked = quality(wh, ds, dsn, day, day + timedelta(days=1))
    figures = {
        "day": day.date().isoformat(),
        "weekday": day.strftime("%A"),
        "ingest": took,
        "ingest_floor": floor,
        "ingest_over_floor": took["seconds"] / floor["seconds"],
        "build_seconds": build.seconds,
        "build_peak_rss_mb": build.peak_rss_mb,
        "quality_seconds": checked.seconds,
        "build_and_quality_seconds": build.seconds + checked.seconds,
        "day_seconds": took["seconds"] + build.seconds + checked.seconds,
        "thread_seconds": _thread_time(nodes),
        "slowest": _slowest(nodes, LISTED_NODES),
    }
    return figures, nodes


class StopRequested(Exception):
    """The run was asked to stop (SIGTERM, SIGINT): raised between two steps, after saving."""


def daily(
    wh: Warehouse,
    ds: Dataset,
    dsn: str,
    progress: Progress,
    copy_rows_per_s: dict[str, float],
    out: dict[str, Any],
    save: Callable[[], None],
    stop_requested: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """On ``dsn``, which holds the history: a full build; each measured weekday ingested, built
    and checked; a build of the next day with its plans logged; the rest of the long history
    caught up; the first measured weekday's twin after it.

    Fills ``out`` step by step and calls ``save`` after each step. A step ``out`` already holds
    (measured by a run that was cut short, on this warehouse) is not run again. A measured day
    under way is named in ``out["in_progress"]`` until it is saved: a day cut short has moved
    the warehouse past its start, so it cannot be measured again there (the caller starts the
    scale anew). ``stop_requested`` is asked after every step: the run then stops cleanly
    (:class:`StopRequested`), to be resumed."""
    from touchpoint.config import load_settings
    from touchpoint_sim.crm_server import CrmData, CrmServer

    budget = load_settings().crm_max_requests_per_second
    data = CrmData.from_dir(ds.crm_dir)
    server = CrmServer(data, port=0).start_in_thread()
    days = ds.measured_days
    out.setdefault("crm_requests_per_second", budget)
    out.setdefault("days", [])
    out.setdefault("node_tables", [])  # the text of bench/dbt-days-<scale>.txt
    out.setdefault("node_seconds_by_day", [])
    timings = REPO / "bench" / f"dbt-days-{ds.scale.name}.txt"
    out["node_timings"] = f"bench/{timings.name}"

    def step_done(lines: list[str] | None = None) -> None:
        out["node_tables"] += lines or []
        out.pop("in_progress", None)
        timings.write_text("\n".join(out["node_tables"]) + "\n")
        save()
        if stop_requested():
            raise StopRequested

    def starting(what: str) -> None:
        out["in_progress"] = what
        save()

    try:
        with bar("daily run", total=len(days) + 4) as done:
            if "full_build_seconds" not in out:
                wh.settle()
                full, full_nodes = dbt_build(wh, dsn, full=True)
                progress(f"  full dbt build of the history: {full.seconds:.0f} s")
                out["full_build_seconds"] = full.seconds
                out["full_build_peak_rss_mb"] = full.peak_rss_mb
                out["full_build_thread_seconds"] = _thread_time(full_nodes)
                out["full_build_slowest"] = _slowest(full_nodes, 10)
                step_done(
                    _node_table(f"full build of the history: {full.seconds:.1f} s", full_nodes)
                )
            done.advance()
            for day in days:
                if day.date().isoformat() not in {d["day"] for d in out["days"]}:
                    done.update(description=f"{day:%a %d %b}")
                    floor = ingest_floor(ds, data, day, copy_rows_per_s, budget)
                    starting(day.date().isoformat())
                    figures, nodes = one_day(wh, ds, dsn, day, server, floor)
                    out["days"].append(figures)
                    out["node_seconds_by_day"].append({n["node"]: n["seconds"] for n in nodes})
                    progress(f"  {_day_line(figures)}")
                    step_done(_node_table(_day_line(figures), nodes))
                done.advance()
            out.update(_summary(out["days"], out["full_build_seconds"]))
            plan_day = days[-1] + timedelta(days=1)
            if "plans" not in out:
                done.update(description="plans of the slowest nodes")
                slowest = _slowest_nodes(out["node_seconds_by_day"], EXPLAINED_NODES)
                out["explained_nodes"] = [_short(n) for n in slowest]
                out["plans"] = explain_day(wh, ds, dsn, plan_day, server, slowest)
                step_done()
            done.advance()
            if "catch_up" not in out:
                done.update(description="catching up the long history")
                wh.settle()
                # not measured: the CRM without the product's budget (the simulator still limits)
                catch_up = ingest(
                    wh, ds, dsn, plan_day + timedelta(days=1), ds.long_history_end, server,
                    TOUCHPOINT_CRM_MAX_REQUESTS_PER_SECOND="0",
                )  # fmt: skip
                build, _ = dbt_build(wh, dsn)
                out["catch_up"] = {"ingest": catch_up, "build_seconds": build.seconds}
                progress(
                    f"  caught up to {ds.long_history_end:%d %b}: ingest "
                    f"{catch_up['seconds']:.0f} s, build {build.seconds:.0f} s"
                )
                step_done()
            done.advance()
            if "growth" not in out:
                done.update(description="the same weekday after the long history")
                twin = ds.long_history_end
                floor = ingest_floor(ds, data, twin, copy_rows_per_s, budget)
                starting(twin.date().isoformat())
                figures, nodes = one_day(wh, ds, dsn, twin, server, floor)
                first = out["days"][0]
                out["growth"] = {
                    "short": first,
                    "long": figures,
                    "build_and_quality_ratio": figures["build_and_quality_seconds"]
                    / first["build_and_quality_seconds"],
                    "day_ratio": figures["day_seconds"] / first["day_seconds"],
                    "day_rows_ratio": figures["ingest"]["rows"] / first["ingest"]["rows"],
                }
                progress(
                    f"  {figures['weekday']} after {ds.scale.name} long history: build + quality "
                    f"{figures['build_and_quality_seconds']:.1f} s against "
                    f"{first['build_and_quality_seconds']:.1f} s"
                )
                step_done(_node_table(f"after the long history, {_day_line(figures)}", nodes))
            done.advance()
    finally:
        server.shutdown()
    return out


def _day_line(figures: dict[str, Any]) -> str:
    return (
        f"{figures['weekday']} {figures['day']}: ingest {figures['ingest']['seconds']:.1f} s "
        f"(floor {figures['ingest_floor']['seconds']:.1f} s), build "
        f"{figures['build_seconds']:.1f} s, quality {figures['quality_seconds']:.1f} s"
    )


def _summary(days: list[dict[str, Any]], full_seconds: float) -> dict[str, Any]:
    def stats(key: Callable[[dict[str, Any]], float]) -> dict[str, float]:
        values = [key(d) for d in days]
        return {"median": statistics.median(values), "max": max(values)}

    return {
        "ingest_seconds": stats(lambda d: d["ingest"]["seconds"]),
        "ingest_over_floor": stats(lambda d: d["ingest_over_floor"]),
        "build_seconds": stats(lambda d: d["build_seconds"]),
        "quality_seconds": stats(lambda d: d["quality_seconds"]),
        "build_and_quality_seconds": stats(lambda d: d["build_and_quality_seconds"]),
        "day_seconds": stats(lambda d: d["day_seconds"]),
        "crm_floor_seconds": stats(lambda d: d["ingest_floor"]["crm_seconds"]),
        "build_over_full": stats(lambda d: d["build_seconds"] / full_seconds),
    }


def _slowest_nodes(by_day: list[dict[str, float]], count: int) -> list[str]:
    """The nodes with the highest median time over the measured days."""
    seconds: dict[str, list[float]] = {}
    for nodes in by_day:
        for node, took in nodes.items():
            seconds.setdefault(node, []).append(took)
    return sorted(seconds, key=lambda n: -statistics.median(seconds[n]))[:count]


def _node_table(title: str, nodes: list[dict[str, Any]]) -> list[str]:
    kinds = _thread_time(nodes)
    lines = [f"## {title}", "thread time: " + ", ".join(f"{k} {v} s" for k, v in kinds.items())]
    lines += [f"  {n['seconds']:8.2f}  {_short(n['node'])}" for n in nodes[:LISTED_NODES]]
    return [*lines, ""]


# -- plans ----------------------------------------------------------------------------------
#: auto_explain in every new session of the measured database: plans with actual row counts
#: (timing per node off: it costs more than it tells) of every statement over a second.
AUTO_EXPLAIN = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "1s",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_timing": "off",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_nested_statements": "on",
}


def explain_day(
    wh: Warehouse,
    ds: Dataset,
    dsn: str,
    day: datetime,
    server: Any,
    nodes: list[str],
) -> str:
    """Ingest and build ``day`` with auto_explain on (not a measured day: the instrumentation
    slows it), and save the logged plans of ``nodes``' statements to bench/dbt-plans-<scale>.txt."""
    from touchpoint.config import load_settings

    log_file = load_settings().pg_log_file
    database = dsn.rsplit("/", 1)[1]
    with psycopg.connect(wh.admin_url, autocommit=True) as conn:
        for name, value in AUTO_EXPLAIN.items():
            conn.execute(f"alter database \"{database}\" set {name} = '{value}'")
    offset = log_file.stat().st_size
    try:
        ingest(wh, ds, dsn, day, day + timedelta(days=1), server)
        build, _ = dbt_build(wh, dsn)
    finally:
        with psycopg.connect(wh.admin_url, autocommit=True) as conn:
            for name in AUTO_EXPLAIN:
                conn.execute(f'alter database "{database}" reset {name}')
    with log_file.open() as f:
        f.seek(offset)
        logged = f.read()
    plans = _plans_by_node(logged)
    path = REPO / "bench" / f"dbt-plans-{ds.scale.name}.txt"
    lines = [
        f"# auto_explain plans of the {len(nodes)} slowest nodes of the measured days, logged "
        f"while building {day:%A %d %b} ({build.seconds:.1f} s with the instrumentation)",
        "# settings: " + ", ".join(f"{k}={v}" for k, v in AUTO_EXPLAIN.items()),
        "",
    ]
    for node in nodes:
        statements = plans.get(node, [])
        lines.append(f"## {_short(node)}: {len(statements)} statement(s) over 1 s")
        lines += [*statements, ""]
    path.write_text("\n".join(lines) + "\n")
    return f"bench/{path.name}"


_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.MULTILINE)
_NODE = re.compile(r'"node_id": "([^"]+)"')


def _plans_by_node(logged: str) -> dict[str, list[str]]:
    """The server log's auto_explain entries, by the dbt node named in each query's comment."""
    starts = [m.start() for m in _ENTRY.finditer(logged)] + [len(logged)]
    plans: dict[str, list[str]] = {}
    for begin, end in itertools.pairwise(starts):
        entry = logged[begin:end].rstrip()
        if "duration:" not in entry or "plan:" not in entry:
            continue
        node = _NODE.search(entry)
        if node:
            plans.setdefault(node.group(1), []).append(entry)
    return plans
