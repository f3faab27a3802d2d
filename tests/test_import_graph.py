"""No import circles in the kernel package, and no tornado/jupyter_server import in it.

Every `import` statement counts: at module level, inside functions (lazy imports) and
under `if TYPE_CHECKING:`, because each of them is a dependency a reader has to follow,
and a lazy import that closes a circle only hides it until the first call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def module_names(package_dir: Path) -> dict[str, Path]:
    """`pkg.sub.mod` -> file, for every .py file of a package."""
    root = package_dir.parent
    names = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's own modules that `name` imports (anywhere in the file)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from . import credentials` imports the submodule; `from .a import b` module a
            subs = [f"{origin}.{alias.name}" for alias in node.names if f"{origin}.{alias.name}" in modules]
            targets = subs + ([origin] if len(subs) < len(node.names) else [])
        for target in targets:
            # the longest known module that the dotted name names (`a.b.c` -> `a.b` if c is a class)
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def find_cycle(package_dir: Path) -> list[str] | None:
    modules = module_names(package_dir)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    # (Importing a submodule also runs its package's __init__: Python's package rule, not an
    # import the code wrote, so it adds no edge.)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_checker_finds_a_lazy_circle(tmp_path: Path) -> None:
    """The check can fail: a circle closed by an import inside a function is found."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n")
    assert find_cycle(pkg) in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])
    (pkg / "b.py").write_text("def thing():\n    return 1\n")
    assert find_cycle(pkg) is None


@pytest.mark.parametrize("package", ["qjm_jupyter"])
def test_no_import_circles(package: str) -> None:
    assert find_cycle(REPO / package) is None


def test_kernel_package_never_imports_the_server_stack() -> None:
    modules = module_names(REPO / "qjm_jupyter")
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            roots = []
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                roots = [node.module.split(".")[0]]
            assert not set(roots) & {"tornado", "jupyter_server", "qjm_jupyter_server"}, name


MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Lock", "RLock", "Event"}


def module_level_state(path: Path) -> list[str]:
    """Module-level names bound to a mutable container or a sync primitive, and `global` rebinding."""
    found = []
    tree = ast.parse(path.read_text())
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue  # the export list, read by `import *` only
        if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in MUTABLE_CALLS:
                found.append(f"{path.name}:{node.lineno}")
    found += [f"{path.name}:{n.lineno} global" for n in ast.walk(tree) if isinstance(n, ast.Global)]
    return found


def test_kernel_state_lives_in_session_only() -> None:
    offenders = {
        path.name: module_level_state(path)
        for path in (REPO / "qjm_jupyter").glob("*.py") if path.name != "session.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}
