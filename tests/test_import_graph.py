"""The package's import graph has no circle, counting imports inside functions too.

An import inside a function still makes the two modules depend on each other; moving it there only
hides a circle from the interpreter. So every ``import`` statement counts, wherever it is, except
those under ``if TYPE_CHECKING:`` (never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_segments

PACKAGE = "airflow_provider_segments"
ROOT = Path(airflow_provider_segments.__file__).parent


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in ROOT.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement of ``tree`` may load (type-checking imports aside)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)  # a submodule, if it is one
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports. Importing ``a.b.c`` also runs ``a.b``'s
    ``__init__``, so that counts too, unless the importer lives inside ``a.b`` itself (a package's
    ``__init__`` importing its own submodules is how packages are built, not a circle)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for name in _imported_names(ast.parse(path.read_text()), module, is_package):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                target = ".".join(parts[:end])
                if target not in modules or target == module:
                    continue
                inside = module == target or module.startswith(target + ".")
                if end < len(parts) and inside:
                    continue  # an ancestor package of the importer: already running
                edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_imports_form_no_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_checker_sees_a_circle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    tree = ast.parse("def f():\n    from airflow_provider_segments import lineage\n")
    assert "airflow_provider_segments.lineage" in _imported_names(tree, f"{PACKAGE}.hooks.walkme", False)


def test_the_checker_reads_the_whole_package():
    graph = import_graph()
    assert f"{PACKAGE}.hooks.walkme" in graph and f"{PACKAGE}.http.client" in graph
    assert f"{PACKAGE}.membership" in graph[f"{PACKAGE}.hooks.walkme"]


#: Issue 18: a module longer than this holds more than one idea (CONVENTIONS.md, "The house").
MAX_MODULE_LINES = 450


def test_no_module_of_the_package_is_longer_than_the_house_allows():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(ROOT.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (lines over {MAX_MODULE_LINES}): {long}"
