"""Issue #8, item 3: the dataplane state is versioned JSON; any other file says to rebuild the lab."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from policy_dataplane.dataplane import program_state
from policy_dataplane.dataplane.compile import compile_hosts
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.dataplane.program_state import StateError
from policy_dataplane.policy.bankgen import BankSpec, bank_objects
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import Pod
from policy_dataplane.policy.world import World

EXTRA = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: icmp-and-ports}
spec:
  selector: all()
  ingress:
  - {action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}, notICMP: {type: 3}}
  - {action: Deny, protocol: TCP, source: {notNets: [10.9.0.0/16]}, destination: {notPorts: [22, '1000:2000']}}
  - {action: Pass, protocol: UDP, destination: {ports: [dns]}}
"""


def programs() -> dict[str, object]:
    objects = bank_objects(BankSpec(services=40, namespaces=3)) + load_text(EXTRA)
    world = World.from_objects(objects)
    pods = [o for o in objects if isinstance(o, Pod)]
    placement = {f"h{i}": {p.key: f"cali{j:011d}" for j, p in enumerate(pods) if j % 2 == i} for i in range(2)}
    return dict(compile_hosts(world, placement))


def test_programs_survive_the_round_trip_exactly() -> None:
    applied = programs()
    backend, back = program_state.loads(program_state.dumps("nftables", applied))  # type: ignore[arg-type]
    assert backend == "nftables" and back == applied
    assert any(p.named_port_sets for p in back.values()) and any(p.policies for p in back.values())


@pytest.mark.parametrize("content, expected", [
    (pickle.dumps({"backend": "nftables", "applied": {}}), "not a saved dataplane state"),
    (b"\x00\xff garbage", "not a saved dataplane state"),
    (b'{"format": "netpol-lab dataplane state", "version": 99, "backend": "nftables", "applied": {}}',
     "written by another version"),
    (b'{"format": "netpol-lab dataplane state", "version": 1, "backend": "nftables", "applied": {"h": {}}}',
     "is damaged"),
    (b"[]", "not a saved dataplane state"),
])
def test_other_files_say_to_rebuild_the_lab(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "dataplane.state"
    path.write_bytes(content)
    with pytest.raises(StateError, match=expected) as info:
        Dataplane("lab").load_state(path)
    assert "`lab down` and `lab up`" in str(info.value)


def test_a_saved_state_loads_into_the_host_filters(tmp_path: Path) -> None:
    path = tmp_path / "dataplane.state"
    applied = programs()
    path.write_text(program_state.dumps("nftables", applied))  # type: ignore[arg-type]
    dp = Dataplane("lab")
    assert dp.load_state(path)
    assert {h: dp.host(h).applied for h in applied} == applied
    assert not Dataplane("lab").load_state(tmp_path / "none")
    assert not Dataplane("lab", backend="iptables").load_state(path)  # another backend's state: start afresh
    assert json.loads(path.read_text())["version"] == program_state.VERSION
