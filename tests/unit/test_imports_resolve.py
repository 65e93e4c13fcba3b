"""Every import of the project's own modules names a module and names that exist, including the imports
inside functions that only run on a rarely used path (mypy does not see a missing module of ours, since the
suite lets it ignore missing imports for third-party packages)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lab", "topology", "bgp", "policy_dataplane", "traffic", "services")


def own_imports(root: Path = ROOT) -> list[tuple[str, int, str, tuple[str, ...]]]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    if node.module.split(".")[0] in PACKAGES:
                        found.append((str(path.relative_to(root)), node.lineno, node.module,
                                      tuple(alias.name for alias in node.names)))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.split(".")[0] in PACKAGES:
                            found.append((str(path.relative_to(root)), node.lineno, alias.name, ()))
    return found


def broken_imports(root: Path = ROOT) -> list[str]:
    broken = []
    for where, line, module, names in own_imports(root):
        try:
            imported = importlib.import_module(module)
        except ImportError as error:
            broken.append(f"{where}:{line}: {module}: {error}")
            continue
        for name in names:
            if name != "*" and not hasattr(imported, name):
                try:
                    importlib.import_module(f"{module}.{name}")
                except ImportError:
                    broken.append(f"{where}:{line}: {module} has no {name}")
    return broken


def test_every_own_import_resolves() -> None:
    broken = broken_imports()
    assert not broken, "\n".join(broken)


def test_the_check_sees_a_broken_import_inside_a_function(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "moved.py").write_text(
        "def later():\n    from lab.no_such_module import thing\n    from lab.store import no_such_name\n"
        "    from lab.store import Store\n"
    )
    assert [b.split(": ", 1)[1] for b in broken_imports(tmp_path)] == [
        "lab.no_such_module: No module named 'lab.no_such_module'",
        "lab.store has no no_such_name",
    ]
