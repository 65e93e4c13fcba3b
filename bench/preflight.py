"""What the apply-time preflight costs on the bank world: 1500 services (one policy each) on 16 hosts.

An apply compiles every host's whole program from the store as the change would leave it and asks the lab's
backend to check each (render it as an apply would, no kernel touched), before the change commits
(`lab/apply.py`, `dataplane/preflight.py`). Prints, per backend: building the world from the model objects,
compiling every host, checking every host, and the per-policy pass (each policy alone) for comparison.
Pure: no root, nothing is created.

    .venv/bin/python bench/preflight.py [--services 1500] [--hosts 16]
"""

from __future__ import annotations

import argparse
import os
import time

from policy_dataplane.dataplane.backends import get_backend
from policy_dataplane.dataplane.compile import compile_hosts
from policy_dataplane.dataplane.preflight import unprogrammable, unprogrammable_hosts
from policy_dataplane.policy.bankgen import BankSpec, bank_objects
from policy_dataplane.policy.world import World
from topology import names


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1500)
    parser.add_argument("--hosts", type=int, default=16)
    args = parser.parse_args()
    hosts = [f"h{i + 1}" for i in range(args.hosts)]
    started = time.perf_counter()
    world = World.from_objects(bank_objects(BankSpec(services=args.services)))
    built = time.perf_counter() - started
    placement: dict[str, dict[tuple[str, str], str]] = {h: {} for h in hosts}
    for n, key in enumerate(sorted(world.pods)):  # round robin, as bench/dataplane.py places them
        placement[hosts[n % len(hosts)]][key] = names.pod_host_ifname(*key)
    rules = sum(len(p.ingress) + len(p.egress) for p in world.policies.values())
    print(f"preflight on the bank world: {len(world.pods)} pods, {len(world.policies)} policies, {rules} rules, "
          f"{len(hosts)} hosts ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    print(f"world from model objects: {ms(built)}")
    started = time.perf_counter()
    programs = compile_hosts(world, placement)
    print(f"compile every host: {ms(time.perf_counter() - started)}")
    for name in ("nftables", "iptables"):
        backend = get_backend(name)
        started = time.perf_counter()
        problems = unprogrammable_hosts(programs, backend)
        whole = time.perf_counter() - started
        started = time.perf_counter()
        problems += unprogrammable(world.policies.values(), backend)
        alone = time.perf_counter() - started
        print(f"[{name}] check every host's program: {ms(whole)}; each policy alone: {ms(alone)}; "
              f"problems: {len(problems)}")


if __name__ == "__main__":
    main()
