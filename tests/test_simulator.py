"""The simulator: deterministic, realistic enough, and outside the product's import graph."""

from __future__ import annotations

import ast
import hashlib

from conftest import REPO, SIM_START
from touchpoint_sim.population import generate
from touchpoint_sim.writers import write_world


def digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files(tmp_path):
    for name in ("a", "b"):
        write_world(generate(40, 2, 5, SIM_START), tmp_path / name / "landing", tmp_path / name / "sim")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    write_world(generate(40, 2, 6, SIM_START), tmp_path / "c" / "landing", tmp_path / "c" / "sim")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_the_world_has_anonymous_visitors_who_identify_and_customers_who_buy():
    world = generate(100, 3, 1, SIM_START)
    assert any("userId" not in e for e in world.web_events)
    assert any(e["type"] == "identify" for e in world.web_events)
    assert any(p.purchased_at for p in world.people)
    assert any(isinstance(e.get("category"), list) for e in world.email_events)
    assert all(SIM_START.isoformat() <= e["timestamp"][:10] for e in world.web_events)


def test_the_product_package_never_imports_the_simulator():
    offenders = []
    for path in (REPO / "src" / "touchpoint").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "touchpoint_sim" for n in names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    # The CLI dispatches `simulate` and `demo` to the simulator lazily, and nothing else may.
    assert all(o.startswith("src/touchpoint/cli.py") for o in offenders), offenders
