"""Probe throughput through a real Calico-plumbed dataplane: prints probes/s and verification times.

Two runs, both on a scratch lab (`traffic.scratch_lab`, 2 hosts, pods split evenly):
- `rate` (default): PROBES probes spread over every ordered pod pair, per protocol, no policy: every probe
  must be answered; prints probes/s, the share delivered and RTT percentiles.
- `full`: every ordered pair of WORLD pods probed once (TCP, 2,248,500 for 1500), ALLOWED random pairs
  allowed by an nftables set in each host's forward hook, every other SYN dropped there (the bank's shape);
  prints probes/s (`--engine bulk`, the default, or `session`: one sendto per probe) and the mismatches.
- `world`: the 1500-service verification: WORLD pods, ALLOWED random pairs expected allowed, the rest
  expected denied, a stratified sample of DENIED of those probed. The denials are real: an nftables set of
  (source . destination) in each host's forward hook drops their SYNs. Prints the time to verify (pair
  enumeration + expectation + sampling + probing) and the mismatches (must be 0).
Needs root. Lab name `trbench`. Cleans up on exit.

    .venv/bin/python bench/probe_throughput.py [--pods 50] [--probes 100000] [--protocol all]
    .venv/bin/python bench/probe_throughput.py --mode full [--world 1500] [--engine session]
    .venv/bin/python bench/probe_throughput.py --mode world [--world 1500] [--allowed 13376] [--denied 100000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import subprocess
import time
from collections import Counter

import numpy as np

from traffic.bulk import BulkTcpProbe
from traffic.latency import percentiles
from traffic.matrix import all_pair_indices, all_pairs, select_pairs
from traffic.measure import measure_matrix
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.probes import ProbeEngine, ProbeOptions
from traffic.scratch_lab import ScratchLab


def up(lab: ScratchLab) -> list[ProbeEndpoint]:
    started = time.perf_counter()
    pods = [e for e in lab.up() if e.kind == "pod"]
    print(f"lab: {len(pods)} pods on {len(lab.pods_per_host)} hosts up in {time.perf_counter() - started:.1f} s")
    return pods


def rate_run(args: argparse.Namespace) -> None:
    half = args.pods // 2
    lab = ScratchLab(args.lab, pods_per_host=(args.pods - half, half), namespaces=5)
    protocols = list(Protocol) if args.protocol == "all" else [Protocol(args.protocol)]
    try:
        pairs = list(itertools.permutations(up(lab), 2))
        with ProbeEngine() as engine:
            for protocol in protocols:
                probes = [Probe(a, b, protocol, args.port) for a, b in itertools.islice(
                    itertools.cycle(pairs), args.probes)]
                engine.prepare(probes)
                started = time.perf_counter()
                if args.engine == "bulk" and protocol is Protocol.TCP:
                    bulk = BulkTcpProbe.of(engine, probes, workers=args.workers)
                    started = time.perf_counter()  # packets built, sockets open: as for the session
                    bulk.send_all()
                    bulk.wait(engine.options.reply_timeout)
                    elapsed = time.perf_counter() - started
                    results = bulk.results.to_results(probes)
                else:
                    results = engine.run(probes)
                    elapsed = time.perf_counter() - started
                if not all(r.delivered for r in results):
                    elapsed -= engine.options.reply_timeout  # waited for stragglers that never came
                delivered = sum(r.delivered for r in results)
                p = percentiles([r.rtt_us for r in results if r.rtt_us is not None])
                print(
                    f"{protocol.value:5s} {len(probes):7d} probes in {elapsed:6.2f} s = "
                    f"{len(probes) / elapsed:8.0f} probes/s; delivered {delivered}/{len(probes)}; "
                    f"rtt_us p50 {p['p50']:.0f} p90 {p['p90']:.0f} p99 {p['p99']:.0f}"
                )
    finally:
        lab.down()


def deny_set_script(denied: list[tuple[ProbeEndpoint, ProbeEndpoint]]) -> str:
    """Drop only the first SYN of a denied pair: answers to allowed connections the other way still pass."""
    elements = ",\n".join(f"{a.ip} . {b.ip}" for a, b in denied)
    return (
        "table inet trbench {\n"
        "  set denied { type ipv4_addr . ipv4_addr; elements = {\n" + elements + "\n  } }\n"
        "  chain denials { type filter hook forward priority 0; policy accept;\n"
        "    tcp flags & (syn | ack) == syn ip saddr . ip daddr @denied drop\n  }\n}\n"
    )


def world_run(args: argparse.Namespace) -> None:
    half = args.world // 2
    lab = ScratchLab(args.lab, pods_per_host=(args.world - half, half), namespaces=50)
    try:
        pods = up(lab)
        lab_hosts = {p.name: p.host for p in pods}
        rng = random.Random(1)
        index = {e.name: i for i, e in enumerate(pods)}
        allowed: set[tuple[int, int]] = set()
        while len(allowed) < args.allowed:
            a, b = rng.randrange(len(pods)), rng.randrange(len(pods))
            if a != b:
                allowed.add((a, b))

        def expected(pairs, protocol, port):  # type: ignore[no-untyped-def]
            return [(index[a.name], index[b.name]) in allowed for a, b in pairs]

        # The same selection measure_matrix will make (deterministic), to know which denials to enforce.
        pairs = all_pairs(pods)
        verdicts = expected(pairs, Protocol.TCP, 80)
        chosen = select_pairs(pairs, verdicts, sample=args.denied)
        denied = [pairs[i] for i in chosen if not verdicts[i]]
        started = time.perf_counter()
        for host in range(len(lab.pods_per_host)):
            subprocess.run(["ip", "netns", "exec", lab.host_netns(host), "nft", "-f", "-"],
                           input=deny_set_script(denied), text=True, check=True)
        print(f"denials: {len(denied)} pairs loaded as nft sets in {time.perf_counter() - started:.1f} s")
        del pairs, verdicts

        with ProbeEngine(ProbeOptions(reply_timeout=1.0)) as engine:
            started = time.perf_counter()
            engine.prepare(Probe(p, p, Protocol.TCP, 80) for p in pods)
            opened = time.perf_counter() - started
            started = time.perf_counter()
            report = measure_matrix(engine, pods, expected, Protocol.TCP, 80, sample=args.denied)
            elapsed = time.perf_counter() - started
        print(f"sockets for {len(pods)} namespaces opened in {opened:.1f} s")
        print(f"world: {report.total_pairs} pairs, {len(report.records)} probed "
              f"({sum(r.expected == 'allow' for r in report.records)} expected allowed) in {elapsed:.1f} s "
              f"(incl. {engine.options.reply_timeout:.1f} s waiting for the dropped); mismatches {report.mismatches}")
        kinds = Counter((r.expected, r.measured, r.evidence, lab_hosts[r.src] == lab_hosts[r.dst])
                        for r in report.records if r.mismatch)
        for (exp, meas, evidence, same_host), n in kinds.most_common(10):
            print(f"  mismatch: expected {exp}, measured {meas} ({evidence}), "
                  f"{'same' if same_host else 'cross'}-host: {n}")
    finally:
        lab.down()


def allow_set_script(allowed: list[tuple[ProbeEndpoint, ProbeEndpoint]]) -> str:
    """Drop the first SYN of every pair but the allowed ones: the bank's shape, a few allowed among millions."""
    elements = ",\n".join(f"{a.ip} . {b.ip}" for a, b in allowed)
    return (
        "table inet trbench {\n"
        "  set allowed { type ipv4_addr . ipv4_addr; elements = {\n" + elements + "\n  } }\n"
        "  chain denials { type filter hook forward priority 0; policy accept;\n"
        "    tcp flags & (syn | ack) == syn ip saddr . ip daddr != @allowed drop\n  }\n}\n"
    )


def full_run(args: argparse.Namespace) -> None:
    """Every ordered pair of the world probed once (TCP), by the bulk prober or by one session."""
    half = args.world // 2
    lab = ScratchLab(args.lab, pods_per_host=(args.world - half, half), namespaces=50)
    try:
        pods = sorted(up(lab), key=lambda e: (e.group, e.name))
        rng = random.Random(1)
        sources, destinations = all_pair_indices(len(pods))
        allowed = np.zeros(len(sources), dtype=bool)
        allowed[rng.sample(range(len(sources)), min(args.allowed, len(sources)))] = True
        chosen = [(pods[a], pods[b]) for a, b in zip(sources[allowed], destinations[allowed], strict=True)]
        for host in range(len(lab.pods_per_host)):
            subprocess.run(["ip", "netns", "exec", lab.host_netns(host), "nft", "-f", "-"],
                           input=allow_set_script(chosen), text=True, check=True)
        print(f"{len(sources)} ordered pairs, {len(chosen)} allowed (an nft set), the rest dropped")
        with ProbeEngine(ProbeOptions(reply_timeout=1.0)) as engine:
            started = time.perf_counter()
            if args.engine == "bulk":
                bulk = BulkTcpProbe(engine, pods, sources, destinations, args.port, workers=args.workers)
                print(f"packets built, sockets opened in {time.perf_counter() - started:.1f} s")
                started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
                bulk.send_all()
                bulk.wait(1.0, expected_answers=len(chosen))
                probing = time.perf_counter() - started
                spent = resource.getrusage(resource.RUSAGE_SELF)
                bulk.wait(1.0)
                delivered = bulk.results.delivered
            else:
                probes = [Probe(pods[a], pods[b], Protocol.TCP, args.port) for a, b in zip(sources, destinations,
                                                                                          strict=True)]
                engine.prepare(Probe(p, p, Protocol.TCP, args.port) for p in pods)
                print(f"probes listed, sockets opened in {time.perf_counter() - started:.1f} s")
                session = engine.session()
                started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
                for start in range(0, len(probes), engine.options.burst):
                    for probe in probes[start:start + engine.options.burst]:
                        session.send(probe)
                    session.drain(0.0)
                settle = time.perf_counter()
                while session.outstanding > len(probes) - len(chosen) and time.perf_counter() - settle < 1.0:
                    session.drain(0.01)
                probing = time.perf_counter() - started
                spent = resource.getrusage(resource.RUSAGE_SELF)
                session.wait(1.0)
                delivered = np.array([r.delivered for r in session.results()])
        mismatches = int((delivered != allowed).sum())
        print(f"{args.engine}: {len(sources)} probes in {probing:.1f} s = {len(sources) / probing:,.0f} probes/s "
              f"(+1.0 s waiting for the dropped); delivered {int(delivered.sum())}; mismatches {mismatches}")
        user, system = spent.ru_utime - cpu.ru_utime, spent.ru_stime - cpu.ru_stime
        print(f"CPU while probing: user {user:.1f} s, system {system:.1f} s = "
              f"{(user + system) / len(sources) * 1e6:.1f} µs per probe ({(user + system) / probing:.2f} cores busy)")
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["rate", "world", "full"], default="rate")
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--protocol", default="all", choices=[*(p.value for p in Protocol), "all"])
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--world", type=int, default=1500)
    parser.add_argument("--allowed", type=int, default=13_376)
    parser.add_argument("--denied", type=int, default=100_000)
    parser.add_argument("--lab", default="trbench")
    parser.add_argument("--engine", choices=["bulk", "session"], default="bulk",
                        help="bulk: sendmmsg batches by source on every core (TCP); session: one sendto per probe")
    parser.add_argument("--workers", type=int, default=None, help="bulk sender threads (default: one per core)")
    args = parser.parse_args()
    {"rate": rate_run, "world": world_run, "full": full_run}[args.mode](args)


if __name__ == "__main__":
    main()
