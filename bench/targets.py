"""The targets (issues 8 and 20), judged on the figures of one run. Each is reported met or not,
with the numbers it was judged on; none is tuned to pass."""

from __future__ import annotations

from typing import Any

from bench.scales import HISTORY_WEEKS, LONG_HISTORY_WEEKS


def _target(name: str, value: float | None, limit: float, op: str, text: str) -> dict[str, Any]:
    met = None if value is None else (value >= limit if op == ">=" else value <= limit)
    return {"target": name, "value": value, "limit": limit, "op": op, "met": met, "what": text}


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    scales = results["scales"]
    judged = []
    for scale, figures in scales.items():  # throughput: every scale measured
        for src, load in figures.get("load", {}).items():
            ours = load["ours"]["rows_per_s"]
            if "copy" in load:
                judged.append(
                    _target(
                        f"{src} load >= 0.5 x psql \\copy ({scale})",
                        ours / load["copy"]["rows_per_s"],
                        0.5,
                        ">=",
                        "ours / psql \\copy, rows/s",
                    )
                )
            if "dlt" in load:
                judged.append(
                    _target(
                        f"{src} load >= 3 x dlt ({scale})",
                        ours / load["dlt"]["rows_per_s"],
                        3.0,
                        ">=",
                        "ours / dlt (its fastest mode measured), rows/s",
                    )
                )
    small, large = scales.get("S", {}).get("load"), scales.get("L", {}).get("load")
    if small and large:
        # only the sources loaded at both scales: results are judged after every stage, so a
        # run part-way through L has its web load and not yet its email load
        for src in (source for source in ("web", "email") if source in small and source in large):
            judged.append(
                _target(
                    f"{src} load peak RSS at L <= 1.2 x at S",
                    large[src]["ours"]["peak_rss_mb"] / small[src]["ours"]["peak_rss_mb"],
                    1.2,
                    "<=",
                    "peak RSS of `touchpoint extract` at L / at S",
                )
            )
    for scale in ("L", "M", "S"):  # the daily run: judged at the largest scale measured
        if scales.get(scale, {}).get("daily", {}).get("build_seconds"):
            judged += _daily(scale, scales[scale]["daily"])
            break
    return judged


def _daily(scale: str, daily: dict[str, Any]) -> list[dict[str, Any]]:
    worst_floor = max(d["ingest_floor"]["seconds"] for d in daily["days"])
    judged = [
        _target(
            f"a weekday's dbt build + quality checks <= 45 s ({scale})",
            daily["build_and_quality_seconds"]["max"],
            45.0,
            "<=",
            "the slowest of the measured weekdays: incremental dbt build + dq run, seconds",
        ),
        _target(
            f"a weekday's ingest <= 1.2 x its floor ({scale})",
            daily["ingest_over_floor"]["max"],
            1.2,
            "<=",
            "extract web+email+crm / (file rows at the psql \\copy rate + the CRM requests the "
            "day needs at the request budget), the slowest weekday",
        ),
        _target(
            f"a whole weekday <= 60 s ({scale})",
            daily["day_seconds"]["max"],
            60.0,
            "<=",
            "ingest + build + quality checks, the slowest weekday",
        )
        | ({"met": None, "what": "n/a: the day's floor is over 60 s"} if worst_floor > 60 else {}),
        _target(
            f"incremental build <= 0.10 x full build ({scale})",
            daily["build_over_full"]["median"],
            0.10,
            "<=",
            "a weekday's dbt build / the full build of the history (median weekday)",
        ),
        _target(
            f"full build <= 900 s ({scale})",
            daily["full_build_seconds"],
            900.0,
            "<=",
            "dbt build --full-refresh of the history, seconds",
        ),
    ]
    if "growth" in daily:
        judged.append(
            _target(
                f"the day after {LONG_HISTORY_WEEKS} weeks <= 1.2 x after {HISTORY_WEEKS} weeks "
                f"({scale})",
                daily["growth"]["day_ratio"],
                1.2,
                "<=",
                "the same weekday ingested, built and checked after the long and the short "
                "history, seconds",
            )
        )
    return judged
