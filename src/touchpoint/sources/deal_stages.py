"""The deal pipeline's stages, declared once for dbt and Python: the dbt var
``deal_pipeline_stages`` in ``dbt_project/dbt_project.yml`` (the deal models read it there)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from touchpoint.config import DEFAULT_PROJECT_DIR
from touchpoint.errors import ConfigError


@dataclass(frozen=True)
class DealStage:
    """A stage of the pipeline: HubSpot's stage id, its label, place, and outcome."""

    id: str
    label: str
    order: int
    is_closed: bool
    is_won: bool


@cache
def deal_pipeline_stages(
    dbt_project_dir: Path = DEFAULT_PROJECT_DIR / "dbt_project",
) -> tuple[DealStage, ...]:
    """The stages of var ``deal_pipeline_stages``, in their order."""
    path = dbt_project_dir / "dbt_project.yml"
    try:
        declared = (yaml.safe_load(path.read_text()).get("vars") or {}).get("deal_pipeline_stages")
    except OSError as exc:
        raise ConfigError(f"cannot read the dbt project's {path}: {exc}") from None
    try:
        stages = tuple(
            DealStage(
                str(s["id"]),
                str(s["label"]),
                int(s["order"]),
                bool(s["is_closed"]),
                bool(s["is_won"]),
            )
            for s in declared or ()
        )
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"{path}: var deal_pipeline_stages must be a list of {{id, label, order, is_closed,"
            f" is_won}} ({exc!r})"
        ) from None
    if not stages:
        raise ConfigError(f"{path}: var deal_pipeline_stages is empty")
    return tuple(sorted(stages, key=lambda s: s.order))


def stage_date_properties() -> tuple[str, ...]:
    """HubSpot's calculated stage-history properties of every stage: when the deal last entered
    it (``hs_date_entered_<id>``) and last left it (``hs_date_exited_<id>``)."""
    return tuple(
        f"hs_date_{edge}_{stage.id}"
        for stage in deal_pipeline_stages()
        for edge in ("entered", "exited")
    )
