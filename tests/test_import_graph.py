"""No import circles in the product packages.

A circle makes the import order matter: whichever module of the circle is imported
first sees the others half-initialized, and a new `from x import y` somewhere can then
fail at start-up with a partially-initialized-module error. The graph is read with `ast`
from the source, not by importing it, so the test sees every module, imported or not.

Counted: every import statement, at module level or inside a function. An import moved
into a function only hides a circle from the interpreter: the two modules still need
each other, and the circle comes back as soon as one of them is imported from the
other side. Not counted: imports under `if TYPE_CHECKING:`, which never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "qjm_jupyter_server": ROOT / "server_ext" / "qjm_jupyter_server",
    "qjm_jupyter": ROOT / "qjm_jupyter",
}


def _modules(package: str, path: Path) -> dict[str, Path]:
    found = {}
    for file in path.rglob("*.py"):
        parts = list(file.relative_to(path).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([package, *parts])] = file
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, except in `if TYPE_CHECKING:` blocks."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            yield from _imports(child)
        return
    for child in ast.iter_child_nodes(node):
        yield from _imports(child)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in known:  # `from . import jobs`: the submodule itself
            yield submodule
        elif source in known:
            yield source


def import_graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package, PACKAGES[package])
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        tree = ast.parse(file.read_text(), filename=str(file))
        is_package = file.name == "__init__.py"
        graph[name] = {
            target
            for node in _imports(tree)
            for target in _targets(name, is_package, node, known)
            if target != name
        }
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_known_edges() -> None:
    """The walker itself: relative imports, `from . import x`, function-local imports,
    TYPE_CHECKING skipped."""
    graph = import_graph("qjm_jupyter_server")
    assert "qjm_jupyter_server.handlers.jobs" in graph["qjm_jupyter_server.handlers"]  # from . import jobs
    assert "qjm_jupyter_server.handlers.base" in graph["qjm_jupyter_server.handlers.jobs"]  # from .base import
    assert "qjm_jupyter_server.api.spec" in graph["qjm_jupyter_server.handlers.jobs"]  # from ..api.spec import
    assert "qjm_jupyter_server.services" not in graph["qjm_jupyter_server.handlers.base"]  # TYPE_CHECKING only
    assert "qjm_jupyter_server.app" in graph["qjm_jupyter_server"]  # inside _jupyter_server_extension_points
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_server_extension_has_no_import_circle() -> None:
    assert circles(import_graph("qjm_jupyter_server")) == []


def test_kernel_package_has_no_import_circle() -> None:
    assert circles(import_graph("qjm_jupyter")) == []
