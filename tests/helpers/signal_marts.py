"""The two marts the report's signals come from, created by hand where a test needs rows of its
own."""

from __future__ import annotations

import psycopg

# The two marts the report's signals come from, as their contract fixes them (dbt builds them; a
# test that needs particular rows writes them by hand, creating the tables if this build has none).
SIGNAL_COLUMNS = {
    "signal_key": "text",
    "week_start": "date",
    "region": "text",
    "business_unit": "text",
    "grain": "text",
    "channel": "text",
    "touchpoint": "text",
    "category": "text",
    "metric": "text",
    "section": "text",
    "value": "numeric",
    "sample": "integer",
    "baseline_value": "numeric",
    "baseline_low": "numeric",
    "baseline_high": "numeric",
    "baseline_sample": "integer",
    "baseline_weeks": "integer",
    "expected": "numeric",
    "change": "numeric",
    "ratio": "numeric",
    "z_score": "numeric",
    "is_judged": "boolean",
    "not_judged_reason": "text",
    "status": "text",
    "explained_by": "text",
    "rank": "integer",
}
HEALTH_COLUMNS = {
    "customer_key": "text",
    "week_start": "date",
    "inbound_touchpoints": "integer",
    "baseline_touchpoints": "numeric",
    "is_at_risk": "boolean",
    "at_risk_reason": "text",
}


def signal_marts(conn: psycopg.Connection, reporter: str) -> None:
    for table, columns in (
        ("agg_touchpoint_signals", SIGNAL_COLUMNS),
        ("fct_customer_health_weekly", HEALTH_COLUMNS),
    ):
        conn.execute(
            f"create table if not exists marts.{table} ("
            f"{', '.join(f'{c} {t}' for c, t in columns.items())})"
        )
        conn.execute(f"grant select on marts.{table} to {reporter}")
