"""The targets of issue 8, judged on the figures of one run. Each is reported met or not,
with the numbers it was judged on; none is tuned to pass."""

from __future__ import annotations

from typing import Any


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
    for scale in ("L", "M", "S"):
        dbt = scales.get(scale, {}).get("dbt")
        if dbt:
            judged.append(
                _target(
                    f"incremental <= 0.15 x full build ({scale})",
                    dbt["incremental_over_full"],
                    0.15,
                    "<=",
                    "one new day's dbt build / full dbt build, seconds",
                )
            )
            break
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
    dbt_large = scales.get("L", {}).get("dbt")
    if dbt_large:
        judged.append(
            _target(
                "ingest + transform of one day at L < 60 s",
                dbt_large["one_day_ingest_and_transform_seconds"],
                60.0,
                "<=",
                "extract web+email+crm of the last day + incremental dbt build, seconds",
            )
        )
    return judged
