"""Probe verdicts through the real dataplane: delivered and dropped flows for TCP, UDP, SCTP and ICMP."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from tests.integration.traffic.conftest import TCP_PORT, UDP_PORT, SmallLab
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.probes import ProbeOptions, run_probes

pytestmark = pytest.mark.root

OPEN_PORT = {Protocol.TCP: TCP_PORT, Protocol.UDP: UDP_PORT, Protocol.SCTP: 3868, Protocol.ICMP: 0}
REPLY_EVIDENCE = {Protocol.TCP: "syn-ack", Protocol.UDP: "udp-reply", Protocol.SCTP: "captured",
                  Protocol.ICMP: "echo-reply"}
FAST = ProbeOptions(reply_timeout=0.3)


@pytest.mark.parametrize("protocol", list(Protocol))
def test_delivered_flow_to_a_listener_is_answered(small_lab: SmallLab, protocol: Protocol) -> None:
    probe = Probe(small_lab["ns0/p0"], small_lab["ns1/p1"], protocol, OPEN_PORT[protocol])
    [result] = run_probes([probe], FAST)
    assert result.delivered
    assert result.evidence == REPLY_EVIDENCE[protocol]
    assert result.replied is protocol.answered_by_stack
    assert result.rtt_us is not None and result.rtt_us > 0


@pytest.mark.parametrize(("protocol", "evidence"), [(Protocol.TCP, "rst"), (Protocol.UDP, "port-unreachable")])
def test_closed_port_still_counts_as_delivered(small_lab: SmallLab, protocol: Protocol, evidence: str) -> None:
    [result] = run_probes([Probe(small_lab["ns0/p0"], small_lab["ns0/p2"], protocol, 4444)], FAST)
    assert (result.delivered, result.replied, result.evidence) == (True, True, evidence)


@pytest.mark.on_every_engine
@pytest.mark.parametrize("protocol", list(Protocol))
def test_flow_dropped_by_an_nft_rule_is_dropped_and_others_are_not(
    small_lab: SmallLab, drop_rule, protocol: Protocol
) -> None:
    src, blocked, other = small_lab["ns0/p0"], small_lab["ns1/p1"], small_lab["ns0/p2"]
    port = OPEN_PORT[protocol]
    probes = [Probe(src, blocked, protocol, port), Probe(src, other, protocol, port)]
    with drop_rule("h1", f"ip saddr {src.ip} ip daddr {blocked.ip} drop"):
        dropped, passed = run_probes(probes, FAST)
    assert (dropped.delivered, dropped.replied, dropped.rtt_us, dropped.evidence) == (False, False, None, "nothing")
    assert passed.delivered
    [after] = run_probes(probes[:1], FAST)
    assert after.delivered, "the flow must pass again once the rule is gone"


@pytest.mark.on_every_engine
@pytest.mark.parametrize("protocol", list(Protocol))
def test_cross_host_and_host_endpoints(small_lab: SmallLab, protocol: Protocol) -> None:
    pairs = [("ns0/p0", "ns1/p3"), ("ns1/p3", "ns0/p0"), ("h1", "ns0/p2"), ("ns1/p3", "h1"), ("h2", "ns1/p1")]
    probes = [Probe(small_lab[a], small_lab[b], protocol, 5555) for a, b in pairs]
    results = run_probes(probes, FAST)
    assert [r.delivered for r in results] == [True] * len(pairs)


def test_reply_dropped_on_its_way_back_means_not_delivered_for_answered_protocols(
    small_lab: SmallLab, drop_rule
) -> None:
    """Verdicts come from packets only: if the answer is lost, TCP cannot claim delivery."""
    src, dst = small_lab["ns0/p0"], small_lab["ns1/p3"]
    with drop_rule("h1", f"ip saddr {dst.ip} ip daddr {src.ip} drop"):
        tcp, sctp = run_probes([Probe(src, dst, Protocol.TCP, 80), Probe(src, dst, Protocol.SCTP, 80)], FAST)
    assert not tcp.delivered
    assert sctp.delivered  # seen at the destination, nothing has to come back


def test_reject_is_not_delivery(small_lab: SmallLab, drop_rule) -> None:
    src, dst = small_lab["ns0/p0"], small_lab["ns0/p2"]
    with drop_rule("h1", f"ip daddr {dst.ip} meta l4proto udp reject with icmp type admin-prohibited"):
        [result] = run_probes([Probe(src, dst, Protocol.UDP, 53)], FAST)
    assert not result.delivered
    assert result.evidence == "rejected icmp 3/13"


def test_many_probes_each_get_their_own_verdict(small_lab: SmallLab, drop_rule) -> None:
    """Interleaved allowed and dropped probes over many ports: tokens keep every answer with its probe."""
    src, dst, blocked = small_lab["ns0/p0"], small_lab["ns1/p3"], small_lab["ns1/p1"]
    probes = [Probe(src, target, Protocol.TCP, port) for port in range(1000, 1500) for target in (dst, blocked)]
    with drop_rule("h1", f"ip daddr {blocked.ip} tcp dport 1000-1499 drop"):
        results = run_probes(probes, FAST)
    assert [r.delivered for r in results] == [r.probe.dst is dst for r in results]


def test_unroutable_destination_is_not_delivered(small_lab: SmallLab) -> None:
    """An address in a host's block that no pod holds: the host's blackhole route drops the pod's probe
    without an answer (as Calico's does), and a probe from the host itself cannot even leave."""
    ghost = ProbeEndpoint("ghost", "none", IPv4Address("10.64.0.250"), "pod")
    from_pod, from_host = run_probes([Probe(small_lab["ns0/p0"], ghost, Protocol.TCP, 80),
                                      Probe(small_lab["h1"], ghost, Protocol.TCP, 80)], FAST)
    assert not from_pod.delivered and from_pod.evidence == "nothing"
    assert not from_host.delivered and from_host.evidence.startswith("not sent: ")
