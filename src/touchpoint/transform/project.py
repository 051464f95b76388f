"""What the dbt project declares that Python needs too, read from ``dbt_project.yml``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from touchpoint.errors import ConfigError


@cache
def project_vars(project_dir: Path) -> dict[str, Any]:
    """The ``vars`` block of ``project_dir/dbt_project.yml``."""
    path = project_dir / "dbt_project.yml"
    try:
        declared = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the dbt project's {path}: {exc}") from None
    return dict(declared.get("vars") or {})


def attribution_models(project_dir: Path) -> tuple[str, ...]:
    """The attribution models every mart credits conversions by (var ``attribution_models``)."""
    models = project_vars(project_dir).get("attribution_models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise ConfigError(
            f"{project_dir / 'dbt_project.yml'}: var attribution_models must be a list of names"
        )
    return tuple(models)
