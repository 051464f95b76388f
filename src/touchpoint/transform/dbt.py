"""Running dbt against the warehouse: the profile's settings come from the warehouse URL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

from touchpoint.config import Roles, Settings, load_settings
from touchpoint.errors import TouchpointError
from touchpoint.warehouse.connection import url_parts
from touchpoint.warehouse.locks import raw_layer_alone

log = logging.getLogger(__name__)


class DbtFailed(TouchpointError):
    """dbt exited non-zero."""


#: ``dbt build`` as the pipeline runs it: models, seeds, snapshots and data tests. dbt's unit
#: tests check the SQL on fixed inputs, so they run where the SQL changes (``make test``:
#: tests/warehouse/test_dbt_unit_tests.py), not in every daily build, as dbt advises.
BUILD = ("build", "--exclude-resource-type", "unit_test")
#: the weekly report's models (tag ``weekly`` in dbt_project.yml): its run builds them for the
#: complete week; the daily ingest leaves them out
WEEKLY_MODELS = "tag:weekly"
#: models the daily ingest builds that read a weekly model (the customers' at-risk verdict):
#: the weekly run builds them again after its models, so they show the week just judged
REFRESHED_WEEKLY = "tag:refreshed_weekly"
#: the daily ingest's build: its data tests read only the rows it wrote (dbt_project/macros/
#: test_scope.sql), so they cost what the day changed; :data:`WHOLE_TABLE_TESTS` reads them all.
#: Selection apart (Cosmos adds it), so that the weekly run's build can share the flags.
BUILD_WRITTEN_ROWS_TESTED = (*BUILD, "--vars", '{"test_rows": "written"}')
DAILY_BUILD = (*BUILD_WRITTEN_ROWS_TESTED, "--exclude", WEEKLY_MODELS)
#: the weekly run's build of its models, untested: every test on every row follows it
WEEKLY_BUILD = ("run", "--select", WEEKLY_MODELS, REFRESHED_WEEKLY)
#: every data test on every row: weekly before the report, and in ``make test``
WHOLE_TABLE_TESTS = ("test", *BUILD[1:], "--vars", '{"test_rows": "all"}')


def dbt_role_env(roles: Roles) -> dict[str, str]:
    """The roles dbt needs: the one it runs as and the readers it grants the marts to
    (macros/grants.sql).

    dbt-postgres' profile ``role`` alone is not enough: its ``SET ROLE`` runs in the connection's
    first transaction, and a rollback undoes it (dbt rolls back before on-run-start hooks, and
    after any failed statement on a connection it then reuses), leaving dbt to run as the login
    user (dbt-labs/dbt-adapters#1889). libpq's PGOPTIONS sets the role when each connection
    starts, which no rollback undoes; the profile's ``role`` stays as the documented setting."""
    inherited = os.environ.get("PGOPTIONS", "")  # libpq's, not a touchpoint setting: kept, extended
    return {
        "PGOPTIONS": f"{inherited} -c role={roles.transformer}".strip(),
        "TOUCHPOINT_DBT_ROLE": roles.transformer,
        "TOUCHPOINT_DBT_ANALYST_ROLE": roles.analyst,
        "TOUCHPOINT_DBT_REPORTER_ROLE": roles.reporter,
    }


def dbt_run_env(settings: Settings) -> dict[str, str]:
    """What every dbt run of the product shares, from the pipeline or from Airflow: the roles,
    the threads (``profiles.yml`` reads them) and the log file's level."""
    return {
        **dbt_role_env(settings.roles),
        "TOUCHPOINT_DBT_THREADS": str(settings.dbt_thread_count),
        "DBT_LOG_LEVEL_FILE": settings.dbt_file_log_level,
    }


def target_dir(var_dir: Path, warehouse_url: str) -> Path:
    """dbt's target (artifacts and partial_parse.msgpack) for one warehouse database: dbt parses
    the whole project again whenever the profile's database differs from the saved parse's."""
    return var_dir / "dbt" / "target" / url_parts(warehouse_url).dbname


def dbt_env(warehouse_url: str, var_dir: Path) -> dict[str, str]:
    """Environment for dbt: connection pieces and roles for profiles.yml, and every path kept
    under var/."""
    parts = url_parts(warehouse_url)
    return {
        **dbt_run_env(load_settings()),
        "TOUCHPOINT_DBT_HOST": parts.host,
        "TOUCHPOINT_DBT_PORT": str(parts.port),
        "TOUCHPOINT_DBT_USER": parts.user,
        "TOUCHPOINT_DBT_PASSWORD": parts.password,
        "TOUCHPOINT_DBT_DBNAME": parts.dbname,
        "DBT_TARGET_PATH": str(target_dir(var_dir, warehouse_url)),
        "DBT_LOG_PATH": str(var_dir / "dbt" / "logs"),
        "DBT_PACKAGES_INSTALL_PATH": str(var_dir / "dbt" / "packages"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_USE_COLORS": "False",
        "DBT_PARTIAL_PARSE": "True",
    }


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    args: list[str], project_dir: Path, warehouse_url: str, var_dir: Path, raw_alone: bool = True
) -> str:
    """Run ``dbt <args>`` on the project; returns its output, raises :class:`DbtFailed`.
    ``raw_alone``: no load writes raw meanwhile (False for a command that reads no table, such
    as ``parse``, which then need not wait for the loads in flight)."""
    env = {**os.environ, **dbt_env(warehouse_url, var_dir)}
    cmd = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
    log.info("running %s", " ".join(cmd[: 1 + len(args)]))
    with raw_layer_alone(warehouse_url, f"dbt {args[0]}") if raw_alone else nullcontext():
        result = subprocess.run(
            cmd, cwd=project_dir, env=env, capture_output=True, text=True, check=False
        )
    for line in result.stdout.splitlines():
        log.info("dbt | %s", line)
    if result.returncode != 0:
        lines = [ln.strip() for ln in result.stdout.splitlines()]
        named = [ln for ln in lines if "Failure in " in ln or " Error in " in ln]
        tally = [ln for ln in lines if "Error" in ln or "ERROR" in ln or "FAIL" in ln]
        # the first failure dbt names (a test or a model), then its closing tally
        what = list(dict.fromkeys(named[:1] + tally[-1:]))
        what = what or result.stderr.strip().splitlines()[-1:]
        raise DbtFailed(
            f"dbt {' '.join(args)} failed (exit {result.returncode}): "
            f"{'; '.join(what) or 'no output'}; full log in {var_dir / 'dbt' / 'logs'}"
        )
    return result.stdout


def manifest_path(var_dir: Path) -> Path:
    """Where the dbt manifest the Airflow DAGs render from lives (``touchpoint dbt manifest``)."""
    return var_dir / "dbt" / "manifest" / "manifest.json"


def _newest_source(project_dir: Path) -> float:
    newest = 0.0
    for path in project_dir.rglob("*"):
        if path.is_file() and not {"target", "logs", "dbt_packages"} & set(
            path.relative_to(project_dir).parts
        ):
            newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest(project_dir: Path, var_dir: Path, force: bool = False) -> tuple[Path, bool]:
    """Write the manifest with ``dbt parse`` when it is missing or older than any file of the
    dbt project. Returns (path, whether it was rebuilt). Parsing connects to no database."""
    path = manifest_path(var_dir)
    if not force and path.exists() and path.stat().st_mtime >= _newest_source(project_dir):
        return path, False
    env = {
        **os.environ,
        **dbt_env("postgresql://parse-only@127.0.0.1:5432/none", var_dir),
        "DBT_TARGET_PATH": str(path.parent),
    }
    cmd = [
        dbt_executable(),
        "parse",
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
    result = subprocess.run(
        cmd, cwd=project_dir, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not path.exists():
        raise DbtFailed(
            f"dbt parse failed (exit {result.returncode}): "
            f"{(result.stdout.strip().splitlines() or ['no output'])[-1]}"
        )
    return path, True
