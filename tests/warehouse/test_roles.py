"""Least-privilege roles (real Postgres, real dbt): loader writes raw, transformer runs dbt and the
checks, analyst reads the marts without raw and without direct identifiers, reporter reads the
marts and writes the send log; and each pipeline stage runs as its own role."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import errors

from helpers import FIXTURES, REPO, SIM_START, run_cli
from touchpoint import pipeline
from touchpoint.delivery.smtp import SmtpSettings
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema

ROLES = ("loader", "transformer", "analyst", "reporter")
#: direct identifiers the analyst must never read, named here rather than derived from the
#: YAML, so that unmarking one (or breaking the grant macro) fails a test
KNOWN_IDENTIFIERS = [
    ("dim_customers", "email"),
    ("dim_customers", "hubspot_contact_id"),
    ("dim_customers", "display_name"),
    ("fct_sessions", "anonymous_id"),
    ("fct_sessions", "visitor_id"),
]


def as_role(url: str, role: str) -> psycopg.Connection:
    return connect(url, role=role, autocommit=True)


def denied(url: str, role: str, statement: str) -> bool:
    """Whether ``role`` is refused ``statement`` for want of a privilege (any other error fails)."""
    with as_role(url, role) as conn:
        try:
            conn.execute(statement)
        except errors.InsufficientPrivilege:
            return True
    return False


def identifier_pattern(settings) -> re.Pattern[str]:
    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text())
    return re.compile(project["vars"]["identifier_column_pattern"])


def declared_identifier(column: dict) -> bool | None:
    meta = {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}
    return meta.get("identifier")


def mart_columns_declared(manifest: Path) -> dict[str, dict[str, dict]]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {
        n["name"]: n["columns"]
        for n in nodes
        if n["resource_type"] == "model" and n["schema"] == "marts"
    }


def warehouse_mart_columns(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select table_name, column_name from information_schema.columns"
            " where table_schema = 'marts' order by 1, 2"
        ).fetchall()


# -- the roles ----------------------------------------------------------------------------------
def test_the_four_stage_roles_exist_and_none_can_log_in(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        rows = dict(
            conn.execute(
                "select rolname, rolcanlogin from pg_roles where rolname = any(%s)", (list(ROLES),)
            )
        )
    assert rows == dict.fromkeys(ROLES, False)


def test_making_sure_of_the_schema_twice_on_a_stage_connection_keeps_the_stage_role(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
    with connect(fresh_db, role="loader") as conn:
        ensure_schema(conn)  # runs its DDL as the owner, which the loader could not
        conn.execute("select 1")  # inside a transaction: ensure_schema is a savepoint now
        ensure_schema(conn)
        assert conn.execute("select current_user").fetchone() == ("loader",)
        conn.commit()
        assert conn.execute("select current_user, session_user").fetchone() == (
            "loader",
            "touchpoint",
        )


# -- what each role may do ----------------------------------------------------------------------
def test_the_analyst_cannot_read_raw_staging_or_intermediate(built_world):
    assert denied(built_world, "analyst", "select count(*) from raw.segment_events")
    assert denied(built_world, "analyst", "select count(*) from raw._batches")
    assert denied(built_world, "analyst", "select count(*) from staging.stg_segment__events")
    assert denied(
        built_world, "analyst", "select count(*) from intermediate.int_identifiers_mapped"
    )


def test_the_analyst_reads_the_marts_but_not_their_identifier_columns(built_world):
    for table, column in KNOWN_IDENTIFIERS:
        assert denied(built_world, "analyst", f"select {column} from marts.{table}"), (
            f"{table}.{column}"
        )
    assert denied(built_world, "analyst", "select * from marts.dim_customers")
    with as_role(built_world, "analyst") as conn:
        customers = conn.execute(
            "select count(*), count(distinct lifecycle_stage) from marts.dim_customers"
            " where customer_key is not null"
        ).fetchone()
        touchpoints = conn.execute("select count(*) from marts.fct_touchpoints").fetchone()
        weekly = conn.execute("select count(*) from marts.agg_touchpoints_weekly").fetchone()
    assert customers[0] > 0 and customers[1] > 0
    assert touchpoints[0] > 0 and weekly[0] > 0


def test_every_mart_column_is_the_analysts_unless_it_is_a_direct_identifier(
    built_world, settings, dbt_manifest
):
    """The grants on the built marts, column by column, against the YAML's decisions and, for a
    column without one, the name pattern (the safe default for a model added later)."""
    declared, pattern = mart_columns_declared(dbt_manifest), identifier_pattern(settings)
    columns = warehouse_mart_columns(built_world)
    assert {t for t, _ in columns} >= {
        "dim_customers",
        "fct_touchpoints",
        "fct_sessions",
        "agg_touchpoints_weekly",
    }
    with psycopg.connect(built_world) as conn:
        wrong = []
        for table, column in columns:
            marked = declared_identifier(declared.get(table, {}).get(column, {}))
            identifier = marked if marked is not None else bool(pattern.match(column))
            analyst, reporter = conn.execute(
                "select has_column_privilege('analyst', %(t)s, %(c)s, 'select'),"
                " has_column_privilege('reporter', %(t)s, %(c)s, 'select')",
                {"t": f"marts.{table}", "c": column},
            ).fetchone()
            if analyst == identifier or not reporter:
                wrong.append(
                    f"{table}.{column}: identifier={identifier} analyst={analyst}"
                    f" reporter={reporter}"
                )
    assert not wrong, wrong


def test_every_mart_column_named_like_an_identifier_says_whether_it_is_one(
    built_world, settings, dbt_manifest
):
    declared, pattern = mart_columns_declared(dbt_manifest), identifier_pattern(settings)
    unmarked = [
        f"{t}.{c}"
        for t, c in warehouse_mart_columns(built_world)
        if pattern.match(c) and declared_identifier(declared.get(t, {}).get(c, {})) is None
    ]
    assert not unmarked, (
        "mark these mart columns in the models' YAML with config: meta: identifier: "
        f"true (or false, on purpose): {unmarked}"
    )
    for table, column in KNOWN_IDENTIFIERS:
        assert declared_identifier(declared[table][column]) is True, f"{table}.{column}"


def test_the_loader_writes_raw_but_cannot_touch_the_marts(built_world):
    assert denied(built_world, "loader", "select count(*) from marts.fct_touchpoints")
    assert denied(built_world, "loader", "delete from marts.dim_customers")
    assert denied(built_world, "loader", "create table marts.sneaky (x int)")
    assert denied(built_world, "loader", "drop table raw.segment_events")  # not its own table
    assert denied(built_world, "loader", "delete from raw.segment_events")  # raw is append-only
    with as_role(built_world, "loader") as conn, conn.transaction(force_rollback=True):
        conn.execute(
            "insert into raw._batches (batch_id, stream, source)"
            " values ('role-test', 'web', 'test')"
        )


def test_the_reporter_writes_the_send_log_and_reads_marts_but_not_raw(built_world):
    assert denied(built_world, "reporter", "select count(*) from raw.segment_events")
    assert denied(
        built_world,
        "reporter",
        "insert into raw._batches (batch_id, stream, source) values ('x', 'y', 'z')",
    )
    assert denied(built_world, "reporter", "select count(*) from staging.stg_segment__events")
    assert denied(built_world, "reporter", "delete from marts.fct_touchpoints")
    with as_role(built_world, "reporter") as conn, conn.transaction(force_rollback=True):
        conn.execute(
            "insert into reporting.deliveries (report, period, recipient, status, message_id)"
            " values ('role-test', '2026-W01', 'a@example.com', 'sending', '<x@example.com>')"
        )
        assert (
            conn.execute(
                "select count(*) from marts.dim_customers where email is not null"
            ).fetchone()[0]
            > 0
        )


def test_the_transformer_reads_raw_but_does_not_write_it_nor_the_send_log(built_world):
    with as_role(built_world, "transformer") as conn:
        assert conn.execute("select count(*) from raw.segment_events").fetchone()[0] > 0
    assert denied(
        built_world,
        "transformer",
        "insert into raw._batches (batch_id, stream, source) values ('x', 'y', 'z')",
    )
    assert denied(built_world, "transformer", "select count(*) from reporting.deliveries")


# -- each stage as its role ---------------------------------------------------------------------
AUDIT = """
create table public.role_audit (tbl text not null, who text not null);
grant insert on public.role_audit to public;
create function public.audit_role() returns trigger language plpgsql as $$
begin
    insert into public.role_audit values (tg_table_schema || '.' || tg_table_name, current_user);
    return null;
end $$;
"""


@pytest.mark.slow
def test_each_stage_runs_as_its_own_role(fresh_db, settings, small_world, mail_sink, tmp_path):
    """Triggers note the role of every statement that writes raw, dq, ops and the send log while
    the pipeline runs (extract, dbt, checks, report); the dbt relations belong to the
    transformer."""
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        conn.execute(AUDIT)
        for table in (
            "raw._batches",
            "raw._state",
            "raw.segment_events",
            "raw.sendgrid_events",
            "dq.validation_runs",
            "ops.ingest_intervals",
            "reporting.deliveries",
        ):
            conn.execute(
                f"create trigger audit_role after insert or update on {table}"
                " for each statement execute function public.audit_role()"
            )
    local = replace(settings, landing_url=str(small_world["landing"]))
    start = datetime.combine(SIM_START, datetime.min.time(), UTC)
    for source in ("email", "web"):
        pipeline.extract(source, start, start + timedelta(weeks=2), fresh_db, local)
    pipeline.transform(fresh_db, local)
    pipeline.check_quality(
        start, start + timedelta(days=1), fresh_db, local, raise_on_critical=False
    )
    # the engineers' commands take the same roles as the stages they repeat
    cli_env = {"TOUCHPOINT_WAREHOUSE_URL": fresh_db}
    loaded = run_cli("load", "email", str(FIXTURES / "sendgrid_batch.json"), env=cli_env)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    checked = run_cli(
        "dq",
        "run",
        "--start",
        start.isoformat(),
        "--end",
        (start + timedelta(days=1)).isoformat(),
        "--suite",
        "raw_sendgrid_events",
        env=cli_env,
    )
    assert checked.returncode in (0, 1), checked.stderr[-2000:]  # 1: a critical expectation failed
    for day in range(14):
        pipeline.record_ingested(
            start + timedelta(days=day), start + timedelta(days=day + 1), fresh_db, "roles"
        )
    recipients = tmp_path / "recipients.yml"
    recipients.write_text(
        "sender: Touchpoint <reports@example.com>\nrecipients:\n"
        "  - {address: all@example.com, name: Everyone}\nalerts: []\n"
    )
    sent = pipeline.send_weekly_report(
        SIM_START + timedelta(days=7),
        fresh_db,
        SmtpSettings("127.0.0.1", mail_sink.port),
        local,
        recipients_file=recipients,
    )
    assert [d.recipient for d in sent if d.newly_sent] == ["all@example.com"]

    with psycopg.connect(fresh_db) as conn:
        audit = {}
        for table, who in conn.execute("select tbl, who from public.role_audit"):
            audit.setdefault(table, set()).add(who)
        owners = dict(
            conn.execute(
                "select n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner)"
                " from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname in ('staging', 'intermediate', 'marts', 'seeds', 'snapshots')"
                " and c.relkind in ('r', 'v', 'm', 'p')"
            ).fetchall()
        )
        schemas = dict(
            conn.execute(
                "select nspname, pg_get_userbyid(nspowner) from pg_namespace"
                " where nspname in ('staging', 'intermediate', 'marts', 'seeds', 'snapshots')"
            )
        )
    assert audit == {
        "raw._batches": {"loader"},
        "raw._state": {"loader"},
        "raw.segment_events": {"loader"},
        "raw.sendgrid_events": {"loader"},
        "dq.validation_runs": {"transformer"},
        "ops.ingest_intervals": {"transformer"},
        "reporting.deliveries": {"reporter"},
    }
    assert "marts.fct_touchpoints" in owners and "seeds.touchpoint_taxonomy" in owners
    assert set(owners.values()) == {"transformer"}, {
        k: v for k, v in owners.items() if v != "transformer"
    }
    assert set(schemas.values()) == {"transformer"} and len(schemas) == 5


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_a_mart_added_without_yaml_hides_columns_named_like_identifiers(
    built_copy, settings, tmp_path
):
    """The safe default: a new model with no YAML entry gets the analyst's grants from the name
    pattern alone."""
    from touchpoint.transform.dbt import run_dbt

    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    (project / "models" / "marts" / "fct_added_later.sql").write_text(
        "select 'someone@example.com'::text as customer_email,"
        " 'Ada Lovelace'::text as contact_name,"
        " 42 as touchpoints\n"
    )
    run_dbt(["run", "--select", "fct_added_later"], project, built_copy, tmp_path / "var")
    with as_role(built_copy, "analyst") as conn:
        assert conn.execute("select touchpoints from marts.fct_added_later").fetchone() == (42,)
    assert denied(built_copy, "analyst", "select customer_email from marts.fct_added_later")
    assert denied(built_copy, "analyst", "select contact_name from marts.fct_added_later")
    with as_role(built_copy, "reporter") as conn:
        assert conn.execute("select customer_email from marts.fct_added_later").fetchone() == (
            "someone@example.com",
        )


PROFILE_PROBE = """
import json, pendulum
from airflow.sdk import DAG
from touchpoint.config import load_settings
from touchpoint.orchestration.dbt_tasks import dbt_task_group
with DAG("probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    dbt_task_group(load_settings())
task = next(t for t in dag.tasks if t.task_id.startswith("dbt.dim_customers"))
print(json.dumps({"profile": task.profile_config.profile_mapping.profile, "env": task.env}))
"""


def test_airflows_dbt_tasks_run_as_the_transformer_and_grant_to_the_readers(tmp_path):
    """The Cosmos tasks' dbt profile (rendered from the Airflow connection) has the role."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_CONN_TOUCHPOINT_WAREHOUSE": json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "login": "touchpoint",
                "schema": "db",
                "port": 5432,
            }
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROFILE_PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["profile"]["role"] == "transformer"
    assert {
        k: probe["env"][k] for k in ("TOUCHPOINT_DBT_ANALYST_ROLE", "TOUCHPOINT_DBT_REPORTER_ROLE")
    } == {"TOUCHPOINT_DBT_ANALYST_ROLE": "analyst", "TOUCHPOINT_DBT_REPORTER_ROLE": "reporter"}
    profiles = yaml.safe_load((REPO / "dbt_project" / "profiles.yml").read_text())
    assert "TOUCHPOINT_DBT_ROLE" in profiles["touchpoint"]["outputs"]["warehouse"]["role"]
