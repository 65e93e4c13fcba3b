"""`lab diff`'s dry run: the flows whose verdict the files would change in a running lab, on every port
something listens on (or the one asked for), from whole oracle matrices: nothing is applied."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lab.apply import read_sources
from lab.runtime import LabRuntime
from lab.stored_world import planned_world, world_of
from lab.targets import node_addresses
from policy_dataplane.policy.diff import PROTOCOL_NAMES, FlowChange, verdict_changes

Flow = tuple[str, int | None]  # (protocol, port or None for ICMP)


@dataclass(frozen=True)
class LabDiff:
    changes: list[FlowChange]
    flows: list[Flow]
    refs: list[str]  # the endpoints compared: pods by ns/name, externals by address
    unplaced: tuple[str, ...]  # new pods in the files: no address yet, so not in the diff


def lab_diff(runtime: LabRuntime, files: list[Path], delete: bool = False, protocol: str | None = None,
             port: int | None = None) -> LabDiff:
    """The verdict changes the files (applied, or deleted) would make; externals named by their name."""
    sources = read_sources(files)
    before = world_of(runtime)
    planned = planned_world(runtime, sources, delete=delete)
    externals = _externals(runtime)
    # What each destination listens on: a verdict change on a port nobody serves is noise.
    serves = {f"{ns}/{name}": {(PROTOCOL_NAMES.get(p.protocol, str(p.protocol)), p.port) for p in pod.ports}
              for (ns, name), pod in planned.world.pods.items()}
    serves.update({ip: ports for ip, (_, ports) in externals.items()})
    names = {ip: name for ip, (name, _) in externals.items()}
    asked = port is not None or protocol is not None
    flows: list[Flow]
    if asked:
        flows = [(protocol or "tcp", None if protocol == "icmp" else port or 80)]
    else:
        flows = sorted({f for ports in serves.values() for f in ports}, key=lambda f: (f[0], f[1] or 0))
    refs = sorted(f"{ns}/{name}" for ns, name in set(before.pods) & set(planned.world.pods)
                  if before.pods[(ns, name)].ip is not None) + sorted(externals)
    changes = [c for c in verdict_changes(before, planned.world, refs, flows)
               if asked or (c.protocol, c.port) in serves.get(c.dst, set())]
    if names:
        changes = [c if c.src not in names and c.dst not in names else
                   dataclasses.replace(c, src=names.get(c.src, c.src), dst=names.get(c.dst, c.dst)) for c in changes]
    return LabDiff(changes, flows, refs, planned.unplaced)


def _externals(runtime: LabRuntime) -> dict[str, tuple[str, set[tuple[str, int]]]]:
    """The lab's external servers by fabric address (as the probes and the oracle see them): name, ports."""
    address = node_addresses(runtime, "external")
    return {address[ext.name]: (ext.name, {(p.protocol.lower(), p.containerPort) for p in ext.ports})
            for ext in runtime.spec.externals}


__all__ = ["LabDiff", "lab_diff"]
