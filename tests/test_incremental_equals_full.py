"""Incremental dbt runs over consecutive intervals build exactly the marts of one full refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from conftest import SIM_START, create_db, drop_db, mart_checksums
from touchpoint import pipeline
from touchpoint.extract.run import CrmEndpoint
from touchpoint.transform import run_dbt

pytestmark = pytest.mark.slow

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
CUTS = [START + timedelta(days=d) for d in (0, 6, 14)]  # two consecutive, uneven intervals (6 and 8 days)


@pytest.fixture(scope="module")
def two_warehouses(cluster_url, settings, small_world):
    from touchpoint_sim.crm_server import CrmData, CrmServer

    local = replace(settings, landing_url=str(small_world["landing"]))
    crm = CrmServer(CrmData.from_dir(small_world["sim"] / "crm"), port=0).start_in_thread()
    endpoint = CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0)
    incremental, full = create_db(cluster_url), create_db(cluster_url)
    try:
        for start, end in zip(CUTS, CUTS[1:], strict=False):
            for source in ("crm", "email", "web"):
                pipeline.extract(source, start, end, incremental, local, crm=endpoint)
            pipeline.transform(incremental, local)
        for source in ("crm", "email", "web"):
            pipeline.extract(source, CUTS[0], CUTS[-1], full, local, crm=endpoint)
        pipeline.transform(full, local)
        run_dbt(["build", "--full-refresh"], local.dbt_project_dir, full, local.var_dir)
        yield incremental, full
    finally:
        crm.shutdown()
        drop_db(cluster_url, incremental)
        drop_db(cluster_url, full)


def test_incremental_runs_give_the_same_marts_as_a_full_refresh(two_warehouses):
    incremental, full = two_warehouses
    by_increments, by_full_refresh = mart_checksums(incremental), mart_checksums(full)
    assert "fct_touchpoints" in by_full_refresh and by_full_refresh["fct_touchpoints"][0] > 0
    assert by_increments == by_full_refresh


def test_the_touchpoint_fact_is_really_incremental(two_warehouses):
    incremental, _ = two_warehouses
    with psycopg.connect(incremental) as conn:
        kind = conn.execute("select relkind from pg_class where oid = 'marts.fct_touchpoints'::regclass").fetchone()[0]
        indexes = conn.execute("select count(*) from pg_indexes where schemaname = 'marts'"
                               " and tablename = 'fct_touchpoints'").fetchone()[0]
    assert kind == "r" and indexes >= 3
