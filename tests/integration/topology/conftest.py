"""Fixtures for the topology integration tests: a lab name of our own (tt1..), torn down whatever happens,
and a check that the root namespace ends every test exactly as it started."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from topology import names
from topology.engine import NetnsEngine

# Root settings the engine sets inside lab namespaces: a setns mistake would change them here.
WATCHED_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.icmp_ratelimit",
    "net.ipv4.icmp_ratemask",
    "net.ipv4.icmp_msgs_per_sec",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.all.send_redirects",
)


def root_namespace_state() -> dict[str, str]:
    """Links, addresses, routes (all tables), rules and watched sysctls of the root namespace."""
    def ip(*args: str) -> str:
        return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout

    return {
        "links": ip("-o", "link", "show"),
        "addresses": ip("-o", "addr", "show"),
        "routes": ip("route", "show", "table", "all"),
        "rules": ip("rule", "show"),
        "sysctls": subprocess.run(["sysctl", *WATCHED_SYSCTLS], capture_output=True, text=True, check=True).stdout,
    }


def _strip_counters(links: str) -> str:
    # Link lines carry no counters with -o, but keep only name and flags to be robust to state flaps.
    return "\n".join(" ".join(line.split()[:3]) for line in links.splitlines())


@pytest.fixture(autouse=True)
def root_namespace_untouched() -> Iterator[None]:
    before = root_namespace_state()
    yield
    after = root_namespace_state()
    assert _strip_counters(after.pop("links")) == _strip_counters(before.pop("links"))
    assert after == before


@dataclass
class Lab:
    engine: NetnsEngine
    name: str
    paths: names.LabPaths


@pytest.fixture
def run_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    return tmp_path


def _lab(name: str) -> Iterator[Lab]:
    engine = NetnsEngine()
    engine.destroy(name)  # leftovers of an earlier crashed run
    try:
        yield Lab(engine, name, names.LabPaths.for_lab(name))
    finally:
        engine.destroy(name)
        assert engine.list_owned(name) == []


@pytest.fixture
def lab(run_root: Path) -> Iterator[Lab]:
    yield from _lab("tt1")


@pytest.fixture
def lab2(run_root: Path) -> Iterator[Lab]:
    yield from _lab("tt2")
