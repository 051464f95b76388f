"""The dbt project as Airflow tasks (Astronomer Cosmos): one task per seed, snapshot and model,
each running ``dbt build`` on its node (the model, then its tests, so a model's tests run right
after it and a failing test stops its dependants), tests over several models in tasks of
their own after all their parents; rendered from the manifest ``touchpoint dbt manifest``
writes (so parsing a DAG file never runs dbt and never touches a database).

Why ``dbt build`` per node rather than separate run and test tasks: each Cosmos task costs
about 1.5 s of dbt start-up whatever it does; one task per node halves the run time.

dbt reaches the warehouse through the Airflow connection ``touchpoint_warehouse``, resolved
when a task runs; its target and logs stay under ``var/dbt``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
    TestIndirectSelection,
)
from cosmos.operators.local import DbtLocalBaseOperator
from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping

from touchpoint.config import Settings
from touchpoint.errors import ConfigError
from touchpoint.transform.dbt import dbt_role_env, manifest_path

WAREHOUSE_CONN_ID = "touchpoint_warehouse"
DBT_PROFILE = "touchpoint"
DBT_TARGET = "warehouse"


def _skip_unemitted_lineage() -> None:
    """Cosmos computes OpenLineage events from dbt's artifacts after every task (about 0.7 s
    each), but nothing emits them unless Airflow's OpenLineage provider is installed. Without
    the provider, skip the computation."""
    import importlib.util

    if importlib.util.find_spec("airflow.providers.openlineage") is None:
        DbtLocalBaseOperator._get_dbt_local_artifact_processor = staticmethod(lambda: None)


_skip_unemitted_lineage()


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """Cosmos' Postgres mapping, except that the password may be empty: a local cluster with
    trust (or peer / certificate) authentication has none. The password, when there is one,
    still reaches dbt only through an environment variable, never the rendered profile."""

    required_fields: ClassVar[list[str]] = ["host", "user", "dbname"]

    def get_dbt_value(self, name: str) -> Any:
        value = super().get_dbt_value(name)
        return "" if name == "password" and value is None else value


def dbt_task_group(settings: Settings, group_id: str = "dbt", **kwargs: Any) -> DbtTaskGroup:
    manifest = manifest_path(settings.var_dir)
    if not manifest.exists():
        raise ConfigError(
            f"dbt manifest not found at {manifest}: run `touchpoint dbt manifest` "
            "(make demo, make test and make airflow do it)"
        )
    target = settings.var_dir / "dbt"
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=settings.dbt_project_dir,
            manifest_path=manifest,
            install_dbt_deps=False,
            # dbt's target stays in Cosmos' temporary copy of the project, where Cosmos finds
            # partial_parse.msgpack and caches it for the next task (AIRFLOW__COSMOS__CACHE_DIR)
            env_vars={
                "DBT_LOG_PATH": str(target / "logs"),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
                "DBT_USE_COLORS": "False",
                **dbt_role_env(),  # the readers the marts are granted to (macros/grants.sql)
            },
        ),
        profile_config=ProfileConfig(
            profile_name=DBT_PROFILE,
            target_name=DBT_TARGET,
            profile_mapping=WarehouseProfileMapping(
                conn_id=WAREHOUSE_CONN_ID,
                # dbt runs as the transformer role (SET ROLE)
                profile_args={
                    "schema": "analytics",
                    "threads": 4,
                    "role": settings.roles.transformer,
                },
            ),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # a test on several nodes (relationships, singular tests over two models) runs in a
            # task of its own once all of them are built, not with the first one
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,  # the DAG publishes one Asset for the marts when they are checked
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        operator_args={"install_deps": False, "dbt_cmd_global_flags": ["--no-write-json"]},
        **kwargs,
    )
