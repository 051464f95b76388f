"""The simulator: deterministic, realistic enough, and outside the product's import graph."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import requests

from helpers import REPO, SIM_START
from touchpoint_sim.crm_server import CrmData, CrmServer
from touchpoint_sim.population import ASSOCIATION_PAIRS, CRM_TYPES, ENGAGEMENT_TYPES, generate
from touchpoint_sim.writers import write_world

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
AUTH = {"Authorization": "Bearer sim-token"}


def digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """100 customers over 3 weeks, written out."""
    root = tmp_path_factory.mktemp("sim")
    world = generate(100, 3, 1, SIM_START)
    manifest = write_world(world, root / "landing", root / "sim")
    return {
        "world": world,
        "manifest": manifest,
        "crm": root / "sim" / "crm",
        "truth": root / "sim" / "truth",
    }


@pytest.fixture(scope="module")
def big():
    """The demo's size: 300 customers over 4 weeks."""
    began = time.monotonic()
    world = generate(300, 4, 7, SIM_START)
    world.seconds = time.monotonic() - began
    return world


@pytest.fixture
def server(written):
    started = []

    def start(**kwargs) -> CrmServer:
        srv = CrmServer(CrmData.from_dir(written["crm"]), port=0, **kwargs).start_in_thread()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.shutdown()


def category(event) -> str | None:
    value = event.get("category")
    return value[0] if isinstance(value, list) else value


def tracks(world, name):
    return [e for e in world.web_events if e["type"] == "track" and e["event"] == name]


# -- determinism and speed ---------------------------------------------------------------------
def test_same_seed_same_files(tmp_path):
    for name in ("a", "b"):
        write_world(
            generate(40, 2, 5, SIM_START), tmp_path / name / "landing", tmp_path / name / "sim"
        )
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    write_world(generate(40, 2, 6, SIM_START), tmp_path / "c" / "landing", tmp_path / "c" / "sim")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_the_demo_sized_world_generates_quickly(big):
    assert big.seconds < 5
    assert len(big.people) == 300 and len(big.contacts) > 150


def test_the_world_has_anonymous_visitors_who_identify_and_customers_who_buy():
    world = generate(100, 3, 1, SIM_START)
    assert any("userId" not in e for e in world.web_events)
    assert any(e["type"] == "identify" for e in world.web_events)
    assert any(p.purchased_at for p in world.people)
    assert any(isinstance(e.get("category"), list) for e in world.email_events)
    assert all(SIM_START.isoformat() <= e["timestamp"][:10] for e in world.web_events)
    # Someone browsed anonymously, then identified: the same anonymousId, first without a userId.
    identified = {e["anonymousId"] for e in world.web_events if e["type"] == "identify"}
    assert any(e["anonymousId"] in identified and "userId" not in e for e in world.web_events)


# -- the CRM data set --------------------------------------------------------------------------
def test_every_crm_object_type_is_written_in_hubspots_shape(written):
    end = written["world"].end
    for object_type in CRM_TYPES:
        objects = json.loads((written["crm"] / f"{object_type}.json").read_text())
        assert objects, object_type
        assert written["manifest"]["crm"][object_type] == len(objects)
        modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        created = (
            "createdate"
            if object_type in ("contacts", "companies", "deals", "tickets")
            else "hs_createdate"
        )
        for obj in objects:
            assert set(obj) == {"id", "properties", "createdAt", "updatedAt", "archived"}
            assert obj["id"].isdigit() and obj["archived"] is False
            assert all(isinstance(v, str) for v in obj["properties"].values()), obj
            assert ISO_MS.match(obj["createdAt"]) and ISO_MS.match(obj["updatedAt"])
            assert obj["properties"][modified] == obj["updatedAt"]
            assert obj["properties"][created] == obj["createdAt"]
            assert obj["properties"]["hs_object_id"] == obj["id"]
            assert obj["createdAt"] <= obj["updatedAt"] < end.isoformat().replace("+00:00", ".000Z")
        if object_type != "contacts":
            assert all("lastmodifieddate" not in o["properties"] for o in objects)
    # Some objects were edited after they were created: the API serves only the current version.
    for object_type in ("contacts", "deals", "tickets", "meetings", "tasks"):
        objects = written["world"].crm[object_type]
        assert any(o["updatedAt"] > o["createdAt"] for o in objects), object_type


def test_every_object_type_fills_hubspots_properties(written):
    crm = written["world"].crm
    expected = {
        "contacts": {
            "email",
            "firstname",
            "lastname",
            "lifecyclestage",
            "hs_analytics_source",
            "country",
            "hs_email_optout",
            "hs_legal_basis",
        },
        "companies": {"name", "domain", "industry"},
        "deals": {"dealname", "amount", "dealstage", "pipeline", "closedate", "dealtype"},
        "tickets": {
            "subject",
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_category",
            "hs_ticket_priority",
        },
        "calls": {
            "hs_timestamp",
            "hs_call_title",
            "hs_call_direction",
            "hs_call_duration",
            "hs_call_status",
            "hs_call_disposition",
            "hubspot_owner_id",
        },
        "meetings": {
            "hs_timestamp",
            "hs_meeting_title",
            "hs_meeting_outcome",
            "hs_meeting_location",
            "hs_activity_type",
            "hs_meeting_start_time",
            "hs_meeting_end_time",
            "hubspot_owner_id",
        },
        "notes": {"hs_timestamp", "hs_note_body", "hubspot_owner_id"},
        "emails": {"hs_timestamp", "hs_email_direction", "hs_email_subject", "hs_email_status"},
        "tasks": {"hs_timestamp", "hs_task_subject", "hs_task_status", "hs_task_type"},
        "feedback_submissions": {
            "hs_survey_type",
            "hs_survey_name",
            "hs_survey_channel",
            "hs_value",
            "hs_content",
            "hs_submission_timestamp",
        },
    }
    for object_type, names in expected.items():
        for obj in crm[object_type]:
            assert names <= set(obj["properties"]), (object_type, names - set(obj["properties"]))
    values = {t: Counter() for t in crm}
    for object_type, objects in crm.items():
        for obj in objects:
            values[object_type].update(f"{k}={v}" for k, v in obj["properties"].items())
    stages = {v.split("=")[1] for v in values["contacts"] if v.startswith("lifecyclestage=")}
    assert stages <= {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
    }
    assert {v.split("=")[1] for v in values["deals"] if v.startswith("dealstage=")} <= {
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    }
    assert {o["properties"]["pipeline"] for o in crm["deals"]} == {"default"}
    assert {o["properties"]["hs_pipeline_stage"] for o in crm["tickets"]} <= {"1", "2", "3", "4"}
    assert {o["properties"]["hs_call_direction"] for o in crm["calls"]} <= {"INBOUND", "OUTBOUND"}
    assert {o["properties"]["hs_email_direction"] for o in crm["emails"]} == {
        "EMAIL",
        "INCOMING_EMAIL",
    }
    assert {o["properties"]["hs_task_status"] for o in crm["tasks"]} <= {"NOT_STARTED", "COMPLETED"}
    assert {o["properties"]["hs_meeting_outcome"] for o in crm["meetings"]} <= {
        "SCHEDULED",
        "COMPLETED",
        "NO_SHOW",
        "CANCELED",
    }
    for obj in crm["tickets"]:
        assert (obj["properties"]["hs_pipeline_stage"] == "4") == (
            "closed_date" in obj["properties"]
        )


def test_every_association_file_is_written_and_points_at_real_objects(written):
    ids = {t: {o["id"] for o in written["world"].crm[t]} for t in CRM_TYPES}
    for from_type, to_type in ASSOCIATION_PAIRS:
        links = json.loads(
            (written["crm"] / "associations" / f"{from_type}__{to_type}.json").read_text()
        )
        assert links, (from_type, to_type)
        assert set(links) <= ids[from_type]
        assert all(set(targets) <= ids[to_type] and targets for targets in links.values())
    for kind in ENGAGEMENT_TYPES:  # every engagement hangs off a contact
        links = json.loads((written["crm"] / "associations" / f"{kind}__contacts.json").read_text())
        assert set(links) == ids[kind]
    data = CrmData.from_dir(written["crm"])
    assert set(data.objects) == set(CRM_TYPES)  # associations/ is not read as objects


# -- the API -----------------------------------------------------------------------------------
def test_v4_association_batch_read_answers_in_hubspots_shape(written, server):
    crm = server()
    links = json.loads((written["crm"] / "associations" / "contacts__companies.json").read_text())
    with_company = sorted(links)[:3]
    without = next(c["id"] for c in written["world"].contacts if c["id"] not in links)
    url = f"{crm.url}/crm/v4/associations/contacts/companies/batch/read"
    answer = requests.post(
        url, json={"inputs": [{"id": i} for i in [*with_company, without]]}, headers=AUTH
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "COMPLETE"
    assert [
        r["from"]["id"] for r in body["results"]
    ] == with_company  # no associations: simply absent
    first = body["results"][0]
    assert [t["toObjectId"] for t in first["to"]] == [int(i) for i in links[with_company[0]]]
    types = first["to"][0]["associationTypes"]
    assert all(t["category"] == "HUBSPOT_DEFINED" and isinstance(t["typeId"], int) for t in types)
    assert {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None} in types

    deal_links = json.loads((written["crm"] / "associations" / "deals__contacts.json").read_text())
    deal, [contact, *_] = next(iter(deal_links.items()))
    reverse = requests.post(
        f"{crm.url}/crm/v4/associations/contacts/deals/batch/read",
        json={"inputs": [{"id": contact}]},
        headers=AUTH,
    ).json()
    assert int(deal) in [t["toObjectId"] for t in reverse["results"][0]["to"]]  # served both ways

    too_many = requests.post(
        url, json={"inputs": [{"id": str(i)} for i in range(1001)]}, headers=AUTH
    )
    assert too_many.status_code == 400
    assert (
        requests.post(
            url, json={"inputs": []}, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    assert crm.requests == 4


def test_the_v4_endpoint_shares_fault_injection(written, server):
    crm = server(fault_rate=1.0, seed=1)
    statuses = {
        requests.post(
            f"{crm.url}/crm/v4/associations/deals/contacts/batch/read",
            json={"inputs": [{"id": "1"}]},
            headers=AUTH,
            timeout=5,
        ).status_code
        for _ in range(12)
    }
    assert {429, 500} <= statuses
    assert crm.faults == crm.requests == 12


def test_search_filters_on_the_modified_property_of_every_type(written, server):
    crm = server(search_per_second=None)  # many searches at once: the limits are tested apart
    world = written["world"]
    middle = (
        datetime.combine(SIM_START, datetime.min.time(), UTC).timestamp() * 1000 + 7 * 86400_000
    )
    for object_type in CRM_TYPES:
        prop = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": prop, "operator": "GTE", "value": str(int(middle))}]}
            ],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": ["hs_object_id"],
            "limit": 200,
        }
        answer = requests.post(
            f"{crm.url}/crm/v3/objects/{object_type}/search", json=body, headers=AUTH
        ).json()
        expected = [
            o
            for o in world.crm[object_type]
            if datetime.fromisoformat(o["updatedAt"]).timestamp() * 1000 >= middle
        ]
        assert answer["total"] == len(expected)
        modified = [r["properties"][prop] for r in answer["results"]]
        assert modified == sorted(modified)


def test_page_size_caps_the_page_and_the_cursor_walks_every_object(written, server):
    crm = server(page_size=7, search_per_second=None)
    contacts = written["world"].contacts
    seen, after, pages = [], None, 0
    while True:
        body = {"limit": 100, "properties": ["email"], **({"after": after} if after else {})}
        page = requests.post(
            f"{crm.url}/crm/v3/objects/contacts/search", json=body, headers=AUTH
        ).json()
        assert len(page["results"]) <= 7
        seen += [r["id"] for r in page["results"]]
        pages += 1
        after = (page.get("paging") or {}).get("next", {}).get("after")
        if not after:
            break
    assert sorted(seen) == sorted(c["id"] for c in contacts) and pages == -(-len(contacts) // 7)
    listed = requests.get(f"{crm.url}/crm/v3/objects/deals?limit=100", headers=AUTH).json()
    assert len(listed["results"]) == 7 and listed["paging"]["next"]["after"] == "7"


def test_default_page_sizes_and_the_search_cap():
    objects = [
        {
            "id": str(n),
            "properties": {"hs_lastmodifieddate": "2026-10-05T10:00:00.000Z"},
            "createdAt": "2026-10-05T10:00:00.000Z",
            "updatedAt": "2026-10-05T10:00:00.000Z",
            "archived": False,
        }
        for n in range(1, 10_101)
    ]
    crm = CrmServer(CrmData({"deals": objects}), port=0).start_in_thread()
    try:
        search = f"{crm.url}/crm/v3/objects/deals/search"
        first = requests.post(search, json={"limit": 500}, headers=AUTH).json()
        assert len(first["results"]) == 200 and first["total"] == 10_100
        assert (
            len(
                requests.get(f"{crm.url}/crm/v3/objects/deals?limit=500", headers=AUTH).json()[
                    "results"
                ]
            )
            == 100
        )
        last = requests.post(search, json={"limit": 200, "after": "9800"}, headers=AUTH).json()
        assert len(last["results"]) == 200 and "paging" not in last  # stops at 10,000
        assert (
            requests.post(search, json={"limit": 200, "after": "10000"}, headers=AUTH).status_code
            == 400
        )
    finally:
        crm.shutdown()


# -- the journeys ------------------------------------------------------------------------------
def test_consent_choices_reach_segment_hubspot_and_sendgrid(big):
    prefs = [
        e["context"]["consent"]["categoryPreferences"]
        for e in big.web_events
        if "consent" in e["context"]
    ]
    assert {"analytics": True, "marketing": False} in prefs and {
        "analytics": True,
        "marketing": True,
    } in prefs
    assert any("consent" not in e["context"] for e in big.web_events)
    assert any(c["properties"]["hs_email_optout"] == "true" for c in big.contacts)
    assert {c["properties"]["hs_legal_basis"] for c in big.contacts} >= {
        "Legitimate interest – prospect/lead",
        "Freely given consent from contact",
    }
    events = Counter(e["event"] for e in big.email_events)
    assert events["unsubscribe"] and events["group_unsubscribe"] and events["group_resubscribe"]
    assert all(e["asm_group_id"] for e in big.email_events if e["event"].startswith("group_"))
    # Nobody gets a newsletter after opting out of all email.
    optout = {e["email"]: e["timestamp"] for e in big.email_events if e["event"] == "unsubscribe"}
    assert not [
        e
        for e in big.email_events
        if e["email"] in optout
        and category(e) == "newsletter"
        and e["event"] == "processed"
        and e["timestamp"] > optout[e["email"]]
    ]


def test_sales_journeys_run_through_the_pipeline(big):
    deals = [d["properties"] for d in big.crm["deals"]]
    assert any(d["dealtype"] == "newbusiness" and d["dealstage"] == "closedwon" for d in deals)
    assert any(d["dealtype"] == "newbusiness" and d["dealstage"] == "closedlost" for d in deals)
    renewals = [
        d for d in deals if d["dealtype"] == "existingbusiness" and d["dealstage"] == "closedwon"
    ]
    assert any(d["dealname"].startswith("Renewal") for d in renewals)
    assert any(d["dealname"].startswith("Upsell") for d in renewals)
    meetings = [m["properties"] for m in big.crm["meetings"]]
    assert any(
        m["hs_activity_type"] == "Sales meeting" and m["hs_meeting_outcome"] == "COMPLETED"
        for m in meetings
    )
    assert any(m["hs_activity_type"] == "Onboarding" for m in meetings)
    assert any(
        m["hs_activity_type"] == "In-store visit"
        and m["hs_meeting_location"].startswith("Store - ")
        for m in meetings
    )
    assert any(c["properties"]["hs_analytics_source"] == "OFFLINE" for c in big.contacts)
    calls = [c["properties"] for c in big.crm["calls"]]
    assert {c["hs_call_direction"] for c in calls} == {"INBOUND", "OUTBOUND"}


def test_recurring_support_problems_dissatisfaction_and_churn(big):
    contact_of = big.associations[("tickets", "contacts")]
    per_customer = Counter(
        (contact_of[t["id"]][0], t["properties"]["hs_ticket_category"]) for t in big.crm["tickets"]
    )
    assert any(n >= 2 for n in per_customer.values())  # the same problem, again
    assert {category for _, category in per_customer} >= {
        "DELIVERY_ISSUE",
        "BILLING_ISSUE",
        "PRODUCT_ISSUE",
    }
    assert {t["properties"]["hs_ticket_priority"] for t in big.crm["tickets"]} <= {
        "LOW",
        "MEDIUM",
        "HIGH",
    }

    surveys = [e for e in big.email_events if category(e) == "survey"]
    assert surveys and all(e.get("survey_id") for e in surveys)
    answers = [f["properties"] for f in big.crm["feedback_submissions"]]
    nps = [a for a in answers if a["hs_survey_type"] == "NPS"]
    csat = [a for a in answers if a["hs_survey_type"] == "CSAT"]
    assert all(
        0 <= int(a["hs_value"]) <= 10
        and a["hs_response_group"] in ("promoter", "passive", "detractor")
        for a in nps
    )
    assert all(1 <= int(a["hs_value"]) <= 5 for a in csat) and nps and csat
    assert all(a["hs_survey_channel"] == "EMAIL" for a in answers)

    churned = [p for p in big.people if p.churned_at]
    unhappy = [
        p
        for p in churned
        if p.tickets
        and p.satisfaction is not None
        and p.satisfaction <= (6 if p.survey_type == "NPS" else 2)
    ]
    assert unhappy
    for person in churned:  # after churning: no visits and no opens
        assert not [
            e
            for e in big.web_events
            if e["anonymousId"] == person.anonymous_id
            and e["timestamp"] >= person.churned_at.isoformat().replace("+00:00", "Z")
        ]
        assert not [
            e
            for e in big.email_events
            if e["email"] == person.crm_email
            and e["event"] in ("open", "click")
            and e["timestamp"] >= person.churned_at.timestamp()
        ]
    churned_emails = {p.crm_email for p in churned}
    assert any(
        e["event"] in ("unsubscribe", "group_unsubscribe") and e["email"] in churned_emails
        for e in big.email_events
    )


def test_two_addresses_and_merged_duplicates(big):
    two = [p for p in big.people if p.second_email and p.signed_up_at and p.contact]
    assert two
    person = two[0]
    contact = next(c for c in big.contacts if c["id"] == person.contact.id)["properties"]
    assert contact["email"] == person.second_email and person.email in contact[
        "hs_additional_emails"
    ].split(";")
    identify = [
        e for e in big.web_events if e["type"] == "identify" and e["userId"] == person.user_id
    ]
    assert (
        identify and identify[0]["traits"]["email"] == person.email
    )  # the web knows the other address
    assert {
        e["email"] for e in big.email_events if e["email"] in (person.email, person.second_email)
    } <= {person.second_email}
    merged = [c for c in big.contacts if c["properties"].get("hs_merged_object_ids")]
    assert merged
    contact_ids = {c["id"] for c in big.contacts}
    assert all(
        set(c["properties"]["hs_merged_object_ids"].split(";")).isdisjoint(contact_ids)
        for c in merged
    )


def test_segment_tracks_real_event_names_and_campaigns(big):
    names = Counter(e["event"] for e in big.web_events if e["type"] == "track")
    for name in (
        "Signed Up",
        "Form Submitted",
        "Checkout Started",
        "Order Completed",
        "Product Clicked",
        "Live Chat Started",
        "Webinar Registered",
        "Webinar Attended",
    ):
        assert names[name], name
    orders = tracks(big, "Order Completed")
    assert all(
        o["properties"]["order_id"].startswith("ord_") and o["properties"]["revenue"] > 0
        for o in orders
    )
    assert any(
        c["properties"]["list_id"] == "recommended_for_you" for c in tracks(big, "Product Clicked")
    )
    assert all("userId" in e for e in tracks(big, "Order Completed"))
    types = Counter(e["type"] for e in big.web_events)
    assert types["alias"] and types["group"] and types["identify"] and types["page"]
    assert all(e["previousId"] == e["anonymousId"] for e in big.web_events if e["type"] == "alias")
    paths = {e["context"]["page"]["path"] for e in big.web_events if e["type"] == "page"}
    for prefix in ("/", "/product", "/pricing", "/reviews", "/help", "/checkout", "/signup"):
        assert any(p == prefix or p.startswith(prefix + "/") for p in paths), prefix
    mediums = {
        e["context"]["campaign"]["medium"] for e in big.web_events if "campaign" in e["context"]
    }
    assert {"cpc", "display", "paid_social", "email"} <= mediums
    landing = next(
        e for e in big.web_events if e["context"].get("campaign", {}).get("medium") == "cpc"
    )
    assert "utm_medium=cpc" in landing["context"]["page"]["search"]


def test_sendgrid_categories_event_types_and_quirks(big):
    assert {category(e) for e in big.email_events} >= {
        "newsletter",
        "order_confirmation",
        "shipping",
        "renewal",
        "survey",
    }
    assert set(Counter(e["event"] for e in big.email_events)) == {
        "processed",
        "dropped",
        "delivered",
        "deferred",
        "bounce",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    }
    assert all("sg_event_id" not in e for e in big.email_events if e["event"] == "dropped")
    assert all(e.get("sg_event_id") for e in big.email_events if e["event"] != "dropped")
    assert any(isinstance(e.get("category"), str) for e in big.email_events)
    assert any(isinstance(e.get("category"), list) for e in big.email_events)
    assert any(
        e.get("campaign_id") for e in big.email_events
    )  # a unique argument, as a top-level key
    ids = Counter(e["sg_event_id"] for e in big.email_events if e.get("sg_event_id"))
    twice = sum(1 for n in ids.values() if n > 1)
    assert 0.005 < twice / len(ids) < 0.04  # the webhook delivers at least once


# -- ground truth ------------------------------------------------------------------------------
def test_ground_truth_covers_people_and_every_event_and_object(written):
    world = written["world"]
    with (written["truth"] / "people.csv").open() as f:
        people = list(csv.DictReader(f))
    assert len(people) == 100 and "second_email" in people[0]
    assert any(p["second_email"] for p in people)
    with (written["truth"] / "events.csv").open() as f:
        rows = list(csv.DictReader(f))
    by_source = Counter(r["source"] for r in rows)
    for object_type in CRM_TYPES:
        assert by_source[f"hubspot_{object_type}"] == len(world.crm[object_type])
    assert by_source["segment"] == len(world.web_events)
    crm_ids = {(r["source"], r["natural_id"]) for r in rows}
    assert all((f"hubspot_{t}", o["id"]) in crm_ids for t in CRM_TYPES for o in world.crm[t])


def test_the_product_package_never_imports_the_simulator():
    offenders = []
    for path in (REPO / "src" / "touchpoint").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "touchpoint_sim" for n in names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    # The CLI dispatches `simulate` and `demo` to the simulator lazily, and nothing else may.
    assert all(o.startswith("src/touchpoint/cli/") for o in offenders), offenders


def test_return_visits_bring_signed_up_customers_back_and_change_nothing_else():
    plain = generate(200, 4, 3, SIM_START)
    busy = generate(200, 4, 3, SIM_START, return_visits_per_week=2.0)
    plain_ids = {e["messageId"] for e in plain.web_events}
    assert plain_ids <= {e["messageId"] for e in busy.web_events}
    extra = [e for e in busy.web_events if e["messageId"] not in plain_ids]
    assert len(extra) > len(plain.web_events) * 0.3
    signed_up = {p.anonymous_id: p for p in busy.people if p.signed_up_at}
    assert all(e["anonymousId"] in signed_up and e["userId"] for e in extra)
    churned = {p.anonymous_id: p.churned_at for p in busy.people if p.churned_at}
    assert not [
        e
        for e in extra
        if e["anonymousId"] in churned
        and datetime.fromisoformat(e["timestamp"]) >= churned[e["anonymousId"]]
    ]
    assert busy.email_events == plain.email_events and busy.crm == plain.crm


def test_slices_of_a_large_population_never_share_people_or_ids():
    first = generate(300, 3, 5, SIM_START, return_visits_per_week=2.0)
    second = generate(300, 3, 5, SIM_START, return_visits_per_week=2.0, first_index=300)
    assert not {p.email for p in first.people} & {p.email for p in second.people}
    for object_type in CRM_TYPES:
        ids = [o["id"] for o in first.crm[object_type]], [o["id"] for o in second.crm[object_type]]
        assert not set(ids[0]) & set(ids[1]), object_type
    assert not {e["messageId"] for e in first.web_events} & {
        e["messageId"] for e in second.web_events
    }
    assert (
        generate(300, 3, 5, SIM_START, return_visits_per_week=2.0).web_events == first.web_events
    )  # slice 0


# -- HubSpot's limits and its search index -------------------------------------------------------
def _search(crm, object_type: str = "contacts", before: str | None = None):
    filters = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]
    if before:
        filters.append({"propertyName": "lastmodifieddate", "operator": "LT", "value": before})
    return requests.post(
        f"{crm.url}/crm/v3/objects/{object_type}/search",
        json={"filterGroups": [{"filters": filters}], "limit": 200},
        headers=AUTH,
        timeout=10,
    )


def test_search_takes_five_requests_a_second_then_answers_429_with_retry_after(server):
    crm = server()
    answers = [_search(crm) for _ in range(8)]
    refused = [a for a in answers if a.status_code == 429]
    assert [a.status_code for a in answers[:5]] == [200] * 5 and refused
    assert refused[0].json()["policyName"] == "SECONDLY"
    assert float(refused[0].headers["Retry-After"]) > 0
    assert "X-HubSpot-RateLimit-Remaining" not in answers[0].headers  # as HubSpot's search
    time.sleep(1.05)
    assert _search(crm).status_code == 200 and len(crm.rate_limited_at) == len(refused)


def test_every_endpoint_counts_in_a_rolling_ten_second_window_shown_in_headers(server):
    crm = server(burst_per_ten_seconds=6)
    listed = [
        requests.get(f"{crm.url}/crm/v3/objects/deals?limit=1", headers=AUTH, timeout=10)
        for _ in range(7)
    ]
    assert [int(a.headers["X-HubSpot-RateLimit-Remaining"]) for a in listed[:6]] == [
        5,
        4,
        3,
        2,
        1,
        0,
    ]
    assert listed[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert listed[6].status_code == 429
    assert listed[6].json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_a_late_indexed_object_is_missing_from_a_search_asked_right_after_its_change(server):
    crm = server(late_index_share=1.0, index_lag=600, search_per_second=None)
    contacts = crm.data.objects["contacts"]
    latest = max(contacts, key=lambda c: c["properties"]["lastmodifieddate"])
    changed = latest["properties"]["lastmodifieddate"]
    moment = datetime.fromisoformat(changed).timestamp() * 1000
    just_after = _search(crm, before=str(int(moment + 60_000))).json()
    later = _search(crm, before=str(int(moment + 3_600_000))).json()
    ids = {r["id"] for r in just_after["results"]}
    assert latest["id"] not in ids and latest["id"] in {r["id"] for r in later["results"]}
    assert ("contacts", latest["id"]) in crm.hidden_by_lag
