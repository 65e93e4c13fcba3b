"""Programming figures on a running lab: the full compile of every host, the full program of every host
from scratch, the program's size as its backend writes it to the kernel (rules, sets, set elements), and
the write of a single label change (the dataplane's own share of a change's latency)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from policy_dataplane.dataplane.hostprogram import HostProgram
from policy_dataplane.dataplane.lab_dataplane import Dataplane, PodsByHost
from policy_dataplane.policy.bankgen import EGRESS_LABEL_PREFIX
from policy_dataplane.policy.world import World


@dataclass(frozen=True)
class ProgramSize:
    rules: int
    sets: int
    elements: int

    def __add__(self, other: "ProgramSize") -> "ProgramSize":
        return ProgramSize(self.rules + other.rules, self.sets + other.sets, self.elements + other.elements)


def program_size(backend: str, program: HostProgram) -> ProgramSize:
    """What one host's kernel holds: rules (nft rules, or iptables rules), sets (nft sets, or ipsets) and
    their elements (addresses, named ports, and for nftables the interface dispatch map entries)."""
    if backend == "iptables":
        from policy_dataplane.dataplane.iptables.render import render_ipset_full, render_iptables_full

        ipsets = render_ipset_full(program).splitlines()
        rules = sum(line.startswith("-A ") for line in render_iptables_full(program).splitlines())
        return ProgramSize(rules, sum(line.startswith("create ") for line in ipsets),
                           sum(line.startswith("add ") for line in ipsets))
    if backend == "nftables":
        from policy_dataplane.dataplane.nft.render import address_intervals, render_full

        rules = sum(line.startswith("add rule ") for line in render_full(program).splitlines())
        elements = sum(len(address_intervals(m)) for m in program.address_sets.values())  # ranges, as nft holds them
        elements += sum(len(m) for m in program.named_port_sets.values()) + 2 * len(program.endpoints)
        return ProgramSize(rules, len(program.address_sets) + len(program.named_port_sets), elements)
    return ProgramSize(0, 0, 0)  # none: nothing reaches the kernel


@dataclass(frozen=True)
class Programming:
    compile_s: float  # every host, from the world (pure)
    program_s: float  # every host's whole program replaced, hosts in parallel
    size: ProgramSize  # summed over hosts
    change_s: tuple[float, ...] = ()  # one label change (or its revert): what the backend wrote, every host


CHANGE_ROUNDS = 10  # label changes and as many reverts


def label_change_target(world: World) -> tuple[str, str, str]:
    """(namespace, pod, label): the first pod (by namespace and name) with a bank egress label, whose removal
    takes the pod's address out of its target's allowed sources: one set element on the target's host."""
    for pod in sorted(world.pods.values(), key=lambda p: p.key):
        for label in sorted(pod.labels):
            if label.startswith(EGRESS_LABEL_PREFIX):
                return pod.namespace, pod.name, label
    raise ValueError("no pod carries an egress label: nothing to change")


def time_label_changes(dp: Dataplane, world: World, placement: PodsByHost, rounds: int,
                       must_write: bool = False) -> tuple[float, ...]:
    """Program seconds of `rounds` single label changes, each followed by its revert (also timed): the
    incremental sync a controller makes for one `lab label`, compile excluded. The world ends as it began.
    `must_write`: a change that reached no host's kernel is an error (it would time nothing)."""
    namespace, name, label = label_change_target(world)
    value = world.pods[(namespace, name)].labels[label]
    out = []
    for _ in range(rounds):
        for change in (None, value):
            world.label_pod(namespace, name, **{label: change})
            report = dp.sync(world, placement)
            if must_write and not report.changed_hosts:
                raise RuntimeError(f"label {label} of {namespace}/{name}: the change wrote to no host")
            out.append(report.program_seconds)
    return tuple(out)


def measure_programming(lab: str) -> Programming:
    """Compiles every host from scratch, then replaces every host's program in one transaction each (the
    same program the lab has applied, so traffic is not disturbed) and records the size."""
    from lab import warm
    from lab.runtime import LabRuntime
    from lab.stored_world import world_of

    runtime = LabRuntime.open(lab)
    try:
        with runtime.exclusive():
            world, placement = world_of(runtime), runtime.placement()
            backend = runtime.spec.dataplane
            started = time.perf_counter()
            programs = Dataplane(lab, backend=backend).compile(world, placement)
            compile_s = time.perf_counter() - started
            warm.forget(lab)  # the filters are replaced behind the warm state's back
            dp = Dataplane(lab, backend=backend)
            try:
                report = dp.resync(world, placement)
                changes = time_label_changes(dp, world, placement, CHANGE_ROUNDS, True) if backend != "none" else ()
                dp.save_state(runtime.dataplane_state)
            finally:
                dp.close()
    finally:
        runtime.close()
    size = sum((program_size(backend, p) for p in programs.values()), ProgramSize(0, 0, 0))
    return Programming(compile_s, report.program_seconds, size, changes)


__all__ = ["ProgramSize", "program_size", "Programming", "measure_programming", "time_label_changes",
           "label_change_target", "CHANGE_ROUNDS"]
