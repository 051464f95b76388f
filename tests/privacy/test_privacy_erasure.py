"""Erasure: `touchpoint privacy erase` removes a person from raw, the marts and the send log,
and tombstones keep them out when the same sources are extracted again."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from helpers import SIM_START, run_cli
from touchpoint import pipeline
from touchpoint.extract.run import CrmEndpoint
from touchpoint.privacy.erase import find_person, leftovers
from touchpoint.privacy.identifiers import record_identifiers, tombstone_hash, values_at
from touchpoint.privacy.tombstones import Tombstones
from touchpoint.sources.catalog import HUBSPOT_OBJECTS, SEGMENT_EVENTS, SENDGRID_EVENTS

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
END = START + timedelta(weeks=2)


# -- the declarations, in Python ----------------------------------------------------------------
def test_identifier_paths_walk_objects_and_lists():
    call = {"id": "9", "associations": {"contacts": {"results": [{"id": "101"}, {"id": " 102 "}]}}}
    assert list(values_at(call, "$.associations.contacts.results[*].id")) == ["101", " 102 "]
    assert list(values_at({"associations": None}, "$.associations.contacts.results[*].id")) == []
    assert list(values_at([1, 2], "$.email")) == []
    hubspot_calls = next(o for o in HUBSPOT_OBJECTS if o.object_type == "calls").stream
    assert sorted(record_identifiers(hubspot_calls.identifiers, call)) == [
        ("hubspot_contact", "101"),
        ("hubspot_contact", "102"),
    ]
    event = {
        "userId": "u-1",
        "anonymousId": "a-1",
        "traits": {"email": " Ann@Example.COM "},
        "type": "identify",
    }
    assert sorted(record_identifiers(SEGMENT_EVENTS.identifiers, event)) == [
        ("email", "ann@example.com"),
        ("segment_anonymous", "a-1"),
        ("segment_user", "u-1"),
    ]


def test_tombstones_cover_a_record_by_any_of_its_identifiers():
    tombstones = Tombstones({"email": {tombstone_hash("email", "ann@example.com")}})
    assert tombstones.covers(
        SENDGRID_EVENTS.identifiers, {"email": "ANN@example.com", "event": "open"}
    )
    assert not tombstones.covers(
        SENDGRID_EVENTS.identifiers, {"email": "bob@example.com", "event": "open"}
    )
    assert tombstones.covers(
        SEGMENT_EVENTS.identifiers,
        {"anonymousId": "x", "context": {"traits": {"email": "ann@example.com"}}},
    )
    assert not tombstones.covers(SENDGRID_EVENTS.identifiers, "not an object")
    assert not Tombstones({}) and len(tombstones) == 1


# -- erasure on a built warehouse ---------------------------------------------------------------
def _one(conn: psycopg.Connection, query: str, *params):
    return conn.execute(query, params).fetchone()


def _person_with_every_source(url: str) -> dict:
    """A customer with a HubSpot contact, Segment devices, emails and touchpoints of all three
    sources."""
    with psycopg.connect(url) as conn:
        row = _one(
            conn,
            "select customer_key, k.email, k.hubspot_contact_id, touchpoints"
            " from marts.dim_customers"
            " join restricted.dim_customer_contacts as k using (customer_key)"
            " where k.hubspot_contact_id is not null and k.email is not null and devices > 0"
            " and email_touchpoints > 0 and crm_touchpoints > 0 and web_touchpoints > 0"
            " order by touchpoints desc, customer_key limit 1",
        )
    assert row, "the small world has no customer seen by all three sources"
    return dict(zip(("customer_key", "email", "contact_id", "touchpoints"), row, strict=True))


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: _one(conn, f"select count(*) from {t}")[0]
            for t in (
                "raw.sendgrid_events",
                "raw.segment_events",
                "raw.hubspot_contacts",
                "marts.dim_customers",
                "marts.fct_touchpoints",
            )
        }


@pytest.mark.slow
def test_an_erased_person_is_gone_everywhere_and_stays_gone_after_re_extraction(
    built_copy, settings, small_world, crm_server
):
    url = built_copy
    person = _person_with_every_source(url)
    with psycopg.connect(url) as conn:
        found = find_person(conn, [person["email"]], [])
        # the send log named them once (as a recipient, e.g. an employee who is also a customer)
        conn.execute(
            "insert into reporting.deliveries"
            " (report, period, recipient, status, message_id, last_error)"
            " values ('weekly_touchpoints', '2026-W41', %s, 'failed', '<m@x>', %s)",
            (person["email"].upper(), f"permanent: 550 {person['email']} unknown"),
        )
        conn.commit()
        assert found.customer_keys == {person["customer_key"]}
        assert person["contact_id"] in found.identifiers["hubspot_contact"]
        assert found.identifiers["segment_anonymous"], "their devices belong to them"
        before_tables = leftovers(conn, found)
    assert {
        "raw.sendgrid_events",
        "raw.segment_events",
        "raw.hubspot_contacts",
        "marts.dim_customers",
        "marts.fct_touchpoints",
        "reporting.deliveries",
    } <= set(before_tables)
    before = _counts(url)

    dry = run_cli(
        "privacy",
        "erase",
        "--email",
        person["email"],
        "--dry-run",
        env={"TOUCHPOINT_WAREHOUSE_URL": url},
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "raw.sendgrid_events: would remove" in dry.stdout and "nothing was changed" in dry.stdout
    assert _counts(url) == before

    run = run_cli(
        "privacy", "erase", "--email", person["email"], env={"TOUCHPOINT_WAREHOUSE_URL": url}
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    for table in ("raw.sendgrid_events", "raw.segment_events", "raw.hubspot_contacts"):
        assert f"{table}: removed" in run.stdout, run.stdout
    assert "none holds the person" in run.stdout, run.stdout
    after = _counts(url)
    assert after["marts.dim_customers"] == before["marts.dim_customers"] - 1
    assert after["marts.fct_touchpoints"] == before["marts.fct_touchpoints"] - person["touchpoints"]

    # the same sources again, read in full (the file ledger alone would skip the files read)
    local = replace(settings, landing_url=str(small_world["landing"]))
    stats = {}
    for source in ("crm", "email", "web"):
        stats.update(
            pipeline.extract(
                source,
                START,
                END,
                url,
                local,
                crm=CrmEndpoint(crm_server.url, "sim-token", max_requests_per_second=0),
                reread=True,
            )
        )
    for stream in ("sendgrid_events", "segment_events", "hubspot_contacts"):
        assert stats[stream]["erased"] > 0, stats[stream]
        assert stats[stream]["loaded"] == 0, (stream, stats[stream])
    pipeline.transform(url, local)

    with psycopg.connect(url) as conn:
        assert leftovers(conn, found) == {}
        for table in (
            "raw.hubspot_contacts",
            "raw.hubspot_calls",
            "raw.hubspot_meetings",
            "raw.hubspot_tickets",
            "raw.hubspot_feedback_submissions",
            "raw.hubspot_deals",
        ):
            assert (
                _one(
                    conn,
                    f"select count(*) from {table} where object_id = %s or payload::text ~ %s",
                    person["contact_id"],
                    f'"id": "{person["contact_id"]}"',
                )[0]
                == 0
            ), table
        assert (
            _one(
                conn,
                "select count(*) from intermediate.int_identifiers_mapped"
                " where identifier_type = 'hubspot_contact' and identifier = %s",
                person["contact_id"],
            )[0]
            == 0
        )
        recipient, last_error = _one(
            conn, "select recipient, last_error from reporting.deliveries where period = '2026-W41'"
        )
        assert (
            recipient == "erased:" + tombstone_hash("email", person["email"].lower())
            and last_error is None
        )
        _erased_at, identifiers = _one(conn, "select erased_at, identifiers from privacy.erasures")
        assert (
            identifiers == found.count() == _one(conn, "select count(*) from privacy.tombstones")[0]
        )
        # nothing personal in the tombstones themselves
        assert person["email"] not in str(
            conn.execute("select * from privacy.tombstones").fetchall()
        )
    assert _counts(url) == after


def test_erasing_someone_never_loaded_keeps_them_out_of_later_loads(fresh_db, tmp_path):
    batch = tmp_path / "batch.json"
    batch.write_text(
        '[{"email": "Zoe@Example.com", "event": "delivered", "timestamp": 1791000000,'
        ' "sg_event_id": "e1"},'
        ' {"email": "max@example.com", "event": "delivered", "timestamp": 1791000000,'
        ' "sg_event_id": "e2"}]'
    )
    run = run_cli(
        "privacy", "erase", "--email", "zoe@example.com", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db}
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "1 tombstone(s) written" in run.stdout and "rebuilt" not in run.stdout
    load = run_cli(
        "load", "email", str(batch), "--json", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db}
    )
    assert load.returncode == 0, load.stderr[-3000:]
    assert (
        load.stdout.strip().splitlines()[-1]
        == '{"loaded": 1, "duplicates": 0, "quarantined": 0, "erased": 1}'
    )
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select payload->>'email' from raw.sendgrid_events").fetchall() == [
            ("max@example.com",)
        ]
        assert conn.execute("select erased from raw._batches").fetchall() == [(1,)]


def test_erase_without_a_person_is_refused(fresh_db):
    run = run_cli("privacy", "erase", env={"TOUCHPOINT_WAREHOUSE_URL": fresh_db})
    assert run.returncode == 2 and "--email and/or --crm-id" in run.stderr
