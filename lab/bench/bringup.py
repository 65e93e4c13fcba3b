"""Bring-up figures: `lab up` (per stage), the bank applied, BGP convergence, and memory (kernel, processes).

Memory, once the bank is applied and converged: the lab's processes' proportional set size (PSS: shared
pages split between the processes sharing them), and kernel memory as the growth of the kernel's own pools
since before `lab up` (slab: namespaces, devices, routes, nftables/iptables objects, conntrack; plus kernel
stacks, page tables, per-CPU data). The kernel's counters are machine-wide: other work on the machine
shows in them too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.pipeline import Progress

KERNEL_POOLS = ("Slab", "KernelStack", "PageTables", "Percpu")


def kernel_kib() -> int:
    """The kernel's own memory pools, from /proc/meminfo (KiB)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    return sum(int(fields[name].split()[0]) for name in KERNEL_POOLS if name in fields)


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass  # ended meanwhile
    return total


def lab_pids(lab: str) -> list[int]:
    """Every process of the lab: those its pid files name and any running inside its namespaces."""
    from topology import names, processes
    from topology.engines import get_engine

    paths = names.LabPaths.for_lab(lab)
    pids = set(processes.pids_from_files(paths.run_dir, marker=f"{names.PREFIX}-{lab}"))
    for netns in get_engine().list_owned(lab):
        pids.update(processes.pids_in_netns(netns))
    return sorted(pids)


@dataclass
class BringUp:
    stages: dict[str, float] = field(default_factory=dict)  # lab up's stages, then apply and converge
    up_s: float = 0.0
    bgp_converged_s: float = 0.0  # lab up's wait for every route, plus the wait after the bank's blocks
    apply_s: float = 0.0
    kernel_mib: float = 0.0
    process_pss_mib: float = 0.0
    processes: int = 0


def bring_up(lab: str, hosts: int, dataplane: str, bank_text: str, progress: Progress) -> BringUp:
    """`lab up` of `hosts` hosts (BGP mesh) with `dataplane`, then the bank applied through the lab."""
    from lab import pipeline
    from lab.apply import apply_sources
    from lab.labfile import parse_lab
    from lab.runtime import LabRuntime

    spec = parse_lab({"name": lab, "hosts": hosts, "ipam": {"pool": "10.48.0.0/16"}, "dataplane": dataplane},
                     "<lab bench>", Path.cwd())
    result = BringUp()
    before = kernel_kib()
    started = time.perf_counter()
    result.stages = dict(pipeline.up(spec, progress=progress, timeout=300))
    result.up_s = time.perf_counter() - started
    runtime = LabRuntime.open(lab)
    try:
        started = time.perf_counter()
        apply_sources(runtime, [("bank.yaml", bank_text)], progress)
        result.apply_s = time.perf_counter() - started
        converge = runtime.fabric().wait_converged(300, progress)
    finally:
        runtime.close()
    result.stages["bank applied"] = result.apply_s
    result.stages["bank converged"] = converge
    result.bgp_converged_s = result.stages.get("converged", 0.0) + converge
    pids = lab_pids(lab)
    result.processes = len(pids)
    result.process_pss_mib = pss_kib(pids) / 1024
    result.kernel_mib = (kernel_kib() - before) / 1024
    return result


__all__ = ["BringUp", "bring_up", "kernel_kib", "pss_kib", "lab_pids"]
