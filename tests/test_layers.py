"""The package's shape: imports run one way, from the command line down to the core.

Each module belongs to a layer (the data flow: read -> validate -> chats -> metrics -> policy ->
history -> report, with the command line on top). A module may import from its own layer or a
lower one, never a higher one, and no two modules import each other, directly or round about.
A new module must be given its layer here (docs/architecture.md shows the same list).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from paths import ROOT

PACKAGE = ROOT / "src" / "cs_metrics"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "threads"),
    ("arrow_text", "config", "files", "formats"),
    ("readers", "reasons", "timestamps", "validate", "duplicates"),
    ("policy", "chats", "metrics", "unusable", "engines"),
    ("pipeline", "enforcement"),
    (
        "checkup",
        "history",
        "output",
        "privacy",
        "scan",
        "scan_eval",
        "importers",
        "generate",
        "fetch",
        "watch",
    ),
    ("week_files",),
    ("report",),
    ("weekly", "appeal"),
    ("delivery",),
    ("cli", "__main__"),
]
"""Module names (the first part below cs_metrics) by layer, lowest first."""


def module_name(path: Path) -> str:
    """`cs_metrics.report.build` for src/cs_metrics/report/build.py."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer of a cs_metrics module."""
    if module == "cs_metrics":
        return 0  # the package's __init__: its version only
    top = module.split(".")[1]
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"{module}: give it a layer in tests/test_layers.py")


def imports_of(path: Path) -> set[str]:
    """The cs_metrics modules a file imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "cs_metrics":
                continue
            # `from cs_metrics.report import build` imports a module; `import __version__` not.
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= submodules & set(MODULES)
            if node.module != "cs_metrics":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cs_metrics.")}
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_higher_layer(module: str) -> None:
    own = layer_of(module)
    upward = sorted(m for m in imports_of(MODULES[module]) if layer_of(m) > own)
    assert not upward, f"{module} (layer {own}) imports from higher layers: {upward}"


def test_no_import_cycle() -> None:
    """No module reaches itself through its imports (a package's __init__ picking one of its own
    modules, as `engines.choose` does, is the family's face, not a cycle)."""
    graph = {
        name: {
            m
            for m in imports_of(path)
            if m in MODULES and m != name and not m.startswith(f"{name}.")
        }
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target) :], target] if target in trail else [target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
