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
    lines += _daily_tables(results)
    lines += [
        "",
        "## The report",
        "",
        "| scale | week | to 50 recipients | each | peak RSS |",
        "|---|---|---:|---:|---:|",
    ]
    for name, scale in results["scales"].items():
        r = scale.get("report")
        if r:
            lines.append(
                f"| {name} | {r['week']} | {_n(r['seconds'], 1)} s | "
                f"{_n(r['seconds_per_recipient'], 2)} s | {_n(r['peak_rss_mb'])} MB |"
            )
    lines += ["", "## Targets", "", "| target | value | limit | met |", "|---|---:|---:|---|"]
    for t in results.get("targets", []):
        met = "n/a" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {_n(t['value'], 2)} | {t['op']} {t['limit']} | {met} |")
    return "\n".join(lines) + "\n"


def _daily_tables(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## The daily run (median / max over the measured weekdays)",
        "",
        "| scale | full build | ingest | its floor | ingest / floor | dbt build | quality checks |"
        " build + checks | whole day | build / full | dbt peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    days_lines = [
        "",
        "### Each measured day",
        "",
        "| scale | day | rows ingested | CRM requests | ingest | floor (CRM part) | dbt build |"
        " quality | whole day |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    growth_lines = [
        "",
        "### History growth: the same weekday after the short and the long history",
        "",
        "| scale | day | rows ingested | ingest | build + checks | whole day |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, scale in results["scales"].items():
        d = scale.get("daily")
        if not d or "build_seconds" not in d:
            continue

        def pair(key: str, digits: int = 1, unit: str = " s", d=d) -> str:
            return f"{_n(d[key]['median'], digits)} / {_n(d[key]['max'], digits)}{unit}"

        floors = sorted(day["ingest_floor"]["seconds"] for day in d["days"])
        lines.append(
            f"| {name} | {_n(d['full_build_seconds'], 1)} s | {pair('ingest_seconds')} | "
            f"{_n(floors[len(floors) // 2], 1)} / {_n(floors[-1], 1)} s | "
            f"{pair('ingest_over_floor', 2, '')} | {pair('build_seconds')} | "
            f"{pair('quality_seconds')} | {pair('build_and_quality_seconds')} | "
            f"{pair('day_seconds')} | {pair('build_over_full', 3, '')} | "
            f"{_n(max(day['build_peak_rss_mb'] for day in d['days']))} MB |"
        )
        growth = [d["growth"]["short"], d["growth"]["long"]] if "growth" in d else []
        for day in d["days"]:
            days_lines.append(_day_row(name, day))
        for day in growth:
            growth_lines.append(
                f"| {name} | {day['weekday']} {day['day']} | {day['ingest']['rows']:,} | "
                f"{_n(day['ingest']['seconds'], 1)} s | "
                f"{_n(day['build_and_quality_seconds'], 1)} s | {_n(day['day_seconds'], 1)} s |"
            )
    notes = [
        "",
        "Floor: the day's file rows at this scale's `psql \\copy` rate plus the CRM requests the "
        "day needs (one search page per 200 objects, one association batch per 1,000) at the "
        "request budget. Node timings of every measured build: `bench/dbt-days-<scale>.txt`; "
        "plans of the five slowest nodes: `bench/dbt-plans-<scale>.txt`.",
    ]
    return lines + days_lines + growth_lines + notes


def _day_row(name: str, day: dict[str, Any]) -> str:
    floor = day["ingest_floor"]
    return (
        f"| {name} | {day['weekday']} {day['day']} | {day['ingest']['rows']:,} | "
        f"{day['ingest']['sources']['crm']['requests']:,} | {_n(day['ingest']['seconds'], 1)} s | "
        f"{_n(floor['seconds'], 1)} s ({_n(floor['crm_seconds'], 1)} s) | "
        f"{_n(day['build_seconds'], 1)} s | {_n(day['quality_seconds'], 1)} s | "
        f"{_n(day['day_seconds'], 1)} s |"
    )
