"""The bulk prober (sendmmsg batches on every core) must give the verdicts and evidence of `ProbeSession`,
probe for probe, through the real dataplane: delivered (SYN-ACK from a listener, RST from a closed port),
dropped on the way, rejected with an ICMP error, and refused by the source's own filter."""

from __future__ import annotations

import itertools

import pytest

from tests.integration.traffic.conftest import TCP_PORT, SmallLab, nft_rules
from traffic.bulk import BATCH, BulkTcpProbe
from traffic.model import Probe, Protocol
from traffic.probes import ProbeEngine, ProbeOptions

pytestmark = pytest.mark.root


def test_bulk_verdicts_equal_the_sessions(small_lab: SmallLab, drop_rule) -> None:
    endpoints = list(small_lab.endpoints.values())
    pairs = list(itertools.permutations(endpoints, 2))
    # several rounds of every pair: more probes per source than one sendmmsg batch, each its own 4-tuple
    rounds = BATCH // len(endpoints) + 2
    probes = [Probe(a, b, Protocol.TCP, port) for _, (a, b), port in
              itertools.product(range(rounds), pairs, (TCP_PORT, 4444))]
    p0, p1, p2, p3 = (small_lab[n] for n in ("ns0/p0", "ns1/p1", "ns0/p2", "ns1/p3"))
    with (drop_rule("h1", f"ip saddr {p0.ip} ip daddr {p1.ip} drop",
                    f"ip saddr {p1.ip} ip daddr {p0.ip} reject with icmp type admin-prohibited"),
          nft_rules(p2.netns, [f"ip daddr {p3.ip} drop"], hook="output")):
        with ProbeEngine(ProbeOptions(reply_timeout=0.5)) as engine:
            bulk = BulkTcpProbe.of(engine, probes)
            bulk.send_all()
            bulk.wait(0.5)
            measured = bulk.results.to_results(probes)
        session = ProbeEngine(ProbeOptions(reply_timeout=0.5))
        with session:
            expected = session.run(probes)
    assert [(r.delivered, r.evidence) for r in measured] == [(r.delivered, r.evidence) for r in expected]
    evidence = {r.evidence for r in measured}
    assert {"syn-ack", "rst", "nothing", "rejected icmp 3/13", "not sent: EPERM"} <= evidence, evidence
    assert all(r.rtt_us is not None and r.rtt_us > 0 for r in measured if r.delivered)
    assert bulk.outstanding == sum(r.evidence == "nothing" for r in measured)
