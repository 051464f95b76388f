"""The daily build's data tests read only the rows the latest build wrote (dbt_project/macros/
test_scope.sql); the weekly task's whole-table tests read every row."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from touchpoint import pipeline
from touchpoint.transform.dbt import DbtFailed, run_dbt

DAMAGED_TEST = "accepted_values_fct_touchpoints_interaction__direct__indirect"


def test_daily_tests_read_what_the_build_wrote_and_the_weekly_ones_everything(
    built_copy: str, settings, small_world
) -> None:
    local = replace(settings, landing_url=str(small_world["landing"]))

    def scoped_tests_of_fct_touchpoints() -> None:
        run_dbt(
            ["test", "--select", "fct_touchpoints", "--vars", '{"test_rows": "written"}'],
            local.dbt_project_dir,
            built_copy,
            local.var_dir,
        )

    # a build on this cluster marks where its rows begin (the copy may come from another's dump)
    run_dbt(
        ["run", "--select", "agg_customer_health"], local.dbt_project_dir, built_copy, local.var_dir
    )
    scoped_tests_of_fct_touchpoints()  # nothing written since that build is wrong
    with psycopg.connect(built_copy) as conn:
        conn.execute(
            "update marts.fct_touchpoints set interaction = 'sideways' where touchpoint_id ="
            " (select min(touchpoint_id) from marts.fct_touchpoints)"
        )
    # written after the latest build's start: the daily scope reads it
    with pytest.raises(DbtFailed, match=DAMAGED_TEST):
        scoped_tests_of_fct_touchpoints()
    # a daily build with nothing new rewrites no touchpoint: its tests pass without reading it
    pipeline.transform(built_copy, local, daily=True)
    # the weekly whole-table tests find it, as a failure of the quality gate
    failures = pipeline.test_whole_tables(built_copy, local)
    assert [f["rule_id"] for f in failures] == [f"dbt.{DAMAGED_TEST}"], failures
    assert failures[0]["observed"] == "1 failing row(s)"
    gate = pipeline.gate_with_tests({"status": "pass", "failures": []}, failures)
    assert gate["status"] == "fail"
