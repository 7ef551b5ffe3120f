"""The shape of the code: one door for every change, and `import shipyard` stays light.

Layers and the absence of import cycles are import-linter contracts (pyproject.toml), checked by
`make lint`, which `make test` runs first; `test_import_contracts_hold` runs them here too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "shipyard"
THE_DOOR = ("service",)  # the only package that may change the store


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=SRC.parents[1], check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def store_mutators() -> set[str]:
    """Public methods of the store's classes that open a writing transaction."""
    found = set()
    for path in (SRC / "store").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for method in node.body:
                if not isinstance(method, ast.FunctionDef) or method.name.startswith("_"):
                    continue
                writes = any(
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "write"
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "self"
                    for call in ast.walk(method)
                )
                if writes or method.name == "write":
                    found.add(method.name)
    return found


def store_calls(path: Path, names: set[str]) -> list[str]:
    """Calls ``<…>.store.<name>(…)`` (or ``store.<name>``) of the given methods in one module."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names):
            continue
        receiver = node.func.value
        name = receiver.attr if isinstance(receiver, ast.Attribute) else receiver.id if isinstance(receiver, ast.Name) else ""
        if name in ("store", "_store"):
            calls.append(f"{path.relative_to(SRC)}:{node.lineno} {node.func.attr}")
    return calls


def test_only_the_service_changes_the_store() -> None:
    mutators = store_mutators()
    # The list is derived, not typed in: make sure the derivation still finds the writes it must.
    assert {"write", "register_version", "transition", "record_approval", "advance_rollout", "record_monitor_run"} <= mutators
    outside = [
        call
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] not in (*THE_DOOR, "store")
        for call in store_calls(path, mutators)
    ]
    assert outside == [], "only shipyard.service may change the store; these modules do:\n" + "\n".join(outside)


def test_nothing_reaches_past_the_service_into_its_store() -> None:
    """Faces and the worker call service methods; `service.store` (or `….service.store`) is the service's own."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] in THE_DOOR:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("store", "_store"):
                owner = node.value
                name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
                if name in ("service", "_service", "robot", "scientist", "reviewer", "deployer"):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == [], "these reach into a service's store instead of calling the service:\n" + "\n".join(found)


def test_import_shipyard_and_cli_stay_light() -> None:
    """`shipyard --help` must not pay for mlflow, sklearn, pandas or SQLAlchemy."""
    code = (
        "import sys, json; import shipyard.cli, shipyard.service; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout))
    heavy = {"mlflow", "sklearn", "pandas", "numpy", "scipy", "pyarrow", "skops", "alembic"}
    assert loaded.isdisjoint(heavy), loaded & heavy
