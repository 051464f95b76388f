"""results.json as the Markdown tables `make bench` prints."""

from __future__ import annotations

from typing import Any


def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def render(results: dict[str, Any]) -> str:
    lines = [f"# touchpoint bench ({results['machine']}, {results['started']})", ""]
    lines += [
        "## Data sets",
        "",
        "| scale | customers | web events | email events | CRM objects | generated in |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, scale in results["scales"].items():
        d = scale["dataset"]
        lines.append(
            f"| {name} | {d['customers']:,} | {d['web_events']:,} | {d['email_events']:,} | "
            f"{d['crm_objects']:,} | {d['generation_seconds']:.0f} s (not counted) |"
        )
    lines += [
        "",
        "## Loads (rows/s, median of the repetitions; peak RSS of the loading process)",
        "",
        "| scale | source | ours | psql \\copy (limit) | dlt (peer) | pandas to_sql (naive) |"
        " ours / copy | ours / dlt | ours peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scale in results["scales"].items():
        for source, load in scale.get("load", {}).items():
            rate = {
                k: load[k]["rows_per_s"] if k in load else None
                for k in ("ours", "copy", "dlt", "pandas")
            }
            ratio = lambda other: (  # noqa: E731
                None if not rate[other] else rate["ours"] / rate[other]
            )
            lines.append(
                f"| {name} | {source} | {_n(rate['ours'])} | {_n(rate['copy'])} | "
                f"{_n(rate['dlt'])} | {_n(rate['pandas'])} | {_n(ratio('copy'), 2)} | "
                f"{_n(ratio('dlt'), 2)} | {_n(load['ours']['peak_rss_mb'])} MB |"
            )
    lines += [
        "",
        "## CRM extraction against the simulator (no rate limit)",
        "",
        "| scale | records | records/s | requests | minimum | requests / minimum |"
        " at 8 req/s | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scale in results["scales"].items():
        c = scale.get("crm")
        if c:
            lines.append(
                f"| {name} | {c['records']:,} | {_n(c['records_per_s'])} | {c['requests']:,} | "
                f"{c['requests_minimum']:,} | {_n(c['requests_over_minimum'], 2)} | "
                f"{_n(c['records_per_s_at_8_requests_per_s'])} records/s | "
                f"{_n(c['peak_rss_mb'])} MB |"
            )
    lines += [
        "",
        "## dbt and the report",
        "",
        "| scale | full build | one new day: ingest | incremental build | incremental / full |"
        " day total | dbt peak RSS | report to 50 | report peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scale in results["scales"].items():
        t, r = scale.get("dbt"), scale.get("report")
        if t:
            lines.append(
                f"| {name} | {_n(t['full_build_seconds'], 1)} s | "
                f"{_n(t['day_ingest']['seconds'], 1)} s | "
                f"{_n(t['incremental_build_seconds'], 1)} s | "
                f"{_n(t['incremental_over_full'], 2)} | "
                f"{_n(t['one_day_ingest_and_transform_seconds'], 1)} s | "
                f"{_n(max(t['full_build_peak_rss_mb'], t['incremental_build_peak_rss_mb']))} MB | "
                + (
                    f"{_n(r['seconds'], 1)} s ({_n(r['seconds_per_recipient'], 2)} s each) | "
                    f"{_n(r['peak_rss_mb'])} MB |"
                    if r
                    else "— | — |"
                )
            )
    lines += ["", "## Targets", "", "| target | value | limit | met |", "|---|---:|---:|---|"]
    for t in results.get("targets", []):
        met = "n/a" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {_n(t['value'], 2)} | {t['op']} {t['limit']} | {met} |")
    return "\n".join(lines) + "\n"
