"""Dataplane speed on the bank world: 1500 services (~13,000 rules) on 16 hosts, nftables and iptables.

Prints, per backend: full compile time (all hosts), full program time (all hosts, from the empty base),
and the time from a single change to its enforcement on every host (median / p90 over CHANGES changes:
a pod gains or loses an egress label, i.e. joins or leaves one service's allowed-sources set), plus the
time a newly added pod stays fail-closed (from its addition to the world to its filter being in place).
Then the per-packet cost: RTT of new TCP flows between two real pods (lab `dt8`) with a tiny program on
their host, and with 1500 more endpoints and policies on that same host.
"Enforced" means the host's transaction has been committed by the kernel. Host namespaces only (no pods:
the programs name interfaces, they do not need them). Lab `dt9`; needs root; cleans up on exit.

    .venv/bin/python bench/dataplane.py [--services 1500] [--hosts 16] [--changes 50] [--backend both]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import time
from ipaddress import IPv4Address

from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.policy.bankgen import BankSpec, bank_objects, egress_label
from policy_dataplane.policy.model import ContainerPort, Labels, Pod
from policy_dataplane.policy.world import World
from topology import names

LAB = "dt9"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def placement_of(world: World, hosts: list[str]) -> dict[str, list[tuple[tuple[str, str], str]]]:
    out: dict[str, list[tuple[tuple[str, str], str]]] = {h: [] for h in hosts}
    for n, key in enumerate(sorted(world.pods)):
        out[hosts[n % len(hosts)]].append((key, names.pod_host_ifname(*key)))
    return out


def run_backend(backend: str, spec: BankSpec, hosts: list[str], changes: int) -> None:
    world = World.from_objects(bank_objects(spec))
    placement = placement_of(world, hosts)
    dp = Dataplane(LAB, backend=backend)
    for host in hosts:
        dp.install_base(host)
    rules = sum(len(p.ingress) + len(p.egress) for p in world.policies.values())
    started = time.perf_counter()
    Dataplane(LAB, backend=backend).compile(world, placement)  # compile alone (pure, nothing applied)
    compile_s = time.perf_counter() - started
    report = dp.sync(world, placement)  # compile again + program every host, from the empty base
    print(f"[{backend}] world: {len(world.pods)} pods, {len(world.policies)} policies, {rules} rules, {len(hosts)} hosts")
    print(f"[{backend}] full compile (all hosts): {ms(compile_s)}")
    compiled = dp.programs.values()
    print(f"[{backend}] per host (mean): {statistics.mean(len(p.endpoints) for p in compiled):.0f} endpoints, "
          f"{statistics.mean(len(p.policies) for p in compiled):.0f} policy chains, "
          f"{statistics.mean(len(p.address_sets) for p in compiled):.0f} sets holding "
          f"{statistics.mean(sum(len(m) for m in p.address_sets.values()) for p in compiled):.0f} addresses")
    print(f"[{backend}] full program (all hosts, parallel): {ms(report.program_seconds)} "
          f"(compile+program {ms(report.compile_seconds + report.program_seconds)}; "
          f"{sum(r.commands for r in report.hosts.values())} commands)")

    rng = random.Random(7)
    pods = sorted(world.pods)
    services = [p.labels["app"] for p in world.pods.values()]
    totals: list[float] = []
    compiles: list[float] = []
    programs: list[float] = []
    touched: list[int] = []
    for _ in range(changes):
        ns, name = rng.choice(pods)
        label = egress_label(rng.choice(services))
        value = None if world.pods[(ns, name)].labels.get(label) else "true"
        started = time.perf_counter()
        world.label_pod(ns, name, **{label: value})
        report = dp.sync(world, placement)
        totals.append(time.perf_counter() - started)
        compiles.append(report.compile_seconds)
        programs.append(report.program_seconds)
        touched.append(len(report.changed_hosts))
    print(f"[{backend}] single label change -> enforced on every host: median {ms(statistics.median(totals))}, "
          f"p90 {ms(percentile(totals, 0.9))} (compile median {ms(statistics.median(compiles))}, program median "
          f"{ms(statistics.median(programs))}, hosts changed per change: median {statistics.median(touched)})")

    windows = []
    for i in range(min(changes, 20)):
        host = hosts[i % len(hosts)]
        key = ("bank-00", f"newpod{i}")
        started = time.perf_counter()
        world.apply([Pod(*key, Labels({"app": f"newpod{i}"}), (IPv4Address(f"10.49.0.{i + 1}"),),
                         (ContainerPort("http", 8080, 6),))])
        placement[host].append((key, names.pod_host_ifname(*key)))
        dp.sync(world, placement)
        windows.append(time.perf_counter() - started)
    print(f"[{backend}] new pod fail-closed window (added to the world -> filter in place): median "
          f"{ms(statistics.median(windows))}, p90 {ms(percentile(windows, 0.9))}")


LATENCY_LAB = "dt8"
SERVER_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server, namespace: ns0}
spec:
  podSelector: {matchLabels: {app: p1}}
  ingress: [{from: [{podSelector: {matchLabels: {app: p0}}}]}]
"""


def phantom_world(scratch: object, extra: int) -> tuple[World, list[tuple[tuple[str, str], str]]]:
    """The scratch pods, the server policy and `extra` phantom pods on h1, each with its own ingress policy
    admitting 8 random others (their interfaces do not exist: only the size of h1's program matters)."""
    from policy_dataplane.policy.documents import load_text
    from policy_dataplane.policy.model import Namespace

    world = World()
    world.apply([Namespace("ns0", Labels({}))])
    world.apply([Pod(ns, pod, Labels({"app": pod}), (IPv4Address(str(ip)),)) for _, ns, pod, ip in scratch.pods()])  # type: ignore[attr-defined]
    world.apply(load_text(SERVER_POLICY))
    rng = random.Random(3)
    docs = []
    for i in range(extra):
        labels = {"app": f"x{i}", **{f"from-x{rng.randrange(extra)}": "true" for _ in range(8)}}
        world.apply([Pod("ns0", f"x{i}", Labels(labels), (IPv4Address("10.80.0.0") + i,))])
        docs.append(f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: x{i}, namespace: ns0}}
spec:
  podSelector: {{matchLabels: {{app: x{i}}}}}
  ingress: [{{from: [{{podSelector: {{matchLabels: {{from-x{i}: "true"}}}}}}], ports: [{{port: 8080}}]}}]
""")
    if docs:
        world.apply(load_text("---\n".join(docs)))
    local = [((ns, pod), names.pod_host_ifname(ns, pod)) for h, ns, pod, _ in scratch.pods() if h == 0]  # type: ignore[attr-defined]
    local += [(("ns0", f"x{i}"), names.pod_host_ifname("ns0", f"x{i}")) for i in range(extra)]
    return world, local


def run_latency(backends: list[str], extra: int, probes: int) -> None:
    """Per-packet cost: RTT of new TCP flows p0 -> p1 (same host) with a tiny program on that host and with
    `extra` more endpoints and policies on it. Each probe is a new flow, so it crosses dispatch and policy."""
    from traffic.model import Probe, Protocol
    from traffic.probes import ProbeOptions, run_probes
    from traffic.scratch_lab import ScratchLab

    scratch = ScratchLab(LATENCY_LAB, pods_per_host=(3, 1), namespaces=1)
    scratch.down()
    try:
        endpoints = {e.name: e for e in scratch.up()}
        batch = [Probe(endpoints["ns0/p0"], endpoints["ns0/p1"], Protocol.TCP, 8080)] * probes
        for _ in range(20):  # fresh veths: wait until packets flow
            if all(r.delivered for r in run_probes(batch[:5], ProbeOptions(reply_timeout=0.3))):
                break
        for backend in backends:
            for size in (0, extra):
                world, local = phantom_world(scratch, size)
                dp = Dataplane(LATENCY_LAB, backend=backend)
                dp.install_base("h1")
                dp.sync(world, {"h1": local})
                rtts: list[float] = []
                for start in range(0, probes, 100):  # small bursts: measure the path, not a queue
                    results = run_probes(batch[start:start + 100], ProbeOptions(reply_timeout=0.3, burst=1))
                    rtts += [r.rtt_us for r in results if r.delivered and r.rtt_us is not None]
                dp.remove("h1")
                print(f"[{backend}] new-flow RTT p0->p1 with {size} other endpoints+policies on the host: "
                      f"median {statistics.median(rtts):.0f} us, p90 {percentile(rtts, 0.9):.0f} us "
                      f"({len(rtts)}/{probes} answered)")
    finally:
        scratch.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1500)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--backend", default="both", choices=["nftables", "iptables", "both"])
    parser.add_argument("--latency-endpoints", type=int, default=1500, help="0 skips the per-packet cost run")
    parser.add_argument("--latency-probes", type=int, default=2000)
    args = parser.parse_args()
    backends = ["nftables", "iptables"] if args.backend == "both" else [args.backend]
    hosts = [f"h{i + 1}" for i in range(args.hosts)]
    netns = [names.host_netns(LAB, h) for h in hosts]
    spec = BankSpec(services=args.services)
    try:
        subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in netns), text=True, check=True)
        for backend in backends:
            run_backend(backend, spec, hosts, args.changes)
            for n in netns:  # a clean slate for the next backend
                subprocess.run(["ip", "netns", "del", n], check=True)
                subprocess.run(["ip", "netns", "add", n], check=True)
    finally:
        subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in netns), text=True, check=False)
    if args.latency_endpoints:
        run_latency(backends, args.latency_endpoints, args.latency_probes)


if __name__ == "__main__":
    main()
