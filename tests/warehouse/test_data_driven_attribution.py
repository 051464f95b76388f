"""The data-driven attribution model (docs block attribution_data_driven), recomputed in Python
on the built small world: the channel paths from the touchpoints and conversions, the Markov
chain's removal effects with numpy, every conversion's weights; and the weekly attribution
mart from fct_attribution."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from touchpoint.config import DEFAULT_PROJECT_DIR
from touchpoint.report.content import ATTRIBUTION_MODELS
from touchpoint.transform.project import project_vars

LOOKBACK = timedelta(
    days=int(project_vars(DEFAULT_PROJECT_DIR / "dbt_project")["attribution_lookback_days"])
)


def query(url: str, sql: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def week_of(at: datetime) -> date:
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def week_end(week_start: date) -> datetime:
    return datetime.combine(week_start + timedelta(days=7), time.min, UTC)


@pytest.fixture(scope="module")
def world(built_world):
    touchpoints = query(
        built_world,
        "select touchpoint_id, customer_key, occurred_at, channel from marts.fct_touchpoints"
        " where customer_key is not null",
    )
    conversions = query(
        built_world,
        "select conversion_id, customer_key, converted_at, conversion_value, currency"
        " from marts.fct_conversions",
    )
    by_customer = defaultdict(list)
    for t in touchpoints:
        by_customer[t["customer_key"]].append(t)
    for touches in by_customer.values():
        touches.sort(key=lambda t: (t["occurred_at"], t["touchpoint_id"]))
    return {
        "url": built_world,
        "touchpoints": by_customer,
        "conversions": {c["conversion_id"]: c for c in conversions},
    }


def expected_paths(world) -> dict[tuple, dict]:
    """Every path as docs block fct_conversion_paths defines it, keyed by its conversion or
    (customer, week): its end and its touchpoints in order, (touchpoint_id, channel)."""
    paths = {}
    converted_weeks = set()
    for c in world["conversions"].values():
        end = c["converted_at"]
        touches = [
            (t["touchpoint_id"], t["channel"])
            for t in world["touchpoints"][c["customer_key"]]
            if t["touchpoint_id"] != c["conversion_id"] and end - LOOKBACK <= t["occurred_at"] < end
        ]
        paths[("conversion", c["conversion_id"])] = {
            "end": end,
            "converting": True,
            "touches": touches or [(c["conversion_id"], "direct")],
        }
        converted_weeks.add((c["customer_key"], week_of(end)))
    for customer, touches in world["touchpoints"].items():
        for week in {week_of(t["occurred_at"]) for t in touches}:
            if (customer, week) in converted_weeks:
                continue
            end = week_end(week)
            paths[("week", customer, week)] = {
                "end": end,
                "converting": False,
                "touches": [
                    (t["touchpoint_id"], t["channel"])
                    for t in touches
                    if end - LOOKBACK <= t["occurred_at"] < end
                ],
            }
    return paths


def removal_effects(paths: list[tuple[list[str], bool]]) -> dict[str, float]:
    """Each channel's removal effect in the first-order Markov chain of ``paths`` (channels,
    converted), solving the absorbing chain with numpy. Self-loops are kept: they must not
    change where the chain ends."""
    channels = sorted({c for path, _ in paths for c in path})
    index = {s: i for i, s in enumerate(["(start)", *channels])}
    k = len(index)
    counts = np.zeros((k, k + 2))  # transient states, then (conversion), (null)
    for path, converted in paths:
        states = ["(start)", *path]
        for a, b in itertools.pairwise(states):
            counts[index[a], index[b]] += 1
        counts[index[states[-1]], k if converted else k + 1] += 1
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    q, r = probabilities[:, :k], probabilities[:, k]

    def p_conversion(without: str | None) -> float:
        qq = q.copy()
        if without is not None:
            qq[:, index[without]] = 0  # its inbound transitions go to (null)
        return float(np.linalg.solve(np.eye(k) - qq, r)[0])

    full = p_conversion(None)
    return {c: max(0.0, 1 - p_conversion(c) / full) if full > 0 else 0.0 for c in channels}


@pytest.fixture(scope="module")
def effects(world) -> dict[date, dict[str, float]]:
    """The removal effects of every conversion week, from fct_conversion_paths' paths."""
    stored = query(
        world["url"],
        "select path_end_at, channel_path, is_converting from marts.fct_conversion_paths",
    )
    weeks = {week_of(c["converted_at"]) for c in world["conversions"].values()}
    result = {}
    for week in weeks:
        end = week_end(week)
        chosen = [
            (p["channel_path"], p["is_converting"])
            for p in stored
            if end - LOOKBACK < p["path_end_at"] <= end
        ]
        result[week] = removal_effects(chosen)
    return result


def test_the_conversion_paths_are_each_conversions_path_and_each_week_without_one(world):
    expected = expected_paths(world)
    rows = query(world["url"], "select * from marts.fct_conversion_paths")
    stored = {}
    for row in rows:
        key = (
            ("conversion", row["conversion_id"])
            if row["is_converting"]
            else ("week", row["customer_key"], row["week_start"])
        )
        stored[key] = row
    assert set(stored) == set(expected)
    assert any(not key[0] == "conversion" for key in expected)
    for key, path in expected.items():
        row = stored[key]
        channels = [c for _, c in path["touches"]]
        assert row["channel_path"] == channels, key
        assert row["path_end_at"] == path["end"], key
        assert row["touchpoints"] == len(channels)
        assert row["distinct_channels"] == len(set(channels))
        assert row["week_start"] == (week_of(path["end"]) if path["converting"] else key[2])


def test_the_removal_effects_are_the_markov_chains_solved_with_numpy(world, effects):
    rows = query(
        world["url"],
        "select week_start, channel, removal_effect from intermediate.int_markov_removal_effects",
    )
    stored = defaultdict(dict)
    for row in rows:
        stored[row["week_start"]][row["channel"]] = row["removal_effect"]
    assert set(stored) == set(effects)
    for week, by_channel in effects.items():
        assert set(stored[week]) == set(by_channel), week
        for channel, effect in by_channel.items():
            assert stored[week][channel] == pytest.approx(effect, abs=1e-9), (week, channel)
    # not vacuous: channels differ, and some matter
    assert len({round(e, 6) for e in effects[max(effects)].values()}) > 2


def test_every_data_driven_weight_is_the_removal_effect_share_of_its_channel(world, effects):
    expected_weights = {}
    for key, path in expected_paths(world).items():
        if key[0] != "conversion":
            continue
        conversion = world["conversions"][key[1]]
        effect = effects[week_of(conversion["converted_at"])]
        touches = path["touches"]
        per_channel = defaultdict(int)
        for _, channel in touches:
            per_channel[channel] += 1
        total = sum(effect[c] for c in per_channel)
        for touchpoint_id, channel in touches:
            expected_weights[(key[1], touchpoint_id)] = (
                effect[channel] / total / per_channel[channel] if total > 0 else 1 / len(touches)
            )
    rows = query(
        world["url"],
        "select conversion_id, touchpoint_id, weight from marts.fct_attribution"
        " where attribution_model = 'data_driven'",
    )
    stored = {(r["conversion_id"], r["touchpoint_id"]): r["weight"] for r in rows}
    assert set(stored) == set(expected_weights)
    for key, weight in expected_weights.items():
        assert stored[key] == pytest.approx(weight, abs=1e-6), key
    # it is not the linear model in disguise
    linear = {
        (r["conversion_id"], r["touchpoint_id"]): r["weight"]
        for r in query(
            world["url"],
            "select conversion_id, touchpoint_id, weight from marts.fct_attribution"
            " where attribution_model = 'linear'",
        )
    }
    assert any(abs(stored[k] - linear[k]) > 0.01 for k in stored)


def test_weights_sum_to_one_and_credited_value_is_weight_times_value(world):
    rows = query(
        world["url"],
        "select conversion_id, attribution_model, weight, conversion_value, currency,"
        " credited_value from marts.fct_attribution",
    )
    assert {r["attribution_model"] for r in rows} == set(ATTRIBUTION_MODELS)
    assert "data_driven" in ATTRIBUTION_MODELS
    sums = defaultdict(float)
    for r in rows:
        sums[(r["conversion_id"], r["attribution_model"])] += r["weight"]
        conversion = world["conversions"][r["conversion_id"]]
        assert r["conversion_value"] == conversion["conversion_value"]
        assert r["currency"] == conversion["currency"]
        if r["conversion_value"] is None:
            assert r["credited_value"] is None and r["currency"] is None
        else:
            assert float(r["credited_value"]) == pytest.approx(
                r["weight"] * float(r["conversion_value"]), abs=1e-9
            )
    assert len(sums) == len(world["conversions"]) * len(ATTRIBUTION_MODELS)
    assert all(abs(total - 1) < 1e-9 for total in sums.values())
    assert any(c["conversion_value"] for c in world["conversions"].values())


def test_the_weekly_attribution_is_fct_attribution_summed_per_slice(world):
    credits = query(
        world["url"],
        """
        select a.converted_at, a.conversion_id, a.channel, a.campaign, a.attribution_model,
               a.currency, a.weight, a.credited_value, d.region, u.business_unit
        from marts.fct_attribution a
        left join marts.dim_customers d on d.customer_key = a.customer_key
        left join seeds.business_units u on u.channel = a.channel""",
    )
    expected: dict[tuple, list] = defaultdict(lambda: [Decimal(0), None])
    for c in credits:
        region = c["region"] or "Unknown"
        unit = c["business_unit"] or "other"
        campaign = c["campaign"] or "(not set)"
        currency = c["currency"] or "(not set)"
        for r in ("(all)", region):
            for u, ch in (("(all)", "(all)"), (unit, "(all)"), (unit, c["channel"])):
                for cp in ("(all)", campaign):
                    key = (
                        week_of(c["converted_at"]),
                        r,
                        u,
                        ch,
                        cp,
                        c["attribution_model"],
                        currency,
                    )
                    slot = expected[key]
                    slot[0] += Decimal(c["weight"])
                    if c["credited_value"] is not None:
                        slot[1] = (slot[1] or Decimal(0)) + c["credited_value"]
    totals: dict[tuple, list] = defaultdict(lambda: [0, None])
    regions = {
        r["customer_key"]: r["region"] or "Unknown"
        for r in query(world["url"], "select customer_key, region from marts.dim_customers")
    }
    for c in world["conversions"].values():
        for r in ("(all)", regions.get(c["customer_key"], "Unknown")):
            slot = totals[(week_of(c["converted_at"]), r, c["currency"] or "(not set)")]
            slot[0] += 1
            if c["conversion_value"] is not None:
                slot[1] = (slot[1] or Decimal(0)) + c["conversion_value"]
    rows = query(world["url"], "select * from marts.agg_attribution_weekly")
    stored = {
        (
            r["week_start"],
            r["region"],
            r["business_unit"],
            r["channel"],
            r["campaign"],
            r["attribution_model"],
            r["currency"],
        ): r
        for r in rows
    }
    assert len(stored) == len(rows)
    assert set(stored) == set(expected)
    for key, (conversions, value) in expected.items():
        row = stored[key]
        assert float(row["conversions_credited"]) == pytest.approx(float(conversions), abs=1e-9), (
            key
        )
        if value is None:
            assert row["value_credited"] is None, key
        else:
            assert float(row["value_credited"]) == pytest.approx(float(value), abs=1e-6), key
        count, total = totals[(key[0], key[1], key[6])]
        assert row["conversions_in_week"] == count, key
        assert row["value_in_week"] == total, key
    # within a model and currency, a week's channels add up to its conversions
    for key, row in stored.items():
        if key[1:5] == ("(all)", "(all)", "(all)", "(all)"):
            assert float(row["conversions_credited"]) == pytest.approx(
                row["conversions_in_week"], abs=1e-9
            )
