"""The dbt project as Airflow tasks (Astronomer Cosmos' watcher mode): one producer task runs a
single ``dbt build`` of the whole project on dbt's threads, and one task per seed, snapshot and
model, plus one for each model's tests, reports that node's outcome from the producer's events
(a test over several models counts among each parent's tests). The graph keeps
dbt's lineage, so a failed model or test shows where it is, and dbt itself skips the dependants
of a failure. Rendered from the manifest ``touchpoint dbt manifest`` writes (so parsing a DAG
file never runs dbt and never touches a database).

Why the watcher rather than one ``dbt build`` per node: every dbt start-up costs about a second
whatever the node does; one build per run took the demo's ingest from 106 s to 47 s.

dbt reaches the warehouse through the Airflow connection ``touchpoint_warehouse``, resolved
when a task runs; its target and logs stay under ``var/dbt``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    PRODUCER_WATCHER_TASK_ID,
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
from touchpoint.orchestration.connections import warehouse_url
from touchpoint.transform.dbt import (
    BUILD_WRITTEN_ROWS_TESTED,
    REFRESHED_WEEKLY,
    WEEKLY_MODELS,
    dbt_executable,
    dbt_run_env,
    manifest_path,
)
from touchpoint.warehouse.locks import raw_layer_alone

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


def dbt_task_group(
    settings: Settings, group_id: str = "dbt", weekly: bool = False, **kwargs: Any
) -> DbtTaskGroup:
    """The daily ingest's build (every node but the weekly report's models, each model's tests
    after it), or with ``weekly`` the weekly report's models alone, untested (the weekly run
    tests every row of every table next)."""
    manifest = manifest_path(settings.var_dir)
    if not manifest.exists():
        raise ConfigError(
            f"dbt manifest not found at {manifest}: run `touchpoint dbt manifest` "
            "(make demo, make test and make airflow do it)"
        )
    target = settings.var_dir / "dbt"
    project = ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=manifest,
        install_dbt_deps=False,
        # dbt's target stays in Cosmos' temporary copy of the project, where Cosmos finds
        # partial_parse.msgpack and caches it for the next task (AIRFLOW__COSMOS__CACHE_DIR)
        env_vars={
            "DBT_LOG_PATH": str(target / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_USE_COLORS": "False",
            # roles (and the readers the marts are granted to), threads, log file level
            **dbt_run_env(settings),
        },
    )
    # Cosmos wraps a local manifest path in an ObjectStoragePath, whose first open loads every
    # Airflow plugin's entry point (0.29 s of the ingest DAG's 1 s parse); a plain Path reads
    # the same file
    project.manifest_path = manifest
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=project,
        profile_config=ProfileConfig(
            profile_name=DBT_PROFILE,
            target_name=DBT_TARGET,
            profile_mapping=WarehouseProfileMapping(
                conn_id=WAREHOUSE_CONN_ID,
                # dbt runs as the transformer role (SET ROLE)
                profile_args={
                    "schema": "analytics",
                    "threads": settings.dbt_thread_count,
                    "role": settings.roles.transformer,
                },
            ),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=[WEEKLY_MODELS, REFRESHED_WEEKLY] if weekly else [],
            exclude=[] if weekly else [WEEKLY_MODELS],
            test_behavior=TestBehavior.NONE if weekly else TestBehavior.AFTER_EACH,
            # a test on several nodes (relationships, singular tests over two models) runs in the
            # producer's build once all of them are built, and its outcome shows in each parent's
            # test task (Cosmos counts it among every parent's tests): no task of its own
            should_detach_multiple_parents_tests=False,
            emit_datasets=False,  # the DAG publishes one Asset for the marts when they are checked
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            # the producer's dbt in a process of its own: parsing its JSON log lines costs a
            # fraction of an in-process callback on every dbt event (demo ingest: 47 s, not 75 s)
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt_executable(),
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
            # dbt's own flags after the command; Cosmos adds the selection
            setup_operator_args={"dbt_cmd_flags": list(BUILD_WRITTEN_ROWS_TESTED[1:])},
        ),
        operator_args={"install_deps": False, "dbt_cmd_global_flags": ["--no-write-json"]},
        **kwargs,
    )
    _after_the_producer(group)
    producer = group.tasks_map[PRODUCER_WATCHER_TASK_ID]
    producer.execute = _holding_the_raw_layer(producer.execute)
    return group


def _holding_the_raw_layer(execute: Any) -> Any:
    """The producer's build holds the raw layer alone, as every dbt build does
    (``touchpoint.warehouse.locks``), released however the build ends."""

    @functools.wraps(execute)
    def run(context: Any, *args: Any, **kwargs: Any) -> Any:
        with raw_layer_alone(warehouse_url(), "dbt build (Airflow)"):
            return execute(context, *args, **kwargs)

    return run


def _after_the_producer(group: DbtTaskGroup) -> None:
    """Start the first node tasks when the producer is done, not beside it.

    In a task group Cosmos leaves them free to start first and wait for the producer's events;
    ``dag.test()`` runs one task at a time, so a waiting node would never see the producer run.
    ``none_failed``: they still run when the producer is skipped (its retry restores the
    outcomes and skips; a failed node's own retry then runs its model alone)."""
    tasks = [t for t in group.dag.tasks if t.task_id.startswith(f"{group.group_id}.")]
    ids = {t.task_id for t in tasks}
    producer = group.tasks_map[PRODUCER_WATCHER_TASK_ID]
    for task in tasks:
        if hasattr(task, "producer_task_id") and not set(task.upstream_task_ids) & ids:
            producer >> task
            task.trigger_rule = "none_failed"
