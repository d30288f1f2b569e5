"""The package's shape: no import circles between its modules, functions that fit on a screen, imports at module
top below the CLI boundary, and a CLI that parses its arguments without importing torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pyramid_bert

PACKAGE = Path(pyramid_bert.__file__).parent
MAX_FUNCTION_LINES = 80
#: Packages whose modules may import inside functions: the CLI imports its commands' work lazily (fast --help).
CLI_BOUNDARY = ("pyramid_bert.cli", "pyramid_bert.commands")
#: Dependencies a base install may lack (extras of pyproject.toml), imported where they are needed.
OPTIONAL_DEPENDENCIES = {"datasets", "ray", "onnx", "onnxruntime", "onnxscript"}
#: (module, function) allowed to import lazily: the package root's re-exports (PEP 562), because importing any
#: module of the package, the CLI's included, runs the root first, so the root must not import torch; and the
#: post-import hooks the root installs, which load the Auto classes only once transformers' Auto modules load (and
#: the Auto loader's pyramidize, whose module imports model families that cannot load while the hook fires).
LAZY_RE_EXPORTS = {
    ("pyramid_bert", "__getattr__"),
    ("pyramid_bert.patch.auto_hooks", "_register_config"),
    ("pyramid_bert.patch.auto_hooks", "_register_models"),
    ("pyramid_bert.patch.auto_model", "with_stored_selection"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (never imported at run time)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imported_modules(path: Path) -> set[str]:
    """The project modules ``path`` imports anywhere (module level or inside functions); ``from pkg import mod``
    counts as importing ``pkg.mod``, ``from mod import name`` as importing ``mod``."""
    tree = ast.parse(path.read_text())
    skipped, found = type_checking_nodes(tree), set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(node.module)
    return (found & MODULES.keys()) - {module_name(path)}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_a_circle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_itself_in_a_circle():
    graph = {name: imported_modules(path) for name, path in MODULES.items()}
    assert import_cycles(graph) == []


def is_compiled_kernel(node: ast.FunctionDef) -> bool:
    return any("njit" in ast.unparse(decorator) or "jit" in ast.unparse(decorator) for decorator in node.decorator_list)


def test_functions_fit_on_a_screen():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_compiled_kernel(node):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def function_level_imports(source: str) -> list[tuple[str, str, int]]:
    """(innermost function, imported module, line) of every import statement inside a function of ``source``."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if function is not None and isinstance(child, ast.Import):
                found.extend((function, alias.name, child.lineno) for alias in child.names)
            elif function is not None and isinstance(child, ast.ImportFrom):
                found.append((function, "." * child.level + (child.module or ""), child.lineno))
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def test_the_import_finder_sees_imports_in_functions_and_methods_only():
    source = (
        "import os\nfrom typing import Any\n"
        "def f():\n    import torch\n    if True:\n        from scipy import stats\n"
        "class C:\n    def g(self):\n        def inner():\n            from . import io\n"
    )
    assert function_level_imports(source) == [("f", "torch", 4), ("f", "scipy", 6), ("inner", ".", 10)]


def test_library_modules_import_at_module_top():
    lazy = []
    for name, path in MODULES.items():
        if any(name == boundary or name.startswith(boundary + ".") for boundary in CLI_BOUNDARY):
            continue
        for function, module, line in function_level_imports(path.read_text()):
            if module.split(".")[0] in OPTIONAL_DEPENDENCIES or (name, function) in LAZY_RE_EXPORTS:
                continue
            lazy.append(f"{name}:{line} in {function}(): {module}")
    assert lazy == []


def test_the_lazily_imported_dependencies_are_extras_not_base_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for requirement in requirements}

    extras = set().union(*(names(group) for group in project["optional-dependencies"].values()))
    assert extras >= OPTIONAL_DEPENDENCIES
    assert not OPTIONAL_DEPENDENCIES & names(project["dependencies"])


def test_parsing_the_command_line_imports_neither_torch_nor_transformers():
    code = (
        "import sys\nfrom pyramid_bert.cli import build_parser\nbuild_parser()\n"
        "print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"
