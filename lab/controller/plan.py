"""The loop body of the controller: `plan(desired, observed) -> actions`. Pure: no kernel, no clock.

Level-triggered, like a Kubernetes controller: it looks only at the two states, never at what happened
in between, so a missed event, a killed command or a restart all end in the same repair. Actions come in
the order they must run: stray pods go before pods are made again (their addresses may be the same), pods
exist before their routes are announced and the responder opens sockets in them, filters follow the store
(each filter sync also syncs the Services' DNAT tables and DNS records), and dead processes come back last (a speaker announces what the files say by then).
"""

from __future__ import annotations

from lab.controller.state import (
    Action,
    Announce,
    Desired,
    Observed,
    ProcessRecord,
    ProcessSeen,
    RecreatePods,
    ReloadResponder,
    RemoveStrayPods,
    ReprogramHost,
    RestartProcess,
    SyncPolicy,
    SyncServices,
)

# ExaBGP respawns a dead route agent itself, and a speaker just started needs a moment before its agent
# runs: only an agent missing this long (since it died, or since its speaker started) restarts the speaker.
HELPER_GRACE = 10.0


def plan(desired: Desired, observed: Observed) -> list[Action]:
    actions: list[Action] = []
    actions += _pods(desired, observed)
    actions += _announcements(desired, observed)
    actions += _responder(desired, observed)
    actions += _filters(desired, observed)
    actions += _services(observed)
    actions += _processes(desired, observed)
    return actions


def broken_pods(desired: Desired, observed: Observed) -> dict[str, str]:
    """Pods whose namespace, host interface or host route is missing, with what is missing."""
    broken = {}
    for key, pod in desired.pods.items():
        host = observed.hosts.get(pod.host)
        if host is None or not host.exists:
            continue  # a missing host is not a pod's fault (hosts are not recreated)
        if pod.netns not in observed.pod_netns:
            broken[key] = f"namespace {pod.netns} missing"
        elif pod.host_ifname not in host.pod_links:
            broken[key] = f"interface {pod.host_ifname} on {pod.host} missing or down"
        elif f"{pod.ip}/32" not in host.pod_routes:
            broken[key] = f"route {pod.ip}/32 on {pod.host} missing"
    return broken


def missing_routes(announcements: dict[str, tuple[str, ...]], routes: dict[str, frozenset[str]]
                   ) -> dict[str, list[str]]:
    """Per node, the prefixes other speakers announce that its kernel has no route for (BGP not converged,
    or a speaker down): what `lab status` reports as missing routes."""
    missing = {}
    for node, have in routes.items():
        lacking = [p for other, prefixes in announcements.items() if other != node for p in prefixes if p not in have]
        if lacking:
            missing[node] = lacking
    return missing


def _pods(desired: Desired, observed: Observed) -> list[Action]:
    actions: list[Action] = []
    wanted = {p.netns for p in desired.pods.values()}
    stray = sorted(observed.pod_netns - wanted)
    if stray:
        actions.append(RemoveStrayPods(f"{len(stray)} pod namespace(s) not in the store: {_sample(stray)}",
                                       tuple(stray)))
    broken = broken_pods(desired, observed)
    if broken:
        keys = sorted(broken)
        reasons = _sample([f"{k}: {broken[k]}" for k in keys])
        actions.append(RecreatePods(f"{len(keys)} pod(s) not plumbed: {reasons}", tuple(keys)))
    return actions


def _announcements(desired: Desired, observed: Observed) -> list[Action]:
    return [
        Announce(f"{node} announces {list(observed.announcements.get(node, ()))}, the store says {list(prefixes)}",
                 node)
        for node, prefixes in sorted(desired.announcements.items())
        if observed.announcements.get(node) != prefixes
    ]


def _responder(desired: Desired, observed: Observed) -> list[Action]:
    if not any(p.kind == "responder" for p in desired.processes):
        return []
    running = observed.processes.get("responder", ProcessSeen(None)).pid is not None
    if not running:
        return []  # its restart loads the pods file anew
    if observed.responder_targets != desired.responder_targets:
        return [ReloadResponder("the responder's pods file differs from the store")]
    return []


def _filters(desired: Desired, observed: Observed) -> list[Action]:
    actions: list[Action] = []
    for host in desired.hosts:
        seen = observed.hosts.get(host)
        if seen is None or not seen.exists:
            continue
        record = observed.filters.get(host)
        if record is None:
            actions.append(ReprogramHost(f"{host}: filter state unknown (controller start): replaced atomically",
                                         host, drift=False))
        elif seen.fingerprint != record.fingerprint:
            actions.append(ReprogramHost(
                f"{host}: filter drift (generation {seen.fingerprint}, the controller wrote {record.fingerprint})",
                host))
    # after the replacements: a diff is only sent onto a table known to hold what the controller wrote
    if observed.programmed_revision < desired.revision:
        actions.append(SyncPolicy(f"store revision {desired.revision}, filters at {observed.programmed_revision}"))
    return actions


def _services(observed: Observed) -> list[Action]:
    """The services process is started by the Services sync that a SyncPolicy runs; when it died since, the
    same sync starts it again (its config is kept while there is something to serve)."""
    if observed.services_configured and observed.services_pid is None:
        return [SyncServices("the services process (cluster DNS, egress gateways) is not running")]
    return []


def _processes(desired: Desired, observed: Observed) -> list[Action]:
    actions: list[Action] = []
    for want in desired.processes:
        seen = observed.processes.get(want.name, ProcessSeen(None))
        record = observed.table.get(want.name) or ProcessRecord(want.name, want.kind, want.node, want.netns)
        if observed.now < record.next_attempt:
            continue  # backing off
        if seen.pid is None:
            last = f" (pid {record.pid})" if record.pid else ""
            actions.append(RestartProcess(f"{want.name} is not running{last}", want.name))
        elif not seen.helper_alive and record.helper_dead_since is not None \
                and observed.now - max(record.helper_dead_since, record.started_at) >= HELPER_GRACE:
            actions.append(RestartProcess(f"{want.name}: its route agent is gone", want.name))
    return actions


def _sample(items: list[str], keep: int = 3) -> str:
    more = f" and {len(items) - keep} more" if len(items) > keep else ""
    return ", ".join(items[:keep]) + more
