"""Identity resolution measured against the simulator's ground truth (B-cubed precision/recall).

Every event the simulator wrote knows which person produced it. After the warehouse is
built, each event carries a customer_key. For the events of people who ever identified
themselves (signed up, or are known to the CRM), B-cubed precision asks "of the events in my
customer, how many are mine?" and recall asks "of my events, how many are in my customer?".
Both must be at least 0.99 on the default simulation.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from helpers import SIM_START, create_db, drop_db
from touchpoint import pipeline
from touchpoint.extract.run import CrmEndpoint

# the demo world (300 customers, 4 weeks) extracted and built
pytestmark = pytest.mark.slow

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
#: truth source -> prefix of int_events_classified.source_event_id
CRM_PREFIX = {
    "hubspot": "contact:",
    "hubspot_contacts": "contact:",
    "hubspot_calls": "call:",
    "hubspot_meetings": "meeting:",
    "hubspot_emails": "crm_email:",
    "hubspot_tickets": "ticket:",
    "hubspot_feedback_submissions": "feedback:",
    "hubspot_notes": "note:",
    "hubspot_tasks": "task:",
    "hubspot_deals": "deal_created:",
}


@pytest.fixture(scope="module")
def resolved(cluster_url, settings, tmp_path_factory):
    from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer
    from touchpoint_sim.population import generate
    from touchpoint_sim.writers import write_world

    root = tmp_path_factory.mktemp("default-world")
    # the default simulation of the demo: 300 customers, 4 weeks, seed 7
    write_world(generate(300, 4, 7, SIM_START), root / "landing", root / "sim")
    url = create_db(cluster_url)
    crm = CrmServer(CrmData.from_dir(root / "sim" / "crm"), port=0, **NO_LIMITS).start_in_thread()
    local = replace(settings, landing_url=str(root / "landing"))
    try:
        for source in ("crm", "email", "web"):
            pipeline.extract(
                source,
                START,
                START + timedelta(weeks=4),
                url,
                local,
                crm=CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0),
            )
        pipeline.transform(url, local)
        with psycopg.connect(url) as conn:
            assigned = {
                (s, i): k
                for s, i, k in conn.execute(
                    "select source, source_event_id, customer_key"
                    " from intermediate.int_events_classified"
                )
            }
        yield root / "sim" / "truth", assigned
    finally:
        crm.shutdown()
        drop_db(cluster_url, url)


def truth_events(truth_dir, assigned):
    """(event id in the warehouse, true person) for every event the warehouse classified."""
    pairs = []
    with (truth_dir / "events.csv").open() as f:
        for row in csv.DictReader(f):
            source, natural_id = row["source"], row["natural_id"]
            if source == "segment":
                key = ("web", natural_id)
            elif source == "sendgrid":
                key = ("email", natural_id)
            elif source in CRM_PREFIX:
                key = ("crm", CRM_PREFIX[source] + natural_id)
            else:
                continue
            if natural_id and key in assigned:
                pairs.append((key, int(row["person"])))
    return pairs


def identifiable(truth_dir, pairs):
    """The events a perfect resolver could attach to their person: web events of people who
    identified themselves on the web (signed up), and email and CRM events of people known to
    the CRM or the mailing list. A CRM contact's anonymous browsing on a device that never
    identified cannot be attached by anyone, and must not be."""
    with (truth_dir / "people.csv").open() as f:
        people = list(csv.DictReader(f))
    signed_up = {int(r["person"]) for r in people if r.get("signed_up_at")}
    known = {
        int(r["person"])
        for r in people
        if r.get("signed_up_at") or r.get("contact_id") or r.get("email")
    }
    return [(k, p) for k, p in pairs if (p in signed_up if k[0] == "web" else p in known)]


def b_cubed(pairs, assigned):
    cluster_of = {}
    for key, _person in pairs:
        cluster_of[key] = assigned[key] or f"unassigned:{key}"  # an unassigned event is alone
    members = defaultdict(list)
    for key, person in pairs:
        members[cluster_of[key]].append(person)
    per_person = Counter(person for _, person in pairs)
    precision = recall = 0.0
    for key, person in pairs:
        cluster = members[cluster_of[key]]
        same = sum(1 for p in cluster if p == person)
        precision += same / len(cluster)
        recall += same / per_person[person]
    return precision / len(pairs), recall / len(pairs)


def test_identity_resolution_is_at_least_99_percent_precise_and_complete(resolved):
    truth_dir, assigned = resolved
    pairs = identifiable(truth_dir, truth_events(truth_dir, assigned))
    assert len(pairs) > 1000, (
        "the default simulation should give well over a thousand identified events"
    )
    precision, recall = b_cubed(pairs, assigned)
    print(
        f"identity resolution on {len(pairs)} events of {len({p for _, p in pairs})} people: "
        f"precision={precision:.4f} recall={recall:.4f}"
    )
    assert precision >= 0.99
    assert recall >= 0.99


def test_people_who_never_identified_are_not_attached_to_anyone(resolved):
    truth_dir, assigned = resolved
    with (truth_dir / "people.csv").open() as f:
        unknown = {
            int(r["person"])
            for r in csv.DictReader(f)
            if not (r.get("signed_up_at") or r.get("contact_id"))
        }
    anonymous = [
        (k, p) for k, p in truth_events(truth_dir, assigned) if p in unknown and k[0] == "web"
    ]
    assert anonymous, "the simulation should have visitors who never sign up"
    assert all(assigned[k] is None for k, _ in anonymous)
