"""Consent per customer and purpose: every signal of HubSpot, SendGrid and Segment, the latest
of which decides (its source kept), unknown without one, and a weekly report that counts
every customer at risk but names only those who did not refuse. Hand-made raw rows on a copy
of the built small world, through real incremental dbt runs."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from helpers import SIM_START, create_db, drop_db, mart_checksums, run_cli
from touchpoint import pipeline
from touchpoint.extract.run import load_file
from touchpoint.intervals import iso_week
from touchpoint.report.content import load_weekly_content
from touchpoint.sources.catalog import (
    HUBSPOT_CONTACTS,
    HUBSPOT_OBJECTS,
    SEGMENT_EVENTS,
    SENDGRID_EVENTS,
)
from touchpoint.transform.dbt import run_dbt
from touchpoint.warehouse.connection import connect

# three incremental dbt builds of a copy of the built world
pytestmark = pytest.mark.slow

FEEDBACK = next(obj for obj in HUBSPOT_OBJECTS if obj.object_type == "feedback_submissions")
START = datetime.combine(SIM_START, datetime.min.time(), UTC)
WEEK = SIM_START + timedelta(days=7)
# after every signal of the small world (it ends at START + 14 days), still inside it
LAST_WORD = START + timedelta(days=14) - timedelta(seconds=5)
RECIPIENTS = """
sender: "Reports <reports@example.com>"
recipients:
  - {address: all@example.com, name: Everyone, timezone: Europe/London, locale: en_GB}
alerts:
  - {address: oncall@example.com, name: On call}
"""


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def identify(user: str, email: str, at: datetime, consent: dict | None = None) -> dict:
    """A Segment identify (not a touchpoint), with the consent manager's choice if any."""
    event = {
        "type": "identify",
        "messageId": f"consent-{uuid.uuid4().hex[:12]}",
        "userId": user,
        "anonymousId": f"device-{user}",
        "timestamp": _iso(at),
        "receivedAt": _iso(at),
        "traits": {"email": email},
        "context": {},
    }
    if consent is not None:
        event["context"]["consent"] = {"categoryPreferences": consent}
    return event


def page(user: str, at: datetime) -> dict:
    """A Segment page view of a known user (a touchpoint)."""
    return {
        "type": "page",
        "messageId": f"consent-{uuid.uuid4().hex[:12]}",
        "userId": user,
        "anonymousId": f"old-device-{user}",
        "timestamp": _iso(at),
        "receivedAt": _iso(at),
        "context": {
            "page": {"path": "/product", "url": "https://shop.example/product", "referrer": ""}
        },
        "properties": {"path": "/product"},
    }


def email_event(kind: str, email: str, at: datetime) -> dict:
    """A SendGrid webhook event of the newsletter (unsubscribe, group_unsubscribe, ...)."""
    event = {
        "event": kind,
        "email": email,
        "timestamp": int(at.timestamp()),
        "sg_event_id": f"consent-{uuid.uuid4().hex[:16]}",
        "sg_message_id": f"m{uuid.uuid4().hex[:10]}.filter0001",
        "category": "newsletter",
    }
    if kind.startswith("group_"):
        event["asm_group_id"] = 4242
    return event


def load(url: str, tmp: Path, segment=(), sendgrid=(), contacts=(), feedback=()) -> None:
    """Land hand-made records in raw as the extractors would."""
    with connect(url) as conn:
        for stream, records in (
            (SEGMENT_EVENTS, segment),
            (SENDGRID_EVENTS, sendgrid),
            (HUBSPOT_CONTACTS.stream, contacts),
            (FEEDBACK.stream, feedback),
        ):
            if not records:
                continue
            path = tmp / f"{stream.name}-{uuid.uuid4().hex[:8]}.ndjson"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
            stats = load_file(conn, stream, str(path))
            assert (stats.loaded, stats.quarantined) == (len(records), 0), (stream.name, stats)


def contact_version(
    url: str, contact_id: str | None, at: datetime, template_of: str | None = None, **properties
) -> dict:
    """A new version of a HubSpot contact (or, with template_of, a new contact shaped like an
    existing one), modified at `at`."""
    with psycopg.connect(url) as conn:
        record = conn.execute(
            "select payload from raw.hubspot_contacts where object_id = %s"
            " order by event_time desc limit 1",
            (template_of or contact_id,),
        ).fetchone()[0]
    record = json.loads(json.dumps(record))
    if template_of:
        record["id"] = contact_id
        record["associations"] = {}
        record["properties"].update(
            {
                "createdate": _iso(START + timedelta(days=1)),
                "hs_additional_emails": None,
                "hs_merged_object_ids": None,
            }
        )
    record["properties"].update(properties)
    record["properties"][HUBSPOT_CONTACTS.modified_property] = _iso(at)
    record["updatedAt"] = _iso(at)
    return record


def detractor_answer(contact_id: str, at: datetime) -> dict:
    """A HubSpot feedback submission: an NPS of 1 from the contact."""
    stamp = _iso(at)
    return {
        "id": f"99{contact_id}",
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
        "properties": {
            "hs_survey_type": "NPS",
            "hs_survey_name": "NPS after purchase",
            "hs_survey_channel": "EMAIL",
            "hs_value": "1",
            "hs_response_group": "detractor",
            "hs_content": "Not convinced.",
            "hs_submission_timestamp": stamp,
            "hs_createdate": stamp,
            FEEDBACK.modified_property: stamp,
        },
        "associations": {
            "contacts": {"results": [{"id": contact_id, "type": "feedback_submission_to_contact"}]}
        },
    }


def consents(url: str) -> dict[tuple[str, str], dict]:
    """dim_customer_consents by (customer email, purpose), for the hand-made customers."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "select c.email, k.* from marts.dim_customer_consents as k"
            " join restricted.dim_customer_contacts as c using (customer_key)"
            " where c.email like '%@consent.example'"
        ).fetchall()
    return {(r["email"], r["purpose"]): r for r in rows}


def customers(url: str, where: str, *params) -> list[dict]:
    """dim_customers rows with who they are (restricted.dim_customer_contacts)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "select * from (select c.*, k.email, k.display_name, k.hubspot_contact_id"
            " from marts.dim_customers as c"
            " left join restricted.dim_customer_contacts as k using (customer_key))"
            f" as dim_customers where {where} order by customer_key",
            params,
        ).fetchall()


def comments(url: str, contact_id: str) -> list[tuple[str | None, bool]]:
    """fct_feedback's (comment, comment_withheld) for a contact's answers."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select f.comment, f.comment_withheld from marts.fct_feedback as f"
            " join intermediate.int_identifiers_mapped as i on i.customer_key = f.customer_key"
            " where i.identifier_type = 'hubspot_contact' and i.identifier = %s"
            " and f.feedback_id = %s",
            (contact_id, f"99{contact_id}"),
        ).fetchall()


@pytest.fixture(scope="module")
def consent_world(cluster_url, built_world, settings, tmp_path_factory):
    """A copy of the built small world, then three incremental builds of hand-made signals:
      1. flip@: Segment grants analytics and marketing; quiet@: identified, no consent said;
         tie@: a new HubSpot contact opted out with a consent legal basis; three customers at
         risk refuse, one through each source;
      2. flip@: a SendGrid unsubscribe, then the banner's old choice repeated on the web;
      3. flip@: a SendGrid group_resubscribe; the customer who refused through HubSpot refuses
         analytics too, on the web, after their survey comment was stored.
    The consent rows after each build, the at-risk customers who refused, and the latter's
    stored survey comment after each build."""
    tmp = tmp_path_factory.mktemp("consent")
    url = create_db(cluster_url, template=built_world)
    stages: list[dict] = []
    try:
        # Four nameable customers turn at risk for real: an NPS detractor answer in the world,
        # and busier before it (old page views) than in it.
        at_risk = customers(
            url,
            "is_at_risk is not true and may_be_named and display_name is not null"
            " and hubspot_contact_id is not null"
            " and email is not null and exists (select 1 from intermediate.int_identifiers_mapped"
            " as i where i.customer_key = dim_customers.customer_key"
            " and i.identifier_type = 'segment_user')",
        )[:4]
        assert len(at_risk) == 4, "the small world needs four nameable web customers with a contact"
        users = {}
        with psycopg.connect(url) as conn:
            for customer in at_risk:
                (users[customer["customer_key"]],) = conn.execute(
                    "select min(identifier) from intermediate.int_identifiers_mapped"
                    " where customer_key = %s and identifier_type = 'segment_user'",
                    (customer["customer_key"],),
                ).fetchone()
        old_pages = [
            page(users[c["customer_key"]], START - timedelta(days=10, minutes=-n))
            for c in at_risk
            for n in range(c["recent_engagement"] + 2)
        ]
        answers = [
            detractor_answer(c["hubspot_contact_id"], START + timedelta(days=10)) for c in at_risk
        ]
        by_email, by_contact, by_web = at_risk[:3]
        load(
            url,
            tmp,
            segment=[
                identify(
                    "consent-flip",
                    "flip@consent.example",
                    START + timedelta(days=2),
                    {"analytics": True, "marketing": True},
                ),
                identify("consent-quiet", "quiet@consent.example", START + timedelta(days=2)),
                identify(
                    users[by_web["customer_key"]],
                    by_web["email"],
                    LAST_WORD,
                    {"analytics": False, "marketing": True},
                ),
                *old_pages,
            ],
            sendgrid=[email_event("unsubscribe", by_email["email"], LAST_WORD)],
            contacts=[
                contact_version(
                    url, by_contact["hubspot_contact_id"], LAST_WORD, hs_email_optout="true"
                ),
                contact_version(
                    url,
                    "990000001",
                    START + timedelta(days=3),
                    template_of=by_contact["hubspot_contact_id"],
                    email="tie@consent.example",
                    firstname="Tie",
                    lastname="Consent",
                    hs_email_optout="true",
                    hs_legal_basis="Freely given consent from contact",
                ),
            ],
            feedback=answers,
        )
        pipeline.transform(url, settings)
        stages.append(consents(url))
        stored_comments = [comments(url, by_contact["hubspot_contact_id"])]
        load(
            url,
            tmp,
            sendgrid=[
                email_event("unsubscribe", "flip@consent.example", START + timedelta(days=5))
            ],
            segment=[
                identify(
                    "consent-flip",
                    "flip@consent.example",
                    START + timedelta(days=5, hours=1),
                    {"analytics": True, "marketing": True},
                )
            ],
        )
        pipeline.transform(url, settings)
        stages.append(consents(url))
        stored_comments.append(comments(url, by_contact["hubspot_contact_id"]))
        load(
            url,
            tmp,
            sendgrid=[
                email_event("group_resubscribe", "flip@consent.example", START + timedelta(days=8))
            ],
            segment=[
                identify(
                    users[by_contact["customer_key"]],
                    by_contact["email"],
                    LAST_WORD + timedelta(hours=1),
                    {"analytics": False},
                )
            ],
        )
        pipeline.transform(url, settings)
        stages.append(consents(url))
        stored_comments.append(comments(url, by_contact["hubspot_contact_id"]))
        refused = {"sendgrid": by_email, "hubspot": by_contact, "segment": by_web}
        yield {
            "url": url,
            "stages": stages,
            "refused": refused,
            "kept": at_risk[3],
            "tmp": tmp,
            "comments": stored_comments,
        }
    finally:
        drop_db(cluster_url, url)


def test_a_segment_grant_an_unsubscribe_and_a_resubscribe_each_decide_in_turn(consent_world):
    granted, unsubscribed, resubscribed = (
        s[("flip@consent.example", "marketing")] for s in consent_world["stages"]
    )
    assert (granted["consent_state"], granted["decided_by_source"]) == ("granted", "segment")
    assert granted["decided_at"] == START + timedelta(days=2)
    assert (
        unsubscribed["consent_state"],
        unsubscribed["decided_by_source"],
        unsubscribed["decided_by_signal_type"],
    ) == ("refused", "sendgrid", "unsubscribe")
    assert unsubscribed["decided_at"] == START + timedelta(days=5)
    assert (
        resubscribed["consent_state"],
        resubscribed["decided_by_source"],
        resubscribed["decided_by_signal_type"],
    ) == ("granted", "sendgrid", "group_resubscribe")
    assert resubscribed["decided_at"] == START + timedelta(days=8)


def test_the_banner_repeating_an_old_choice_is_not_a_new_signal(consent_world):
    """The consent manager sends the stored choice with every event: the page view after the
    unsubscribe does not grant marketing again, and analytics stays decided by its first event."""
    after_unsubscribe = consent_world["stages"][1]
    assert after_unsubscribe[("flip@consent.example", "marketing")]["consent_state"] == "refused"
    analytics = after_unsubscribe[("flip@consent.example", "analytics")]
    assert (analytics["consent_state"], analytics["decided_at"]) == (
        "granted",
        START + timedelta(days=2),
    )
    assert analytics["signals"] == 1


def test_the_dimension_follows_the_consent_in_each_build(consent_world):
    url = consent_world["url"]
    (flip,) = customers(url, "email = 'flip@consent.example'")
    assert (flip["marketing_consent"], flip["marketing_consent_source"]) == ("granted", "sendgrid")
    assert flip["analytics_consent"] == "granted"
    assert flip["may_be_named"]


def test_a_stored_comment_is_withheld_once_its_customer_refuses_analytics(consent_world):
    """Free text follows the consent in each build, also for rows an incremental build would
    otherwise leave alone: the survey comment shown while analytics was allowed is withheld by
    the build after the refusal."""
    shown, still_shown, withheld = consent_world["comments"]
    assert shown == still_shown == [("Not convinced.", False)]
    assert withheld == [(None, True)]


def test_no_signal_leaves_both_purposes_unknown(consent_world):
    final = consent_world["stages"][-1]
    for purpose in ("analytics", "marketing"):
        row = final[("quiet@consent.example", purpose)]
        assert (
            row["consent_state"],
            row["decided_by_source"],
            row["decided_at"],
            row["signals"],
        ) == ("unknown", None, None, 0)
    (quiet,) = customers(consent_world["url"], "email = 'quiet@consent.example'")
    assert quiet["marketing_consent"] == quiet["analytics_consent"] == "unknown"
    assert quiet["may_be_named"], "unknown is not a refusal"


def test_a_hubspot_opt_out_wins_a_tie_with_its_consent_legal_basis(consent_world):
    row = consent_world["stages"][0][("tie@consent.example", "marketing")]
    assert (
        row["consent_state"],
        row["decided_by_source"],
        row["decided_by_signal_type"],
        row["signals"],
    ) == ("refused", "hubspot", "hs_email_optout", 2)
    assert (
        consent_world["stages"][0][("tie@consent.example", "analytics")]["consent_state"]
        == "unknown"
    )


def test_every_customer_has_one_row_per_purpose(consent_world):
    with psycopg.connect(consent_world["url"]) as conn:
        per_customer = conn.execute(
            "select count(*), count(distinct customer_key),"
            " count(*) filter (where purpose = 'analytics'),"
            " count(*) filter (where purpose = 'marketing') from marts.dim_customer_consents"
        ).fetchone()
        in_dimension = conn.execute("select count(*) from marts.dim_customers").fetchone()[0]
        states = dict(
            conn.execute(
                "select consent_state, count(*) from marts.dim_customer_consents group by 1"
            ).fetchall()
        )
    assert per_customer == (2 * in_dimension, in_dimension, in_dimension, in_dimension)
    # the simulated world itself has every state
    assert (
        states.get("granted", 0) > 0
        and states.get("refused", 0) > 0
        and states.get("unknown", 0) > 0
    )


def test_a_refusal_through_any_source_stops_the_report_naming_a_customer_at_risk(
    consent_world, settings
):
    url = consent_world["url"]
    refused = consent_world["refused"]
    for source, customer in refused.items():
        (now,) = customers(url, "customer_key = %s", customer["customer_key"])
        assert not now["may_be_named"], f"refusing through {source} should withhold the name"
        purpose = "analytics" if source == "segment" else "marketing"
        assert (now[f"{purpose}_consent"], now[f"{purpose}_consent_source"]) == ("refused", source)
    # The report counts the week's at-risk customers from fct_customer_health_weekly: these four
    # are at risk in the report's week there too (whatever its engagement rule makes of the small
    # world), so what is tested is the naming, which follows the consent in dim_customers.
    from helpers.signal_marts import signal_marts

    planted = [c["customer_key"] for c in (*refused.values(), consent_world["kept"])]
    with psycopg.connect(url, autocommit=True) as conn:
        signal_marts(conn, settings.roles.reporter)
        conn.execute(
            "delete from marts.fct_customer_health_weekly"
            " where week_start = %s and customer_key = any(%s)",
            (WEEK, planted),
        )
        conn.execute(
            "insert into marts.fct_customer_health_weekly"
            " (customer_key, week_start, inbound_touchpoints,"
            " baseline_touchpoints, is_at_risk, at_risk_reason)"
            " select unnest(%s::text[]), %s, 0, 6, true, null",
            (planted, WEEK),
        )
        keys = [
            k
            for (k,) in conn.execute(
                "select customer_key from marts.fct_customer_health_weekly"
                " where week_start = %s and is_at_risk",
                (WEEK,),
            ).fetchall()
        ]
        content = load_weekly_content(conn, WEEK)
    at_risk = customers(url, "customer_key = any(%s)", keys)
    withheld = [c for c in at_risk if not c["may_be_named"]]
    assert content.at_risk.count == len(at_risk), "everyone at risk is counted"
    assert content.at_risk.withheld_by_consent == len(withheld) >= 3
    named = {c.name for c in content.at_risk.named}
    assert not named & {c["display_name"] for c in withheld}
    assert consent_world["kept"]["display_name"] in named, (
        "a customer at risk who did not refuse is named"
    )

    recipients = consent_world["tmp"] / "recipients.yml"
    recipients.write_text(RECIPIENTS)
    out = consent_world["tmp"] / "preview"
    result = run_cli(
        "report",
        "render",
        "--week",
        iso_week(WEEK),
        "--out",
        str(out),
        "--recipients",
        str(recipients),
        env={"TOUCHPOINT_WAREHOUSE_URL": url},
    )
    assert result.returncode == 0, result.stderr
    html = (out / "all@example.com" / "report.html").read_text()
    text = (out / "all@example.com" / "report.txt").read_text()
    for customer in withheld:
        for shown_as in (customer["display_name"], customer["email"]):
            if shown_as:
                assert shown_as not in html and shown_as not in text, (
                    f"{shown_as} refused and is named"
                )
    assert all(name in text for name in named)
    assert re.search(rf"\b{len(withheld)} (is|are) counted but not named", text), text


def test_the_incremental_consent_equals_a_full_rebuild(consent_world, settings):
    """After the three incremental builds, rebuilding the consent models and the customers from
    scratch changes no row."""
    url = consent_world["url"]
    before = mart_checksums(url)
    run_dbt(
        ["build", "--full-refresh", "--select", "int_consent_signals+"],
        settings.dbt_project_dir,
        url,
        settings.var_dir,
    )
    after = mart_checksums(url)
    assert before["dim_customer_consents"] == after["dim_customer_consents"]
    assert before["dim_customers"] == after["dim_customers"]
    assert before["fct_feedback"] == after["fct_feedback"]  # its comments follow the consent
