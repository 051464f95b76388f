"""The simulated CRM's deals move through HubSpot's default sales pipeline as HubSpot records
it: dealstage, and the calculated hs_date_entered_<stage> / hs_date_exited_<stage> of each stage
passed through (none for a skipped stage), an owner, a currency and a reason for each loss."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime

import pytest

from touchpoint.sources.deal_stages import deal_pipeline_stages
from touchpoint_sim.population import generate
from touchpoint_sim.population.catalog import SALES_REPS, SUCCESS_MANAGERS

STAGES = [s.id for s in deal_pipeline_stages()]


@pytest.fixture(scope="module")
def deals() -> list[dict]:
    world = generate(customers=400, weeks=6, seed=7, start=date(2026, 10, 5))
    return [d["properties"] for d in world.crm["deals"]]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_each_deal_carries_its_stage_history_as_hubspot_serves_it(deals):
    assert len(deals) > 50
    for d in deals:
        assert d["dealstage"] in STAGES and d["pipeline"] == "default"
        assert d["deal_currency_code"] == "EUR"
        assert d["hubspot_owner_id"] in SALES_REPS + SUCCESS_MANAGERS
        entered = {s: _at(d[f"hs_date_entered_{s}"]) for s in STAGES if f"hs_date_entered_{s}" in d}
        exited = {s: _at(d[f"hs_date_exited_{s}"]) for s in STAGES if f"hs_date_exited_{s}" in d}
        # the current stage is entered and not left; every other stage passed through is left
        # when the next one is entered
        assert d["dealstage"] in entered and d["dealstage"] not in exited
        assert set(exited) == set(entered) - {d["dealstage"]}
        path = sorted(entered, key=lambda s: entered[s])
        assert path[-1] == d["dealstage"]
        assert min(entered.values()) == _at(d["createdate"])
        for stage, following in itertools.pairwise(path):
            assert exited[stage] == entered[following]
        assert [STAGES.index(s) for s in path] == sorted(STAGES.index(s) for s in path)
        if d["dealstage"] == "closedlost":
            assert d["closed_lost_reason"]
        else:
            assert "closed_lost_reason" not in d


def test_deals_skip_stages_stall_and_are_lost_for_varied_reasons(deals):
    def skipped(d: dict) -> bool:
        orders = sorted(STAGES.index(s) for s in STAGES if f"hs_date_entered_{s}" in d)
        open_ = [o for o in orders if o < STAGES.index("closedwon")]
        return open_ != list(range(open_[0], open_[-1] + 1))

    assert sum(skipped(d) for d in deals) >= 3
    stages = Counter(d["dealstage"] for d in deals)
    assert stages["closedwon"] and stages["closedlost"]
    assert stages["contractsent"] >= 3  # stalled: the contract is not answered
    reasons = Counter(d.get("closed_lost_reason") for d in deals if d["dealstage"] == "closedlost")
    assert {"No show", "Chose a competitor"} <= set(reasons)
    assert len(reasons) >= 5, reasons
    assert set(reasons) & {"Timing", "No decision", "Went dark"}


def test_the_deals_are_the_same_for_the_same_seed(deals):
    again = generate(customers=400, weeks=6, seed=7, start=date(2026, 10, 5))
    assert [d["properties"] for d in again.crm["deals"]] == deals
