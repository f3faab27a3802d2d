"""House rules of the kernel package that its import graph alone does not show: it never
imports the server stack (tornado, jupyter_server, the server extension), and its only
module-level mutable state lives in `session.py`.
(The package's import circles are checked with the server's in tests/test_import_graph.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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
