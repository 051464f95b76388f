"""Revenue credit on the built small world, against the raw payloads: each conversion's value
and currency (a web order's Segment revenue, a won deal's HubSpot amount), and each credited
touchpoint's campaign (a page's utm_campaign, an email's campaign unique argument, newsletter
issue or category)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from touchpoint.config import DEFAULT_PROJECT_DIR
from touchpoint.transform.project import project_vars

DEFAULT_CURRENCY = project_vars(DEFAULT_PROJECT_DIR / "dbt_project")["default_currency"]


def query(url: str, sql: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def _latest_deals(url: str) -> dict[str, dict]:
    """Each deal's latest version's properties (raw keeps every version)."""
    rows = query(
        url,
        "select distinct on (object_id) object_id, payload -> 'properties' as properties"
        " from raw.hubspot_deals order by object_id, event_time desc, _loaded_at desc",
    )
    return {r["object_id"]: r["properties"] for r in rows}


def test_a_conversion_is_worth_its_orders_revenue_or_its_deals_amount(built_world):
    orders = {
        r["natural_key"]: r["properties"]
        for r in query(
            built_world,
            "select natural_key, payload -> 'properties' as properties from raw.segment_events",
        )
    }
    deals = _latest_deals(built_world)
    conversions = query(
        built_world,
        "select conversion_id, source, source_event_id, conversion_value, currency"
        " from marts.fct_conversions",
    )
    seen = {"web": 0, "crm": 0}
    for c in conversions:
        if c["source"] == "web":
            props = orders[c["source_event_id"]] or {}
            value = props.get("revenue")
            currency = (props.get("currency") or DEFAULT_CURRENCY).upper()
        else:
            props = deals[c["source_event_id"].removeprefix("deal_closed_won:")]
            value = props.get("amount")
            currency = (props.get("deal_currency_code") or DEFAULT_CURRENCY).upper()
        expected = None if value in (None, "") else Decimal(str(value))
        assert c["conversion_value"] == expected, c
        assert c["currency"] == (currency if expected is not None else None), c
        seen[c["source"]] += expected is not None
    # both kinds of conversion carry money in the small world
    assert seen["web"] > 0 and seen["crm"] > 0, seen


def test_each_credited_touchpoint_carries_its_events_campaign(built_world):
    pages = {
        r["natural_key"]: r["campaign"]
        for r in query(
            built_world,
            "select natural_key, payload -> 'context' -> 'campaign' ->> 'name' as campaign"
            " from raw.segment_events",
        )
    }
    mails = {}
    for r in query(built_world, "select natural_key, payload from raw.sendgrid_events"):
        p = r["payload"]
        category = p.get("category")
        category = category[0] if isinstance(category, list) and category else category
        mails[r["natural_key"]] = p.get("campaign_id") or p.get("newsletter_issue") or category
    credited = query(
        built_world,
        "select distinct a.touchpoint_id, a.campaign, t.source, t.source_event_id"
        " from marts.fct_attribution as a"
        " join marts.fct_touchpoints as t using (touchpoint_id)",
    )
    named = 0
    for row in credited:
        expected = {"web": pages, "email": mails}.get(row["source"], {}).get(row["source_event_id"])
        assert row["campaign"] == (expected or None), row
        named += expected is not None
    assert named > 0
