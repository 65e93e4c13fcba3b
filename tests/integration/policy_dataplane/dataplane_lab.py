"""Helpers of the dataplane tests: a small Calico-plumbed lab for the dataplane tests (lab `dt1`), torn down even when tests fail.

Built with traffic's ScratchLab (namespaces from topology.names): host h1 with pods ns0/p0, ns1/p1, ns0/p2,
host h2 with ns1/p3, ns0/p4; h2 reaches h1's pods through a static route, and the hosts' own addresses stand
for "outside the cluster". Each test gets a fresh World (the pods above, labelled `app: <pod>`, namespaces
labelled `team`) and a Dataplane with the empty program on both hosts; tables are removed afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from string import Template

from policy_dataplane.dataplane.lab_dataplane import Dataplane, SyncReport
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.evaluate import verdict
from policy_dataplane.policy.model import ContainerPort, ExternalHost, Labels, Namespace, Pod
from policy_dataplane.policy.world import World
from topology import names
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.probes import ProbeOptions, run_probes
from traffic.scratch_lab import ScratchLab

LAB = "dt1"
HOSTS = ("h1", "h2")
POD_PORTS = (ContainerPort("http", 8080, 6), ContainerPort("dns", 53, 17), ContainerPort("sig", 3868, 132))
TEAMS = {"ns0": "a", "ns1": "b"}
# The quarantine scenario (docs/ARCHITECTURE.md, Scenarios): labelling a pod quarantine=true cuts it off, logging what it tried
QUARANTINE = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: quarantine}
spec:
  order: 200
  selector: quarantine == "true"
  ingress: [{action: Log}, {action: Deny}]
  egress: [{action: Log}, {action: Deny}]
"""


@dataclass
class DataplaneLab:
    scratch: ScratchLab
    endpoints: dict[str, ProbeEndpoint]
    world: World
    dp: Dataplane
    pod_hosts: dict[tuple[str, str], str]

    def placement(self) -> dict[str, list[tuple[tuple[str, str], str]]]:
        out: dict[str, list[tuple[tuple[str, str], str]]] = {h: [] for h in HOSTS}
        for key, host in self.pod_hosts.items():
            if key in self.world.pods:
                out[host].append((key, names.pod_host_ifname(*key)))
        return out

    def sync(self) -> SyncReport:
        return self.dp.sync(self.world, self.placement())

    def apply(self, text: str) -> SyncReport:
        self.world.apply(load_text(text))
        return self.sync()

    def label(self, pod: str, **labels: str | None) -> SyncReport:
        ns, name = pod.split("/")
        self.world.label_pod(ns, name, **labels)
        return self.sync()

    def netns(self, host: str) -> str:
        return names.host_netns(LAB, host)

    def addresses(self) -> dict[str, str]:
        """The lab's addressing as the scratch lab lays it out (tests write policies against these, never
        against fixed numbers): each host's pod block, a pool covering both, the hosts' and pods' IPs."""
        blocks = [self.scratch.block(i) for i in range(len(HOSTS))]
        pool = blocks[0]
        while not all(b.subnet_of(pool) for b in blocks):
            pool = pool.supernet()
        out = {f"{h}_block": str(b) for h, b in zip(HOSTS, blocks)}
        out |= {"pool": str(pool), "uplinks": str(IPv4Network(f"{self.endpoints['h1'].ip}/24", strict=False))}
        out |= {name.replace("/", "_"): str(e.ip) for name, e in self.endpoints.items()}
        return out

    def fill(self, template: str) -> str:
        return Template(template).substitute(self.addresses())

    def probe(self, cases: Sequence[tuple[str, str, Protocol, int]]) -> list[bool]:
        """Delivered or not, per (source, destination, protocol, port)."""
        probes = [Probe(self.endpoints[s], self.endpoints[d], proto, port) for s, d, proto, port in cases]
        return [r.delivered for r in run_probes(probes, ProbeOptions(reply_timeout=0.4))]

    def expect(self, cases: Sequence[tuple[str, str, Protocol, int, bool]]) -> None:
        measured = self.probe([c[:4] for c in cases])
        wrong = [f"{s}->{d} {p.value}/{port}: expected {'allow' if e else 'deny'}"
                 for (s, d, p, port, e), got in zip(cases, measured) if got != e]
        assert not wrong, "\n".join(wrong)


def base_world(scratch: ScratchLab) -> World:
    world = World()
    world.apply([Namespace(ns, Labels({"team": team, "kubernetes.io/metadata.name": ns}))
                 for ns, team in TEAMS.items()])
    world.apply([Pod(ns, pod, Labels({"app": pod}), (IPv4Address(ip),), POD_PORTS) for _, ns, pod, ip in scratch.pods()])
    return world




PROTOCOL_NUMBERS = {Protocol.TCP: 6, Protocol.UDP: 17, Protocol.SCTP: 132, Protocol.ICMP: 1}
ECHO_REQUEST = 8  # what an ICMP probe sends


def oracle(lab: DataplaneLab, src: str, dst: str, protocol: Protocol, port: int) -> bool:
    """The model's verdict for one probe (hosts are addresses outside the cluster)."""
    def ref(name: str) -> object:
        return lab.world.pods[tuple(name.split("/"))] if "/" in name else ExternalHost(lab.endpoints[name].ip)

    if protocol is Protocol.ICMP:
        return verdict(lab.world, ref(src), ref(dst), 1, None, ECHO_REQUEST, 0).allowed  # type: ignore[arg-type]
    return verdict(lab.world, ref(src), ref(dst), PROTOCOL_NUMBERS[protocol], port).allowed  # type: ignore[arg-type]


def all_pairs(lab: DataplaneLab, services: Sequence[tuple[Protocol, int]]) -> list[tuple[str, str, Protocol, int]]:
    """Every ordered pair of distinct endpoints (pods the world still has, hosts) with a pod on at least one end."""
    names_ = sorted(n for n in lab.endpoints if "/" not in n or tuple(n.split("/")) in lab.world.pods)
    return [(s, d, p, port) for s in names_ for d in names_ if s != d and ("/" in s or "/" in d)
            for p, port in services]


def assert_matches_oracle(lab: DataplaneLab, services: Sequence[tuple[Protocol, int]]) -> list[bool]:
    """Probe every pair with real packets and compare with the oracle; returns the measured verdicts."""
    cases = all_pairs(lab, services)
    measured = lab.probe(cases)
    wrong = [f"{s}->{d} {p.value}/{port}: measured {'allow' if got else 'deny'}, oracle says the opposite"
             for (s, d, p, port), got in zip(cases, measured) if got != oracle(lab, s, d, p, port)]
    assert not wrong, f"{len(wrong)} of {len(cases)} probes differ:\n" + "\n".join(wrong)
    return measured
