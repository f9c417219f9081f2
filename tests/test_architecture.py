"""The architecture's rules, checked by walking the package's source (fast: no imports run).

- Ray is behind one seam: only ``sweeps/ray_backend/`` imports ``ray``, and the runner
  talks to it only through :class:`sweeps.backend.Backend`: nothing in ``sweeps/runner/``
  imports ``sweeps.ray_backend`` (resume included: Ray's snapshot is behind
  ``Backend.saved_sweep`` and ``Backend.prepare_resume``).
- The subpackages form layers (README's Layout): each imports only from the layers below
  it, so there is no import cycle between them, counting imports inside functions and
  type-only ones, which would only hide a cycle.
- No module imports itself through others (inside functions and type-only imports count).
- Every function reads as a story: none is over 60 lines, bar the few named with a reason.
- Every package names its public surface in ``__all__``.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sweeps"
SEAM = "ray_backend"
#: The layers, lowest first, as README.md's Layout section lists them: each may import only
#: from layers before it (``errors`` and ``sqlite`` are leaves anyone may import).
LAYERS = [
    "errors",
    "sqlite",
    "numbers",
    "spec",
    "iterations",
    "training",
    "plan",
    "outcomes",
    "store",
    "search",
    "backend",
    "ray_backend",
    "tracking",
    "runner",
    "analysis",
    "cli",
    "__main__",
]
LONGEST_FUNCTION = 60


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported(tree: ast.Module) -> Iterator[str]:
    """Every module ``tree`` imports, wherever the import statement is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def subpackage(module: str) -> str:
    """``sweeps.runner.ledger`` → ``runner``; a top-level module is its own unit."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def dependency_graph() -> dict[str, dict[str, set[str]]]:
    """subpackage → subpackage it imports → the importing modules."""
    graph: dict[str, dict[str, set[str]]] = {}
    for name, tree in modules():
        source = subpackage(name)
        for target_module in imported(tree):
            if not target_module.startswith("sweeps.") or target_module == "sweeps":
                continue
            target = subpackage(target_module)
            if target != source:
                graph.setdefault(source, {}).setdefault(target, set()).add(name)
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle in ``graph`` as a path [a, b, ..., a], or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, {})):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_only_the_seam_imports_ray() -> None:
    outside = sorted(
        name
        for name, tree in modules()
        if subpackage(name) != SEAM and any(m == "ray" or m.startswith("ray.") for m in imported(tree))
    )
    assert outside == [], f"these modules import ray outside sweeps/{SEAM}/: {outside}"


def runner_imports_of_the_seam(sources: dict[str, ast.Module]) -> list[str]:
    """``module: imported`` for each import of ``sweeps.ray_backend`` (or ``ray``) by a runner
    module, wherever the import statement is (inside functions, type-only ones too)."""
    found = []
    for name, tree in sources.items():
        if subpackage(name) != "runner":
            continue
        for target in imported(tree):
            if target in ("ray", f"sweeps.{SEAM}") or target.startswith(("ray.", f"sweeps.{SEAM}.")):
                found.append(f"{name}: {target}")
        for node in ast.walk(tree):  # `from sweeps import ray_backend`
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "sweeps"
                and any(a.name == SEAM for a in node.names)
            ):
                found.append(f"{name}: sweeps.{SEAM}")
    return found


def test_the_runner_never_imports_the_ray_seam() -> None:
    found = runner_imports_of_the_seam(dict(modules()))
    assert found == [], f"the runner must reach Ray only through sweeps.backend.Backend: {found}"


@pytest.mark.parametrize(
    "statement",
    [
        "from sweeps import ray_backend",
        "from sweeps.ray_backend.snapshot import load_experiment_state",
        "import sweeps.ray_backend.backend",
        "def f():\n    from sweeps.ray_backend import RayBackend",
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from sweeps.ray_backend.restore import continue_tuner"
        ),
    ],
)
def test_the_runner_rule_fails_on_an_import_of_the_seam(statement: str) -> None:
    sources = dict(modules())
    sources["sweeps.runner.runner"] = ast.parse(statement)
    found = runner_imports_of_the_seam(sources)
    assert found and all(f.startswith("sweeps.runner.runner: sweeps.ray_backend") for f in found), found


def test_the_runner_names_nothing_of_ray_in_its_record() -> None:
    # The summary's start time is the backend's (`start_seconds`), and SIGTERM is taken over
    # as the start-up ends, whatever the backend: no Ray-named field or workaround in the runner.
    sources = dict(modules())
    named = sorted(
        f"{name}: {node.attr if isinstance(node, ast.Attribute) else node.id}"
        for name, tree in sources.items()
        if subpackage(name) == "runner"
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in ("ray_start_seconds", "take_over_sigterm"))
        or (isinstance(node, ast.Name) and node.id in ("ray_start_seconds", "take_over_sigterm"))
    )
    assert named == [], named


def test_the_seam_is_where_the_ray_code_is() -> None:
    # The rule above must not hold only because nothing imports Ray any more.
    seam = [
        name
        for name, tree in modules()
        if subpackage(name) == SEAM and any(m == "ray" or m.startswith("ray.") for m in imported(tree))
    ]
    assert "sweeps.ray_backend.backend" in seam and "sweeps.ray_backend.trial" in seam


def test_no_import_cycle_between_subpackages() -> None:
    graph = dependency_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})" for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle between subpackages: " + "; ".join(steps))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b": {"x"}}, "b": {"c": {"y"}}, "c": {"a": {"z"}}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": {"x"}}, "b": {"c": {"y"}}}) is None


def test_each_layer_imports_only_from_the_layers_below_it() -> None:
    graph = dependency_graph()
    assert set(graph) <= set(LAYERS) | {"sweeps"}, (
        f"add these to LAYERS and README's Layout: {set(graph) - set(LAYERS)}"
    )
    upward = [
        f"{source} -> {target} (in {', '.join(sorted(modules))})"
        for source, targets in graph.items()
        if source != "sweeps"
        for target, modules in targets.items()
        if LAYERS.index(target) > LAYERS.index(source)
    ]
    assert upward == [], f"imports from a higher layer: {upward}"


def test_the_readme_lists_the_layers_in_order() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    listed = [line.split()[0] for line in layout.splitlines() if line.startswith("sweeps/")]
    named = [entry.removeprefix("sweeps/").removesuffix("/").removesuffix(".py") for entry in listed]
    in_layers = [name for name in named if name in LAYERS]
    assert in_layers == [layer for layer in LAYERS if layer in in_layers]


#: Functions whose body may run past LONGEST_FUNCTION, each with its reason. None today: the
#: six that `ruff format` stretched past 60 lines were split. A new long function fails the
#: test below unless it is named here with the reason it cannot be split.
LONG_FUNCTIONS: dict[str, str] = {}


def body_length(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end (the signature and docstring aside)."""
    body = function.body
    first = body[0]
    has_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    start = (first.end_lineno or first.lineno) + 1 if has_docstring and len(body) > 1 else first.lineno
    return (function.end_lineno or function.lineno) - start + 1


def test_no_function_is_over_60_lines() -> None:
    long = []
    for name, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = body_length(node)
                if length > LONGEST_FUNCTION and f"{name}.{node.name}" not in LONG_FUNCTIONS:
                    long.append(f"{name}.{node.name} ({length} lines)")
    assert long == [], f"split these functions (or name them in LONG_FUNCTIONS, with the reason): {long}"


def test_the_long_function_list_names_only_long_functions() -> None:
    lengths = {
        f"{name}.{node.name}": body_length(node)
        for name, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    stale = [name for name in LONG_FUNCTIONS if lengths.get(name, 0) <= LONGEST_FUNCTION]
    assert stale == [], (
        f"these are no longer over {LONGEST_FUNCTION} lines: remove them from LONG_FUNCTIONS: {stale}"
    )


def module_graph() -> dict[str, dict[str, set[str]]]:
    """module → module it imports → {the importing module}, counting every import statement.

    ``from package import name`` depends on ``package.name`` when that is a module (it runs
    that module), else on ``package`` itself.
    """
    trees = dict(modules())
    graph: dict[str, dict[str, set[str]]] = {}
    for name, tree in trees.items():
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in trees else node.module
                    for alias in node.names
                ]
            for target in targets:
                if target in trees and target != name:
                    graph.setdefault(name, {}).setdefault(target, set()).add(name)
    return graph


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle or [])


def test_the_module_graph_counts_imports_inside_functions_and_from_a_package() -> None:
    # RayBackend imports `from sweeps.ray_backend import resume` inside a method: an edge to
    # that module, not to the package (whose __init__ imports the backend only lazily).
    backend_imports = module_graph()["sweeps.ray_backend.backend"]
    assert "sweeps.ray_backend.resume" in backend_imports
    assert "sweeps.ray_backend" not in backend_imports


def test_every_package_declares_its_public_names() -> None:
    missing = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("__init__.py"))
        if "__all__" not in path.read_text(encoding="utf-8")
    ]
    assert missing == [], f"give these packages an __all__: {missing}"
