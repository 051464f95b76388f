"""Incremental dbt runs over consecutive intervals build exactly the marts of one full refresh,
also when a later interval changes what earlier runs built: customers merge, an anonymous
device's history turns out to be a customer's, an event arrives late, CRM objects change or
are deleted."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from helpers import SIM_START, create_db, drop_db, mart_checksums
from touchpoint import pipeline
from touchpoint.extract.run import CrmEndpoint, load_file
from touchpoint.sources.catalog import HUBSPOT_OBJECTS, SEGMENT_EVENTS
from touchpoint.warehouse.connection import connect

pytestmark = pytest.mark.slow

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
# consecutive, uneven intervals (6, 3, 1 and 4 days): the first build is a full one, the others
# are incremental; the hand-made changes arrive in the last one
CUTS = [START + timedelta(days=d) for d in (0, 6, 9, 10, 14)]
ENGAGEMENT_MOVED_TO = CUTS[-2] + timedelta(hours=5)  # into the last interval
HUBSPOT = {obj.object_type: obj for obj in HUBSPOT_OBJECTS}


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _one(conn: psycopg.Connection, sql: str, *params):
    row = conn.execute(sql, params).fetchone()
    assert row is not None, f"the small world has no row for: {sql}"
    return row


def late_changes(url: str, at: datetime, root: Path) -> tuple[dict[str, Path], set[str]]:
    """Hand-made records of the last interval that change history the earlier runs built, as
    landing files per stream: Segment events (an alias that merges two known customers, an
    identify that gives a customer an anonymous device's past, a page view that arrives a
    week late) and new versions of HubSpot objects (a won deal no longer won, a deal won
    in the first week after all, a completed meeting that did not take place, an engagement
    that opened a journey stay moved days later, a ticket moved in time and category, a survey
    answer re-scored, a contact whose address changed), each when the world has such an object.
    Returns the files and the names of the changes made."""
    stamp = _iso(at)
    files: dict[str, Path] = {}
    made: set[str] = set()
    with psycopg.connect(url) as conn:
        # two customers seen on the web before, each with a userId of their own
        users = conn.execute(
            "select i.identifier, i.customer_key from intermediate.int_identifiers_mapped as i"
            " where i.identifier_type = 'segment_user' and i.customer_key is not null"
            "   and exists (select 1 from marts.fct_touchpoints t"
            " where t.customer_key = i.customer_key)"
            " order by i.first_seen_at, i.identifier limit 40"
        ).fetchall()
        by_customer = {key: user for user, key in reversed(users)}
        assert len(by_customer) >= 2, "the small world needs two web customers"
        (_, keep_user), (_, merged_user) = sorted(by_customer.items())[:2]
        (device,) = _one(
            conn,
            "select i.identifier from intermediate.int_identifiers_mapped as i"
            " join staging.stg_segment__events as e on e.anonymous_id = i.identifier"
            " where i.identifier_type = 'segment_anonymous' and i.customer_key is null"
            "   and e.event_type = 'page'"
            " order by e.occurred_at limit 1",
        )
        (old_page_at,) = _one(conn, "select min(occurred_at) from staging.stg_segment__events")
        segment = [
            {
                "type": "alias",
                "messageId": "late-alias",
                "userId": keep_user,
                "previousId": merged_user,
                "anonymousId": "late-device-1",
                "timestamp": stamp,
                "receivedAt": stamp,
            },
            {
                "type": "identify",
                "messageId": "late-identify",
                "userId": keep_user,
                "anonymousId": device,
                "timestamp": stamp,
                "receivedAt": stamp,
            },
            {
                "type": "page",
                "messageId": "late-page",
                "userId": merged_user,
                "anonymousId": "late-device-2",
                "timestamp": _iso(old_page_at + timedelta(hours=1)),
                "receivedAt": stamp,
                "context": {
                    "page": {
                        "path": "/pricing",
                        "url": "https://shop.example/pricing",
                        "referrer": "",
                    }
                },
                "properties": {"path": "/pricing"},
            },
        ]
        files["segment"] = root / "late_segment.ndjson"
        files["segment"].write_text("".join(json.dumps(e) + "\n" for e in segment))

        def latest(object_type: str, event: str, pick: str = "min") -> dict | None:
            """The newest raw version of the first (pick: or last) object whose event
            `event:<id>` the earlier runs built (and still hold)."""
            row = conn.execute(
                f"select r.payload from raw.hubspot_{object_type} as r"
                f" where r.object_id = (select {pick}(split_part(e.source_event_id, ':', 2))"
                f"                      from intermediate.int_events_classified as e"
                "                      where e.source = 'crm' and e.event_type = %s"
                " and not e.is_removed)"
                " order by r.event_time desc limit 1",
                (event,),
            ).fetchone()
            return row[0] if row else None

        def new_version(object_type: str, record: dict | None, change: str, **properties) -> None:
            if record is None:
                return
            made.add(change)
            record = json.loads(json.dumps(record))
            record["properties"].update(properties)
            record["properties"][HUBSPOT[object_type].modified_property] = stamp
            path = files.setdefault(f"hubspot_{object_type}", root / f"late_{object_type}.ndjson")
            with path.open("a") as out:
                out.write(json.dumps(record) + "\n")

        new_version(
            "deals", latest("deals", "deal_closed_won"), "deal_lost", dealstage="closedlost"
        )
        # a deal that, it turns out, was won on the first day: a purchase arriving late, which
        # becomes its customer's first, so the stage of their later touchpoints moves
        won_at = CUTS[0] + timedelta(hours=2)
        deal = conn.execute(
            "select r.payload from raw.hubspot_deals as r where r.object_id = ("
            "  select min(d.deal_id) from staging.stg_hubspot__deals as d"
            "  join intermediate.int_identifiers_mapped as i"
            "    on i.identifier_type = 'hubspot_contact' and i.identifier = d.contact_id"
            "  where not d.is_closed_won and i.customer_key is not null"
            "    and exists (select 1 from intermediate.int_events_classified as e"
            "                where e.customer_key = i.customer_key"
            " and e.journey_stage = 'by_lifecycle'"
            "                  and e.is_touchpoint and e.occurred_at > %(won_at)s)"
            "    and not exists (select 1 from marts.fct_conversions as c"
            "                    where c.customer_key = i.customer_key"
            " and c.converted_at <= %(won_at)s))"
            " order by r.event_time desc limit 1",
            {"won_at": won_at},
        ).fetchone()
        new_version(
            "deals",
            deal[0] if deal else None,
            "deal_won_late",
            dealstage="closedwon",
            closedate=_iso(won_at),
        )
        missed_meeting = latest("meetings", "meeting")
        new_version("meetings", missed_meeting, "meeting_missed", hs_meeting_outcome="NO_SHOW")
        # an engagement (meeting, call or email) that entered its customer into a journey
        # stage, moved to the last interval past the touchpoints they met in between: what was
        # derived from its old time on (the stay it opened) must be re-derived, from the
        # earliest time it ever had
        missed = str((missed_meeting or {}).get("id"))
        opener = conn.execute(
            "select e.event_type, split_part(e.source_event_id, ':', 2)"
            " from intermediate.int_events_classified as e"
            " where e.source = 'crm' and e.event_type in ('meeting', 'call', 'crm_email')"
            "   and e.is_touchpoint and not e.is_removed"
            "   and e.source_event_id <> 'meeting:' || %(missed)s"
            "   and exists (select 1 from marts.fct_journeys as j"
            "               where j.entry_touchpoint_id = e.event_key)"
            "   and exists (select 1 from intermediate.int_events_classified as later"
            "               where later.customer_key = e.customer_key and later.is_touchpoint"
            "                 and later.occurred_at > e.occurred_at + interval '1 day'"
            "                 and later.occurred_at < %(moved_to)s)"
            " order by e.occurred_at, e.source_event_id limit 1",
            {"moved_to": ENGAGEMENT_MOVED_TO, "missed": missed},
        ).fetchone()
        if opener:
            object_type = {"meeting": "meetings", "call": "calls", "crm_email": "emails"}[opener[0]]
            (payload,) = _one(
                conn,
                f"select payload from raw.hubspot_{object_type} where object_id = %s"
                " order by event_time desc limit 1",
                opener[1],
            )
            new_version(
                object_type,
                payload,
                "engagement_moved_later",
                hs_timestamp=_iso(ENGAGEMENT_MOVED_TO),
            )
        ticket = latest("tickets", "ticket")
        new_version(
            "tickets",
            ticket,
            "ticket_moved",
            hs_ticket_category="BILLING",
            createdate=_iso(CUTS[1] + timedelta(hours=3)),
        )
        new_version(
            "feedback_submissions",
            latest("feedback_submissions", "feedback"),
            "answer_rescored",
            hs_value="1",
        )
        new_version(
            "contacts",
            latest("contacts", "contact_created"),
            "address_changed",
            email="changed.address@example.com",
        )
    return files, made


def deletions(url: str, at: datetime, root: Path) -> tuple[dict[str, Path], set[str]]:
    """A won deal, a ticket, a survey answer and a contact the earlier runs built, deleted in
    HubSpot: their deletions as its archive lists them (no associations), as landing files."""
    files: dict[str, Path] = {}
    made: set[str] = set()
    with psycopg.connect(url) as conn:
        for object_type, event in (
            ("deals", "deal_closed_won"),
            ("tickets", "ticket"),
            ("feedback_submissions", "feedback"),
            ("contacts", "contact_created"),
        ):
            row = conn.execute(
                f"select r.payload from raw.hubspot_{object_type} as r"
                " where r.object_id = (select max(split_part(e.source_event_id, ':', 2))"
                "                      from intermediate.int_events_classified as e"
                "                      where e.source = 'crm' and e.event_type = %s"
                " and not e.is_removed)"
                " order by r.event_time desc limit 1",
                (event,),
            ).fetchone()
            assert row is not None, f"the small world has no {event} to delete"
            record = row[0]
            made.add(f"deleted:{object_type}:{record['id']}")
            archived = {k: v for k, v in record.items() if k != "associations"}
            archived |= {"archived": True, "archivedAt": _iso(at)}
            path = files.setdefault(
                f"hubspot_{object_type}", root / f"deleted_{object_type}.ndjson"
            )
            with path.open("a") as out:
                out.write(json.dumps(archived) + "\n")
    return files, made


def load_late_changes(url: str, files: dict[str, Path]) -> None:
    with connect(url) as conn:
        for name, path in files.items():
            stream = (
                SEGMENT_EVENTS
                if name == "segment"
                else HUBSPOT[name.removeprefix("hubspot_")].stream
            )
            stats = load_file(conn, stream, str(path))
            assert stats.quarantined == 0 and stats.loaded > 0, (name, stats)


@pytest.fixture(scope="module")
def two_warehouses(cluster_url, settings, small_world, tmp_path_factory):
    from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer

    local = replace(settings, landing_url=str(small_world["landing"]))
    crm = CrmServer(
        CrmData.from_dir(small_world["sim"] / "crm"), port=0, **NO_LIMITS
    ).start_in_thread()
    endpoint = CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0)
    incremental, full = create_db(cluster_url), create_db(cluster_url)
    try:
        intervals = list(itertools.pairwise(CUTS))
        for number, (start, end) in enumerate(intervals, 1):
            for source in ("crm", "email", "web"):
                pipeline.extract(source, start, end, incremental, local, crm=endpoint)
            if number == len(intervals):
                files, made = late_changes(
                    incremental, end - timedelta(seconds=1), tmp_path_factory.mktemp("late")
                )
                load_late_changes(incremental, files)
            # as the ingest builds: its tests on the rows each build wrote
            pipeline.transform(incremental, local, daily=True)
        # then a run whose only news is in HubSpot's archive
        deleted, gone = deletions(incremental, CUTS[-1], tmp_path_factory.mktemp("deleted"))
        load_late_changes(incremental, deleted)
        pipeline.transform(incremental, local, daily=True)
        # and every test on every row, as the weekly report's run does
        pipeline.test_whole_tables(incremental, local)
        for source in ("crm", "email", "web"):
            pipeline.extract(source, CUTS[0], CUTS[-1], full, local, crm=endpoint)
        load_late_changes(full, files)
        load_late_changes(full, deleted)
        pipeline.transform(full, local)
        from touchpoint.transform.dbt import run_dbt

        run_dbt(["build", "--full-refresh"], local.dbt_project_dir, full, local.var_dir)
        yield incremental, full, made | gone
    finally:
        crm.shutdown()
        drop_db(cluster_url, incremental)
        drop_db(cluster_url, full)


def test_incremental_runs_give_the_same_marts_as_a_full_refresh(two_warehouses):
    incremental, full, _ = two_warehouses
    # the marts, and the weekly sums and signal units the report's numbers are made of
    also = (
        "intermediate.int_weekly_totals",
        "intermediate.int_signal_units_weekly",
        "intermediate.int_signal_measures_weekly",
    )
    zeros = ("intermediate.int_weekly_totals",)
    by_increments = mart_checksums(incremental, also, sums_of_deltas=zeros)
    by_full_refresh = mart_checksums(full, also, sums_of_deltas=zeros)
    assert "fct_touchpoints" in by_full_refresh and by_full_refresh["fct_touchpoints"][0] > 0
    assert by_increments == by_full_refresh


def test_the_last_interval_really_changed_what_earlier_runs_built(two_warehouses):
    """The scenario is not vacuous: the last incremental run had to re-key, remove and move
    rows that earlier runs had written."""
    incremental, _, made = two_warehouses
    assert {
        "deal_won_late",
        "meeting_missed",
        "engagement_moved_later",
        "ticket_moved",
        "address_changed",
    } <= made, made
    with psycopg.connect(incremental) as conn:
        merges = conn.execute(
            "select count(*) from intermediate.int_identity_key_changes"
        ).fetchone()[0]
        removed = conn.execute(
            "select count(*) from intermediate.int_events_classified where is_removed"
        ).fetchone()[0]
        moved = conn.execute(
            "select count(*) from intermediate.int_events_classified"
            " where cardinality(former_occurred_ats) > 0"
        ).fetchone()[0]
        rekeyed = conn.execute(
            "select count(*) from intermediate.int_events_classified"
            " where cardinality(former_customer_keys) > 0 or"
            " (_inserted_at < _updated_at and customer_key is not null)"
        ).fetchone()[0]
        moved_later = conn.execute(
            "select count(*) from intermediate.int_events_classified"
            " where event_type in ('meeting', 'call', 'crm_email') and occurred_at = %s"
            " and former_occurred_ats[1] < occurred_at - interval '1 day'",
            (ENGAGEMENT_MOVED_TO,),
        ).fetchone()[0]
        late = conn.execute(
            "select count(*) from marts.fct_touchpoints where source_event_id = 'late-page'"
        ).fetchone()[0]
        won = conn.execute(
            "select count(*) from marts.fct_conversions"
            " where source_event_id like 'deal_closed_won:%'"
        ).fetchone()[0]
    assert merges > 0, "the alias should have merged two customers across runs"
    assert removed >= 1, "the missed meeting should no longer be an event"
    assert moved >= 1, "the ticket should have moved in time"
    assert moved_later == 1, "the engagement should have moved to the last interval"
    assert rekeyed > 0, "events of earlier runs should have changed customer"
    assert late == 1, "the late page view should be a touchpoint"
    assert won >= 1, "the deal won in the first week should be a conversion"


def test_a_deleted_object_takes_away_what_earlier_runs_built_from_it(two_warehouses):
    incremental, _, made = two_warehouses
    deleted = dict(change.split(":")[1:] for change in made if change.startswith("deleted:"))
    assert set(deleted) == {"deals", "tickets", "feedback_submissions", "contacts"}, made
    with psycopg.connect(incremental) as conn:
        gone = {
            "conversion": conn.execute(
                "select count(*) from marts.fct_conversions where source_event_id = %s",
                (f"deal_closed_won:{deleted['deals']}",),
            ).fetchone()[0],
            "touchpoints of the deal": conn.execute(
                "select count(*) from marts.fct_touchpoints where source_event_id in (%s, %s)",
                (f"deal_created:{deleted['deals']}", f"deal_closed_won:{deleted['deals']}"),
            ).fetchone()[0],
            "credit": conn.execute(
                "select count(*) from marts.fct_attribution where conversion_id = md5(%s)",
                (f"crm:deal_closed_won:{deleted['deals']}",),
            ).fetchone()[0],
            "case": conn.execute(
                "select count(*) from marts.fct_support_cases where case_id = %s",
                (deleted["tickets"],),
            ).fetchone()[0],
            "answer": conn.execute(
                "select count(*) from marts.fct_feedback where feedback_id = %s",
                (deleted["feedback_submissions"],),
            ).fetchone()[0],
            "contact created": conn.execute(
                "select count(*) from marts.fct_touchpoints where source_event_id = %s",
                (f"contact:{deleted['contacts']}",),
            ).fetchone()[0],
        }
        removed = conn.execute(
            "select count(*) from intermediate.int_events_classified"
            " where is_removed and source_event_id = %s",
            (f"deal_closed_won:{deleted['deals']}",),
        ).fetchone()[0]
        (archived,) = conn.execute(
            "select count(*) from staging.stg_hubspot__deals where deal_id = %s and is_archived"
            " and contact_id is not null",
            (deleted["deals"],),
        ).fetchone()
    assert gone == dict.fromkeys(gone, 0), gone
    assert removed == 1, "the deleted deal's conversion was built by an earlier run"
    assert archived == 1, "staged as deleted, with its last live version's contact"


def test_the_touchpoint_fact_is_really_incremental(two_warehouses):
    incremental, _, _ = two_warehouses
    with psycopg.connect(incremental) as conn:
        kind = conn.execute(
            "select relkind from pg_class where oid = 'marts.fct_touchpoints'::regclass"
        ).fetchone()[0]
        indexes = conn.execute(
            "select count(*) from pg_indexes where schemaname = 'marts'"
            " and tablename = 'fct_touchpoints'"
        ).fetchone()[0]
    assert kind == "r" and indexes >= 3
