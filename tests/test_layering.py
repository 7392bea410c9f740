"""The library's layers, checked: no Prefect under the library, no cycles between its packages.

The library is every module under ``l1flow/`` except the CLI (``l1flow.cli``,
``l1flow.__main__``) and the orchestration (``l1flow.flows``): those two may
import Prefect (lazily, in the CLI's case); nothing else may, so the library
stays testable and usable without it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "l1flow"
OUTSIDE_THE_LIBRARY = ("l1flow.cli", "l1flow.flows", "l1flow.__main__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _library_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        # the symbolic link l1flow/flows leads to the orchestration; its files are not the library's
        name = _module_name(path)
        if not name.startswith(OUTSIDE_THE_LIBRARY):
            names.append(name)
    return names


LIBRARY = _library_modules()


def test_the_library_is_found() -> None:
    # a broken walk would make the tests below pass on nothing
    assert {"l1flow.fileio", "l1flow.verify.gate", "l1flow.pipeline.publish", "l1flow.service.watch"} <= set(LIBRARY)
    assert not any(name.startswith("l1flow.flows") for name in LIBRARY)


@pytest.mark.slow
def test_no_library_module_imports_prefect() -> None:
    # one fresh interpreter imports every library module; if prefect shows up,
    # import them one by one to name the culprit
    probe = (
        "import importlib, sys\n"
        f"for name in {LIBRARY!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    if result.stdout.strip() != "[]":
        culprits = []
        for name in LIBRARY:
            one = f"import importlib, sys; importlib.import_module({name!r}); print('prefect' in sys.modules)"
            single = subprocess.run([sys.executable, "-c", one], capture_output=True, text=True, cwd=ROOT)
            if single.stdout.strip() == "True":
                culprits.append(name)
        pytest.fail(f"importing these library modules loads prefect: {culprits}")


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every ``l1flow.*`` module ``path`` imports, at any depth of the file (lazy imports count too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "l1flow" or name.startswith("l1flow.")}


def _package_of(module: str, packages: set[str]) -> str:
    """The innermost l1flow package holding ``module`` (a top-level module is its own node)."""
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        candidate = ".".join(parts[:depth])
        if candidate in packages and candidate != "l1flow":
            # sub-packages count as part of the first-level package: l1flow.report.templates -> l1flow.report
            return ".".join(candidate.split(".")[:2])
    return ".".join(parts[:2])


def package_graph() -> dict[str, set[str]]:
    """First-level library packages (and top-level modules) and which of them each imports."""
    packages = {_module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module.startswith(OUTSIDE_THE_LIBRARY) or module == "l1flow":
            continue
        source = _package_of(module, packages)
        edges = graph.setdefault(source, set())
        for target in _imported_modules(path, module):
            if target == "l1flow" or target.startswith(OUTSIDE_THE_LIBRARY):
                continue
            other = _package_of(target, packages)
            if other != source:
                edges.add(other)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_library_packages_import_each_other_without_cycles() -> None:
    graph = package_graph()
    assert "l1flow.conditions" in graph and "l1flow.data" in graph["l1flow.pipeline"]
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle between library packages: {' -> '.join(cycle or [])}"


def test_the_library_never_imports_the_cli_or_the_flows() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module.startswith(OUTSIDE_THE_LIBRARY):
            continue
        wrong = sorted(t for t in _imported_modules(path, module) if t.startswith(OUTSIDE_THE_LIBRARY))
        if wrong:
            offenders.append(f"{module} imports {', '.join(wrong)}")
    assert not offenders, "; ".join(offenders)
