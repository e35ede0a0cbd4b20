"""The import rules of docs/architecture.md, read from the code itself (no module is imported): imports
run one way, so there is no circle (not even through an import inside a function); nothing in batches/
reaches up into dashboard/; the ground floor imports nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.servers import REPO

PACKAGES = ("batches", "dashboard")
# The ground floor: what every layer may import, and which imports nothing of the project.
GROUND = ("batches.conf", "batches.metrics", "batches.vocabulary")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = project_modules()


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path) -> set[str]:
    """The project modules ``module`` imports: every import statement, at the top or inside a function
    (an import inside a function must not hide a circle)."""
    targets: set[str] = set()
    for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(statement, ast.Import):
            names = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            base = _absolute(module, path, statement)
            # "from package import submodule" imports the submodule; "from module import name" the module.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in statement.names]
        else:
            continue
        for name in names:
            # The module itself, or the nearest package above it that is ours.
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            # A module's own packages are loaded before it: importing from them closes no circle.
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
    return targets


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


def test_the_rules_read_the_whole_tree():
    assert {"batches.conf", "batches.access", "batches.results.join", "dashboard.settings"} <= set(GRAPH)
    assert "batches.projects" in GRAPH["batches.access"]
    assert GRAPH["batches.results.page"] >= {"batches.results.join", "batches.results.kept", "batches.models"}


def test_nothing_in_batches_imports_dashboard():
    upward = sorted(
        (module, target)
        for module, targets in GRAPH.items()
        if module.startswith("batches")
        for target in targets
        if target.startswith("dashboard")
    )
    assert upward == []


def test_the_ground_floor_imports_nothing_of_the_project():
    assert {module: sorted(GRAPH[module]) for module in GROUND} == {module: [] for module in GROUND}


def test_no_module_takes_part_in_an_import_circle():
    circles = []
    state: dict[str, str] = {}  # "open" while on the path, "done" once every route from it is walked

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            walk(module, [module])
    assert circles == []


# Rooms low in the house (docs/architecture.md): they never import a room above them.
LOW = ("batches.projects", "batches.project_limits", "batches.project_money", "batches.project_tables", "batches.upstream",
       "batches.cache")
HIGH = ("batches.jobs", "batches.costs", "batches.views", "batches.index", "batches.oversight", "batches.notify", "batches.results")


def test_no_low_room_imports_a_high_one():
    upward = sorted(
        (module, target)
        for module, targets in GRAPH.items()
        if module.startswith(LOW)
        for target in targets
        if target.startswith(HIGH)
    )
    assert upward == []
