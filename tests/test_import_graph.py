"""The library's import graph: no circle, and no module too long to read in one sitting.

Every ``import`` statement of every module under ``workflow/bioprobe`` counts, including those
inside functions (a lazy import still ties two modules together). Modules are found on disk, so
the test follows the library as it grows.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent.parent / "workflow" / "bioprobe"
MAX_LINES = 600


def library_modules(root: Path = LIBRARY) -> dict[str, Path]:
    """``{dotted name: file}`` of every module below ``root``; a package is named by its ``__init__.py``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The library modules that module ``name`` imports (relative or absolute, at any depth)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub; `from mod import name` imports mod
            for alias in node.names:
                sub = f"{origin}.{alias.name}"
                targets.add(sub if sub in modules else origin)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    return {t for t in targets if t in modules and t != name}


def import_graph(root: Path = LIBRARY) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the library."""
    modules = library_modules(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
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


def test_the_graph_sees_relative_absolute_and_function_level_imports(tmp_path):
    pkg = tmp_path / "lib"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("from .c import y\n")
    (pkg / "sub" / "c.py").write_text("import lib.a\nfrom .. import b\n")
    graph = import_graph(pkg)
    assert graph == {"lib": set(), "lib.a": {"lib.b"}, "lib.b": {"lib.sub.c"}, "lib.sub": {"lib.sub.c"},
                     "lib.sub.c": {"lib.a", "lib.b"}}
    assert find_cycle(graph) == ["lib.a", "lib.b", "lib.sub.c", "lib.a"]
    (pkg / "sub" / "c.py").write_text("import numpy\n")
    assert find_cycle(import_graph(pkg)) is None


def test_the_library_has_no_import_circle():
    graph = import_graph()
    assert {"bioprobe.models", "bioprobe.weights", "bioprobe.encoders", "bioprobe.download.fetch"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_models_sit_below_weights_and_encoders():
    graph = import_graph()
    assert not graph["bioprobe.models"], "bioprobe.models imports nothing from the library"
    assert not any(dep.startswith("bioprobe.encoders") for dep in graph["bioprobe.weights"])
    assert "bioprobe.download.fetch" in graph["bioprobe.weights"]  # one HTTP fetch path


def test_no_library_module_is_over_the_length_limit():
    long = {name: n for name, path in library_modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def private_names_used(path: Path) -> list[str]:
    """``module._name`` uses and ``from module import _name`` imports of bioprobe in a test file."""
    tree = ast.parse(path.read_text(), str(path))
    bound: set[str] = set()  # names bound to a bioprobe module or package
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bioprobe"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno} from {node.module} import {alias.name}")
                bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            bound.update(alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name.startswith("bioprobe"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, (ast.Name, ast.Attribute))):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_test_reaches_into_a_private_name_of_the_library(tmp_path):
    probe = tmp_path / "test_x.py"
    probe.write_text("from bioprobe.download import _locked, fetch_file\nimport bioprobe.weights as w\nw._relative(1, 2)\n")
    assert private_names_used(probe) == ["test_x.py:1 from bioprobe.download import _locked", "test_x.py:3 w._relative"]
    tests = Path(__file__).resolve().parent
    found = [hit for path in sorted(tests.rglob("*.py")) if path != Path(__file__).resolve() for hit in private_names_used(path)]
    assert not found, "tests using private names of the library: " + "; ".join(found)


#: The library's layers, bottom (0) to top, as drawn in docs/architecture.md. A module may
#: import its own layer or a lower one. Keys are module names or package prefixes.
LAYERS = {
    "bioprobe": 0, "bioprobe.config": 0, "bioprobe.fileio": 0, "bioprobe.models": 0,
    "bioprobe.metrics": 0, "bioprobe.pooling": 0, "bioprobe.splits": 0, "bioprobe.smk": 0,
    "bioprobe.tiny": 0, "bioprobe.demo": 0, "bioprobe.batching": 0, "bioprobe.flops": 0,
    "bioprobe.store": 1, "bioprobe.audio": 1, "bioprobe.download": 1, "bioprobe.weights": 1,
    "bioprobe.datasets": 2, "bioprobe.encoders": 2, "bioprobe.audit": 2,
    "bioprobe.embed": 3, "bioprobe.probes": 3,
    "bioprobe.fusion": 4, "bioprobe.stats": 4, "bioprobe.cheapest": 4, "bioprobe.leakage": 4,
    "bioprobe.tables": 5, "bioprobe.figures": 5, "bioprobe.budget": 5, "bioprobe.label_efficiency_plot": 5,
}


def layer_of(module: str, layers: dict[str, int] = LAYERS) -> int | None:
    """The layer of ``module``: its own entry, else that of its closest package with one."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if (name := ".".join(parts[:end])) in layers and (end > 1 or module == "bioprobe"):
            return layers[name]
    return None


def test_layer_of_takes_the_closest_package():
    layers = {"bioprobe": 0, "bioprobe.probes": 3}
    assert layer_of("bioprobe.probes.mlp", layers) == 3
    assert layer_of("bioprobe", layers) == 0
    assert layer_of("bioprobe.newthing", layers) is None  # the root package is not a catch-all


def test_every_module_imports_only_its_own_layer_or_below():
    graph = import_graph()
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert not unplaced, f"modules without a layer (add them to LAYERS and docs/architecture.md): {unplaced}"
    upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
              for m, deps in sorted(graph.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "imports up the layers: " + "; ".join(upward)
