"""dbt's unit tests (the SQL of a model on hand-made inputs) run here, where the SQL changes, and
not in the pipeline's daily build (``touchpoint.transform.dbt.BUILD``)."""

from __future__ import annotations

import re

import yaml

from helpers import REPO
from touchpoint.transform.dbt import run_dbt


def declared_unit_tests() -> set[str]:
    names = set()
    for path in (REPO / "dbt_project" / "models").rglob("*.yml"):
        for case in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", []):
            names.add(case["name"])
    return names


def test_every_dbt_unit_test_passes(built_copy, settings):
    declared = declared_unit_tests()
    assert declared, "no unit_tests: found in the dbt project"
    output = run_dbt(
        ["test", "--select", "test_type:unit"],
        settings.dbt_project_dir,
        built_copy,
        settings.var_dir,
    )
    passed = set(re.findall(r" PASS \S+::(\S+)", output))
    assert passed == declared, output[-3000:]
    assert re.search(r" WARN=0 ERROR=0 SKIP=0 ", output), output[-3000:]
