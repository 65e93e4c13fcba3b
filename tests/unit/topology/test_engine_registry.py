"""The topology seam: engines are looked up by name, and a second engine is one registration away: the
lab file, the fabric and the scratch lab pick it up with no edit to them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lab.labfile import LabFileError, parse_lab
from topology import engines as engine_registry
from topology.engine import NetnsEngine
from topology.engines import DEFAULT_ENGINE, get_engine, register_engine
from traffic.scratch_lab import ScratchLab

T = TypeVar("T")


class RecordingEngine:
    """A second engine: records what it is asked, creates nothing."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def build(self, plan: Any, progress: Any = None) -> None:
        self.calls.append(f"build {plan.lab} {len(plan.nodes)} nodes {len(plan.pods)} pods")

    def add_pods(self, pods: Sequence[Any], progress: Any = None) -> None:
        self.calls.append(f"add {len(pods)}")

    def remove_pods(self, pods: Sequence[Any]) -> None:
        self.calls.append(f"remove {len(pods)}")

    def destroy(self, lab: str) -> list[str]:
        self.calls.append(f"destroy {lab}")
        return []

    def list_owned(self, lab: str) -> list[str]:
        return []

    def prepare_pods(self, pods: Sequence[Any]) -> None:
        pass

    def stop_pods(self, lab: str) -> None:
        pass  # it runs no pods of its own

    # It has no namespaces: whatever a caller would do "inside" would happen in the test's own (root)
    # namespace, so entering is refused outright.
    def entered(self, name: str) -> AbstractContextManager[None]:
        raise AssertionError(f"the recording engine cannot enter {name}")

    def call_in(self, name: str, make: Callable[[], T]) -> T:
        raise AssertionError(f"the recording engine cannot enter {name}")

    def start_in(self, name: str, argv: Sequence[str], **popen: object) -> subprocess.Popen[str]:
        raise NotImplementedError

    def run_in(self, name: str, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
        return ""

    def exec_in(self, name: str, argv: Sequence[str], *, capture: bool = True,
                timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    recorded: list[str] = []
    monkeypatch.setattr(engine_registry, "_ENGINES", dict(engine_registry._ENGINES))
    register_engine("recording", lambda: RecordingEngine(recorded))
    return recorded


def test_the_netns_engine_is_the_default_and_an_unknown_name_lists_the_known() -> None:
    assert DEFAULT_ENGINE == "netns" and isinstance(get_engine(), NetnsEngine)
    with pytest.raises(ValueError, match="unknown topology engine 'docker'.*netns"):
        get_engine("docker")


def test_a_lab_file_names_its_engine_from_the_registry(calls: list[str], tmp_path: Path) -> None:
    assert parse_lab({"name": "e1"}, "lab.yaml", tmp_path).model.engine == "netns"
    assert parse_lab({"name": "e1", "engine": "recording"}, "lab.yaml", tmp_path).model.engine == "recording"
    with pytest.raises(LabFileError, match="engine.*unknown topology engine 'docker'"):
        parse_lab({"name": "e1", "engine": "docker"}, "lab.yaml", tmp_path)


def test_the_scratch_lab_changes_pods_through_the_engine_it_names(calls: list[str]) -> None:
    lab = ScratchLab("sx1", pods_per_host=(2, 1), engine_name="recording")
    lab.add_pod(0, "ns0", "extra", lab.block(0).network_address + 100)
    lab.remove_pod(0, "ns0", "extra")
    lab.down()
    assert calls == ["add 1", "remove 1", "destroy sx1"]


def test_mininet_is_a_registered_engine_a_lab_file_can_name() -> None:
    from topology.mininet_engine import MininetEngine

    assert isinstance(get_engine("mininet"), MininetEngine)
    assert parse_lab({"name": "e1", "engine": "mininet"}, "lab.yaml", Path("/")).model.engine == "mininet"


def test_loading_mininet_never_runs_its_init_that_writes_machine_sysctls(monkeypatch: pytest.MonkeyPatch) -> None:
    import mininet.net
    import mininet.util

    from topology.mininet_lib import load_mininet

    def refuse() -> None:
        raise AssertionError("fixLimits would raise the root namespace's sysctls")

    monkeypatch.setattr(mininet.net.Mininet, "inited", False)
    monkeypatch.setattr(mininet.net, "fixLimits", refuse)
    monkeypatch.setattr(mininet.util, "fixLimits", refuse)
    load_mininet().net.Mininet.init()  # what Mininet() calls first: a no-op once loaded
