"""Least-privilege roles (real Postgres, real dbt): loader writes raw, transformer runs dbt and the
checks, analyst reads every mart and seed whole (no direct identifier is in one) and nothing
else, reporter also reads who the customers are (schema restricted) and writes the send log;
free text shows only where consent allows; customer keys are keyed with the warehouse's secret;
and each pipeline stage runs as its own role."""

from __future__ import annotations

import hashlib
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
from touchpoint.errors import ConfigError
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema

ROLES = ("loader", "transformer", "analyst", "reporter")
#: direct identifiers: the reporter's (schema restricted), never in a mart the analyst reads;
#: named here rather than derived from the YAML, so that unmarking one fails a test
KNOWN_IDENTIFIERS = [
    ("dim_customer_contacts", "email"),
    ("dim_customer_contacts", "hubspot_contact_id"),
    ("dim_customer_contacts", "display_name"),
    ("dim_customer_contacts", "company_name"),
]
#: identifiers that used to be mart columns (fct_sessions now holds the keyed visitor_key)
FORMER_MART_IDENTIFIERS = {
    "email",
    "hubspot_contact_id",
    "display_name",
    "company_name",
    "anonymous_id",
    "visitor_id",
    "user_id",
}
#: free text (it can name people): (mart, text column, customer column, withheld flag)
FREE_TEXT = [
    ("fct_feedback", "comment", "customer_key", "comment_withheld"),
    ("fct_support_cases", "subject", "customer_key", "subject_withheld"),
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


def mart_columns_declared(manifest: Path, schema: str = "marts") -> dict[str, dict[str, dict]]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {
        n["name"]: n["columns"]
        for n in nodes
        if n["resource_type"] in ("model", "seed") and n["schema"] == schema
    }


def warehouse_mart_columns(url: str, schema: str = "marts") -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select table_name, column_name from information_schema.columns"
            " where table_schema = %s order by 1, 2",
            (schema,),
        ).fetchall()


def relations(url: str, schema: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            name
            for (name,) in conn.execute(
                "select c.relname from pg_class as c"
                " where c.relnamespace = to_regnamespace(%s) and c.relkind in ('r', 'v', 'm', 'p')"
                " order by 1",
                (schema,),
            )
        ]


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


def test_the_analyst_selects_star_from_every_mart_and_seed_and_nothing_restricted(built_world):
    marts, seeds = relations(built_world, "marts"), relations(built_world, "seeds")
    assert {"dim_customers", "fct_sessions", "fct_touchpoints", "dim_customer_key_changes"} <= set(
        marts
    )
    assert "touchpoint_taxonomy" in seeds
    with as_role(built_world, "analyst") as conn:
        for schema, names in (("marts", marts), ("seeds", seeds)):
            for name in names:
                conn.execute(f"select * from {schema}.{name} limit 1").fetchall()
        customers = conn.execute(
            "select count(*), count(distinct lifecycle_stage) from marts.dim_customers"
        ).fetchone()
        moved = conn.execute(
            "select count(*) from marts.dim_customer_key_changes"
            " where old_customer_key is not null and new_customer_key is not null"
        ).fetchone()
    assert customers[0] > 0 and customers[1] > 0
    assert moved[0] >= 0
    for table, column in KNOWN_IDENTIFIERS:
        assert denied(built_world, "analyst", f"select {column} from restricted.{table}")
    assert denied(
        built_world, "analyst", "select count(*) from intermediate.int_identity_key_changes"
    )


def test_no_mart_the_analyst_reads_holds_a_direct_identifier(built_world, settings, dbt_manifest):
    """Every column of every mart and seed: readable by the analyst and the reporter, and not a
    direct identifier by the YAML's decision or, without one, by the name pattern; restricted
    holds the identifiers and only the reporter reads it."""
    pattern = identifier_pattern(settings)
    wrong = []
    for schema in ("marts", "seeds"):
        declared = mart_columns_declared(dbt_manifest, schema)
        for table, column in warehouse_mart_columns(built_world, schema):
            marked = declared_identifier(declared.get(table, {}).get(column, {}))
            identifier = marked if marked is not None else bool(pattern.match(column))
            if identifier or column in FORMER_MART_IDENTIFIERS:
                wrong.append(f"{schema}.{table}.{column} is a direct identifier")
    # who may select each relation: (analyst, reporter)
    expected = {"marts": (True, True), "seeds": (True, True), "restricted": (False, True)}
    with psycopg.connect(built_world) as conn:
        for schema, allowed in expected.items():
            for table in relations(built_world, schema):
                granted = conn.execute(
                    "select has_table_privilege('analyst', %(t)s, 'select'),"
                    " has_table_privilege('reporter', %(t)s, 'select')",
                    {"t": f"{schema}.{table}"},
                ).fetchone()
                if granted != allowed:
                    wrong.append(f"{schema}.{table}: (analyst, reporter) = {granted}")
    assert not wrong, wrong
    assert relations(built_world, "restricted") == ["dim_customer_contacts"]


def test_every_mart_column_named_like_an_identifier_says_whether_it_is_one(
    built_world, settings, dbt_manifest
):
    pattern = identifier_pattern(settings)
    unmarked = [
        f"{schema}.{t}.{c}"
        for schema in ("marts", "restricted")
        for declared in [mart_columns_declared(dbt_manifest, schema)]
        for t, c in warehouse_mart_columns(built_world, schema)
        if pattern.match(c) and declared_identifier(declared.get(t, {}).get(c, {})) is None
    ]
    declared = mart_columns_declared(dbt_manifest, "restricted")
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
                "select count(*) from restricted.dim_customer_contacts where email is not null"
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
                " where n.nspname in"
                " ('staging', 'intermediate', 'marts', 'restricted', 'seeds', 'snapshots')"
                " and c.relkind in ('r', 'v', 'm', 'p')"
            ).fetchall()
        )
        schemas = dict(
            conn.execute(
                "select nspname, pg_get_userbyid(nspowner) from pg_namespace"
                " where nspname in"
                " ('staging', 'intermediate', 'marts', 'restricted', 'seeds', 'snapshots')"
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
    assert set(schemas.values()) == {"transformer"} and len(schemas) == 6


@pytest.mark.slow  # over 8 s: not in make test-fast
def test_a_mart_added_with_columns_named_like_identifiers_is_refused(
    built_copy, settings, tmp_path
):
    """The safe default: a new model with no YAML entry whose columns are named like direct
    identifiers fails its build with what to do, and nothing is left for anyone to read."""
    from touchpoint.transform.dbt import DbtFailed, run_dbt

    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    (project / "models" / "marts" / "fct_added_later.sql").write_text(
        "select 'someone@example.com'::text as customer_email,"
        " 'Ada Lovelace'::text as contact_name,"
        " 42 as touchpoints\n"
    )
    with pytest.raises(DbtFailed, match="fct_added_later"):
        run_dbt(["run", "--select", "fct_added_later"], project, built_copy, tmp_path / "var")
    log = (tmp_path / "var" / "dbt" / "logs" / "dbt.log").read_text()
    assert "holds direct identifiers (customer_email, contact_name)" in log
    with psycopg.connect(built_copy) as conn:  # the build's transaction rolled back
        assert conn.execute("select to_regclass('marts.fct_added_later')").fetchone() == (None,)


# -- free text and keys ---------------------------------------------------------------------------
def test_free_text_is_classified_and_shown_only_where_analytics_consent_allows(
    built_world, dbt_manifest
):
    declared = mart_columns_declared(dbt_manifest)
    classified = {
        (table, column)
        for table, columns in declared.items()
        for column, entry in columns.items()
        if {**(entry.get("meta") or {}), **((entry.get("config") or {}).get("meta") or {})}.get(
            "classification"
        )
        == "free_text"
    }
    assert {(t, c) for t, c, _, _ in FREE_TEXT} <= classified
    with psycopg.connect(built_world) as conn:
        for table, text, customer, withheld in FREE_TEXT:
            refused, shown_refused, shown, hidden_allowed = conn.execute(
                f"select count(*) filter (where r.customer_key is not null),"
                f" count(*) filter (where r.customer_key is not null and t.{text} is not null),"
                f" count(*) filter (where r.customer_key is null and t.{text} is not null),"
                f" count(*) filter (where r.customer_key is null and t.{withheld})"
                f" from marts.{table} as t"
                " left join marts.dim_customer_consents as r"
                f" on r.customer_key = t.{customer} and r.purpose = 'analytics'"
                " and r.consent_state = 'refused'"
            ).fetchone()
            assert refused > 0, f"{table}: the world has no refused customer to check"
            assert shown_refused == 0, f"{table}.{text} shows text of customers who refused"
            assert shown > 0 and hidden_allowed == 0, table
            assert (
                conn.execute(f"select count(*) from marts.{table} where {withheld}").fetchone()[0]
                > 0
            )


def test_customer_keys_are_keyed_with_the_warehouses_secret(built_world, fresh_db, monkeypatch):
    """A guessed identifier does not give its key without the secret, which no reader holds;
    without TOUCHPOINT_PSEUDONYM_SECRET each warehouse generates its own, kept from then on."""
    with psycopg.connect(built_world) as conn:
        (secret,) = conn.execute("select secret from privacy.pseudonym_key").fetchone()
        rows = conn.execute(
            "select anchor_node, customer_key from intermediate.int_identifiers_mapped"
            " where customer_key is not null limit 50"
        ).fetchall()
    assert rows and len(secret) >= 32
    for anchor, key in rows:
        assert key != hashlib.md5(f"customer:{anchor}".encode()).hexdigest()
        assert key == hashlib.sha256(f"{secret}:customer:{anchor}".encode()).hexdigest()[:32]
    for role in ("analyst", "reporter", "loader"):
        assert denied(built_world, role, "select secret from privacy.pseudonym_key")
    assert secret == os.environ["TOUCHPOINT_PSEUDONYM_SECRET"]  # the tests' deployment setting
    monkeypatch.delenv("TOUCHPOINT_PSEUDONYM_SECRET")
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        (other,) = conn.execute("select secret from privacy.pseudonym_key").fetchone()
        ensure_schema(conn)
        assert conn.execute("select secret from privacy.pseudonym_key").fetchone() == (other,)
    assert other != secret and len(other) == 64
    # a setting that is not the warehouse's secret would re-key everyone: refused
    monkeypatch.setenv("TOUCHPOINT_PSEUDONYM_SECRET", secret)
    with psycopg.connect(fresh_db) as conn, pytest.raises(ConfigError, match="re-key"):
        ensure_schema(conn)
    monkeypatch.setenv("TOUCHPOINT_PSEUDONYM_SECRET", "short")
    with psycopg.connect(fresh_db) as conn, pytest.raises(ConfigError, match="at least 32"):
        ensure_schema(conn)


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
