"""The thin slice through dbt and Great Expectations on a small simulated world."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from helpers import SIM_START
from touchpoint import pipeline
from touchpoint.quality.gx_runner import GXValidationFailed, run_quality

START = datetime.combine(SIM_START, datetime.min.time(), UTC)
WEEK = timedelta(weeks=1)


@pytest.fixture
def built(built_world):
    return built_world


@pytest.fixture(scope="module")
def settings_module(settings, small_world):
    from dataclasses import replace

    return replace(settings, landing_url=str(small_world["landing"]))


def scalar(url: str, sql: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_every_source_reaches_the_touchpoint_fact(built):
    with psycopg.connect(built) as conn:
        sources = dict(
            conn.execute("select source, count(*) from marts.fct_touchpoints group by 1").fetchall()
        )
    assert set(sources) == {"web", "email", "crm"}
    assert all(n > 0 for n in sources.values())


def test_every_hubspot_contact_is_one_initial_contact_touchpoint(built, small_world):
    assert scalar(
        built,
        "select count(*) from marts.fct_touchpoints where source = 'crm'"
        " and source_event_type = 'contact_created'",
    ) == len(small_world["world"].contacts)


def test_the_weekly_aggregate_matches_the_fact(built):
    for week in (START, START + WEEK):
        in_fact = scalar(
            built,
            "select count(*) from marts.fct_touchpoints"
            " where occurred_at >= %s and occurred_at < %s",
            week,
            week + WEEK,
        )
        in_agg = scalar(
            built,
            "select touchpoints from marts.agg_touchpoints_weekly where grain = 'week'"
            " and region = '(all)' and week_start = %s",
            week.date(),
        )
        assert in_fact == in_agg > 0


def test_report_slices_add_up_to_the_whole(built):
    """Regions partition the week's touchpoints, business units partition a region's, and the
    funnel's regions partition its customers."""
    week = START.date()
    total = scalar(
        built,
        "select touchpoints from marts.agg_touchpoints_weekly"
        " where grain = 'week' and region = '(all)' and week_start = %s",
        week,
    )
    by_region = scalar(
        built,
        "select sum(touchpoints) from marts.agg_touchpoints_weekly"
        " where grain = 'week' and region <> '(all)' and week_start = %s",
        week,
    )
    by_unit = scalar(
        built,
        "select sum(touchpoints) from marts.agg_touchpoints_weekly"
        " where grain = 'business_unit' and region = '(all)' and week_start = %s",
        week,
    )
    regions = scalar(
        built,
        "select count(distinct region) from marts.agg_touchpoints_weekly where region <> '(all)'",
    )
    assert total == by_region == by_unit > 0 and regions >= 2
    in_fact = scalar(
        built,
        "select count(*) from marts.fct_touchpoints t"
        " join marts.dim_customers c using (customer_key)"
        " where c.region = 'EMEA' and t.occurred_at >= %s and t.occurred_at < %s",
        START,
        START + WEEK,
    )
    assert in_fact == scalar(
        built,
        "select touchpoints from marts.agg_touchpoints_weekly"
        " where grain = 'week' and region = 'EMEA' and week_start = %s",
        week,
    )
    entered = scalar(
        built,
        "select sum(customers_entered) from marts.agg_journey_funnel_weekly"
        " where region = '(all)' and business_unit = '(all)' and week_start = %s",
        week,
    )
    entered_by_region = scalar(
        built,
        "select sum(customers_entered) from marts.agg_journey_funnel_weekly"
        " where region <> '(all)' and business_unit = '(all)' and week_start = %s",
        week,
    )
    assert entered == entered_by_region > 0


def test_email_health_events_are_not_counted_as_touchpoints(built):
    assert (
        scalar(
            built,
            "select count(*) from marts.fct_touchpoints"
            " where source_event_type in ('processed', 'bounce', 'dropped')",
        )
        == 0
    )
    assert (
        scalar(
            built,
            "select count(*) from intermediate.int_events_classified"
            " where event_type = 'processed'",
        )
        > 0
    )


def test_the_quality_gate_passes_on_clean_data(built, settings):
    report = run_quality(
        built,
        settings.expectations_dir,
        settings.var_dir / "gx",
        START,
        START + WEEK,
        only=["fct_touchpoints"],
    )
    assert report.status == "pass", report.table()


@pytest.mark.slow
def test_the_quality_gate_closes_on_an_empty_interval(built, settings):
    empty = START + 10 * WEEK
    with pytest.raises(GXValidationFailed, match="volume_nonzero"):
        pipeline.check_quality(empty, empty + WEEK, built, settings)


@pytest.mark.slow
def test_dbt_docs_generate_works(built, settings_module):
    from touchpoint.transform.dbt import run_dbt, target_dir

    run_dbt(["docs", "generate"], settings_module.dbt_project_dir, built, settings_module.var_dir)
    catalog = target_dir(settings_module.var_dir, built) / "catalog.json"
    assert catalog.exists() and "fct_touchpoints" in catalog.read_text()


@pytest.mark.slow
def test_nulls_in_columns_declared_not_null_fail_the_build_naming_each_column(
    built_copy, settings_module
):
    """The model-level not_null_columns test (one scan for all of a model's not-null columns)
    fails as dbt's per-column not_null did, and its rows say which column holds how many nulls."""
    from touchpoint.transform.dbt import DbtFailed, run_dbt, target_dir

    with psycopg.connect(built_copy, autocommit=True) as conn:
        conn.execute(
            "update marts.fct_touchpoints set channel = null, journey_stage = null"
            " where touchpoint_id in (select touchpoint_id from marts.fct_touchpoints limit 3)"
        )
        conn.execute(
            "update marts.fct_touchpoints set journey_stage = null"
            " where touchpoint_id in (select touchpoint_id from marts.fct_touchpoints"
            " where journey_stage is not null limit 2)"
        )
    project, var = settings_module.dbt_project_dir, settings_module.var_dir
    with pytest.raises(DbtFailed, match="not_null_columns_fct_touchpoints"):
        run_dbt(
            ["test", "--select", "fct_touchpoints,test_name:not_null_columns"],
            project,
            built_copy,
            var,
        )
    # the test's query, run again: one row per column that holds nulls
    # (dbt cuts a long test name and adds a hash to name the file)
    compiled = target_dir(var, built_copy) / "compiled"
    (executed,) = compiled.rglob("not_null_columns_fct_touchpoin*")
    with psycopg.connect(built_copy) as conn:
        rows = sorted(conn.execute(executed.read_text()).fetchall())
    assert rows == [("channel", 3), ("journey_stage", 5)]


def _indexed_columns(conn: psycopg.Connection, table: str) -> set[str]:
    return {
        row[0]
        for row in conn.execute(
            "select string_agg(a.attname, ',' order by k.n) from pg_index as i"
            " cross join unnest(i.indkey) with ordinality as k(attnum, n)"
            " join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum"
            " where i.indrelid = %s::regclass group by i.indexrelid",
            (table,),
        )
    }


def test_indexes_added_later_reach_tables_built_before_them(built_copy, settings_module):
    """A warehouse built before an index was declared gets it on its next run: a raw stream's
    event-time index (which the quality gate reads a day by) from the loader's schema check,
    a model's configured index from its next incremental build."""
    from touchpoint.transform.dbt import run_dbt
    from touchpoint.warehouse.connection import connect
    from touchpoint.warehouse.schema import ensure_schema

    with psycopg.connect(built_copy, autocommit=True) as conn:
        conn.execute("drop index raw.segment_events_event_time_idx")
        for (index,) in conn.execute(
            "select indexrelid::regclass::text from pg_index"
            " where indrelid = 'marts.fct_attribution'::regclass and indnatts = 1"
            " and indkey[0] = (select attnum from pg_attribute where attname = 'converted_at'"
            " and attrelid = 'marts.fct_attribution'::regclass)"
        ).fetchall():
            conn.execute(f"drop index {index}")
        assert "event_time" not in _indexed_columns(conn, "raw.segment_events")
        assert "converted_at" not in _indexed_columns(conn, "marts.fct_attribution")
    with connect(built_copy) as conn:
        ensure_schema(conn)
    run_dbt(
        ["run", "--select", "fct_attribution"],
        settings_module.dbt_project_dir,
        built_copy,
        settings_module.var_dir,
    )
    with psycopg.connect(built_copy) as conn:
        assert "event_time" in _indexed_columns(conn, "raw.segment_events")
        assert "converted_at" in _indexed_columns(conn, "marts.fct_attribution")
