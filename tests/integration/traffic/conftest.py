"""A small Calico-plumbed lab for traffic's integration tests (lab `tr1`), torn down even when tests fail.

Host h1 with pods ns0/p0, ns1/p1, ns0/p2; host h2 with ns1/p3 (cross-host through a static route); the hosts
themselves are endpoints too. Pod ns1/p1 runs a TCP listener (8080) and a UDP echo (9090) for the "reply"
cases. `drop_rule` adds a plain nftables rule in a host namespace for the "dropped" cases.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.engine_variants import VARIANTS, after, scratch_options
from topology import names
from traffic.model import ProbeEndpoint
from traffic.scratch_lab import ScratchLab

LAB = "tr1"
TCP_PORT = 8080
UDP_PORT = 9090
SERVER_POD = "ns1/p1"
TEST_TABLE = "trtest"


@dataclass
class SmallLab:
    scratch: ScratchLab
    endpoints: dict[str, ProbeEndpoint]

    def __getitem__(self, name: str) -> ProbeEndpoint:
        return self.endpoints[name]

    def host_netns(self, host: str) -> str:
        return names.host_netns(self.scratch.lab, host)


def nft(netns: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script, text=True, check=True)


@contextmanager
def nft_rules(netns: str, rules: list[str], hook: str = "forward") -> Iterator[None]:
    """A throwaway `inet trtest` table with `rules` in a base chain on `hook`, deleted afterwards."""
    body = "\n".join(f"    {rule}" for rule in rules)
    nft(netns, f"table inet {TEST_TABLE} {{\n  chain c {{\n    type filter hook {hook} priority 0; policy accept;\n"
               f"{body}\n  }}\n}}\n")
    try:
        yield
    finally:
        nft(netns, f"delete table inet {TEST_TABLE}\n")


def start_servers(netns: str) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("servers.py")
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, str(script), str(TCP_PORT),
                             str(UDP_PORT)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("test servers did not start")
    return proc


@pytest.fixture(scope="session", params=VARIANTS)
def small_lab(request: pytest.FixtureRequest) -> Iterator[SmallLab]:
    """On the netns engine, and again on Docker pods and on the Mininet engine (the `engines` subset)."""
    scratch = ScratchLab(LAB, pods_per_host=(3, 1), namespaces=2, **scratch_options(request.param))
    scratch.down()  # leftovers of an interrupted run
    server: subprocess.Popen[str] | None = None
    try:
        endpoints = {e.name: e for e in scratch.up()}
        server = start_servers(endpoints[SERVER_POD].netns)
        yield SmallLab(scratch, endpoints)
    finally:
        if server is not None:
            server.kill()  # by its own pid: `ip netns exec` execs the python process
            server.wait()
        scratch.down()
        after(request.param)


@pytest.fixture
def drop_rule(small_lab: SmallLab) -> Callable[..., AbstractContextManager[None]]:
    """drop_rule(host, rule, ...) -> context manager adding those nft rules in that host's forward hook."""

    def make(host: str, *rules: str, hook: str = "forward") -> AbstractContextManager[None]:
        return nft_rules(small_lab.host_netns(host), list(rules), hook)

    return make
