"""A week's report content built by hand, for the rendering tests (the mart-backed loading is
tested in tests/report/test_weekly_report.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from touchpoint.report.commercial import (
    Campaign,
    Campaigns,
    Commercial,
    LostReason,
    Pipeline,
    PipelineStage,
    RevenueRow,
    Traffic,
    TrafficSource,
)
from touchpoint.report.content import (
    ATTRIBUTION_MODELS,
    AtRisk,
    AtRiskCustomer,
    ChannelRow,
    FunnelStage,
    Kpi,
    Problem,
    Slice,
    Verbatim,
    WeeklyContent,
)
from touchpoint.report.signals import Signal
from touchpoint.report.standing import (
    DetractorTouchpoint,
    Episode,
    HealthWeek,
    ScorecardRow,
    Standing,
)

WEEK = date(2026, 10, 26)


def signal(
    key: str, section: str = "needs_attention", status: str = "needs_attention", **fields
) -> Signal:
    """A signal built by hand: ``key`` is 'grain:name:metric' like the mart's signal_key."""
    grain, name, metric = key.split(":")
    values = {
        "value": 2.3,
        "sample": 84,
        "baseline_value": 4.2,
        "baseline_low": 4.0,
        "baseline_high": 4.3,
        "baseline_sample": 312,
        "baseline_weeks": 4,
        "channel": "email",
        "touchpoint": None,
        "category": None,
    }
    values.update({"channel": name, "touchpoint": None} if grain == "channel" else {})
    values.update({"touchpoint": name} if grain == "touchpoint" else {})
    values.update({"category": name, "channel": "support"} if grain == "category" else {})
    values.update(fields)
    history = (
        *tuple(
            (WEEK - timedelta(weeks=n), values["baseline_value"] + 0.05 * n)
            for n in range(5, 0, -1)
        ),
        (WEEK, values["value"]),
    )
    values.setdefault("change", values["value"] - values["baseline_value"])
    values.setdefault("ratio", values["value"] / values["baseline_value"])
    return Signal(
        key=key,
        week_start=WEEK,
        region="(all)",
        business_unit="marketing",
        grain=grain,
        metric=metric,
        section=section,
        status=status,
        z=-6.0,
        history=history,
        **values,
    )


def standing(
    metric: str, sample: int, level: float | None, company: float, below: int = 0
) -> Standing:
    """A scorecard cell built by hand: ``below`` weeks below the company (0: not below)."""
    margin = {"csat": 0.3, "nps": 15, "conversion_rate": 0.25 * company}[metric]
    enough = level is not None
    return Standing(
        metric=metric,
        sample=sample,
        has_enough_sample=enough,
        level=level,
        company_level=company,
        level_gap=None if level is None else level - company,
        margins_below=None if level is None else (company - level) / margin,
        trailing_median=None if level is None else level + 0.1,
        is_below=below > 0,
        weeks_below=below,
    )


def content(total: int = 1234) -> WeeklyContent:
    """A week's content built by hand (the mart-backed loading is tested in test_weekly_report)."""
    week = WEEK
    kpis = [
        Kpi("touchpoints", "Touchpoints", total, 1000, "count"),
        Kpi("customers", "Active customers", 80, 90, "count"),
        Kpi("new_customers", "New customers", 12, 10, "count"),
        Kpi("conversions", "Conversions", 7.5, 5.0, "count"),
        Kpi("conversion_rate", "Conversion rate", 0.094, 0.056, "rate", 80),
        Kpi("nps", "NPS", 12.5, 20.0, "nps", 16),
        Kpi("csat", "CSAT", 4.1, 4.4, "csat", 20),
    ]
    models = dict.fromkeys(ATTRIBUTION_MODELS, 1.5)
    return WeeklyContent(
        week_start=week,
        slice=Slice(),
        kpis=kpis,
        channels=[ChannelRow("web", "marketing", total, 1000, 1.0, models)],
        attention=[signal("touchpoint:delivery_packaging:csat")],
        improved=[
            signal(
                "channel:paid_ads:conversion_rate",
                status="improved",
                value=0.12,
                sample=640,
                baseline_value=0.06,
                baseline_low=0.05,
                baseline_high=0.07,
                baseline_sample=2500,
            )
        ],
        funnel=[FunnelStage(stage, 10, 9) for stage in ("awareness", "consideration", "purchase")],
        problem_signals=[
            signal(
                "category:DELIVERY_ISSUE:cases",
                section="recurring_problems",
                value=96,
                sample=96,
                baseline_value=31,
                baseline_low=25,
                baseline_high=36,
                baseline_sample=124,
            )
        ],
        problems=[
            Problem(
                "DELIVERY_ISSUE",
                96,
                30,
                4,
                124,
                4,
                True,
                False,
                0.31,
                0.05,
                12,
                2.5,
                9.0,
                2.0,
                7.5,
                30.0,
                70.0,
                28.0,
                64.0,
            ),
            Problem("BILLING", 9, 8, 1, 30, 4, True, True),
        ],
        verbatims=[
            Verbatim("DELIVERY_ISSUE", "ticket_subject", "Parcel not delivered (again)", 7, 6),
            Verbatim("DELIVERY_ISSUE", "survey_comment", "Same problem again, I am fed up.", 3, 3),
        ],
        at_risk_signals=[
            signal(
                "touchpoint:newsletter:engagement",
                section="at_risk",
                value=0.6,
                sample=1480,
                baseline_value=2.9,
                baseline_low=2.7,
                baseline_high=3.1,
                baseline_sample=5900,
            )
        ],
        at_risk=AtRisk(
            count=3,
            may_be_named=2,
            customers_total=80,
            named=[
                AtRiskCustomer(
                    "Ada Lovelace",
                    "Analytical Engines",
                    "EMEA",
                    datetime(2026, 10, 30, tzinfo=UTC),
                    3.0,
                    None,
                    2,
                    True,
                )
            ],
        ),
        scorecard=[
            ScorecardRow(
                "channel",
                "email",
                "email",
                None,
                None,
                900,
                {
                    "csat": standing("csat", 84, 3.1, 4.2, below=6),
                    "nps": standing("nps", 6, None, 20.0),
                    "conversion_rate": standing("conversion_rate", 640, 0.09, 0.08),
                },
            ),
            ScorecardRow(
                "touchpoint",
                "customer_support",
                "phone",
                "customer_support",
                None,
                120,
                {"csat": standing("csat", 40, 2.4, 4.2, below=3)},
            ),
        ],
        continuing=[
            Episode(
                "touchpoint:newsletter:nps",
                "touchpoint",
                "email",
                "newsletter",
                None,
                "nps",
                "needs_attention",
                "continuing",
                week - timedelta(weeks=2),
                3,
                25.0,
                -5.0,
            )
        ],
        back_to_normal=[
            Episode(
                "category:BILLING_ISSUE:cases",
                "category",
                "support",
                "billing_pricing",
                "BILLING_ISSUE",
                "cases",
                "recurring_problems",
                "back_to_normal",
                week - timedelta(weeks=3),
                4,
                20.0,
                19.0,
            )
        ],
        relationship=[
            HealthWeek(week - timedelta(weeks=n), 80, 30, 0.9 - n / 100, 0.1, 0.4, 0.2)
            for n in range(3, -1, -1)
        ],
        detractor_touchpoints=[DetractorTouchpoint("delivery_packaging", 12, 20, 0.6, 0.3, 2.0)],
        signals_judged=40,
        history=[(week - timedelta(weeks=n), 1000 + n, 80, 5.0) for n in range(3, -1, -1)],
        commercial=commercial(),
        data_as_of=datetime(2026, 11, 1, 22, 0, tzinfo=UTC),
    )


def commercial() -> Commercial:
    """The marketing and sales sections, built by hand."""
    models = dict.fromkeys(ATTRIBUTION_MODELS, 1250.0)
    return Commercial(
        campaigns=Campaigns(
            [
                Campaign(
                    "newsletter-2026-w44", 800, 780, 310, 120, 62, 5, 1, 0.4, 0.08, 0.0064, 0.0013
                ),
                Campaign("promo-autumn", 400, 390, 90, 40, 8, 9, 2, 0.23, 0.02, 0.023, 0.005),
                Campaign("welcome-series", 60, 60, 50, 5, 20, 0, 0, 0.83, 0.33, 0.0, 0.0),
                Campaign("tiny-test", 5, 5, 1, 0, 0, 0, 0, 0.2, 0.0, 0.0, 0.0),
            ]
        ),
        traffic=Traffic(
            [
                TrafficSource("organic_search", "google", "organic", 420, 300, 12, 9),
                TrafficSource("organic_social", "l.facebook.com", "social", 120, 50, 3, 1),
            ],
            540,
            10,
        ),
        pipeline=Pipeline(
            deals_created=14,
            amount_created=42000.0,
            deals_won=5,
            amount_won=15500.0,
            deals_lost=3,
            amount_lost=7000.0,
            win_rate=0.625,
            median_cycle_days=18.5,
            open_deals=22,
            open_amount=71000.0,
            stages=[
                PipelineStage(
                    "appointmentscheduled", "Appointment scheduled", 14, 11, 9, 27000.0, 3.5
                ),
                PipelineStage("contractsent", "Contract sent", 6, 8, 4, 12000.0, None),
            ],
            lost_reasons=[LostReason("Chose a competitor", 2, 5000.0)],
        ),
        revenue=[RevenueRow("email", "EUR", models, dict.fromkeys(ATTRIBUTION_MODELS, 1.5))],
    )


def quiet_content() -> WeeklyContent:
    report = content()
    report.attention, report.improved, report.problem_signals, report.at_risk_signals = (
        [],
        [],
        [],
        [],
    )
    return report
