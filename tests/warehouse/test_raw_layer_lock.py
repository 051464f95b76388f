"""Loads and dbt builds on one warehouse take turns (``touchpoint.warehouse.locks``): a build
waits for the loads in flight, so a load that commits late is still staged, and a load waits
for a build, each saying so in its log."""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from touchpoint.extract.loader import RawLoader
from touchpoint.sources.catalog import SEGMENT_EVENTS
from touchpoint.sources.stream import key_record
from touchpoint.transform.dbt import run_dbt
from touchpoint.warehouse.locks import raw_layer_alone


def _event(message_id: str) -> dict[str, object]:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": "late-device",
        "timestamp": "2026-10-12T09:00:00Z",
        "properties": {"path": "/pricing"},
    }


def test_a_build_waits_for_a_load_in_flight_and_stages_what_it_committed(
    built_copy, settings, caplog
):
    built: list[float] = []
    with psycopg.connect(built_copy) as conn, RawLoader(conn, SEGMENT_EVENTS, "late load") as load:
        record = key_record(SEGMENT_EVENTS, _event("committed-late"), "test")
        assert record is not None
        load.add(record)
        load.flush()  # written, not yet committed: the loader holds the raw layer shared
        with caplog.at_level(logging.WARNING, logger="touchpoint.warehouse.locks"):
            # the staging model that reads the stream: what the lock protects (run_dbt takes it)
            build = threading.Thread(
                target=lambda: (
                    run_dbt(
                        ["run", "--select", "stg_segment__events"],
                        settings.dbt_project_dir,
                        built_copy,
                        settings.var_dir,
                    ),
                    built.append(time.monotonic()),
                )
            )
            build.start()
            time.sleep(2)
            assert built == [], "the build must wait for the load in flight"
            finished_load = time.monotonic()
    build.join(timeout=300)
    assert built and built[0] > finished_load
    assert any("waiting for the loads in flight" in r.getMessage() for r in caplog.records)
    with psycopg.connect(built_copy) as conn:
        staged = conn.execute(
            "select count(*) from staging.stg_segment__events where message_id = 'committed-late'"
        ).fetchone()[0]
    assert staged == 1


def test_a_load_waits_for_a_build_and_says_so(fresh_db, caplog):
    started = threading.Event()
    release = threading.Event()

    def build() -> None:
        with raw_layer_alone(fresh_db, "a build in a test"):
            started.set()
            release.wait(10)

    holder = threading.Thread(target=build)
    holder.start()
    assert started.wait(10)
    threading.Timer(1.5, release.set).start()
    begun = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="touchpoint.warehouse.locks"),
        psycopg.connect(fresh_db) as conn,
    ):
        from touchpoint.warehouse.schema import ensure_schema

        ensure_schema(conn)
        conn.commit()
        with RawLoader(conn, SEGMENT_EVENTS, "a load in a test") as load:
            record = key_record(SEGMENT_EVENTS, _event("after-the-build"), "test")
            assert record is not None
            load.add(record)
    holder.join(10)
    assert time.monotonic() - begun >= 1.0
    waiting = [m for r in caplog.records if "waiting for the raw layer" in (m := r.getMessage())]
    assert waiting and "a build (pid" in waiting[0], waiting
    assert load.stats.loaded == 1
