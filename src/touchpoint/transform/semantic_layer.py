"""The semantic layer (``dbt_project/models/semantic``) queried with MetricFlow's ``mf`` on a
warehouse, as the analyst role: the project parsed for that warehouse, mf's environment, and mf
itself run without its check for a newer version on PyPI (only loopback traffic here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from touchpoint.config import Settings
from touchpoint.errors import ConfigError

#: mf's command line with ``UpdateChecker.check`` answering "no update" instead of asking PyPI
#: (dbt_metricflow.cli.main calls it on every run)
_MF_OFFLINE = (
    "import sys, update_checker; update_checker.UpdateChecker.check = lambda *a, **k: None;"
    " from dbt_metricflow.cli.main import cli; sys.argv[0] = 'mf'; sys.exit(cli())"
)


def metricflow_project(settings: Settings, warehouse_url: str) -> Path:
    """The directory ``mf`` takes for the dbt project, with the semantic manifest fresh.

    The manifest names each model's table with the warehouse's database, so dbt parses the
    project for that warehouse, into the target its builds use (dbt's partial parse re-reads
    only what changed, and the environment is the builds', so their saved parse stays valid).
    mf reads ``<project>/target/semantic_manifest.json`` and nothing else, while dbt's target
    lives under var/: this directory (var/dbt/metricflow/<database>) links the project's
    dbt_project.yml and, as ``target``, that target."""
    from touchpoint.transform.dbt import run_dbt, target_dir

    project_dir = settings.dbt_project_dir
    run_dbt(["parse"], project_dir, warehouse_url, settings.var_dir, raw_alone=False)
    target = target_dir(settings.var_dir, warehouse_url)
    root = settings.var_dir / "dbt" / "metricflow" / target.name
    root.mkdir(parents=True, exist_ok=True)
    links = {"dbt_project.yml": project_dir / "dbt_project.yml", "target": target}
    for name, source in links.items():
        link = root / name
        if link.is_symlink() and link.readlink() == source:
            continue
        # made aside and moved into place: another run may be doing the same
        fresh = root / f".{name}.{os.getpid()}"
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(source)
        fresh.replace(link)
    return root


def metricflow_env(settings: Settings, warehouse_url: str, project: Path) -> dict[str, str]:
    """dbt's environment for the warehouse (profiles.yml reads the connection from it), with
    the analyst's role: the semantic layer is for people's queries, which read the marts and
    the seeds only."""
    from touchpoint.transform.dbt import dbt_env

    analyst = settings.roles.analyst
    inherited = os.environ.get("PGOPTIONS", "")  # libpq's, kept as dbt_role_env keeps it
    tmp = settings.var_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        **dbt_env(warehouse_url, settings.var_dir),
        "PGOPTIONS": f"{inherited} -c role={analyst}".strip(),
        "TOUCHPOINT_DBT_ROLE": analyst,
        "DBT_PROJECT_DIR": str(project),
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        # mf checks PyPI for a newer version on every run and caches the answer in the
        # temporary directory: kept under var/ like everything the project writes
        "TMPDIR": str(tmp),
    }


def run_mf(mf_args: list[str], settings: Settings, warehouse_url: str) -> int:
    """``mf ARGS`` on the warehouse's semantic layer; mf's exit status."""
    project = metricflow_project(settings, warehouse_url)
    env = {**os.environ, **metricflow_env(settings, warehouse_url, project)}
    try:
        import dbt_metricflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            "MetricFlow (dbt-metricflow) is not installed: install the project's"
            " requirements.lock (make demo or make test install it)"
        ) from None
    result = subprocess.run(
        [sys.executable, "-c", _MF_OFFLINE, *mf_args], env=env, cwd=project, check=False
    )
    return result.returncode
