"""The package's import graph: no upward imports between layers, no cycles between modules.

The layers, bottom to top (``shared/DESIGN.md``): builder, write_behind (a module) -> geometry,
parsing -> tensor_ops -> layer -> mazepa -> message_queues -> cloud_management -> mazepa_addons ->
mazepa_layer_processing -> demo, training -> cli. A module may import its own package and the
packages of lower layers, never a package of a higher layer (or of the same layer, for the two
layers that hold two packages).

What counts as an import: every ``import``/``from ... import`` statement anywhere in a module
(module level, inside functions and classes, inside ``if TYPE_CHECKING:``), relative ones
included, and every ``importlib.import_module("...")`` call whose argument is a string literal.
A lazy import inside a function is still an import: it must obey the layer order too. The one
place left out is an ``if __name__ == "__main__":`` block: a program's entry point (``python -m
zetta_utils.mazepa_addons.pod_workers``), run as a program and never on import, which like the
CLI may use any layer.

The sanctioned exceptions, which go through a registry rather than naming a module:

- ``zetta_utils/__init__.py``'s ``load_all_modules`` imports every registering subpackage by
  names kept in a tuple; the builder calls it (``import zetta_utils``, the root package, which
  every module may import) when a spec names a type it does not know yet. Registration goes from
  the registered module to the builder, never back.
- A lower package offering a name an upper one provides: the upper package hands it down on
  import (``mazepa_addons`` calls ``mazepa.provide_remote_entry_points``, so that the guide's
  ``mazepa.execute_on_gcp_with_sqs`` works), and the lower package's module ``__getattr__``
  loads it on first use through ``zetta_utils.load_all_modules``, as the builder does. Likewise
  geometry registers the ``[x, y, z]`` to ``Vec3D`` coercion (``builder.register_coercion``) and
  parsing the spec file reader (``builder.register_spec_file_loader``) with the builder.

Cycles are looked for among the modules of the package: an edge ``a -> b`` for every import of
``b`` by ``a`` (``from p import x`` is an edge to ``p.x`` when that is a module, else to ``p``;
the parents of an imported module are not added, since a package importing its own submodules is
the normal shape). Any strongly connected component of more than one module is a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "zetta_utils"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

LAYERS: dict[str, int] = {
    "builder": 0,
    "write_behind": 0,  # a module (standard library only): layer's backends and mazepa use it
    "geometry": 1,
    "parsing": 1,
    "tensor_ops": 2,
    "layer": 3,
    "mazepa": 4,
    "message_queues": 5,
    "cloud_management": 6,
    "mazepa_addons": 7,
    "mazepa_layer_processing": 8,
    "demo": 9,
    "training": 9,
    "cli": 10,
}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package, by dotted name (compiled extensions too: their ``.pyi``)."""
    out: dict[str, Path] = {}
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.pyi")]):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if path.suffix == ".pyi" and path.with_suffix(".py").exists():
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _is_main_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _walk_outside_main_block(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those of ``if __name__ == "__main__":`` blocks (a program's entry point,
    run by ``python -m``, never on import: like the CLI, it may use any layer)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node) if not _is_main_block(c))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of ``zetta_utils`` code in one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in _walk_outside_main_block(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if sub in modules else base
        elif isinstance(node, ast.Call):
            func = node.func
            is_import_module = (
                isinstance(func, ast.Attribute)
                and func.attr == "import_module"
                and isinstance(func.value, ast.Name)
                and func.value.id == "importlib"
            ) or (isinstance(func, ast.Name) and func.id == "import_module")
            if (
                is_import_module
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield node.lineno, node.args[0].value


def import_graph(
    root: Path = ROOT,
) -> tuple[dict[str, Path], dict[str, list[tuple[int, str]]]]:
    modules = module_files(root)
    graph: dict[str, list[tuple[int, str]]] = {}
    for module, path in modules.items():
        graph[module] = [
            (line, target)
            for line, target in imports_of(module, path, modules)
            if target == PACKAGE or target.startswith(PACKAGE + ".")
        ]
    return modules, graph


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(modules: dict[str, Path], graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    problems = []
    for module, edges in graph.items():
        src = _package_of(module)
        if src is None or src not in LAYERS:
            continue
        for line, target in edges:
            dst = _package_of(target)
            if dst is None or dst == src:
                continue
            if dst not in LAYERS:
                problems.append(f"{modules[module]}:{line}: imports {target} (no layer)")
            elif LAYERS[dst] >= LAYERS[src]:
                problems.append(
                    f"{modules[module]}:{line}: imports {target}: layer {dst} "
                    f"({LAYERS[dst]}) is not below {src} ({LAYERS[src]})"
                )
    return problems


def cycles(graph: dict[str, list[tuple[int, str]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    succ = {m: sorted({t for _, t in edges if t in graph and t != m}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(succ):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = succ[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _describe_cycle(
    comp: list[str], modules: dict[str, Path], graph: dict[str, list[tuple[int, str]]]
) -> str:
    members = set(comp)
    lines = [f"import cycle among {', '.join(comp)}:"]
    for module in comp:
        for line, target in graph[module]:
            if target in members and target != module:
                lines.append(f"  {modules[module]}:{line}: imports {target}")
    return "\n".join(lines)


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - set(LAYERS) == set(), "add the new package to LAYERS (and DESIGN.md)"


def test_no_upward_imports() -> None:
    modules, graph = import_graph()
    problems = upward_imports(modules, graph)
    assert not problems, "imports of a higher layer:\n" + "\n".join(problems)


def test_no_import_cycles() -> None:
    modules, graph = import_graph()
    found = cycles(graph)
    assert not found, "\n".join(_describe_cycle(c, modules, graph) for c in found)


def test_the_checks_catch_a_planted_upward_import_and_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    for sub in ("builder", "geometry"):
        (pkg / sub).mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "builder" / "__init__.py").write_text("from .a import x\n")
    (pkg / "builder" / "a.py").write_text(
        "def f():\n    from zetta_utils.geometry import bbox\n\nfrom . import b\nx = 1\n"
    )
    (pkg / "builder" / "b.py").write_text(
        "import importlib\nimportlib.import_module('zetta_utils.builder.a')\n"
    )
    (pkg / "geometry" / "__init__.py").write_text("from zetta_utils import builder\n")
    (pkg / "geometry" / "bbox.py").write_text("")
    modules, graph = import_graph(pkg)
    problems = upward_imports(modules, graph)
    assert len(problems) == 1 and "a.py:2: imports zetta_utils.geometry.bbox" in problems[0]
    assert cycles(graph) == [["zetta_utils.builder.a", "zetta_utils.builder.b"]]
