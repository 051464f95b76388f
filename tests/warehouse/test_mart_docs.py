"""Where analysts look: every mart column's description reaches the database as its comment
(persist_docs, `psql \\d+`), and the exposures name exactly the relations the weekly report's
code reads, so dbt's lineage knows what a model change can break in the email."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg

from helpers import REPO

REPORT_CODE = REPO / "src" / "touchpoint" / "report"
#: the schemas analysts and the reporter read, built by dbt with persist_docs
DOCUMENTED_SCHEMAS = ("marts", "restricted")


def test_every_mart_column_has_a_comment_in_the_warehouse(built_world):
    with psycopg.connect(built_world) as conn:
        missing = conn.execute(
            """
            select n.nspname || '.' || c.relname || coalesce('.' || a.attname, '')
            from pg_class as c
            join pg_namespace as n on n.oid = c.relnamespace
            left join pg_attribute as a
                on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                and coalesce(trim(col_description(c.oid, a.attnum)), '') = ''
            where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'p')
              and (a.attname is not null
                   or coalesce(trim(obj_description(c.oid, 'pg_class')), '') = '')
            order by 1
            """,
            (list(DOCUMENTED_SCHEMAS),),
        ).fetchall()
        documented = conn.execute(
            "select col_description('marts.fct_touchpoints'::regclass, 1)"
        ).fetchone()[0]
    assert not missing, f"no comment (a YAML description) on: {[m for (m,) in missing]}"
    assert documented and len(documented) > 10


def relations_read_by_the_report() -> set[str]:
    code = "\n".join(p.read_text() for p in REPORT_CODE.glob("*.py"))
    return set(re.findall(r"\b(?:from|join)\s+(?:marts|restricted)\.([a-z_]+)", code))


def test_the_exposures_name_what_the_report_reads(dbt_manifest: Path):
    manifest = json.loads(dbt_manifest.read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    report = exposures["weekly_report"]
    declared = {node.split(".")[-1] for node in report["depends_on"]["nodes"]}
    read = relations_read_by_the_report()
    assert read and declared == read, {
        "read, not declared": read - declared,
        "declared, not read": declared - read,
    }
    sections = [e for name, e in exposures.items() if name.startswith("weekly_report_")]
    covered = {n.split(".")[-1] for e in sections for n in e["depends_on"]["nodes"]}
    assert covered == declared, declared ^ covered


def test_the_tables_the_report_reads_have_enforced_contracts(dbt_manifest: Path):
    """A contract makes a changed column type or a dropped column fail the model's build, not
    the email. dbt allows one on a table; the incremental marts' 'replace' strategy selects
    marker columns a contract would reject (their YAML says so)."""
    manifest = json.loads(dbt_manifest.read_text())
    report = next(e for e in manifest["exposures"].values() if e["name"] == "weekly_report")
    nodes = [manifest["nodes"][n] for n in report["depends_on"]["nodes"]]
    tables = [n for n in nodes if n["config"]["materialized"] == "table"]
    assert len(tables) >= 8
    assert not [n["name"] for n in tables if not n["config"]["contract"]["enforced"]]
