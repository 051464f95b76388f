"""The weekly report end to end on a built warehouse: each recipient's slice, the numbers against
the marts, the message a real SMTP server receives, the preview CLI, and the recipients file."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import psycopg
import pytest
from babel.numbers import format_decimal
from psycopg.rows import dict_row

from helpers import REPO, SIM_START, free_port, run_cli
from helpers.signal_marts import SIGNAL_COLUMNS, signal_marts
from touchpoint import pipeline
from touchpoint.delivery.recipients import Recipient, SliceValues, load_recipients
from touchpoint.delivery.smtp import SmtpSettings
from touchpoint.errors import ConfigError
from touchpoint.intervals import iso_week, parse_iso_week
from touchpoint.local.mail_sink import saved_messages
from touchpoint.report.commercial import CAMPAIGN_MIN_DELIVERED, load_commercial
from touchpoint.report.content import Slice, load_at_risk, load_weekly_content
from touchpoint.report.signals import load_signals
from touchpoint.report.weekly import WeeklyReport

WEEK = SIM_START + timedelta(days=7)  # the small world's second week: it has a week before
SLICES = [
    Slice(),
    Slice(region="EMEA"),
    Slice(business_unit="sales"),
    Slice(region="Americas", business_unit="marketing"),
]

RECIPIENTS = (
    """
sender: "Reports <reports@example.com>"
recipients:
  - {address: all@example.com, name: Everyone, timezone: Europe/London, locale: en_GB}
  - {address: emea@example.com, name: EMEA, timezone: Europe/Paris, locale: fr_FR,"""
    """ language: en, filters: {region: EMEA}}
  - {address: sales@example.com, name: Sales, timezone: America/New_York, locale: en_US,"""
    """ filters: {business_unit: sales}}
alerts:
  - {address: oncall@example.com, name: On call}
"""
)


def mart_row(url: str, slice_: Slice, week=WEEK) -> dict:
    grain = "week" if slice_.business_unit == "(all)" else "business_unit"
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "select * from marts.agg_touchpoints_weekly where week_start = %s and grain = %s"
            " and region = %s and business_unit = %s",
            (week, grain, slice_.region, slice_.business_unit),
        )
        names = [d.name for d in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def parse(path: Path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def signal_row(
    key: str,
    week=WEEK,
    region="(all)",
    unit="marketing",
    section="needs_attention",
    status="needs_attention",
    value=2.3,
    baseline=4.2,
    rank=1,
    explained_by=None,
) -> dict:
    grain, name, metric = key.split(":")
    return {
        "signal_key": key,
        "week_start": week,
        "region": region,
        "business_unit": unit,
        "grain": grain,
        "channel": name if grain == "channel" else ("support" if grain == "category" else "email"),
        "touchpoint": name if grain == "touchpoint" else None,
        "category": name if grain == "category" else None,
        "metric": metric,
        "section": section,
        "value": value,
        "sample": 80,
        "baseline_value": baseline,
        "baseline_low": baseline - 0.2,
        "baseline_high": baseline + 0.1,
        "baseline_sample": 320,
        "baseline_weeks": 4,
        "expected": baseline,
        "change": value - baseline,
        "ratio": value / baseline,
        "z_score": -5.0,
        "is_judged": status != "not_judged",
        "not_judged_reason": "warmup" if status == "not_judged" else None,
        "status": status,
        "explained_by": explained_by,
        "rank": rank,
    }


def plant_signals(conn: psycopg.Connection, rows: list[dict]) -> None:
    conn.execute("truncate marts.agg_touchpoint_signals")
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into marts.agg_touchpoint_signals ({', '.join(SIGNAL_COLUMNS)})"
            f" values ({', '.join(f'%({c})s' for c in SIGNAL_COLUMNS)})",
            rows,
        )


@pytest.mark.parametrize("slice_", SLICES, ids=lambda s: s.label)
def test_the_content_of_a_slice_is_the_marts_row_of_that_slice(built_world, slice_):
    with psycopg.connect(built_world) as conn:
        content = load_weekly_content(conn, WEEK, slice_)
    row = mart_row(built_world, slice_)
    assert content.kpi("touchpoints").current == row["touchpoints"] > 0
    assert content.kpi("touchpoints").previous == row["previous_touchpoints"]
    assert content.kpi("customers").current == row["customers"]
    assert content.kpi("new_customers").current == row["new_customers"]
    assert content.kpi("conversions").current == pytest.approx(float(row["conversions"]))
    assert content.kpi("csat").current == (
        None if row["csat"] is None else pytest.approx(float(row["csat"]))
    )
    assert content.kpi("nps").current == (
        None if row["nps"] is None else pytest.approx(float(row["nps"]))
    )
    # the channel table holds exactly the slice's channels, and they add up to its headline
    assert sum(c.touchpoints for c in content.channels) == row["touchpoints"]
    if slice_.business_unit != "(all)":
        assert {c.business_unit for c in content.channels} == {slice_.business_unit}
    assert [s.stage for s in content.funnel] == [
        "awareness",
        "consideration",
        "purchase",
        "onboarding",
        "service",
        "loyalty",
    ]


def _rows(url: str, sql: str, *params) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("slice_", SLICES, ids=lambda s: s.label)
def test_the_marketing_and_sales_sections_are_the_marts_rows_of_the_slice(built_world, slice_):
    with psycopg.connect(built_world) as conn:
        found = load_commercial(conn, WEEK, slice_)
    unit = slice_.business_unit
    # who reads what: marketing the campaigns and traffic, sales the pipeline, both the revenue
    assert (found.campaigns is not None) == (unit in ("(all)", "marketing"))
    assert (found.traffic is not None) == (unit in ("(all)", "marketing"))
    assert (found.pipeline is not None) == (unit in ("(all)", "sales"))
    assert found.revenue is not None
    region = slice_.region
    if found.campaigns is not None:
        rows = _rows(
            built_world,
            "select campaign, delivered, unique_clicks, click_rate, unsubscribes"
            " from marts.agg_email_campaigns_weekly where week_start = %s and region = %s"
            " and message_kind = 'marketing'",
            WEEK,
            region,
        )
        assert sorted((c.campaign, c.delivered, c.unique_clicks) for c in found.campaigns.all) == (
            sorted((r["campaign"], r["delivered"], r["unique_clicks"]) for r in rows)
        )
        ranked = [c for c in found.campaigns.all if c.delivered >= CAMPAIGN_MIN_DELIVERED]
        best = found.campaigns.best_clicked
        assert [c.click_rate for c in best] == sorted(
            (c.click_rate for c in ranked if c.click_rate is not None), reverse=True
        )[: len(best)]
        worst = found.campaigns.worst_clicked
        assert [c.click_rate for c in worst] == sorted(
            c.click_rate for c in ranked if c.click_rate is not None
        )[: len(worst)]
        assert len(best) + len(worst) == min(len(ranked), 6)
        assert not {c.campaign for c in best} & {c.campaign for c in worst}
        assert found.campaigns.too_small == len(found.campaigns.all) - len(ranked)
    if found.traffic is not None:
        rows = _rows(
            built_world,
            "select session_channel, source, medium, sessions, conversions"
            " from marts.agg_traffic_weekly where week_start = %s and region = %s",
            WEEK,
            region,
        )
        assert found.traffic.sessions == sum(r["sessions"] for r in rows)
        assert found.traffic.conversions == sum(r["conversions"] for r in rows)
        top = found.traffic.sources[0]
        assert top.sessions == max(
            sum(
                r["sessions"]
                for r in rows
                if (r["session_channel"], r["source"], r["medium"])
                == (s.session_channel, s.source, s.medium)
            )
            for s in found.traffic.sources
        )
    if found.pipeline is not None:
        total = _rows(
            built_world,
            "select * from marts.agg_pipeline_weekly where week_start = %s and region = %s"
            " and owner_id = '(all)' and stage = '(all)'",
            WEEK,
            region,
        )
        total = total[0] if total else {}
        assert found.pipeline.deals_created == (total.get("deals_created") or 0)
        assert found.pipeline.deals_won == (total.get("deals_won") or 0)
        assert found.pipeline.open_deals == (total.get("open_deals_at_week_end") or 0)
    revenue = _rows(
        built_world,
        "select channel, attribution_model, value_credited from marts.agg_attribution_weekly"
        " where week_start = %s and region = %s and campaign = '(all)' and channel <> '(all)'"
        " and business_unit <> '(all)' and %s in ('(all)', business_unit)",
        WEEK,
        region,
        unit,
    )
    shown = {(r.channel, m): v for r in found.revenue for m, v in r.value.items() if v}
    assert shown == {
        (r["channel"], r["attribution_model"]): pytest.approx(float(r["value_credited"]))
        for r in revenue
        if r["value_credited"]
    }


def test_the_whole_company_week_has_every_marketing_and_sales_section_filled(built_world):
    with psycopg.connect(built_world) as conn:
        found = load_commercial(conn, WEEK, Slice())
    assert found.campaigns.all and found.traffic.sources and found.revenue
    assert found.pipeline.has_data


def test_slices_partition_the_whole(built_world):
    with psycopg.connect(built_world) as conn:
        whole = load_weekly_content(conn, WEEK).kpi("touchpoints").current
        by_unit = sum(
            load_weekly_content(conn, WEEK, Slice(business_unit=u)).kpi("touchpoints").current
            for u in ("marketing", "sales", "service")
        )
        by_region = sum(
            load_weekly_content(conn, WEEK, Slice(region=r)).kpi("touchpoints").current
            for r in ("EMEA", "Americas", "APAC", "Unknown")
        )
    assert whole == by_unit == by_region > 0


@pytest.fixture
def recipients_file(tmp_path) -> Path:
    path = tmp_path / "recipients.yml"
    path.write_text(RECIPIENTS)
    return path


def kpi_cell(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}".*?class="kpi-value"[^>]*>(.*?)</td>', html, re.DOTALL)
    assert match, f"no KPI row {key} in the HTML"
    return match[1].strip()


def test_each_recipient_receives_their_slice_as_html_text_charts_and_csv(
    built_copy, settings, mail_sink, recipients_file
):
    deliveries = pipeline.send_weekly_report(
        WEEK,
        built_copy,
        SmtpSettings("127.0.0.1", mail_sink.port),
        settings,
        quality={"status": "pass", "failures": []},
        recipients_file=recipients_file,
    )
    assert [d.recipient for d in deliveries] == [
        "all@example.com",
        "emea@example.com",
        "sales@example.com",
    ]
    recipients = load_recipients(recipients_file)
    messages = {
        parse(p)["To"].addresses[0].addr_spec: parse(p) for p in saved_messages(mail_sink.directory)
    }
    assert set(messages) == {r.address for r in recipients.recipients}
    for recipient in recipients.recipients:
        message = messages[recipient.address]
        assert iso_week(WEEK) in message["Subject"]
        alternative = next(
            p for p in message.walk() if p.get_content_type() == "multipart/alternative"
        )
        assert [p.get_content_type() for p in alternative.iter_parts()] == [
            "text/plain",
            "text/html",
        ]
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert len(html.encode()) < 100_000
        assert "data:image" not in html
        # every cid: in the HTML is an inline PNG part with that Content-ID,
        # with its size on the tag
        cids = re.findall(r'src="cid:([^"]+)"', html)
        parts = {p["Content-ID"].strip("<>"): p for p in message.walk() if p["Content-ID"]}
        # the small world's two weeks are too few to judge a signal: the four report charts only
        assert len(cids) == 4 and set(cids) <= set(parts)
        assert "Not judged this week" in text
        for cid in cids:
            assert parts[cid].get_content_type() == "image/png"
            assert parts[cid].get_content().startswith(b"\x89PNG")
            assert re.search(rf'src="cid:{re.escape(cid)}" width="\d+" height="\d+"', html)
        # the numbers are the marts' for this recipient's slice, formatted for their locale
        row = mart_row(built_copy, recipient.slice)
        touchpoints = format_decimal(row["touchpoints"], locale=recipient.locale)
        assert kpi_cell(html, "touchpoints") == touchpoints
        assert f"Touchpoints: {touchpoints}" in text
        assert kpi_cell(html, "customers") == format_decimal(
            row["customers"], locale=recipient.locale
        )
        [attachment] = [
            p for p in message.iter_attachments() if p.get_content_disposition() == "attachment"
        ]
        assert attachment.get_filename() == f"touchpoint-kpis-{iso_week(WEEK)}.csv"
        rows = {r["kpi"]: r for r in csv.DictReader(io.StringIO(attachment.get_content()))}
        assert int(rows["touchpoints"]["this_week"]) == row["touchpoints"]
        assert int(rows["touchpoints"]["previous_week"]) == row["previous_touchpoints"]
        assert float(rows["conversions"]["this_week"]) == pytest.approx(
            float(row["conversions"]), abs=1e-4
        )
        assert rows["touchpoints"]["region"] == recipient.slice.region
        assert "every check passed" in text
    # the slices differ: the sales lead's headline is not the whole company's
    assert kpi_cell(
        messages["sales@example.com"].get_body(("html",)).get_content(), "touchpoints"
    ) != kpi_cell(messages["all@example.com"].get_body(("html",)).get_content(), "touchpoints")


PLANTED = [
    # whole company: two lose satisfaction (rank decides the order), one channel only through its
    # touchpoint (explained_by: not listed twice), one improves, one holds steady
    signal_row("touchpoint:order_confirmation:nps", value=-30, baseline=12, rank=1),
    signal_row("touchpoint:delivery_packaging:csat", unit="service", rank=2),
    signal_row(
        "channel:email:nps",
        value=-20,
        baseline=12,
        rank=3,
        explained_by="touchpoint:order_confirmation:nps",
    ),
    signal_row("channel:paid_ads:conversion_rate", status="improved", value=0.12, baseline=0.06),
    signal_row("touchpoint:website_visit:csat", status="steady", value=4.1, baseline=4.2),
    # a case category rises, another falls (good news: not a problem to list)
    signal_row(
        "category:DELIVERY_ISSUE:cases",
        unit="service",
        section="recurring_problems",
        value=96,
        baseline=31,
    ),
    signal_row(
        "category:BILLING:cases",
        unit="service",
        section="recurring_problems",
        status="improved",
        value=3,
        baseline=12,
    ),
    # the newsletter's readers lose engagement
    signal_row("touchpoint:newsletter:engagement", section="at_risk", value=0.6, baseline=2.9),
    # the weeks around: history for the chart (but not the week after), and not this week's flags
    signal_row(
        "touchpoint:delivery_packaging:csat",
        unit="service",
        week=WEEK - timedelta(weeks=2),
        status="steady",
        value=4.3,
    ),
    signal_row(
        "touchpoint:delivery_packaging:csat",
        unit="service",
        week=WEEK - timedelta(weeks=1),
        status="steady",
        value=4.1,
    ),
    signal_row(
        "touchpoint:delivery_packaging:csat",
        unit="service",
        week=WEEK + timedelta(weeks=1),
        value=1.0,
    ),
    signal_row("touchpoint:product_research:csat", week=WEEK - timedelta(weeks=1), rank=1),
    # one region: its own flag, seen in that region's slice only
    signal_row("touchpoint:delivery_packaging:csat", region="EMEA", unit="service", value=2.0),
    signal_row("touchpoint:live_chat:csat", region="APAC", unit="service", status="not_judged"),
]


@pytest.mark.parametrize(
    ("slice_", "expected"),
    [
        (
            Slice(),
            {
                "attention": [
                    "touchpoint:order_confirmation:nps",
                    "touchpoint:delivery_packaging:csat",
                ],
                "improved": ["channel:paid_ads:conversion_rate"],
                "problems": ["category:DELIVERY_ISSUE:cases"],
                "at_risk": ["touchpoint:newsletter:engagement"],
            },
        ),
        # a business unit narrows satisfaction and conversion;
        # cases and engagement follow the region only
        (
            Slice(business_unit="service"),
            {
                "attention": ["touchpoint:delivery_packaging:csat"],
                "improved": [],
                "problems": ["category:DELIVERY_ISSUE:cases"],
                "at_risk": ["touchpoint:newsletter:engagement"],
            },
        ),
        (
            Slice(business_unit="sales"),
            {
                "attention": [],
                "improved": [],
                "problems": ["category:DELIVERY_ISSUE:cases"],
                "at_risk": ["touchpoint:newsletter:engagement"],
            },
        ),
        (
            Slice(region="EMEA"),
            {
                "attention": ["touchpoint:delivery_packaging:csat"],
                "improved": [],
                "problems": [],
                "at_risk": [],
            },
        ),
        (
            Slice(region="Americas"),
            {"attention": [], "improved": [], "problems": [], "at_risk": []},
        ),
    ],
    ids=lambda v: v.label if isinstance(v, Slice) else "",
)
def test_the_report_picks_the_flagged_signals_of_its_week_and_slice(
    built_copy, settings, slice_, expected
):
    with psycopg.connect(built_copy, autocommit=True) as conn:
        signal_marts(conn, settings.roles.reporter)
        plant_signals(conn, PLANTED)
        signals = load_signals(conn, WEEK, slice_)
    assert {name: [s.key for s in listed] for name, listed in signals.items()} == expected


def test_a_signal_carries_its_numbers_and_the_weeks_up_to_its_own(built_copy, settings):
    with psycopg.connect(built_copy, autocommit=True) as conn:
        signal_marts(conn, settings.roles.reporter)
        plant_signals(conn, PLANTED)
        whole = load_signals(conn, WEEK)
        emea = load_signals(conn, WEEK, Slice(region="EMEA"))
        first_only = load_signals(conn, WEEK, top=1)
    packaging = whole["attention"][1]
    assert (
        packaging.grain,
        packaging.touchpoint,
        packaging.channel,
        packaging.metric,
        packaging.value,
        packaging.baseline_value,
    ) == (
        "touchpoint",
        "delivery_packaging",
        "email",
        "csat",
        2.3,
        4.2,
    )
    assert (
        packaging.baseline_low,
        packaging.baseline_high,
        packaging.sample,
        packaging.baseline_sample,
        packaging.baseline_weeks,
    ) == (pytest.approx(4.0), pytest.approx(4.3), 80, 320, 4)
    assert packaging.history == (
        (WEEK - timedelta(weeks=2), 4.3),
        (WEEK - timedelta(weeks=1), 4.1),
        (WEEK, 2.3),
    )
    assert emea["attention"][0].history == ((WEEK, 2.0),)  # its own region's weeks
    assert [s.key for s in first_only["attention"]] == ["touchpoint:order_confirmation:nps"]


def test_the_report_names_each_planted_signal_under_its_section(built_copy, settings):
    with psycopg.connect(built_copy, autocommit=True) as conn:
        signal_marts(conn, settings.roles.reporter)
        plant_signals(conn, PLANTED)
        rendered = WeeklyReport(conn, WEEK, REPO / "reports" / "templates").render(
            Recipient("all@example.com", "All", "UTC", "en_GB")
        )
    lists = {
        list_id: re.findall(
            r'data-signal="([^"]+)"',
            re.search(rf'<ul id="{list_id}">(.*?)</ul>', rendered.html, re.DOTALL)[1],
        )
        for list_id in ("needs-attention", "improved", "recurring-problems", "at-risk-cohorts")
    }
    assert lists == {
        "needs-attention": [
            "touchpoint:order_confirmation:nps",
            "touchpoint:delivery_packaging:csat",
        ],
        "improved": ["channel:paid_ads:conversion_rate"],
        "recurring-problems": ["category:DELIVERY_ISSUE:cases"],
        "at-risk-cohorts": ["touchpoint:newsletter:engagement"],
    }
    assert len(rendered.images) == 4 + 5
    assert "delivery packaging (email): CSAT 2.3 / 5 this week against 4.2 / 5" in rendered.text


def test_customers_at_risk_are_those_of_the_reports_week(built_copy, settings):
    """Counted from fct_customer_health_weekly for the week rendered (in the slice's region),
    named only with consent; another week's flags do not count."""
    with psycopg.connect(built_copy, autocommit=True) as conn:
        signal_marts(conn, settings.roles.reporter)
        customers = conn.execute(
            "select customer_key, region, display_name from marts.dim_customers"
            " join restricted.dim_customer_contacts using (customer_key)"
            " where display_name is not null order by customer_key limit 4"
        ).fetchall()
        (
            (named, _, named_name),
            (withheld, _, withheld_name),
            (steady, *_),
            (last_week, _, last_week_name),
        ) = customers
        conn.execute("truncate marts.fct_customer_health_weekly")
        # named columns: the built model has more than the report reads
        conn.execute(
            "insert into marts.fct_customer_health_weekly"
            " (customer_key, week_start, inbound_touchpoints,"
            " baseline_touchpoints, is_at_risk, at_risk_reason) values"
            " (%s, %s, 1, 6, true, 'engagement_collapse'),"
            " (%s, %s, 0, 5, true, 'engagement_collapse'),"
            " (%s, %s, 5, 5, false, null), (%s, %s, 0, 7, true, 'engagement_collapse')",
            (named, WEEK, withheld, WEEK, steady, WEEK, last_week, WEEK - timedelta(weeks=1)),
        )
        conn.execute(
            "update marts.dim_customers set may_be_named = (customer_key <> %s)"
            " where customer_key in (%s, %s, %s)",
            (withheld, named, withheld, last_week),
        )
        whole = load_at_risk(conn, WEEK)
        before = load_at_risk(conn, WEEK - timedelta(weeks=1))
        by_region = {
            region: load_at_risk(conn, WEEK, Slice(region=region))
            for region in {r for _, r, _ in customers[:3]}
        }
    assert (whole.count, whole.may_be_named, whole.customers_total) == (2, 1, 3)
    assert [c.name for c in whole.named] == [named_name] and whole.named[
        0
    ].reason == "engagement_collapse"
    assert withheld_name not in [c.name for c in whole.named]
    assert (before.count, before.customers_total, [c.name for c in before.named]) == (
        1,
        1,
        [last_week_name],
    )
    assert sum(a.count for a in by_region.values()) == 2
    assert sum(a.customers_total for a in by_region.values()) == 3


def test_at_risk_customers_are_counted_but_named_only_with_consent(
    built_copy, settings, mail_sink, recipients_file
):
    # Three named customers are at risk in the report's week;
    # one of them has not consented to being named.
    with psycopg.connect(built_copy, autocommit=True) as conn:
        signal_marts(conn, settings.roles.reporter)
        rows = conn.execute(
            "select customer_key, display_name from marts.dim_customers as c"
            " join restricted.dim_customer_contacts using (customer_key)"
            " where display_name is not null"
            " and not exists (select from marts.fct_customer_health_weekly as h"
            "                 where h.customer_key = c.customer_key"
            " and h.week_start = %s and h.is_at_risk)"
            " order by customer_key limit 3",
            (WEEK,),
        ).fetchall()
        assert len(rows) == 3
        keys, names = [r[0] for r in rows], [r[1] for r in rows]
        conn.execute(
            "delete from marts.fct_customer_health_weekly"
            " where week_start = %s and customer_key = any(%s)",
            (WEEK, keys),
        )
        conn.execute(
            "insert into marts.fct_customer_health_weekly"
            " (customer_key, week_start, inbound_touchpoints,"
            " baseline_touchpoints, is_at_risk, at_risk_reason)"
            " select unnest(%s::text[]), %s, 0, 6, true, null",
            (keys, WEEK),
        )
        conn.execute(
            "update marts.dim_customers set may_be_named = true, recent_support_cases = 2"
            " where customer_key = any(%s)",
            (keys,),
        )
        conn.execute(
            "update marts.dim_customers set may_be_named = false where customer_key = %s",
            (keys[0],),
        )
        at_risk = conn.execute(
            "select count(*) from marts.fct_customer_health_weekly"
            " where week_start = %s and is_at_risk",
            (WEEK,),
        ).fetchone()[0]
    hidden, shown = names[0], names[1:]
    with psycopg.connect(built_copy) as conn:
        content = load_weekly_content(conn, WEEK)
    assert content.at_risk.count == at_risk >= 3
    assert hidden not in [c.name for c in content.at_risk.named]
    assert set(shown) <= {c.name for c in content.at_risk.named}
    assert content.at_risk.withheld_by_consent >= 1
    pipeline.send_weekly_report(
        WEEK,
        built_copy,
        SmtpSettings("127.0.0.1", mail_sink.port),
        settings,
        recipients_file=recipients_file,
    )
    everyone = next(
        parse(p) for p in saved_messages(mail_sink.directory) if "all@example.com" in p.read_text()
    )
    html, text = (
        everyone.get_body(("html",)).get_content(),
        everyone.get_body(("plain",)).get_content(),
    )
    assert hidden not in html and hidden not in text
    assert all(name in html and name in text for name in shown)
    assert "consent does not allow" in text
    assert re.search(rf"<strong>{at_risk}</strong> of", html)


def test_a_week_without_data_sends_nothing(built_copy, settings, mail_sink, recipients_file):
    empty_week = WEEK + timedelta(weeks=20)
    deliveries = pipeline.send_weekly_report(
        empty_week,
        built_copy,
        SmtpSettings("127.0.0.1", mail_sink.port),
        settings,
        recipients_file=recipients_file,
    )
    assert deliveries == [] and saved_messages(mail_sink.directory) == []


def test_report_render_writes_a_preview_per_recipient(built_world, tmp_path, recipients_file):
    out = tmp_path / "preview"
    result = run_cli(
        "report",
        "render",
        "--week",
        iso_week(WEEK),
        "--out",
        str(out),
        "--recipients",
        str(recipients_file),
        env={"TOUCHPOINT_WAREHOUSE_URL": built_world},
    )
    assert result.returncode == 0, result.stderr
    for address in ("all@example.com", "emea@example.com", "sales@example.com"):
        folder = out / address
        html = (folder / "report.html").read_text()
        pngs = re.findall(r'src="([^"]+\.png)"', html)
        # no signal judged in the small world: no trend chart
        assert len(pngs) == 4 and all(
            (folder / p).read_bytes().startswith(b"\x89PNG") for p in pngs
        )
        assert (folder / "report.txt").read_text().startswith("CUSTOMER TOUCHPOINTS")
        assert (folder / f"touchpoint-kpis-{iso_week(WEEK)}.csv").exists()


def test_report_send_dry_run_sends_and_records_nothing(built_copy, mail_sink, recipients_file):
    result = run_cli(
        "report",
        "send",
        "--week",
        iso_week(WEEK),
        "--dry-run",
        "--skip-quality-gate",
        "--recipients",
        str(recipients_file),
        env={"TOUCHPOINT_WAREHOUSE_URL": built_copy, "TOUCHPOINT_SMTP_PORT": str(mail_sink.port)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("would send") == 3
    assert saved_messages(mail_sink.directory) == []
    with psycopg.connect(built_copy) as conn:
        assert conn.execute("select count(*) from reporting.deliveries").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-W47", None),
        ("2025-W53", "does not exist"),
        ("2026-47", "not an ISO week"),
    ],
)
def test_iso_weeks_are_parsed_or_refused_clearly(text, message):
    if message is None:
        assert parse_iso_week(text).isoformat() == "2026-11-16"
    else:
        with pytest.raises(ConfigError, match=message):
            parse_iso_week(text)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{address: a@example.com, filters: {country: FR}}", "unknown filter"),
        ("{address: a@example.com, filters: {region: Mars}}", "unknown region 'Mars'"),
        (
            "{address: a@example.com, filters: {business_unit: finance}}",
            "unknown business unit 'finance'",
        ),
        ("{address: a@example.com, locale: xx_YY}", "unknown locale"),
        ("{address: a@example.com, language: de}", "no report in language 'de'"),
        ("{address: a@example.com, timezone: Mars/Olympus}", "unknown time zone"),
        ("{address: not-an-address}", "not an email address"),
    ],
)
def test_a_bad_recipient_is_refused_with_a_clear_error(tmp_path, entry, message):
    path = tmp_path / "recipients.yml"
    path.write_text(f'sender: "r@example.com"\nrecipients:\n  - {entry}\n')
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipients(path, SliceValues.from_seeds(REPO / "dbt_project"))


def test_an_address_listed_twice_is_refused(tmp_path):
    path = tmp_path / "recipients.yml"
    path.write_text(
        'sender: "r@example.com"\n'
        "recipients:\n  - {address: a@example.com}\n  - {address: A@example.com}\n"
    )
    with pytest.raises(ConfigError, match="listed twice"):
        load_recipients(path)


def test_the_shipped_recipients_use_known_slices():
    recipients = load_recipients(
        REPO / "reports" / "recipients.yml", SliceValues.from_seeds(REPO / "dbt_project")
    )
    assert {r.slice.business_unit for r in recipients.recipients} >= {
        "(all)",
        "marketing",
        "sales",
        "service",
    }


@pytest.mark.slow
def test_a_disconnect_mid_send_then_the_task_retry_leaves_each_recipient_one_message(
    built_copy, settings, tmp_path
):
    """Through real Airflow: the SMTP server cuts every connection from the 2nd message on, the
    send task fails; the server recovers and the re-run sends the missing messages only."""
    from aiosmtpd.controller import Controller

    from helpers.smtp_server import FlakyHandler
    from touchpoint.local.airflow_runs import DagRunRequest, local_env, run_dags

    handler = FlakyHandler()
    handler.outage_from = 2
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        env = local_env(settings, built_copy, controller.port, "http://127.0.0.1:9", "unused")
        env["TOUCHPOINT_SMTP_FIRST_DELAY_SECONDS"] = (
            "0.05"  # the backoff itself is tested in test_report_delivery
        )
        monday_after = datetime.combine(WEEK + timedelta(days=7), datetime.min.time(), UTC)
        request = DagRunRequest(
            "touchpoint_weekly_report", (monday_after + timedelta(hours=12)).isoformat(), {}
        )
        first = run_dags([request], env, tmp_path / "first.log", echo=lambda m: None)
        recipients = load_recipients(REPO / "reports" / "recipients.yml").recipients
        got_first = [r.address for r in recipients if handler.messages_to(r.address)]
        handler.outage_from = None
        second = run_dags([request], env, tmp_path / "second.log", echo=lambda m: None)
    finally:
        controller.stop()
    assert first[-1]["state"] == "failed"
    assert got_first == [recipients[0].address]
    assert second[-1]["state"] == "success", (tmp_path / "second.log").read_text()[-3000:]
    for recipient in recipients:
        assert len(handler.messages_to(recipient.address)) == 1, recipient.address
    with psycopg.connect(built_copy) as conn:
        rows = conn.execute(
            "select recipient, status, attempts from reporting.deliveries"
            " where report = 'weekly_touchpoints' order by recipient"
        ).fetchall()
    assert {r[1] for r in rows} == {"sent"} and len(rows) == len(recipients)
    assert max(r[2] for r in rows) > 1  # the cut-off recipients were tried again


@pytest.mark.slow
def test_the_report_refuses_a_week_with_a_day_not_ingested_and_names_it(
    built_copy, settings, tmp_path
):
    """Through real Airflow: a day of the week has no completed ingest run; the report DAG
    sends nothing and fails saying which day is missing."""
    from touchpoint.local.airflow_runs import DagRunRequest, local_env, run_dags
    from touchpoint.local.mail_sink import MailSink

    missing = WEEK + timedelta(days=3)
    with psycopg.connect(built_copy, autocommit=True) as conn:
        conn.execute("delete from ops.ingest_intervals where interval_start = %s::date", (missing,))
    monday_after = datetime.combine(WEEK + timedelta(days=7), datetime.min.time(), UTC)
    with MailSink(tmp_path / "mail", port=free_port()) as sink:
        env = local_env(settings, built_copy, sink.port, "http://127.0.0.1:9", "unused")
        request = DagRunRequest(
            "touchpoint_weekly_report", (monday_after + timedelta(hours=12)).isoformat(), {}
        )
        results = run_dags([request], env, tmp_path / "airflow.log", echo=lambda m: None)
        received = saved_messages(sink.directory)
    assert results[-1]["state"] == "failed"
    assert results[-1]["tasks"]["wait_for_ingest"] == "failed"
    assert results[-1]["tasks"]["send_report"] != "success"
    log = (tmp_path / "airflow.log").read_text()
    assert f"missing day(s) {missing.isoformat()}" in log
    assert [
        p for p in received if "data.engineers" not in p.read_text()
    ] == []  # no stakeholder got a report
