"""Layers point down, and `import shipyard` stays light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "shipyard"

# DESIGN.md's layers: domain → store → adapters → capabilities → service → faces.
LAYERS: dict[str, int] = {
    "domain": 1,
    "config": 1,
    "examples": 1,
    "store": 2,
    "registry": 3,
    "lineage": 3,
    "data": 3,
    "predlog": 3,
    "labels": 3,
    "checks": 4,
    "policy": 4,
    "evidence": 4,
    "pipeline": 4,
    "rollout": 4,
    "serving": 4,
    "monitoring": 4,
    "kpis": 4,
    "scaffold": 4,
    "service": 5,
    "loop": 5,
    "tracing": 5,
    "cli": 6,
    "demo": 6,
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "shipyard"
    if len(parts) == 1:
        return 0
    name = parts[1]
    if name not in LAYERS:
        raise AssertionError(f"module shipyard.{name} has no layer: add it to LAYERS in {__file__}")
    return LAYERS[name]


def imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shipyard"):
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names if alias.name.startswith("shipyard"))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts or p.name == "env.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_lower_layers_never_import_higher_ones(path: Path) -> None:
    module = "shipyard." + ".".join(path.relative_to(SRC).with_suffix("").parts)
    module = module.removesuffix(".__init__")
    own = layer_of(module)
    for imported, line in imports(path):
        assert layer_of(imported) <= own, f"{path.name}:{line} imports {imported} from a higher layer"


def test_import_shipyard_and_cli_stay_light() -> None:
    """`shipyard --help` must not pay for mlflow, sklearn, pandas or SQLAlchemy."""
    code = (
        "import sys, json; import shipyard.cli, shipyard.service; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout))
    heavy = {"mlflow", "sklearn", "pandas", "numpy", "scipy", "pyarrow", "skops", "alembic"}
    assert loaded.isdisjoint(heavy), loaded & heavy
