from datetime import UTC, date, datetime

import pytest

from touchpoint.config import load_settings
from touchpoint.errors import ConfigError
from touchpoint.intervals import daily_interval, week_start_of, weekly_interval


def test_settings_default_to_an_embedded_warehouse_on_a_non_default_port(monkeypatch):
    monkeypatch.delenv("TOUCHPOINT_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("TOUCHPOINT_PG_PORT", raising=False)
    settings = load_settings()
    assert settings.uses_embedded_warehouse
    assert settings.pg_port != 5432
    assert settings.resolved_warehouse_url.startswith("postgresql://")


def test_a_malformed_number_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("TOUCHPOINT_PG_PORT", "fifty")
    with pytest.raises(ConfigError, match="TOUCHPOINT_PG_PORT"):
        load_settings()


def test_dbt_runs_on_one_thread_per_core_and_logs_to_its_file_at_info(monkeypatch):
    import os

    from touchpoint.transform.dbt import dbt_run_env

    monkeypatch.delenv("TOUCHPOINT_DBT_THREADS", raising=False)
    monkeypatch.delenv("TOUCHPOINT_DBT_FILE_LOG_LEVEL", raising=False)
    env = dbt_run_env(load_settings())
    assert env["TOUCHPOINT_DBT_THREADS"] == str(os.cpu_count())
    assert env["DBT_LOG_LEVEL_FILE"] == "info"
    monkeypatch.setenv("TOUCHPOINT_DBT_THREADS", "3")
    monkeypatch.setenv("TOUCHPOINT_DBT_FILE_LOG_LEVEL", "DEBUG")
    env = dbt_run_env(load_settings())
    assert env["TOUCHPOINT_DBT_THREADS"] == "3"
    assert env["DBT_LOG_LEVEL_FILE"] == "debug"


@pytest.mark.parametrize(
    ("name", "value"),
    [("TOUCHPOINT_DBT_THREADS", "-1"), ("TOUCHPOINT_DBT_FILE_LOG_LEVEL", "verbose")],
)
def test_bad_dbt_settings_are_refused_with_the_variable_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_the_demo_start_must_be_a_monday(monkeypatch):
    from touchpoint_sim.settings import load_demo_settings

    monkeypatch.setenv("TOUCHPOINT_DEMO_START", "2026-10-06")
    with pytest.raises(ConfigError, match="Monday"):
        load_demo_settings()


def test_a_scheduled_daily_run_owns_its_data_interval():
    start, end = datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 6, tzinfo=UTC)
    assert daily_interval({}, start, end) == (start, end)


def test_a_run_with_an_empty_interval_owns_the_day_that_starts_at_its_date():
    moment = datetime(2026, 10, 5, tzinfo=UTC)
    assert daily_interval({"start": None, "end": None}, moment, moment) == (
        moment,
        datetime(2026, 10, 6, tzinfo=UTC),
    )


def test_explicit_params_override_the_interval():
    moment = datetime(2026, 10, 5, tzinfo=UTC)
    assert daily_interval({"start": "2026-09-01", "end": "2026-09-08"}, moment, moment) == (
        datetime(2026, 9, 1, tzinfo=UTC),
        datetime(2026, 9, 8, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-09-01"},
        {"start": "2026-09-08", "end": "2026-09-01"},
        {"start": "yesterday", "end": "2026-09-01"},
    ],
)
def test_bad_interval_params_are_refused_with_a_reason(params):
    moment = datetime(2026, 10, 5, tzinfo=UTC)
    with pytest.raises(ConfigError):
        daily_interval(params, moment, moment)


def test_the_weekly_report_covers_the_full_week_before_the_run():
    # A scheduled run on Monday 2026-11-02 07:00 Paris has the interval of the week before.
    start = datetime(2026, 10, 26, 6, tzinfo=UTC)
    end = datetime(2026, 11, 2, 6, tzinfo=UTC)
    assert weekly_interval({}, start, end) == (
        datetime(2026, 10, 26, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    # A manual run with an empty interval on a Wednesday reports the last full week.
    wednesday = datetime(2026, 11, 4, 9, tzinfo=UTC)
    assert weekly_interval({}, wednesday, wednesday)[0] == datetime(2026, 10, 26, tzinfo=UTC)
    assert week_start_of(wednesday) == date(2026, 11, 2)


def test_a_run_triggered_without_a_logical_date_owns_the_last_complete_period():
    from datetime import UTC, datetime

    from touchpoint.intervals import daily_interval, weekly_interval

    now = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # a Wednesday
    assert daily_interval({}, None, None, now=now) == (
        datetime(2026, 11, 24, tzinfo=UTC),
        datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert weekly_interval({}, None, None, now=now) == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
