"""The iptables + ipsets baseline enforces the same semantics as the nftables program (same oracle)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataplane_lab import LAB, DataplaneLab, assert_matches_oracle
from test_dataplane_calico import NETS, SERVICES, TIERS

from policy_dataplane.dataplane.lab_dataplane import Dataplane
from traffic.model import Protocol

pytestmark = pytest.mark.root
TCP = Protocol.TCP


def test_iptables_fail_closed_then_open(iptables_lab: DataplaneLab) -> None:
    iptables_lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, False), ("h2", "ns1/p1", Protocol.ICMP, 0, False)])
    iptables_lab.sync()
    iptables_lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, True), ("h2", "ns1/p1", Protocol.ICMP, 0, True)])


@pytest.mark.on_every_engine
def test_iptables_tiers_and_ports(iptables_lab: DataplaneLab) -> None:
    iptables_lab.apply(TIERS)
    iptables_lab.label("ns0/p2", quarantine="true")
    assert_matches_oracle(iptables_lab, SERVICES)


def test_iptables_nets_and_incremental_changes(iptables_lab: DataplaneLab) -> None:
    iptables_lab.sync()
    iptables_lab.apply(iptables_lab.fill(NETS))
    assert_matches_oracle(iptables_lab, SERVICES)
    report = iptables_lab.label("ns0/p0", app="other")  # p0 leaves its egress policy: chains change
    assert report.hosts["h1"].mode == "diff"
    iptables_lab.world.delete([("Pod", ("ns0", "p4"))])
    iptables_lab.sync()
    assert_matches_oracle(iptables_lab, SERVICES)


def test_iptables_drops_name_the_policy(iptables_lab: DataplaneLab) -> None:
    iptables_lab.apply(TIERS)
    iptables_lab.label("ns0/p2", quarantine="true")
    with iptables_lab.dp.drops(["h1", "h2"], iptables_lab.world) as watcher:
        iptables_lab.probe([("ns0/p2", "ns0/p0", TCP, 8080), ("ns0/p4", "ns1/p1", TCP, 9005)])
        events = watcher.poll(2.0)
        events += watcher.poll(0.3)
    kinds = {(e.kind, e.src_name, e.dst_name, e.policy) for e in events}
    assert ("deny", "ns0/p2", "ns0/p0", "security.quarantine") in kinds
    assert ("log", "ns0/p2", "ns0/p0", "security.quarantine") in kinds
    default = [e for e in events if e.kind == "default-deny" and e.src_name == "ns0/p4"]
    assert default and default[0].isolating_policies == ("ns1/p1-server",) and default[0].tier == "default"



def test_iptables_diff_from_a_stale_saved_state_falls_back_to_a_full_sync(iptables_lab: DataplaneLab,
                                                                          tmp_path: Path) -> None:
    """The CI failure of `lab bench`: a command took over a saved state that was behind the kernel (the
    controller had deleted policies and destroyed their ipsets since), and its diff destroyed those sets again."""
    iptables_lab.apply(iptables_lab.fill(NETS))
    state = tmp_path / "dataplane.state"
    iptables_lab.dp.save_state(state)
    behind = Dataplane(LAB, backend="iptables")  # the next command, taking over the saved state...
    assert behind.load_state(state)
    iptables_lab.world.delete(list(iptables_lab.world.policies.values()))
    iptables_lab.sync()  # ...which another process made stale: the policies' sets are gone
    report = behind.sync(iptables_lab.world, iptables_lab.placement())
    assert {r.mode for r in report.hosts.values()} - {"none"} == {"full"}
    assert_matches_oracle(iptables_lab, SERVICES)
    again = behind.sync(iptables_lab.world, iptables_lab.placement())  # in line again: nothing to write
    assert {r.mode for r in again.hosts.values()} == {"none"}
    behind.close()
