"""The layering the packages keep (docs/ARCHITECTURE.md, "Layers"), checked on every import statement,
including the ones inside functions: the policy model imports no dataplane, nothing below `lab` imports
`lab`, no CLI command module imports another, and so on. Pure: reads the source, imports nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("lab", "topology", "bgp", "traffic", "policy_dataplane")

# package (or subpackage) -> what it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "policy_dataplane.policy": ("policy_dataplane.dataplane", "lab", "topology", "bgp", "traffic"),
    "policy_dataplane.dataplane": ("lab", "bgp", "traffic"),
    "topology": ("lab", "bgp", "traffic", "policy_dataplane"),
    "bgp": ("lab", "traffic", "policy_dataplane"),
    "traffic": ("lab", "bgp"),
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, is_package: bool, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree, relative ones resolved."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package if package.endswith(".") else package + ".")


def violations(root: Path) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(root, path)
            rules = [(owner, banned) for owner, banned in FORBIDDEN.items() if within(module, owner)]
            for line, name in imported(module, path.name == "__init__.py", ast.parse(path.read_text())):
                if within(module, "lab.commands") and within(name, "lab.commands.") and not within(name, module):
                    found.append(f"{path.relative_to(root)}:{line}: a command must not import another ({name})")
                for owner, banned in rules:
                    for forbidden in banned:
                        if within(name, forbidden):
                            found.append(f"{path.relative_to(root)}:{line}: {owner} must not import {name}")
    return sorted(set(found))


def test_the_packages_keep_their_layers() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(("path", "source", "expected"), [
    ("topology/leak.py", "from lab.runtime import LabRuntime\n", "topology must not import lab.runtime"),
    ("policy_dataplane/policy/leak.py", "def f():\n    import policy_dataplane.dataplane.compile\n",
     "policy_dataplane.policy must not import policy_dataplane.dataplane.compile"),
    ("traffic/leak.py", "from lab import warm\n", "traffic must not import lab.warm"),
    ("bgp/sub/leak.py", "from ...lab import runtime\n", "bgp must not import lab.runtime"),
    ("lab/commands/leak.py", "from lab.commands.inspect import status\n",
     "a command must not import another (lab.commands.inspect.status)"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, path: str, source: str, expected: str) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(source)
    assert any(v.startswith(path) and v.endswith(expected) for v in violations(tmp_path)), violations(tmp_path)
    (tmp_path / path).write_text("import json\n")  # and a harmless one is not
    assert violations(tmp_path) == []
