"""Incremental dbt runs over consecutive intervals build exactly the marts of one full refresh,
also when a later interval changes what earlier runs built: customers merge, an anonymous
device's history turns out to be a customer's, an event arrives a week late, a customer moves
to another region, CRM objects change (by hand and at random, from a seed) or are deleted.

``TOUCHPOINT_EQUALITY_SEED=N`` replays the scenario with other random edits."""

from __future__ import annotations

import itertools
import json
import os
import random
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
from touchpoint_sim.population import COUNTRIES, TICKET_CATEGORIES

pytestmark = pytest.mark.slow

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
# consecutive intervals: a full build of the first week, then Monday as the daily run builds it,
# then Tuesday and Wednesday in one run (as after a day whose run failed), each with random CRM
# edits, then the rest of the week, in which the hand-made changes arrive
CUTS = [START + timedelta(days=d) for d in (0, 7, 8, 10, 14)]
DAILY_RUNS = (2, 3)  # the weekday runs
ENGAGEMENT_MOVED_TO = CUTS[-2] + timedelta(hours=5)  # into the last interval
HUBSPOT = {obj.object_type: obj for obj in HUBSPOT_OBJECTS}
SEED = int(os.environ.get("TOUCHPOINT_EQUALITY_SEED", "20"))
RANDOM_EDITS_PER_RUN = 6
# the HubSpot object each kind of CRM event comes from
EVENT_OBJECTS = {
    "call": "calls",
    "meeting": "meetings",
    "crm_email": "emails",
    "note": "notes",
    "task": "tasks",
    "deal_created": "deals",
    "deal_closed_won": "deals",
    "ticket": "tickets",
    "feedback": "feedback_submissions",
    "contact": "contacts",
}


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _one(conn: psycopg.Connection, sql: str, *params):
    row = conn.execute(sql, params).fetchone()
    assert row is not None, f"the small world has no row for: {sql}"
    return row


def _newest_version(conn: psycopg.Connection, object_type: str, object_id: str) -> dict:
    """The newest raw version of a HubSpot object, as loaded."""
    (payload,) = _one(
        conn,
        f"select payload from raw.hubspot_{object_type} where object_id = %s"
        " order by event_time desc limit 1",
        object_id,
    )
    return payload


def _write_version(
    files: dict[str, Path], root: Path, object_type: str, record: dict, at: datetime, **properties
) -> None:
    """Append a new version of a HubSpot record, modified at ``at``, to its stream's file."""
    record = json.loads(json.dumps(record))
    record["properties"].update(properties)
    record["properties"][HUBSPOT[object_type].modified_property] = _iso(at)
    path = files.setdefault(f"hubspot_{object_type}", root / f"{root.name}_{object_type}.ndjson")
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")


def _random_time(rng: random.Random, at: datetime) -> datetime:
    """A time between the world's start and ``at``, to the second."""
    return START + timedelta(seconds=rng.randrange(int((at - START).total_seconds())))


def random_edits(
    url: str, at: datetime, root: Path, rng: random.Random
) -> tuple[dict[str, Path], list[str]]:
    """New versions, modified just before ``at``, of CRM objects the earlier runs built, picked
    and changed at random: an engagement or a ticket moved anywhere in the past, a deal won,
    lost or reopened, a meeting that did or did not take place, an answer re-scored, a contact
    that moved country. Returns the files and a line per edit (for a failure's message)."""
    files: dict[str, Path] = {}
    edits: list[str] = []
    with psycopg.connect(url) as conn:
        built = conn.execute(
            "select distinct split_part(source_event_id, ':', 1),"
            " split_part(source_event_id, ':', 2) from intermediate.int_events_classified"
            " where source = 'crm' and not is_removed order by 1, 2"
        ).fetchall()
        # CRM objects only (an inbox message never changes)
        objects = {(EVENT_OBJECTS[k], i) for k, i in built if k in EVENT_OBJECTS}
        picked = rng.sample(sorted(objects), RANDOM_EDITS_PER_RUN)
        for object_type, object_id in picked:
            record = _newest_version(conn, object_type, object_id)
            when = _iso(_random_time(rng, at))
            change: dict[str, object] = {
                "calls": lambda: {"hs_timestamp": when},
                "emails": lambda: {"hs_timestamp": when},
                "notes": lambda: {"hs_timestamp": when},
                "tasks": lambda: {"hs_timestamp": when},
                "meetings": lambda: rng.choice(
                    (
                        {"hs_timestamp": when},
                        {"hs_meeting_outcome": rng.choice(("COMPLETED", "NO_SHOW", "CANCELED"))},
                    )
                ),
                "deals": lambda: rng.choice(
                    (
                        {"dealstage": "closedwon", "closedate": when},
                        {"dealstage": "closedlost", "closedate": when},
                        {"dealstage": "contractsent"},
                    )
                ),
                "tickets": lambda: {
                    "createdate": when,
                    "hs_ticket_category": rng.choice(TICKET_CATEGORIES)[0],
                },
                "feedback_submissions": lambda: {
                    "hs_value": str(
                        rng.randint(0, 10)
                        if record["properties"].get("hs_survey_type") == "NPS"
                        else rng.randint(1, 5)
                    ),
                    "hs_submission_timestamp": when,
                },
                "contacts": lambda: {"country": rng.choice(COUNTRIES)},
            }[object_type]()
            edits.append(f"{object_type} {object_id}: {change}")
            _write_version(files, root, object_type, record, at, **change)
    return files, edits


def late_page_a_week_back(url: str, at: datetime, root: Path) -> tuple[dict[str, Path], str]:
    """A page view of a known web customer, seen a week before ``at`` but received only now: it
    falls in the week before, whose totals and trailing windows earlier runs built."""
    with psycopg.connect(url) as conn:
        (user,) = _one(
            conn,
            "select i.identifier from intermediate.int_identifiers_mapped as i"
            " where i.identifier_type = 'segment_user' and i.customer_key is not null"
            " order by i.first_seen_at desc, i.identifier limit 1",
        )
    page = {
        "type": "page",
        "messageId": "late-page-week-back",
        "userId": user,
        "anonymousId": "late-device-3",
        "timestamp": _iso(at - timedelta(days=7)),
        "receivedAt": _iso(at),
        "context": {
            "page": {"path": "/returns", "url": "https://shop.example/returns", "referrer": ""}
        },
        "properties": {"path": "/returns"},
    }
    path = root / "late_page.ndjson"
    path.write_text(json.dumps(page) + "\n")
    return {"segment": path}, user


def region_change(url: str, at: datetime, root: Path) -> tuple[dict[str, Path], str, str]:
    """The primary contact of a customer with touchpoints in both weeks moves to a country of
    another region: every week of theirs moves region."""
    with psycopg.connect(url) as conn:
        customer, contact, region = _one(
            conn,
            "select l.customer_key, l.contact_id, l.region"
            " from intermediate.int_customers_located as l"
            " where l.region <> 'Unknown' and (select count(distinct"
            " date_trunc('week', t.occurred_at)) from marts.fct_touchpoints as t"
            " where t.customer_key = l.customer_key) >= 2"
            " order by l.customer_key limit 1",
        )
        record = _newest_version(conn, "contacts", contact)
    files: dict[str, Path] = {}
    country, moved_to = ("JP", "APAC") if region != "APAC" else ("US", "Americas")
    _write_version(files, root, "contacts", record, at, country=country)
    return files, customer, moved_to


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
            _write_version(files, root, object_type, record, at, **properties)

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
            object_type = EVENT_OBJECTS[opener[0]]
            new_version(
                object_type,
                _newest_version(conn, object_type, opener[1]),
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
    rng = random.Random(SEED)
    landed: list[dict[str, Path]] = []  # every hand-made file, in the order it was loaded
    edits: list[str] = []
    made: set[str] = set()
    try:
        intervals = list(itertools.pairwise(CUTS))
        for number, (start, end) in enumerate(intervals, 1):
            for source in ("crm", "email", "web"):
                pipeline.extract(source, start, end, incremental, local, crm=endpoint)
            before = end - timedelta(seconds=1)
            news = []
            if number in DAILY_RUNS:
                # a minute before the hand-made changes, which may touch the same objects
                files, edited = random_edits(
                    incremental,
                    before - timedelta(minutes=1),
                    tmp_path_factory.mktemp(f"random{number}"),
                    rng,
                )
                news.append(files)
                edits += edited
            if number == DAILY_RUNS[0]:
                files, user = late_page_a_week_back(
                    incremental, before, tmp_path_factory.mktemp("week_back")
                )
                news.append(files)
                made.add(f"page_a_week_back:{user}")
            if number == DAILY_RUNS[1]:
                files, customer, region = region_change(
                    incremental, before, tmp_path_factory.mktemp("region")
                )
                news.append(files)
                made.add(f"region_changed:{customer}:{region}")
            if number == len(intervals):
                files, changed = late_changes(incremental, before, tmp_path_factory.mktemp("late"))
                news.append(files)
                made |= changed
            for files in news:
                load_late_changes(incremental, files)
            landed += news
            # as the ingest builds: its tests on the rows each build wrote
            pipeline.transform(incremental, local, daily=True)
            if number == 1:
                # the first week's report: its models first built, then built again over the
                # changes of several daily runs
                pipeline.build_weekly_models(incremental, local)
        # then a run whose only news is in HubSpot's archive
        deleted, gone = deletions(incremental, CUTS[-1], tmp_path_factory.mktemp("deleted"))
        load_late_changes(incremental, deleted)
        landed.append(deleted)
        made |= gone
        pipeline.transform(incremental, local, daily=True)
        # and the weekly report's run: its models, then every test on every row
        pipeline.build_weekly_models(incremental, local)
        assert pipeline.test_whole_tables(incremental, local) == []
        for source in ("crm", "email", "web"):
            pipeline.extract(source, CUTS[0], CUTS[-1], full, local, crm=endpoint)
        for files in landed:
            load_late_changes(full, files)
        pipeline.transform(full, local)
        from touchpoint.transform.dbt import run_dbt

        run_dbt(["build", "--full-refresh"], local.dbt_project_dir, full, local.var_dir)
        yield incremental, full, made, edits
    finally:
        crm.shutdown()
        drop_db(cluster_url, incremental)
        drop_db(cluster_url, full)


def test_incremental_runs_give_the_same_marts_as_a_full_refresh(two_warehouses):
    incremental, full, _, edits = two_warehouses
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
    differ = sorted(k for k in by_full_refresh if by_increments.get(k) != by_full_refresh[k])
    assert by_increments == by_full_refresh, (
        f"differ: {differ}; seed {SEED}, random edits:\n" + "\n".join(edits)
    )


def test_the_last_interval_really_changed_what_earlier_runs_built(two_warehouses):
    """The scenario is not vacuous: the last incremental run had to re-key, remove and move
    rows that earlier runs had written."""
    incremental, _, made, _ = two_warehouses
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
        # the analysts' map: the merged customer's old key leads to the key it has now
        mapped = conn.execute(
            "select count(*) from marts.dim_customer_key_changes as m"
            " join marts.dim_customers as c on c.customer_key = m.new_customer_key"
            " where not exists (select from marts.dim_customers as o"
            "                   where o.customer_key = m.old_customer_key)"
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
        week_back = conn.execute(
            "select count(*) from marts.fct_touchpoints"
            " where source_event_id = 'late-page-week-back' and occurred_at < %s",
            (CUTS[1],),
        ).fetchone()[0]
        (customer, region) = next(
            change.split(":")[1:] for change in made if change.startswith("region_changed:")
        )
        relocated = conn.execute(
            "select count(*) from marts.dim_customers where customer_key = %s and region = %s",
            (customer, region),
        ).fetchone()[0]
    assert merges > 0, "the alias should have merged two customers across runs"
    assert mapped > 0, "marts.dim_customer_key_changes should map the merged key to the kept one"
    assert removed >= 1, "the missed meeting should no longer be an event"
    assert moved >= 1, "the ticket should have moved in time"
    assert moved_later == 1, "the engagement should have moved to the last interval"
    assert rekeyed > 0, "events of earlier runs should have changed customer"
    assert late == 1, "the late page view should be a touchpoint"
    assert won >= 1, "the deal won in the first week should be a conversion"
    assert week_back == 1, "the page view received a week late should be in the first week"
    assert relocated == 1, "the customer should have moved region"


def test_a_deleted_object_takes_away_what_earlier_runs_built_from_it(two_warehouses):
    incremental, _, made, _ = two_warehouses
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
    incremental, _, _, _ = two_warehouses
    with psycopg.connect(incremental) as conn:
        kind = conn.execute(
            "select relkind from pg_class where oid = 'marts.fct_touchpoints'::regclass"
        ).fetchone()[0]
        indexes = conn.execute(
            "select count(*) from pg_indexes where schemaname = 'marts'"
            " and tablename = 'fct_touchpoints'"
        ).fetchone()[0]
    assert kind == "r" and indexes >= 3
