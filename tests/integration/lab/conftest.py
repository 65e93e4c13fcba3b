"""Fixtures that bring real labs up in private state directories and always tear them down."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import pipeline
from lab.labfile import LabSpec, parse_lab
from tests.integration.engine_variants import after, lab_file_fields
from topology import names


@pytest.fixture
def lab_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    return tmp_path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `stores` run once per store backend (their labs keep the desired state in SQLite, then
    in the test session's etcd)."""
    if metafunc.definition.get_closest_marker("stores") and "lab_store" in metafunc.fixturenames:
        metafunc.parametrize("lab_store", ["sqlite", "etcd"], indirect=True)


@pytest.fixture
def lab_store(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """The `store:` of the labs a test brings up (None: the lab file's default, SQLite)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    return {"backend": "etcd", "endpoints": [request.getfixturevalue("etcd_endpoint")]}


@pytest.fixture
def make_lab(lab_dirs: Path, lab_store: dict[str, Any] | None, request: pytest.FixtureRequest
             ) -> Iterator[Callable[[dict[str, Any]], LabSpec]]:
    """Brings up a lab from lab-file data; whatever happens, it is torn down with --force afterwards.
    A test parametrised with `engine_variant` (tests/integration/engine_variants.py) gets its labs on it."""
    started: list[str] = []
    callspec = getattr(request.node, "callspec", None)
    variant = callspec.params.get("engine_variant", "netns") if callspec is not None else "netns"

    def bring_up(data: dict[str, Any], controller: bool = True) -> LabSpec:
        data = {**lab_file_fields(variant), **data}
        if lab_store is not None and "store" not in data:
            data = {**data, "store": lab_store}
        spec = parse_lab(data, f"<test {data['name']}>", lab_dirs)
        started.append(spec.name)
        pipeline.up(spec, timeout=60, controller=controller)
        return spec

    try:
        yield bring_up
    finally:
        for lab in started:
            pipeline.down(lab, force=True)
            assert not [n for n in _netns_list() if n.startswith(names.lab_netns_prefix(lab))]
        after(variant)


def _netns_list() -> list[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    return [entry["name"] for entry in json.loads(out or "[]")]


def kernel_routes(netns: str) -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-j", "-n", netns, "route", "show"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")
