"""The desired state of a lab, read from its store (the single source of truth)."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import TYPE_CHECKING

from lab.addresses import ipam_of
from lab.controller.state import Desired, PodWant, ProcessWant
from lab.pod_plans import pod_plans, responder_targets

if TYPE_CHECKING:
    from bgp.sessions import BgpPlan
    from lab.runtime import LabRuntime

RESPONDER = "responder"


def speaker_name(node: str) -> str:
    return f"speaker {node}"


def reflector_name(node: str) -> str:
    return f"reflector {node}"


def desired_processes(bgp: BgpPlan) -> tuple[ProcessWant, ...]:
    wanted = [ProcessWant(speaker_name(s.name), "speaker", s.name, s.netns) for s in bgp.speakers]
    wanted += [ProcessWant(reflector_name(r.name), "reflector", r.name, r.netns) for r in bgp.reflectors]
    wanted.append(ProcessWant(RESPONDER, "responder", "", ""))
    return tuple(wanted)


def prefixes(networks: frozenset[IPv4Network]) -> tuple[str, ...]:
    """In the order the speaker's announcement file keeps them."""
    return tuple(str(n) for n in sorted(networks))


def read_desired(runtime: LabRuntime, bgp: BgpPlan) -> Desired:
    revision = runtime.store.revision
    pods = {
        p.key: PodWant(p.key, p.host, p.netns, p.host_netns, p.host_ifname, str(p.ip))
        for p in pod_plans(runtime)
    }
    ipam = ipam_of(runtime)
    announcements = {s.name: prefixes(ipam.announcements(s.name)) if s.announces else () for s in bgp.speakers}
    targets = frozenset(t.netns for t in responder_targets(runtime))
    return Desired(revision, tuple(runtime.local_hosts()), pods, desired_processes(bgp), announcements, targets)
