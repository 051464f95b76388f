"""Sessions, conversions, journeys and attribution, built by a real `dbt build` on the small
simulated world plus a handful of hand-made Segment visitors whose gaps, referrers and paths
are known to the second."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from helpers import SIM_START, create_db, drop_db
from touchpoint import pipeline
from touchpoint.extract.run import CrmEndpoint, load_file
from touchpoint.report.content import ATTRIBUTION_MODELS
from touchpoint.sources.catalog import SEGMENT_EVENTS
from touchpoint.transform.dbt import target_dir
from touchpoint.warehouse.connection import connect

# the small world and hand-made visitors built by dbt, apart from the shared one
pytestmark = pytest.mark.slow

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
MODELS = ATTRIBUTION_MODELS
# The documented defaults of the dbt vars (checked against dbt_project.yml below).
LOOKBACK = timedelta(days=30)
HALF_LIFE_DAYS = 7
SESSION_TIMEOUT = timedelta(minutes=30)
# Hand-made events happen before the simulated world starts, on visitors of their own.
T = datetime(2026, 9, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
VISITS = datetime(2026, 9, 2, 10, 0, tzinfo=UTC)
SITE = "https://www.touchpoint-shop.example"


class Segment:
    """Hand-made Segment events in the shape the S3 destination writes (one JSON per line)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def _add(
        self, kind: str, anonymous_id: str, at: datetime, user_id: str | None, **fields
    ) -> str:
        message_id = f"jt-{len(self.events) + 1:04d}"
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        event = {
            "type": kind,
            "messageId": message_id,
            "anonymousId": anonymous_id,
            "timestamp": stamp,
            "originalTimestamp": stamp,
            "receivedAt": stamp,
            "sentAt": stamp,
            **fields,
        }
        if user_id:
            event["userId"] = user_id
        self.events.append(event)
        return message_id

    def page(
        self,
        anonymous_id: str,
        at: datetime,
        path: str,
        referrer: str = "",
        utm: tuple | None = None,
        user_id: str | None = None,
    ) -> str:
        context: dict = {"page": {"path": path, "url": SITE + path, "referrer": referrer}}
        if utm:
            context["campaign"] = dict(zip(("source", "medium", "name"), utm, strict=True))
        return self._add(
            "page", anonymous_id, at, user_id, properties={"path": path}, context=context
        )

    def track(
        self,
        anonymous_id: str,
        at: datetime,
        name: str,
        path: str,
        user_id: str | None = None,
        **properties,
    ) -> str:
        return self._add(
            "track",
            anonymous_id,
            at,
            user_id,
            event=name,
            properties=properties,
            context={"page": {"path": path, "url": SITE + path, "referrer": ""}},
        )

    def identify(self, anonymous_id: str, at: datetime, user_id: str, email: str) -> str:
        return self._add("identify", anonymous_id, at, user_id, traits={"email": email})

    def order(self, anonymous_id: str, at: datetime, user_id: str) -> str:
        return self.track(
            anonymous_id,
            at,
            "Order Completed",
            "/checkout",
            user_id,
            order_id=f"ord-{user_id}-{at:%m%d%H}",
            revenue=99.0,
            currency="EUR",
        )

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(e) + "\n" for e in self.events))
        return path


def hand_made_visitors() -> tuple[Segment, dict[str, str]]:
    """Buyers with known attribution paths and visitors with known session gaps; returns the
    events and the messageIds the tests look up."""
    web, ids = Segment(), {}

    def buyer(name: str, identified: datetime) -> tuple[str, str]:
        anonymous_id, user_id = f"jt-anon-{name}", f"jt-user-{name}"
        web.identify(anonymous_id, identified, user_id, f"jt-{name}@journeys.example")
        return anonymous_id, user_id

    # one touch before the purchase
    anon, user = buyer("solo", T - 2 * DAY)
    ids["solo.touch"] = web.page(anon, T - DAY, "/pricing", user_id=user)
    ids["solo.order"] = web.order(anon, T, user)
    # two touches
    anon, user = buyer("pair", T - 4 * DAY)
    ids["pair.touch1"] = web.page(anon, T - 3 * DAY, "/product", user_id=user)
    ids["pair.touch2"] = web.page(anon, T - DAY, "/pricing", user_id=user)
    ids["pair.order"] = web.order(anon, T, user)
    # four touches in the window, one too old, one after the purchase
    anon, user = buyer("four", T - 40 * DAY)
    ids["four.too_old"] = web.page(anon, T - 31 * DAY, "/product", user_id=user)
    ids["four.touch1"] = web.page(anon, T - 14 * DAY, "/product", user_id=user)
    ids["four.touch2"] = web.page(anon, T - 7 * DAY, "/reviews", user_id=user)
    ids["four.touch3"] = web.page(anon, T - 2 * DAY, "/pricing", user_id=user)
    ids["four.touch4"] = web.page(anon, T - timedelta(hours=1), "/product", user_id=user)
    ids["four.order"] = web.order(anon, T, user)
    ids["four.after"] = web.page(anon, T + timedelta(hours=1), "/help", user_id=user)
    # a purchase with nothing before it
    anon, user = buyer("none", T - timedelta(hours=1))
    ids["none.order"] = web.order(anon, T, user)
    # a repeat buyer: the first order is in the second order's path
    anon, user = buyer("repeat", T - 7 * DAY)
    ids["repeat.touch"] = web.page(anon, T - 6 * DAY, "/pricing", user_id=user)
    ids["repeat.first_order"] = web.order(anon, T - 5 * DAY, user)
    ids["repeat.second_order"] = web.order(anon, T, user)

    # sessions: gaps of 29:59 (same visit), 30:01 and exactly 30:00 (new visits)
    v = "jt-visit-gaps"
    web.page(v, VISITS, "/", "https://www.google.com/", ("google", "cpc", "brand_search"))
    web.page(v, VISITS + timedelta(minutes=5), "/pricing", SITE + "/")
    web.page(v, VISITS + timedelta(minutes=34, seconds=59), "/product", SITE + "/pricing")
    web.page(v, VISITS + timedelta(minutes=65), "/reviews", SITE + "/product")
    web.page(v, VISITS + timedelta(minutes=95), "/help")
    # one page, then a click 12 s later: engaged by duration; arrived from a newsletter
    web.page("jt-visit-email", VISITS, "/product", "", ("newsletter", "email", "nl-036"))
    web.track(
        "jt-visit-email",
        VISITS + timedelta(seconds=12),
        "Product Clicked",
        "/product",
        product_id="prod_101",
    )
    # one page from a review site: a referral, not engaged
    web.page(
        "jt-visit-referral",
        VISITS,
        "/reviews",
        "https://www.trustpilot.com/review/touchpoint-shop.example",
    )
    # two pages 5 s apart from a search result: organic search, engaged by page views
    web.page("jt-visit-search", VISITS, "/", "https://www.google.com/")
    web.page("jt-visit-search", VISITS + timedelta(seconds=5), "/product", SITE + "/")
    # one page, typed in: direct, not engaged
    web.page("jt-visit-direct", VISITS, "/")
    # an order alone: engaged by its conversion
    web.order("jt-visit-buyer", VISITS, None)
    # anonymous today, identified tomorrow
    ids["later.anonymous_page"] = web.page("jt-visit-later", VISITS, "/pricing")
    web.identify("jt-visit-later", VISITS + DAY, "jt-user-later", "jt-later@journeys.example")
    web.page(
        "jt-visit-later", VISITS + DAY + timedelta(seconds=3), "/product", user_id="jt-user-later"
    )
    return web, ids


@pytest.fixture(scope="module")
def built(cluster_url, settings, small_world, tmp_path_factory):
    """The small world (CRM, email, web) plus the hand-made visitors, through `dbt build`."""
    from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

    settings = replace(settings, landing_url=str(small_world["landing"]))
    web, ids = hand_made_visitors()
    landing = web.write(tmp_path_factory.mktemp("journeys") / "hand_made.ndjson")
    url = create_db(cluster_url)
    crm = CrmServer(
        CrmData.from_dir(small_world["sim"] / "crm"), port=0, **NO_LIMITS
    ).start_in_thread()
    try:
        for source in ("crm", "email", "web"):
            pipeline.extract(
                source,
                START,
                START + timedelta(weeks=2),
                url,
                settings,
                crm=CrmEndpoint(crm.url, "sim-token"),
            )
        with connect(url) as conn:
            stats = load_file(conn, SEGMENT_EVENTS, str(landing))
        assert (stats.loaded, stats.quarantined) == (len(web.events), 0)
        pipeline.transform(url, settings)  # raises DbtFailed on any dbt error
        run_results = json.loads(
            (target_dir(settings.var_dir, url) / "run_results.json").read_text()
        )
        web_events = sum(
            1
            for e in [*small_world["world"].web_events, *web.events]
            if e["type"] in ("page", "track")
        )
        yield {"url": url, "ids": ids, "run_results": run_results, "web_events": web_events}
    finally:
        crm.shutdown()
        drop_db(cluster_url, url)


def query(url: str, sql: str, *params) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def credit(built, order: str) -> dict[str, list[dict]]:
    """The attribution rows of one hand-made order, per model, in path order."""
    rows = query(
        built["url"],
        """
        select a.*, t.source_event_id as touch_event_id
        from marts.fct_attribution a
        join marts.fct_conversions c using (conversion_id)
        join marts.fct_touchpoints t on t.touchpoint_id = a.touchpoint_id
        where c.source = 'web' and c.source_event_id = %s
        order by a.attribution_model, a.path_position""",
        built["ids"][order],
    )
    by_model = defaultdict(list)
    for row in rows:
        by_model[row["attribution_model"]].append(row)
    return by_model


def weights(rows: list[dict]) -> list[float]:
    return [r["weight"] for r in rows]


def sessions_of(built, anonymous_id: str) -> list[dict]:
    """The sessions of a device's visitor: fct_sessions keys the visitor with the warehouse's
    pseudonym secret (macro keyed_hash)."""
    return query(
        built["url"],
        "select * from marts.fct_sessions where visitor_key = left(encode(sha256(convert_to("
        "(select secret from privacy.pseudonym_key) || ':visitor:' || %s, 'UTF8')), 'hex'), 32)"
        " order by started_at",
        anonymous_id,
    )


# -- the build ----------------------------------------------------------------------------------
def test_dbt_builds_every_model_and_passes_the_journey_and_attribution_tests(built):
    results = {r["unique_id"]: r["status"] for r in built["run_results"]["results"]}
    assert not {k: s for k, s in results.items() if s in ("error", "fail")}
    for model in ("fct_sessions", "fct_conversions", "fct_journeys", "fct_attribution"):
        assert results[f"model.touchpoint.{model}"] == "success"
    singular = {
        k: s
        for k, s in results.items()
        if k.startswith(("test.touchpoint.assert_attribution_", "test.touchpoint.assert_journeys_"))
    }
    assert "test.touchpoint.assert_attribution_weights_sum_to_one" in singular
    assert set(singular.values()) == {"pass"}


def test_the_windows_are_the_documented_defaults(settings):
    project_vars = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text())[
        "vars"
    ]
    assert project_vars["attribution_lookback_days"] == LOOKBACK.days
    assert project_vars["attribution_half_life_days"] == HALF_LIFE_DAYS
    assert project_vars["session_timeout_minutes"] * 60 == SESSION_TIMEOUT.total_seconds()


# -- attribution --------------------------------------------------------------------------------
def test_a_one_touch_path_gives_that_touch_all_the_credit_in_every_model(built):
    by_model = credit(built, "solo.order")
    assert set(by_model) == set(MODELS)
    for model in MODELS:
        assert [r["touch_event_id"] for r in by_model[model]] == [built["ids"]["solo.touch"]]
        assert weights(by_model[model]) == [1.0]


def test_a_two_touch_path_splits_position_based_credit_fifty_fifty(built):
    by_model = credit(built, "pair.order")
    ids = built["ids"]
    assert [r["touch_event_id"] for r in by_model["linear"]] == [
        ids["pair.touch1"],
        ids["pair.touch2"],
    ]
    assert weights(by_model["position_based"]) == [0.5, 0.5]
    assert weights(by_model["linear"]) == [0.5, 0.5]
    assert weights(by_model["first_touch"]) == [1.0, 0.0]
    assert weights(by_model["last_touch"]) == [0.0, 1.0]


def test_position_based_gives_40_percent_to_first_and_last_and_shares_20_between(built):
    by_model = credit(built, "four.order")
    assert weights(by_model["position_based"]) == pytest.approx([0.4, 0.1, 0.1, 0.4], abs=1e-12)
    assert weights(by_model["linear"]) == pytest.approx([0.25] * 4, abs=1e-12)
    assert weights(by_model["first_touch"]) == [1.0, 0.0, 0.0, 0.0]
    assert weights(by_model["last_touch"]) == [0.0, 0.0, 0.0, 1.0]


def test_time_decay_gives_newer_touches_more_credit_halving_every_half_life(built):
    decay = weights(credit(built, "four.order")["time_decay"])
    assert decay == sorted(decay) and len(set(decay)) == 4, (
        "newer touch must get strictly more credit"
    )
    assert decay[1] / decay[0] == pytest.approx(
        2.0, abs=1e-9
    )  # 7 and 14 days old: one half-life apart
    ages = [14, 7, 2, 1 / 24]
    raw = [2 ** (-age / HALF_LIFE_DAYS) for age in ages]
    assert decay == pytest.approx([w / sum(raw) for w in raw], abs=1e-9)
    pair = weights(credit(built, "pair.order")["time_decay"])
    assert pair[1] > pair[0] and pair[1] / pair[0] == pytest.approx(
        2 ** (2 / HALF_LIFE_DAYS), abs=1e-9
    )


def test_touches_before_the_lookback_or_after_the_conversion_get_no_credit(built):
    ids = built["ids"]
    for model, rows in credit(built, "four.order").items():
        assert [r["touch_event_id"] for r in rows] == [
            ids[f"four.touch{n}"] for n in range(1, 5)
        ], model
        assert all(r["path_length"] == 4 and not r["is_conversion_touchpoint"] for r in rows)


def test_a_conversion_with_nothing_before_it_credits_itself_as_direct(built):
    by_model = credit(built, "none.order")
    assert set(by_model) == set(MODELS)
    for rows in by_model.values():
        (row,) = rows
        assert row["touchpoint_id"] == row["conversion_id"]
        assert (row["channel"], row["is_conversion_touchpoint"], row["weight"]) == (
            "direct",
            True,
            1.0,
        )


def test_a_second_purchase_is_a_repeat_and_the_first_purchase_is_in_its_path(built):
    ids = built["ids"]
    kinds = {
        r["source_event_id"]: r["conversion_type"]
        for r in query(
            built["url"],
            "select source_event_id, conversion_type from marts.fct_conversions"
            " where source_event_id in (%s, %s)",
            ids["repeat.first_order"],
            ids["repeat.second_order"],
        )
    }
    assert kinds == {ids["repeat.first_order"]: "new", ids["repeat.second_order"]: "repeat"}
    path = credit(built, "repeat.second_order")["position_based"]
    assert [r["touch_event_id"] for r in path] == [ids["repeat.touch"], ids["repeat.first_order"]]
    assert weights(path) == [0.5, 0.5]


def test_every_model_credits_every_conversion_exactly_once(built):
    totals = query(
        built["url"],
        """
        select c.conversion_id, m.model, sum(a.weight) as total, min(a.weight) as low,"""
        """ max(a.weight) as high
        from marts.fct_conversions c
        cross join unnest(%s::text[]) as m(model)
        left join marts.fct_attribution a on a.conversion_id = c.conversion_id"""
        """ and a.attribution_model = m.model
        group by 1, 2""",
        list(MODELS),
    )
    conversions = {r["conversion_id"] for r in totals}
    assert len(conversions) >= 10  # the world's orders and deals, and the hand-made ones
    assert len(totals) == len(MODELS) * len(conversions)
    for row in totals:
        assert row["total"] == pytest.approx(1.0, abs=1e-9), row
        assert 0.0 <= row["low"] <= row["high"] <= 1.0, row


def test_attribution_agrees_with_an_independent_computation_on_every_conversion(built):
    touches = defaultdict(list)
    for t in query(
        built["url"],
        "select touchpoint_id, customer_key, occurred_at from marts.fct_touchpoints"
        " where customer_key is not null",
    ):
        touches[t["customer_key"]].append((t["occurred_at"], t["touchpoint_id"]))
    actual = defaultdict(dict)
    for r in query(
        built["url"],
        "select conversion_id, attribution_model, touchpoint_id, weight from marts.fct_attribution",
    ):
        actual[(r["conversion_id"], r["attribution_model"])][r["touchpoint_id"]] = r["weight"]

    conversions = query(
        built["url"], "select conversion_id, customer_key, converted_at from marts.fct_conversions"
    )
    for c in conversions:
        path = sorted(
            t
            for t in touches[c["customer_key"]]
            if c["converted_at"] - LOOKBACK <= t[0] < c["converted_at"]
            and t[1] != c["conversion_id"]
        )
        n = len(path)
        if n == 0:
            expected = {model: {c["conversion_id"]: 1.0} for model in MODELS}
        else:
            ids = [t[1] for t in path]
            decay = [
                2 ** (-(c["converted_at"] - t[0]).total_seconds() / 86400 / HALF_LIFE_DAYS)
                for t in path
            ]
            middle = 0.2 / (n - 2) if n > 2 else 0.0
            position = (
                [1.0] if n == 1 else [0.5, 0.5] if n == 2 else [0.4] + [middle] * (n - 2) + [0.4]
            )
            expected = {
                "first_touch": dict(zip(ids, [1.0] + [0.0] * (n - 1), strict=True)),
                "last_touch": dict(zip(ids, [0.0] * (n - 1) + [1.0], strict=True)),
                "linear": dict.fromkeys(ids, 1 / n),
                "position_based": dict(zip(ids, position, strict=True)),
                "time_decay": dict(zip(ids, [d / sum(decay) for d in decay], strict=True)),
            }
        # data_driven's weights: tests/warehouse/test_data_driven_attribution.py; its path here
        expected_path = next(iter(expected.values())).keys()
        assert actual[(c["conversion_id"], "data_driven")].keys() == expected_path, c
        for model in expected:
            got = actual[(c["conversion_id"], model)]
            assert got.keys() == expected[model].keys(), (c, model)
            assert all(math.isclose(got[k], w, abs_tol=1e-9) for k, w in expected[model].items()), (
                c,
                model,
            )
    assert len(actual) == len(MODELS) * len(conversions)


# -- conversions and journeys -----------------------------------------------------------------
def test_conversions_are_the_purchase_touchpoints_of_known_customers(built):
    purchases = query(
        built["url"],
        "select touchpoint_id, customer_key, occurred_at from marts.fct_touchpoints"
        " where touchpoint = 'purchase' and customer_key is not null",
    )
    conversions = {
        r["conversion_id"]: r for r in query(built["url"], "select * from marts.fct_conversions")
    }
    assert set(conversions) == {p["touchpoint_id"] for p in purchases}
    assert {r["source"] for r in conversions.values()} >= {"web", "crm"}
    first = {}
    for p in sorted(purchases, key=lambda p: (p["occurred_at"], p["touchpoint_id"])):
        first.setdefault(p["customer_key"], p["touchpoint_id"])
    for conversion_id, row in conversions.items():
        assert row["conversion_type"] == (
            "new" if first[row["customer_key"]] == conversion_id else "repeat"
        )


def test_a_journey_stage_is_entered_each_time_the_touchpoint_stage_changes(built):
    touches = defaultdict(list)
    for t in query(
        built["url"],
        "select customer_key, occurred_at, touchpoint_id, journey_stage"
        " from marts.fct_touchpoints where customer_key is not null",
    ):
        touches[t["customer_key"]].append(
            (t["occurred_at"], t["touchpoint_id"], t["journey_stage"])
        )
    expected = []
    for customer, path in touches.items():
        entries = []
        for at, touchpoint_id, stage in sorted(path):
            if not entries or entries[-1]["journey_stage"] != stage:
                entries.append(
                    {
                        "customer_key": customer,
                        "stage_order": len(entries) + 1,
                        "journey_stage": stage,
                        "previous_stage": entries[-1]["journey_stage"] if entries else None,
                        "entered_at": at,
                        "entry_touchpoint_id": touchpoint_id,
                        "touchpoints_in_stage": 0,
                    }
                )
            entries[-1]["touchpoints_in_stage"] += 1
        for entry, following in zip(entries, [*entries[1:], None], strict=True):
            entry["left_at"] = following["entered_at"] if following else None
            entry["time_in_stage"] = entry["left_at"] - entry["entered_at"] if following else None
        expected.extend(entries)
    columns = ", ".join(expected[0])
    actual = query(built["url"], f"select {columns} from marts.fct_journeys")

    def key(row: dict) -> tuple:
        return row["customer_key"], row["stage_order"]

    assert sorted(actual, key=key) == sorted(expected, key=key)
    assert any(
        e["stage_order"] > 3 for e in expected
    )  # the world has real journeys, not just one stage


# -- sessions -----------------------------------------------------------------------------------
def test_a_visit_is_split_after_30_minutes_without_an_event(built):
    sessions = sessions_of(built, "jt-visit-gaps")
    assert [
        (s["session_number"], s["started_at"], s["ended_at"], s["page_views"]) for s in sessions
    ] == [
        (
            1,
            VISITS,
            VISITS + timedelta(minutes=34, seconds=59),
            3,
        ),  # a 29:59 gap stays in the visit
        (
            2,
            VISITS + timedelta(minutes=65),
            VISITS + timedelta(minutes=65),
            1,
        ),  # 30:01 starts a new one
        (
            3,
            VISITS + timedelta(minutes=95),
            VISITS + timedelta(minutes=95),
            1,
        ),  # so does exactly 30:00
    ]
    assert sessions[0]["duration_seconds"] == 34 * 60 + 59
    assert sessions[0]["landing_path"] == "/"
    assert len({s["session_key"] for s in sessions}) == 3


def test_session_channels_follow_the_channel_grouping_seed(built):
    channel = {}
    for visitor in (
        "jt-visit-gaps",
        "jt-visit-email",
        "jt-visit-referral",
        "jt-visit-search",
        "jt-visit-direct",
    ):
        for s in sessions_of(built, visitor):
            channel[(visitor, s["session_number"])] = s["session_channel"]
    assert channel == {
        ("jt-visit-gaps", 1): "paid_search",  # utm_medium=cpc wins over the Google referrer
        ("jt-visit-gaps", 2): "direct",  # our own site as referrer is no referral
        ("jt-visit-gaps", 3): "direct",  # nothing to go on
        ("jt-visit-email", 1): "email",  # utm_medium=email
        ("jt-visit-referral", 1): "referral",  # a referring site that is no search engine
        ("jt-visit-search", 1): "organic_search",  # a search engine, untagged
        ("jt-visit-direct", 1): "direct",
    }
    (paid,) = [s for s in sessions_of(built, "jt-visit-gaps") if s["session_number"] == 1]
    assert (paid["utm_source"], paid["utm_medium"], paid["utm_campaign"]) == (
        "google",
        "cpc",
        "brand_search",
    )


def test_a_session_is_engaged_by_two_pages_ten_seconds_or_a_conversion(built):
    def only(visitor: str) -> dict:
        (session,) = sessions_of(built, visitor)
        return session

    email, referral, search, direct, buyer = (
        only(v)
        for v in (
            "jt-visit-email",
            "jt-visit-referral",
            "jt-visit-search",
            "jt-visit-direct",
            "jt-visit-buyer",
        )
    )
    assert (
        email["page_views"],
        email["events"],
        email["duration_seconds"],
        email["is_engaged"],
    ) == (1, 2, 12, True)
    assert (search["page_views"], search["duration_seconds"], search["is_engaged"]) == (2, 5, True)
    assert (referral["page_views"], referral["duration_seconds"], referral["is_engaged"]) == (
        1,
        0,
        False,
    )
    assert (direct["is_engaged"], direct["has_conversion"]) == (False, False)
    assert (
        buyer["page_views"],
        buyer["duration_seconds"],
        buyer["has_conversion"],
        buyer["is_engaged"],
    ) == (0, 0, True, True)
    assert buyer["customer_key"] is None  # an anonymous order still makes an engaged session


def test_an_anonymous_visit_belongs_to_the_customer_the_visitor_later_identifies_as(built):
    first, second = sessions_of(built, "jt-visit-later")
    (customer,) = query(
        built["url"],
        "select customer_key from intermediate.int_identifiers_mapped"
        " where identifier_type = 'segment_user' and identifier = 'jt-user-later'",
    )
    assert first["customer_key"] == second["customer_key"] == customer["customer_key"] is not None
    assert sessions_of(built, "jt-visit-direct")[0]["customer_key"] is None


def test_every_web_event_falls_in_exactly_one_session_and_visits_are_30_minutes_apart(built):
    (counts,) = query(
        built["url"],
        """
        select (select count(*) from staging.stg_segment__events"""
        """ where event_type in ('page', 'track')) as events,
               (select sum(events) from marts.fct_sessions) as in_sessions""",
    )
    # every page and track landed, the simulated world's and the hand-made ones
    assert counts["events"] == counts["in_sessions"] == built["web_events"] > 0
    (overlaps,) = query(
        built["url"],
        """
        select count(*) as n from (
            select started_at - lag(ended_at)"""
        """ over (partition by visitor_key
                                                   order by started_at) as idle
            from marts.fct_sessions) s
        where idle < %s""",
        SESSION_TIMEOUT,
    )
    assert overlaps["n"] == 0
    by_channel = {
        r["session_channel"]: r["n"]
        for r in query(
            built["url"], "select session_channel, count(*) as n from marts.fct_sessions group by 1"
        )
    }
    assert {
        "paid_search",
        "paid_social",
        "display",
        "email",
        "organic_search",
        "referral",
        "direct",
    } <= set(by_channel)
