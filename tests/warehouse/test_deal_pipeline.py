"""The deal pipeline (fct_deal_stages, agg_pipeline_weekly, agg_deals_lost_weekly) on the built
small world: each deal's stages equal a direct reading of every raw HubSpot version of it, the
weekly pipeline equals a direct count of those stages, and a hand-made deal whose stage moves
are seen only across extracted versions gets the entry and exit times those versions show."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from helpers import SIM_START
from touchpoint.sources.catalog import HUBSPOT_OBJECTS
from touchpoint.sources.deal_stages import deal_pipeline_stages

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
DEALS = next(o for o in HUBSPOT_OBJECTS if o.object_type == "deals")
STAGES = {s.id: s for s in deal_pipeline_stages()}
WEEK = timedelta(days=7)


# -- a direct reading of the raw versions ---------------------------------------------------
def _time(value: object) -> datetime | None:
    """A HubSpot datetime property: ISO-8601, or epoch milliseconds."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return datetime.fromisoformat(text)


def _blank(value: object) -> object:
    return None if value == "" else value


def expected_deal_stages(conn: psycopg.Connection) -> dict[tuple[str, str], dict]:
    """fct_deal_stages computed from raw.hubspot_deals (every version), the identity map and the
    customers' regions: {(deal_id, stage): row}."""
    versions: dict[str, list[dict]] = defaultdict(list)
    for row in conn.execute(
        "select object_id, event_time, _loaded_at, payload from raw.hubspot_deals"
    ).fetchall():
        deal_id, at, loaded, payload = row
        archived = payload.get("archived") is True
        versions[deal_id].append(
            {"at": at, "loaded": loaded, "archived": archived, "payload": payload}
        )
    customer_of = dict(
        conn.execute(
            "select identifier, customer_key from intermediate.int_identifiers_mapped"
            " where identifier_type = 'hubspot_contact'"
        ).fetchall()
    )
    region_of = dict(conn.execute("select customer_key, region from marts.dim_customers"))
    (unit,) = conn.execute(
        "select business_unit from seeds.business_units where channel = 'sales'"
    ).fetchone()
    rows: dict[tuple[str, str], dict] = {}
    for deal_id, seen in versions.items():
        seen.sort(key=lambda v: (v["at"], v["archived"], v["loaded"]), reverse=True)
        latest = seen[0]
        if latest["archived"]:
            continue  # deleted: no rows
        live = [v for v in seen if not v["archived"]]
        props = latest["payload"]["properties"]
        current = props["dealstage"]
        entered: dict[str, datetime] = {}
        exited_property: dict[str, datetime | None] = {}
        for stage in STAGES:
            at = _time(props.get(f"hs_date_entered_{stage}"))
            if at is not None:
                entered[stage] = at
            exited_property[stage] = _time(props.get(f"hs_date_exited_{stage}"))
        for v in sorted(live, key=lambda v: v["at"]):
            stage = v["payload"]["properties"].get("dealstage")
            if stage and stage not in entered:
                entered[stage] = v["at"]
        contacts = (latest["payload"].get("associations") or {}).get("contacts", {})
        contact = (contacts.get("results") or [{}])[0].get("id")
        customer = customer_of.get(contact)
        closed = STAGES.get(current)
        closed_at = entered[current] if closed and closed.is_closed else None
        for stage, entry in entered.items():
            if stage == current:
                exit_ = None
            elif (left := exited_property.get(stage)) is not None and left >= entry:
                exit_ = left
            else:
                evidence = [e for s, e in entered.items() if s != stage and e > entry] + [
                    v["at"]
                    for v in live
                    if v["payload"]["properties"].get("dealstage") != stage and v["at"] > entry
                ]
                exit_ = min(evidence, default=None)
            known = STAGES.get(stage)
            lost = bool(closed and closed.is_closed and not closed.is_won)
            amount = _blank(props.get("amount"))
            rows[(deal_id, stage)] = {
                "customer_key": customer,
                "owner_id": _blank(props.get("hubspot_owner_id")),
                "business_unit": unit,
                "region": region_of.get(customer) or "Unknown",
                "deal_type": _blank(props.get("dealtype")),
                "pipeline": _blank(props.get("pipeline")),
                "stage_label": known.label if known else None,
                "stage_order": known.order if known else 0,
                "is_closed_stage": bool(known and known.is_closed),
                "entered_at": entry,
                "exited_at": exit_,
                "hours_in_stage": (exit_ - entry).total_seconds() / 3600 if exit_ else None,
                "is_current_stage": stage == current,
                "amount": Decimal(amount) if amount is not None else None,
                "deal_created_at": _time(props.get("createdate")),
                "deal_closed_at": closed_at,
                "is_won": bool(closed and closed.is_closed and closed.is_won),
                "is_lost": lost,
                "closed_lost_reason": _blank(props.get("closed_lost_reason"))
                if known and known.is_closed and not known.is_won
                else None,
            }
    return rows


def built_deal_stages(conn: psycopg.Connection) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from marts.fct_deal_stages").fetchall()


def assert_deal_stages_match(conn: psycopg.Connection) -> list[dict]:
    expected = expected_deal_stages(conn)
    built = built_deal_stages(conn)
    by_key = {(r["deal_id"], r["stage"]): r for r in built}
    assert len(by_key) == len(built)
    assert set(by_key) == set(expected), {
        "built, not expected": sorted(set(by_key) - set(expected))[:5],
        "expected, not built": sorted(set(expected) - set(by_key))[:5],
    }
    wrong = []
    for key, want in expected.items():
        got = by_key[key]
        for column, value in want.items():
            have = got[column]
            if column == "hours_in_stage":
                same = (have is None) == (value is None) and (
                    value is None or abs(float(have) - value) < 1e-6
                )
            else:
                same = have == value
            if not same:
                wrong.append((key, column, have, value))
        if got["hours_in_stage"] is not None:
            assert abs(float(got["days_in_stage"]) * 24 - float(got["hours_in_stage"])) < 1e-6
    assert not wrong, wrong[:10]
    return built


# -- a direct count of the weekly pipeline --------------------------------------------------
def _week(at: datetime) -> datetime:
    day = at.astimezone(UTC)
    return datetime.combine((day - timedelta(days=day.weekday())).date(), datetime.min.time(), UTC)


def expected_pipeline_weekly(stages: list[dict]) -> dict[tuple, dict]:
    """agg_pipeline_weekly computed from fct_deal_stages rows:
    {(week, region, owner, stage): row}."""
    deals = {r["deal_id"]: r for r in stages}
    moments = [r["entered_at"] for r in stages] + [r["deal_created_at"] for r in stages]
    last = [*moments, *(r["exited_at"] for r in stages if r["exited_at"])]
    first_week, last_week = _week(min(moments)), _week(max(last))
    weeks = []
    while first_week <= last_week:
        weeks.append(first_week)
        first_week += WEEK

    def slices(row: dict) -> list[tuple[str, str]]:
        owner = row["owner_id"] or "unassigned"
        return [(r, o) for r in ("(all)", row["region"]) for o in ("(all)", owner)]

    keys = {s for d in deals.values() for s in slices(d)}
    stage_ids = list(STAGES) + sorted({r["stage"] for r in stages} - set(STAGES))
    out: dict[tuple, dict] = {}
    for week in weeks:
        ends = week + WEEK
        for region, owner in keys:
            mine = [r for r in stages if (region, owner) in slices(r)]
            for stage in stage_ids:
                rows = [r for r in mine if r["stage"] == stage]
                left = [r for r in rows if r["exited_at"] and week <= r["exited_at"] < ends]
                inside = [
                    r
                    for r in rows
                    if r["entered_at"] < ends and (r["exited_at"] is None or r["exited_at"] >= ends)
                ]
                closed = STAGES[stage].is_closed if stage in STAGES else rows[0]["is_closed_stage"]
                out[(week.date(), region, owner, stage)] = {
                    "deals_entered": sum(week <= r["entered_at"] < ends for r in rows),
                    "deals_exited": len(left),
                    "median_days_in_stage": statistics.median(
                        float(r["days_in_stage"]) for r in left
                    )
                    if left
                    else None,
                    "open_deals_at_week_end": None if closed else len(inside),
                    "open_amount_at_week_end": None
                    if closed
                    else sum((r["amount"] or 0 for r in inside), Decimal(0)),
                    "deals_created": None,
                    "win_rate": None,
                }
            own = {r["deal_id"]: r for r in mine}.values()
            created = [d for d in own if week <= d["deal_created_at"] < ends]
            done = [d for d in own if d["deal_closed_at"] and week <= d["deal_closed_at"] < ends]
            won = [d for d in done if d["is_won"]]
            lost = [d for d in done if d["is_lost"]]
            still = [
                d
                for d in own
                if d["deal_created_at"] < ends
                and (d["deal_closed_at"] is None or d["deal_closed_at"] >= ends)
            ]

            def total(group: list[dict]) -> Decimal:
                return sum((d["amount"] or 0 for d in group), Decimal(0))

            out[(week.date(), region, owner, "(all)")] = {
                "deals_entered": None,
                "deals_exited": None,
                "median_days_in_stage": None,
                "deals_created": len(created),
                "amount_created": total(created),
                "deals_won": len(won),
                "amount_won": total(won),
                "deals_lost": len(lost),
                "amount_lost": total(lost),
                "win_rate": len(won) / (len(won) + len(lost)) if won or lost else None,
                "median_cycle_days": statistics.median(
                    (d["deal_closed_at"] - d["deal_created_at"]).total_seconds() / 86400
                    for d in done
                )
                if done
                else None,
                "open_deals_at_week_end": len(still),
                "open_amount_at_week_end": total(still),
            }
    return out


def expected_lost_weekly(stages: list[dict]) -> dict[tuple, tuple[int, Decimal | None]]:
    lost = {r["deal_id"]: r for r in stages if r["is_lost"] and r["is_current_stage"]}
    out: dict[tuple, list] = defaultdict(lambda: [0, None])
    for d in lost.values():
        owner = d["owner_id"] or "unassigned"
        reason = d["closed_lost_reason"] or "(none given)"
        for region in ("(all)", d["region"]):
            for who in ("(all)", owner):
                cell = out[(_week(d["deal_closed_at"]).date(), region, who, reason)]
                cell[0] += 1
                if d["amount"] is not None:
                    cell[1] = (cell[1] or Decimal(0)) + d["amount"]
    return {k: (v[0], v[1]) for k, v in out.items()}


def _close(have: object, want: object) -> bool:
    if want is None or have is None:
        return have is None and want is None
    if isinstance(want, float) or isinstance(have, float):
        return abs(float(have) - float(want)) < 1e-9
    return have == want


def assert_pipeline_matches(conn: psycopg.Connection, stages: list[dict]) -> list[dict]:
    expected = expected_pipeline_weekly(stages)
    with conn.cursor(row_factory=dict_row) as cur:
        built = cur.execute("select * from marts.agg_pipeline_weekly").fetchall()
        lost = cur.execute("select * from marts.agg_deals_lost_weekly").fetchall()
    by_key = {(r["week_start"], r["region"], r["owner_id"], r["stage"]): r for r in built}
    assert len(by_key) == len(built)
    assert set(by_key) == set(expected), {
        "built, not expected": sorted(set(by_key) - set(expected))[:5],
        "expected, not built": sorted(set(expected) - set(by_key))[:5],
    }
    wrong = [
        (key, column, by_key[key][column], value)
        for key, want in expected.items()
        for column, value in want.items()
        if not _close(by_key[key][column], value)
    ]
    assert not wrong, wrong[:10]
    want_lost = expected_lost_weekly(stages)
    got_lost = {
        (r["week_start"], r["region"], r["owner_id"], r["closed_lost_reason"]): (
            r["deals_lost"],
            r["amount_lost"],
        )
        for r in lost
    }
    assert got_lost == want_lost
    for r in lost:
        slice_total = sum(
            n
            for (w, region, owner, _), (n, _) in want_lost.items()
            if (w, region, owner) == (r["week_start"], r["region"], r["owner_id"])
        )
        assert abs(float(r["share_of_lost_deals"]) - r["deals_lost"] / slice_total) < 1e-9
    return built


# -- the tests -------------------------------------------------------------------------------
def test_each_deals_stages_are_those_its_raw_versions_show(built_world):
    with psycopg.connect(built_world) as conn:
        built = assert_deal_stages_match(conn)
    # the world is worth checking: deals went through several stages, won or still open, their
    # entries from HubSpot's history (skips, stalls and losses: tests/sim, and the hand-made
    # deal below)
    per_deal: dict[str, list[dict]] = defaultdict(list)
    for r in built:
        per_deal[r["deal_id"]].append(r)
    assert len(per_deal) >= 5
    assert max(len(rows) for rows in per_deal.values()) >= 5
    assert any(r["is_won"] for r in built)
    assert any(r["is_current_stage"] and not r["is_closed_stage"] for r in built)
    assert sum(r["is_current_stage"] for r in built) == len(per_deal)
    assert {r["business_unit"] for r in built} == {"sales"}
    assert all(r["customer_key"] and r["region"] != "Unknown" for r in built)


def test_the_weekly_pipeline_is_a_direct_count_of_the_deal_stages(built_world):
    with psycopg.connect(built_world) as conn:
        built = assert_pipeline_matches(conn, built_deal_stages(conn))
    totals = [r for r in built if r["stage"] == "(all)" and r["region"] == r["owner_id"] == "(all)"]
    assert sum(r["deals_created"] for r in totals) > 0
    assert sum(r["deals_won"] for r in totals) > 0
    assert any(r["win_rate"] is not None for r in totals)


# -- a hand-made deal ------------------------------------------------------------------------
T1 = START + timedelta(days=1, hours=10)  # created, in appointmentscheduled
T2 = START + timedelta(days=3, hours=9)  # seen in presentationscheduled (qualifiedtobuy skipped)
T3 = START + timedelta(days=6, hours=14)  # seen in contractsent
SENT_AT = T3 - timedelta(hours=3)  # ... which HubSpot's history says it left presentation at
T4 = START + timedelta(days=9, hours=15)  # seen closed lost
LOST_AT = T4 - timedelta(hours=2)  # ... entered then, by HubSpot's history


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _versions(template: dict) -> list[dict]:
    """A deal extracted four times: twice without HubSpot's stage history (as a source that
    does not serve it), then with part of it (the history of the latest version counts)."""
    base = json.loads(json.dumps(template))
    props = {
        k: v
        for k, v in base["properties"].items()
        if not k.startswith(("hs_date_entered_", "hs_date_exited_", "closed_lost_reason"))
    }
    props |= {
        "hs_object_id": "9999001",
        "dealname": "Hand-made deal",
        "amount": "1234.50",
        "createdate": _iso(T1),
        "hubspot_owner_id": "61009999",
    }
    history = {"hs_date_exited_presentationscheduled": _iso(SENT_AT)}
    made = []
    for at, stage, extra in (
        (T1, "appointmentscheduled", {}),
        (T2, "presentationscheduled", {}),
        (T3, "contractsent", history),
        (
            T4,
            "closedlost",
            {
                **history,
                "closed_lost_reason": "Timing",
                "hs_date_entered_closedlost": _iso(LOST_AT),
                "hs_date_exited_contractsent": _iso(LOST_AT),
            },
        ),
    ):
        version = {**base, "id": "9999001", "createdAt": _iso(T1), "updatedAt": _iso(at)}
        version["properties"] = {
            **props,
            **extra,
            "dealstage": stage,
            DEALS.modified_property: _iso(at),
        }
        made.append(version)
    return made


@pytest.mark.slow
def test_stage_moves_seen_only_across_versions_get_their_times(built_copy, settings, tmp_path):
    from touchpoint.extract.run import load_file
    from touchpoint.transform.dbt import run_dbt
    from touchpoint.warehouse.connection import connect

    with psycopg.connect(built_copy) as conn:
        (template,) = conn.execute(
            "select payload from raw.hubspot_deals where payload -> 'associations' ? 'contacts'"
            " order by object_id, event_time desc limit 1"
        ).fetchone()
    path: Path = tmp_path / "hand_made_deals.ndjson"
    path.write_text("".join(json.dumps(v) + "\n" for v in _versions(template)))
    with connect(built_copy) as conn:
        stats = load_file(conn, DEALS.stream, str(path))
    assert stats.loaded == 4 and stats.quarantined == 0, stats
    run_dbt(
        [
            "run",
            "-s",
            "stg_hubspot__deals",
            "stg_hubspot__deal_versions",
            "fct_deal_stages",
            "agg_pipeline_weekly",
            "agg_deals_lost_weekly",
        ],
        settings.dbt_project_dir,
        built_copy,
        settings.var_dir,
    )
    with psycopg.connect(built_copy) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = {
            r["stage"]: r
            for r in cur.execute(
                "select * from marts.fct_deal_stages where deal_id = '9999001'"
            ).fetchall()
        }
        assert list(rows) and {s: (r["entered_at"], r["exited_at"]) for s, r in rows.items()} == {
            # first seen in the first version, left when the second showed it elsewhere
            "appointmentscheduled": (T1, T2),
            # first seen in the second version, left when HubSpot's history says (before the
            # third version showed it elsewhere); qualifiedtobuy was skipped: no row
            "presentationscheduled": (T2, SENT_AT),
            # first seen in the third version, left when HubSpot's history says
            "contractsent": (T3, LOST_AT),
            # entered when HubSpot's history says, not at the version's time; still in it
            "closedlost": (LOST_AT, None),
        }
        first, last = rows["appointmentscheduled"], rows["closedlost"]
        assert float(first["hours_in_stage"]) == (T2 - T1).total_seconds() / 3600
        assert float(rows["contractsent"]["days_in_stage"]) == (LOST_AT - T3) / timedelta(days=1)
        assert last["hours_in_stage"] is None and last["days_in_stage"] is None
        assert [s for s, r in rows.items() if r["is_current_stage"]] == ["closedlost"]
        assert all(r["is_lost"] and not r["is_won"] for r in rows.values())
        assert last["closed_lost_reason"] == "Timing" and first["closed_lost_reason"] is None
        assert {r["deal_closed_at"] for r in rows.values()} == {LOST_AT}
        assert {r["owner_id"] for r in rows.values()} == {"61009999"}
        # and the whole marts still equal the direct computations
        stages = assert_deal_stages_match(conn)
        built = assert_pipeline_matches(conn, stages)
        [week] = [
            r
            for r in built
            if r["stage"] == "(all)"
            and r["owner_id"] == "61009999"
            and r["region"] == "(all)"
            and r["week_start"] == _week(LOST_AT).date()
        ]
        assert (week["deals_lost"], week["amount_lost"], week["win_rate"]) == (
            1,
            Decimal("1234.50"),
            0,
        )
