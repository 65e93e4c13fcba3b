"""The node-firewall scenario's lab, up on one dataplane in private state directories for a test module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from lab import pipeline
from lab.labfile import parse_lab
from topology import names

FILES = Path(__file__).parents[3] / "lab" / "scenarios" / "node-firewall"


@contextmanager
def node_firewall_lab(name: str, dataplane: str, base: Path) -> Iterator[str]:
    """Up under `name` (state under `base`), yields the lab's name; always torn down."""
    data = yaml.safe_load((FILES / "lab.yaml").read_text())
    data.update(name=name, dataplane=dataplane)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(names.STATE_ROOT_ENV, str(base / "state"))
        mp.setenv(names.RUN_ROOT_ENV, str(base / "run"))
        spec = parse_lab(data, f"<node-firewall lab {name}>", base)
        try:
            pipeline.up(spec, timeout=60)
            yield spec.name
        finally:
            pipeline.down(spec.name, force=True)
