"""The command line is one package on top of everything: no import cycle inside it, nothing below importing it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
SHIPYARD = SRC / "shipyard"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every shipyard module `path` imports, at the top or inside a function (lazy imports still form cycles)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shipyard"):
            for alias in node.names:  # `from shipyard.cli import render` imports the module shipyard.cli.render
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("shipyard"))
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in SHIPYARD.rglob("*.py") if "migrations" not in p.parts and "template" not in p.parts}
    return {name: imported_modules(path, set(paths)) & set(paths) for name, path in paths.items()}


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start → … → start through the graph, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycle_through_the_cli() -> None:
    graph = import_graph()
    # The package's __init__ assembles the app from its modules; a module importing the package back would close a loop.
    cycles = [c for name in sorted(graph) if name.startswith("shipyard.cli") and (c := cycle_from(graph, name))]
    assert not cycles, " ; ".join(" → ".join(c) for c in cycles)


def test_nothing_outside_the_cli_imports_it() -> None:
    graph = import_graph()
    outside = {
        (name, dep)
        for name, deps in graph.items()
        if not name.startswith("shipyard.cli") and name != "shipyard.__main__"  # `python -m shipyard` is the CLI
        for dep in deps
        if dep == "shipyard.cli" or dep.startswith("shipyard.cli.")
    }
    assert not outside, sorted(outside)


def test_the_demo_lives_in_the_cli_package() -> None:
    """`shipyard demo` narrates with the CLI's renderers, so it belongs to the CLI, not beside it."""
    assert not (SHIPYARD / "demo.py").exists()
    graph = import_graph()
    cli_modules = {m for m in graph if m.startswith("shipyard.cli")}
    assert graph["shipyard.cli.demo"] & cli_modules == {"shipyard.cli.render", "shipyard.cli.demo_team"}
