"""Daemons start with the CLI's own interpreter and never import a same-named copy from their working
directory (a checkout, say) instead of the installed package."""

from __future__ import annotations

import subprocess
from pathlib import Path

from topology.processes import python_module


def test_a_copy_in_the_working_directory_does_not_shadow_the_installed_module(tmp_path: Path) -> None:
    shadow = tmp_path / "topology"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    (shadow / "responder.py").write_text("print('the copy in the working directory')\n")
    done = subprocess.run([*python_module(), "topology.responder", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "working directory" not in done.stdout and "--pods-file" in done.stdout

