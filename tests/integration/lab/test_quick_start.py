"""The README's quick start through `scripts/lab`, as a user runs it (the demo lab file, renamed so that a
demo someone has up is never touched; private state directories)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from lab import pipeline
from lab.commands.updown import DEMO_LAB
from topology import names

pytestmark = pytest.mark.root
SCRIPT = Path(__file__).parents[3] / "scripts" / "lab"
LAB = "itqs"


def test_scripts_lab_up_status_down_from_another_directory(lab_dirs: Path) -> None:
    demo = yaml.safe_load(DEMO_LAB.read_text())
    (lab_dirs / "demo.yaml").write_text(yaml.safe_dump({**demo, "name": LAB}))
    env = dict(os.environ)

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        # relative file names resolve against the caller's directory, as for any command
        return subprocess.run([str(SCRIPT), *args], cwd=lab_dirs, env=env, capture_output=True, text=True,
                              timeout=300)

    try:
        up = lab("up", "-q", "-f", "demo.yaml")
        assert up.returncode == 0, up.stderr
        assert f"lab {LAB} is up" in up.stdout
        status = json.loads(lab("status", "--lab", LAB, "--json").stdout)
        assert len(status["pods"]) == 6 and {n["kind"] for n in status["nodes"]} == {"host", "external"}
        down = lab("down", LAB)
        assert down.returncode == 0 and "is down" in down.stdout
        assert not [n for n in os.listdir("/run/netns") if n.startswith(names.lab_netns_prefix(LAB))]
    finally:
        pipeline.down(LAB, force=True)
