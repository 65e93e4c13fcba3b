"""Issue 16: the wheel alone is a working lab. Built from a copy of the checkout, installed into a fresh venv
in a temporary folder, and run from a folder outside the checkout with no PYTHONPATH: `lab --version`,
`lab scenario list` and `lab scenario run quarantine --down`.

To stay fast (no download, no compile) the fresh venv borrows the project venv's dependencies through a
folder of links that leaves out netpol-lab itself (its editable finder and its metadata): the lab's own
code and data can only come from the wheel, and every import of it is checked to resolve inside the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from topology import names

pytestmark = pytest.mark.root
CHECKOUT = Path(__file__).parents[3]
SCENARIOS = CHECKOUT / "lab" / "scenarios"
OUR_PACKAGES = ("lab", "bgp", "topology", "policy_dataplane", "traffic", "services")
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*cache",
                                    ".hypothesis", ".benchmarks", "out")


def run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done


def build_wheel(tmp_path: Path) -> Path:
    # From a copy: an in-tree build would leave build/ in the checkout, whose stale files later wheels pick up.
    source = tmp_path / "source"
    shutil.copytree(CHECKOUT, source, ignore=NOT_SOURCE, symlinks=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", tmp_path / "dist", source])
    (wheel,) = (tmp_path / "dist").glob("netpol_lab-*.whl")
    return wheel


def dependencies_without_the_lab(tmp_path: Path) -> Path:
    """The project venv's installed packages, as links, minus netpol-lab's own files."""
    linked = tmp_path / "dependencies"
    linked.mkdir()
    for folder in dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]):
        for entry in Path(folder).iterdir():
            ours = entry.name.startswith(("netpol_lab", "__editable__")) or entry.name in OUR_PACKAGES
            if not ours and not entry.name.endswith(".pth") and not (linked / entry.name).exists():
                (linked / entry.name).symlink_to(entry)
    return linked


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site / "netpol-lab-test-dependencies.pth").write_text(f"{dependencies_without_the_lab(tmp_path)}\n")
    # No --no-deps: pip checks every declared dependency is there (nothing can be fetched).
    run([python, "-m", "pip", "install", "-q", "--no-index", wheel])
    return venv


def other_prefix() -> str:
    """The demo lab of this test must never meet a demo someone has up: a prefix of its own."""
    return names.PREFIX[:4] + ("x" if names.PREFIX[:4] + "w" == names.PREFIX else "w")


def test_the_installed_wheel_runs_a_scenario_from_any_folder(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    env |= {"COLUMNS": "250", names.PREFIX_ENV: other_prefix(), names.STATE_ROOT_ENV: str(tmp_path / "state"),
            names.RUN_ROOT_ENV: str(tmp_path / "run")}
    lab = venv / "bin" / "lab"

    def installed(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return run(list(argv), cwd=elsewhere, env=env)

    where = installed(venv / "bin" / "python", "-c", "import importlib, json, sys; "
                      f"print(json.dumps({{m: importlib.import_module(m).__file__ for m in {OUR_PACKAGES!r}}}))")
    for module, path in json.loads(where.stdout).items():
        assert Path(path).is_relative_to(venv), f"{module} imported from {path}, not from the installed wheel"

    version = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["version"]
    assert installed(lab, "--version").stdout.strip() == f"netpol-lab {version}"

    listed = installed(lab, "scenario", "list").stdout
    builtin = sorted(SCENARIOS.glob("*.scenario.yaml"))
    assert len(builtin) >= 5
    for path in builtin:  # listed, and loaded: its title is shown, not an error
        assert path.name.removesuffix(".scenario.yaml") in listed
        assert yaml.safe_load(path.read_text())["title"] in listed, listed

    try:
        played = installed(lab, "scenario", "run", "quarantine", "--down", "--json")
        report = json.loads(played.stdout)
        assert report["failures"] == 0 and report["checks"] >= 5
        assert not [n for n in os.listdir("/run/netns") if n.startswith(f"{other_prefix()}-demo-")]
    finally:  # with the checkout's CLI, which works even if the installed one does not
        subprocess.run([sys.executable, "-m", "lab", "down", "demo", "--force"], cwd=CHECKOUT, env=env,
                       capture_output=True, timeout=120)
