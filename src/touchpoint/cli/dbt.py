"""``touchpoint dbt``: the dbt project's manifest, which the Airflow DAGs render from."""

from __future__ import annotations

import argparse
from typing import Any

from touchpoint.config import Settings


def cmd_dbt_manifest(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.transform.dbt import ensure_manifest

    path, rebuilt = ensure_manifest(settings.dbt_project_dir, settings.var_dir, force=args.force)
    print(f"{path} ({'written' if rebuilt else 'up to date'})")
    return 0


def cmd_dbt_build(args: argparse.Namespace, settings: Settings) -> int:
    from touchpoint.pipeline import transform

    url = settings.resolved_warehouse_url
    print(f"building every model{' from raw (--full-refresh)' if args.full_refresh else ''}...")
    transform(url, settings, full_refresh=args.full_refresh)
    print("built and tested")
    return 0


def add_commands(sub: Any, settings: Settings) -> None:
    dbt = sub.add_parser("dbt", help="the dbt project")
    dbt_sub = dbt.add_subparsers(dest="dbt_command", required=True)
    manifest = dbt_sub.add_parser(
        "manifest",
        help="write the manifest the Airflow DAGs render dbt from"
        " (when missing or older than the project)",
    )
    manifest.add_argument(
        "--force", action="store_true", help="write it even when it is up to date"
    )
    manifest.set_defaults(func=cmd_dbt_manifest)
    build = dbt_sub.add_parser(
        "build",
        help="make sure of the schema, then build and test every model as the transformer"
        " (what the pipeline's build does; the DAGs run it per model)",
    )
    build.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the incremental models from raw (after an upgrade that changes keys or"
        " columns)",
    )
    build.set_defaults(func=cmd_dbt_build)
