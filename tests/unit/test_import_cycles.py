"""No import cycle among the project's modules, counting the imports inside functions too (docs/ARCHITECTURE.md,
"Layers"): an import deferred into a function still ties the two modules together, it only hides the cycle
from Python's loader. Pure: reads the source with ast, imports nothing of the project."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from tests.unit.test_import_rules import imported, module_name

ROOT = Path(__file__).parents[2]
PACKAGES = ("lab", "topology", "bgp", "traffic", "policy_dataplane", "services")


def import_graph(root: Path) -> nx.DiGraph:
    """module -> module it imports, for every import statement anywhere in the file. `from a.b import c`
    points at `a.b.c` when that is a module, else at `a.b`; a package's `__init__` counts as the package."""
    import ast

    files = {module_name(root, path): path for package in PACKAGES if (root / package).is_dir()
             for path in sorted((root / package).rglob("*.py"))}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for module, path in files.items():
        for _line, name in imported(module, path.name == "__init__.py", ast.parse(path.read_text(), str(path))):
            target = name if name in files else name.rpartition(".")[0]
            if target in files and target != module:
                graph.add_edge(module, target)
    return graph


def cycles(root: Path) -> list[list[str]]:
    """Every strongly connected group of modules (each one holds at least one cycle), sorted."""
    return sorted(sorted(group) for group in nx.strongly_connected_components(import_graph(root)) if len(group) > 1)


def describe(root: Path, group: list[str]) -> str:
    cycle = nx.find_cycle(import_graph(root).subgraph(group))
    return " -> ".join([a for a, _b in cycle] + [cycle[0][0]])


def test_no_import_cycle_among_the_project_modules() -> None:
    found = cycles(ROOT)
    assert not found, "import cycles:\n" + "\n".join(describe(ROOT, g) for g in found)


def test_a_cycle_through_an_import_inside_a_function_is_caught(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "__init__.py").write_text("")
    (tmp_path / "lab" / "a.py").write_text("from lab.b import thing\n")
    (tmp_path / "lab" / "b.py").write_text("thing = 1\n\ndef later():\n    from lab import c\n")
    (tmp_path / "lab" / "c.py").write_text("import json\n")
    assert cycles(tmp_path) == []
    (tmp_path / "lab" / "c.py").write_text("def later():\n    from . import a\n")  # relative, deferred
    assert cycles(tmp_path) == [["lab.a", "lab.b", "lab.c"]]
    assert describe(tmp_path, ["lab.a", "lab.b", "lab.c"]).count("->") == 3
