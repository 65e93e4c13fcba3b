"""The policy world + the endpoints living on one host -> that host's `HostProgram`. Pure (reads the world).

Like Felix, a host gets only what its local endpoints need: the policies that select them (per direction,
tiers in order, from `resolve.py`) and the address / named-port sets those policies' rules refer to.

Set names are stable: `s-<selector id>` for a selector's members (pod IPs and network-set CIDRs), `n-<hash>`
for a literal list of nets, `p-<hash>` for named ports ((ip, protocol, port) of the pods matching that side's
selector that declare the port). So a label change only moves set elements; a policy edit rewrites its chain.

IPv4 only: the lab has no IPv6 pod addresses; rules restricted to IPv6 compile to nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, MutableMapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network
from typing import Any, cast

from policy_dataplane.dataplane.hostprogram import (
    Dir,
    EndpointProgram,
    HostProgram,
    NamedPortMember,
    PolicyProgram,
    RuleProgram,
    SideMatch,
    TierProgram,
    Verdict,
    policy_chain,
    short_hash,
)
from policy_dataplane.policy.model import (
    ALL,
    Action,
    Direction,
    EntityMatch,
    NamedPort,
    Policy,
    PortRange,
    Rule,
    Selector,
)
from policy_dataplane.policy.resolve import ResolvedTier, resolve
from policy_dataplane.policy.world import World

PodKey = tuple[str, str]
DIRECTIONS = {Dir.INGRESS: Direction.INGRESS, Dir.EGRESS: Direction.EGRESS}
VERDICTS = {Action.ALLOW: Verdict.ALLOW, Action.DENY: Verdict.DENY, Action.LOG: Verdict.LOG, Action.PASS: Verdict.PASS}


@dataclass(frozen=True)
class NamedPortRef:
    """What a named-port set holds: the pods matching `selector` (only this host's pods when `local`), each
    with its port called one of `names` for `protocol` (None: whatever protocol the pod declares)."""

    selector: Selector
    names: tuple[str, ...]
    protocol: int | None
    local: bool

    @property
    def set_name(self) -> str:
        return "p-" + short_hash(self.selector.canonical, ",".join(self.names), str(self.protocol), str(self.local))


@dataclass
class _Needs:
    """Sets referred to by the policies compiled so far (filled while compiling, then resolved)."""

    selectors: dict[str, Selector] = field(default_factory=dict)
    nets: dict[str, frozenset[IPv4Network]] = field(default_factory=dict)
    named_ports: dict[str, NamedPortRef] = field(default_factory=dict)


def _v4(nets: tuple) -> frozenset[IPv4Network]:  # type: ignore[type-arg]
    return frozenset(n for n in nets if isinstance(n, IPv4Network)) if nets else frozenset()


def _nets_set(nets: frozenset[IPv4Network], needs: _Needs) -> str:
    name = "n-" + short_hash(*sorted(map(str, nets)))
    needs.nets[name] = nets
    return name


def _selector_set(selector: Selector, needs: _Needs) -> str:
    needs.selectors[selector.id] = selector
    return "s-" + selector.id


def _port_spans(ports: tuple) -> tuple[tuple[int, int], ...]:  # type: ignore[type-arg]
    return tuple((p.first, p.last) for p in ports if isinstance(p, PortRange))


def _named(ports: tuple, side: EntityMatch, protocol: int | None, local: bool, needs: _Needs) -> str | None:  # type: ignore[type-arg]
    names = tuple(sorted(p.name for p in ports if isinstance(p, NamedPort)))
    if not names:
        return None
    ref = NamedPortRef(side.selector or ALL, names, protocol, local and side.selector is None)
    needs.named_ports[ref.set_name] = ref
    return ref.set_name


def _side(side: EntityMatch, protocol: int | None, local: bool, needs: _Needs) -> SideMatch:
    """`local`: this side is the endpoint the chain guards (ingress destination, egress source)."""
    nets = _v4(side.nets)
    return SideMatch(
        nets=_nets_set(nets, needs) if nets else None,
        not_nets=_nets_set(_v4(side.not_nets), needs) if _v4(side.not_nets) else None,
        members=_selector_set(side.selector, needs) if side.selector is not None else None,
        not_members=_selector_set(side.not_selector, needs) if side.not_selector is not None else None,
        ports=_port_spans(side.ports),
        named_ports=_named(side.ports, side, protocol, local, needs),
        not_ports=_port_spans(side.not_ports),
        not_named_ports=_named(side.not_ports, side, protocol, local, needs),
        never=bool(side.nets) and not nets,  # only IPv6 nets: no IPv4 packet matches
    )


def compile_rule(rule: Rule, direction: Dir, needs: _Needs) -> RuleProgram:
    return RuleProgram(
        verdict=VERDICTS[rule.action],
        protocol=rule.protocol,
        not_protocol=rule.not_protocol,
        icmp=(rule.icmp.type, rule.icmp.code) if rule.icmp else None,
        not_icmp=(rule.not_icmp.type, rule.not_icmp.code) if rule.not_icmp else None,
        source=_side(rule.source, rule.protocol, direction is Dir.EGRESS, needs),
        destination=_side(rule.destination, rule.protocol, direction is Dir.INGRESS, needs),
        never=rule.ip_version == 6,
    )


def compile_policy(policy: Policy, direction: Dir, needs: _Needs) -> PolicyProgram:
    rules = policy.rules(DIRECTIONS[direction])
    return PolicyProgram(policy.name, direction, tuple(compile_rule(r, direction, needs) for r in rules))


@lru_cache(maxsize=1 << 16)
def host_network(ip: IPv4Address) -> IPv4Network:
    """The /32 of an address (cached: building IPv4Network objects dominated compile time)."""
    return IPv4Network(ip)


def _item_networks(world: World, item: tuple) -> list[IPv4Network]:  # type: ignore[type-arg]
    kind, namespace, name = item
    if kind == "pod":
        pod = world.pods.get((namespace, name))
        return [host_network(ip) for ip in pod.ips if isinstance(ip, IPv4Address)] if pod else []
    if kind == "hep":  # a host endpoint's expected IPs are what selectors match (as in Calico)
        hep = world.host_endpoints.get(name)
        return [host_network(ip) for ip in hep.expected_ips if isinstance(ip, IPv4Address)] if hep else []
    netset = world.netsets.get((namespace or None, name))
    return list(_v4(netset.nets)) if netset else []


def selector_members(world: World, selector: Selector) -> frozenset[IPv4Network]:
    if world.index.has_selector(selector.id):
        items = world.index.members_view(selector.id)
    else:  # not registered (cannot happen for policy selectors): evaluate directly
        items = {i for i, labels in world.index.items().items() if selector.matches(labels)}
    # Each item's networks are kept in the world's per-item memo (dropped when the item's object changes): a
    # set over 1500 pods is then a union of frozensets that carry their hashes, made in C, not 1500 IPv4Network
    # objects made and hashed anew (1.7 -> ~0.3 ms).
    memo = world.item_memo
    for item in [i for i in items if i not in memo]:
        memo[item] = frozenset(_item_networks(world, cast(tuple[str, str, str], item)))
    return frozenset().union(*map(memo.__getitem__, items))


def named_port_members(world: World, ref: NamedPortRef, local_pods: set[PodKey]) -> frozenset[NamedPortMember]:
    if ref.selector == ALL:
        pods = [world.pods[k] for k in local_pods if k in world.pods] if ref.local else list(world.pods.values())
    else:
        members = [cast(tuple[str, str, str], i) for i in world.index.members_view(ref.selector.id)]
        pods = [world.pods[(i[1], i[2])] for i in members if i[0] == "pod" and (i[1], i[2]) in world.pods]
    out: set[NamedPortMember] = set()
    for pod in pods:
        for port in pod.ports:
            if port.name in ref.names and (ref.protocol is None or port.protocol == ref.protocol):
                out.update((ip, port.protocol, port.port) for ip in pod.ips if isinstance(ip, IPv4Address))
    return frozenset(out)


def compile_host(world: World, local: Mapping[PodKey, str], node: str | None = None) -> HostProgram:
    """`local`: pod key -> host-side interface of the pods on this host. Pods the world does not know get no
    endpoint (their interface stays unknown to the program: dropped). `node`: the node's name, for its own
    policy (host endpoint, failsafe ports)."""
    return _compile_host(world, local, node)[0]


def tier_programs(tiers: tuple[ResolvedTier, ...], direction: Dir, policies: dict[str, PolicyProgram],
                  needs: _Needs) -> tuple[TierProgram, ...]:
    """Resolved tiers as chain lists, compiling each policy chain once per host."""
    programs = []
    for tier in tiers:
        chains = []
        for policy in tier.policies:
            chain = policy_chain(policy.name, direction)
            if chain not in policies:
                policies[chain] = compile_policy(policy, direction, needs)
            chains.append(chain)
        programs.append(TierProgram(tier.tier.name, tuple(chains), tier.tier.default_action is Action.PASS))
    return tuple(programs)


def _compile_host(world: World, local: Mapping[PodKey, str], node: str | None = None
                  ) -> tuple[HostProgram, dict[str, NamedPortRef]]:
    from policy_dataplane.dataplane.compile_node import node_program

    needs = _Needs()
    policies: dict[str, PolicyProgram] = {}
    endpoints: dict[str, EndpointProgram] = {}
    for key, ifname in sorted(local.items()):
        pod = world.pods.get(key)
        if pod is None:
            continue
        tiers = {d: tier_programs(resolve(world, pod, DIRECTIONS[d]), d, policies, needs) for d in Dir}
        endpoints[ifname] = EndpointProgram(str(pod), ifname, tiers[Dir.INGRESS], tiers[Dir.EGRESS])
    node_policy = node_program(world, node, lambda tiers, d: tier_programs(tiers, d, policies, needs))
    address_sets = {"s-" + sid: selector_members(world, sel) for sid, sel in needs.selectors.items()}
    address_sets.update(needs.nets)
    local_pods = set(local)
    named = {name: named_port_members(world, ref, local_pods) for name, ref in needs.named_ports.items()}
    return HostProgram(address_sets, named, policies, endpoints, node_policy), needs.named_ports


def compile_hosts(world: World, placement: Mapping[str, Mapping[PodKey, str]]) -> dict[str, HostProgram]:
    """host -> program, for every host of the placement (host -> {pod key: ifname})."""
    return {host: compile_host(world, local, host) for host, local in placement.items()}


def _patch_endpoints(world: World, previous: HostProgram, before: Mapping[PodKey, str], local: Mapping[PodKey, str],
                     changed: set[PodKey], refs: Mapping[str, NamedPortRef]
                     ) -> tuple[HostProgram, dict[str, NamedPortRef]]:
    """`previous` with the endpoints of changed local pods redone. A pod that now needs a policy the host had
    no chain for (a quarantine label) gets that chain and its sets compiled; chains and sets nobody uses any
    more are dropped. The rest of the host is left as it was: a full compile costs ~10 ms at bank scale."""
    needs = _Needs()
    policies = dict(previous.policies)
    endpoints = dict(previous.endpoints)
    for key in changed:
        if key in before:
            endpoints.pop(before[key], None)
        pod = world.pods.get(key)
        if key in local and pod is not None:
            tiers = {d: tier_programs(resolve(world, pod, DIRECTIONS[d]), d, policies, needs) for d in Dir}
            endpoints[local[key]] = EndpointProgram(str(pod), local[key], tiers[Dir.INGRESS], tiers[Dir.EGRESS])
    patched = HostProgram(previous.address_sets, previous.named_port_sets, policies, endpoints, previous.node)
    if patched.used_chains() == previous.policies.keys():  # the usual label change: the same chains
        return patched, dict(refs)
    return _fit_sets(world, previous, patched, needs, refs, local)


def _fit_sets(world: World, previous: HostProgram, patched: HostProgram, needs: _Needs,
              refs: Mapping[str, NamedPortRef], local: Mapping[PodKey, str]
              ) -> tuple[HostProgram, dict[str, NamedPortRef]]:
    """A patched program's chains and sets made to fit what its endpoints use: unused chains and sets go,
    the sets new chains refer to are computed (those already there are kept)."""
    used = patched.used_chains()
    policies = {c: p for c, p in patched.policies.items() if c in used}
    wanted_sets = _referenced_sets(policies)
    address_sets = {n: m for n, m in previous.address_sets.items() if n in wanted_sets}
    for sid, selector in needs.selectors.items():
        if "s-" + sid not in address_sets:
            address_sets["s-" + sid] = selector_members(world, selector)
    address_sets.update((n, nets) for n, nets in needs.nets.items() if n not in address_sets)
    kept_refs = {n: r for n, r in {**refs, **needs.named_ports}.items() if n in wanted_sets}
    named = {n: m for n, m in previous.named_port_sets.items() if n in kept_refs}
    local_pods = set(local)
    named.update((n, named_port_members(world, r, local_pods)) for n, r in kept_refs.items() if n not in named)
    return HostProgram(address_sets, named, policies, patched.endpoints, patched.node), kept_refs


def _identity_snapshot(world: World) -> tuple[dict[Any, object], ...]:
    """Everything but pods and policies, by object identity (world objects are frozen: a change is a new
    object). Staged policies are left out too: programs never enforce them."""
    return (dict(world.namespaces), dict(world.netsets), dict(world.tiers), dict(world.host_endpoints),
            dict(world.service_accounts), dict(world.nodes), {"felix": world.felix})


def _same_objects(a: tuple[dict[Any, object], ...], b: tuple[dict[Any, object], ...]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(y.get(k) is v for k, v in x.items()) for x, y in zip(a, b))


@dataclass(frozen=True)
class PolicyChange:
    """The enforced policies that changed since the last compile (Felix's active-rules calculation): the
    chains of their old versions, and the selectors their new versions apply to."""

    old_chains: frozenset[str]
    new_selectors: frozenset[str]
    old_selectors: frozenset[str] = frozenset()  # what the old versions applied to

    @classmethod
    def between(cls, before: Mapping[Any, Policy], after: Mapping[Any, Policy],
                keys: Iterable[Any] | None = None) -> PolicyChange:
        """`keys`: the only policies that may differ (the world's change log); None: compare them all."""
        old_chains: set[str] = set()
        new_selectors: set[str] = set()
        old_selectors: set[str] = set()
        for key in before.keys() | after.keys() if keys is None else set(keys):
            old, new = before.get(key), after.get(key)
            if old is new or old == new:
                continue
            if old is not None:
                old_chains |= {policy_chain(old.name, d) for d in Dir}
                old_selectors.add(old.applies_to.id)
            if new is not None:
                new_selectors.add(new.applies_to.id)
        return cls(frozenset(old_chains), frozenset(new_selectors), frozenset(old_selectors))

    def __bool__(self) -> bool:
        return bool(self.old_chains or self.new_selectors)

    def selects(self, world: World, item: Hashable) -> bool:
        return any(world.index.contains(sid, item) for sid in self.new_selectors)

    def pods_touched(self, world: World, matched: Mapping[PodKey, AbstractSet[str]]) -> set[PodKey]:
        """The pods whose endpoints the change can alter: those an old version applied to when they were
        last compiled (`matched`: each pod's selectors then), whose endpoints jump to its chains, and those
        a new version applies to. Found through the label index, not by looking at every endpoint."""
        items = cast(set[tuple[str, str, str]], set().union(*(world.index.members_view(s) for s in self.new_selectors)))
        pods = {(namespace, name) for kind, namespace, name in items if kind == "pod"}
        if self.old_selectors:
            pods.update(k for k, sids in matched.items() if not self.old_selectors.isdisjoint(sids))
        return pods

    def uses_old(self, tiers: tuple[TierProgram, ...]) -> bool:
        return any(c in self.old_chains for t in tiers for c in t.policies)


def _referenced_sets(policies: Mapping[str, PolicyProgram]) -> set[str]:
    names: set[str] = set()
    for policy in policies.values():
        for rule in policy.rules:
            for side in (rule.source, rule.destination):
                names.update(n for n in (side.nets, side.not_nets, side.members, side.not_members,
                                         side.named_ports, side.not_named_ports) if n is not None)
    return names


def _patch_policies(world: World, previous: HostProgram, local: Mapping[PodKey, str], node: str,
                    refs: Mapping[str, NamedPortRef], change: PolicyChange, touched_pods: AbstractSet[PodKey]
                    ) -> tuple[HostProgram, dict[str, NamedPortRef]]:
    """`previous` after a policy change: only the endpoints that used an old version of a changed policy or
    that a new version selects (`touched_pods`, `PolicyChange.pods_touched`) are resolved again; the
    changed chains are compiled again, chains and sets no endpoint needs any more are dropped, and only new
    sets are computed."""
    from policy_dataplane.dataplane.compile_node import node_program
    from policy_dataplane.policy.hostpath import fabric_endpoint
    from policy_dataplane.policy.world import hep_item

    needs = _Needs()
    old = change.old_chains
    policies = {c: p for c, p in previous.policies.items() if c not in old} if old else dict(previous.policies)
    endpoints = dict(previous.endpoints)
    touched = False
    for key in sorted(k for k in touched_pods if k in local):  # sorted: the same program text every time
        ifname = local[key]
        pod = world.pods.get(key)
        if pod is None or ifname not in previous.endpoints:
            continue  # unknown pods get no endpoint, whatever the policies
        tiers = {d: tier_programs(resolve(world, pod, DIRECTIONS[d]), d, policies, needs) for d in Dir}
        endpoints[ifname] = EndpointProgram(str(pod), ifname, tiers[Dir.INGRESS], tiers[Dir.EGRESS])
        touched = True
    node_policy = previous.node
    hep = previous.node.endpoint
    guard = fabric_endpoint(world, node)
    if (hep is not None and change.uses_old(tuple(t for ts in hep.chains().values() for t in ts))) or (
            guard is not None and change.selects(world, hep_item(guard.name))):
        node_policy = node_program(world, node, lambda tiers, d: tier_programs(tiers, d, policies, needs))
        touched = True
    if not touched:
        return previous, dict(refs)  # nothing on this host uses or is selected by what changed
    program = HostProgram(previous.address_sets, previous.named_port_sets, policies, endpoints, node_policy)
    return _fit_sets(world, previous, program, needs, refs, local)


class IncrementalCompiler:
    """Keeps every host's program and recompiles only what a change touches.

    - Pods changed (labels, IPs, pods added or removed): the endpoints of those pods are redone on their
      hosts, and the address sets they join or leave are refreshed wherever they are used.
    - Enforced policies changed (Felix's active-rules calculation): only hosts holding an endpoint that used
      an old version, or that a new version selects, are patched (`_patch_policies`); the others keep
      their program object, so the dataplane does not even look at them.
    - Anything else (a namespace, network set, tier, host endpoint, node or Felix configuration): every host
      is compiled again, as at start.

    `compile` always returns what `compile_hosts` would (the unit tests check exactly that on random change
    sequences of pods, labels and policies)."""

    def __init__(self) -> None:
        self.programs: dict[str, HostProgram] = {}
        self._named_refs: dict[str, dict[str, NamedPortRef]] = {}
        self._placement: dict[str, dict[PodKey, str]] = {}
        self._pods: dict[PodKey, object] = {}
        self._policies: dict[Any, Policy] = {}
        self._others: tuple[dict[object, object], ...] = ()
        self._matches: dict[PodKey, set[str]] = {}  # pod -> selectors matching it, as of the last compile
        self._sids: set[str] = set()  # the selectors registered at the last compile
        self._selectors_version = -1  # the label index's selectors_version at the last compile
        self._unsettled: World | None = None  # the world of an incremental compile not settled yet
        # the world last compiled, and where its change logs stood: the next compile looks only at the
        # pods and policies logged since (a different world, or a log that moved on too far: at all of them)
        self._world: World | None = None
        self._pod_seq = 0
        self._policy_seq = 0
        self.last_recompiled: set[str] = set()  # hosts whose program changed in the last compile

    def compile(self, world: World, placement: Mapping[str, Mapping[PodKey, str]], settle: bool = True
                ) -> dict[str, HostProgram]:
        """Every host's program. With `settle=False` the bookkeeping the next compile needs (`settle`) is left
        for the caller to run once the kernel has the programs, before the world changes again."""
        self.settle()  # in case a caller left it (it must settle before the world changes)
        programs = self._compile(world, placement)
        if settle:
            self.settle()
        return programs

    def settle(self) -> None:
        """Pods start matching the selectors policies registered in the last compile (the next pod change's
        `before` must know them, or a set would keep a pod that left it): ~2 ms for a selector over the bank's
        1500 pods, which a new policy's enforcement need not wait for."""
        world, self._unsettled = self._unsettled, None
        if world is not None and world.index.selectors_version != self._selectors_version:
            self._match_new_selectors(world)
            self._sids = set(world.index.selector_ids())
            self._selectors_version = world.index.selectors_version

    def _compile(self, world: World, placement: Mapping[str, Mapping[PodKey, str]]) -> dict[str, HostProgram]:
        wanted = {h: dict(p) for h, p in placement.items()}
        others = _identity_snapshot(world)
        before = self.programs
        pod_keys = world.pod_log.since(self._pod_seq) if world is self._world else None
        policy_keys = world.policy_log.since(self._policy_seq) if world is self._world else None
        if not self._others or not _same_objects(others, self._others):
            programs = {h: self._full(world, h, local) for h, local in wanted.items()}
            self._matches = {k: set(world.index.matches_view(("pod", k[0], k[1]))) for k in world.pods}
        else:
            change = PolicyChange.between(self._policies, world.policies, policy_keys)
            done = self._policies_changed(world, wanted, change) if change else {}
            programs = self._pods_only(world, wanted, done, pod_keys)  # updates self._matches for changed pods
            self._unsettled = world
        if self._unsettled is None:  # compiled from scratch: `_matches` is the index's already
            self._sids = set(world.index.selector_ids())
            self._selectors_version = world.index.selectors_version
        self.last_recompiled = {h for h, p in programs.items() if p is not before.get(h)}
        self.programs, self._placement, self._others = programs, wanted, others
        _follow(self._pods, world.pods, pod_keys)
        _follow(self._policies, world.policies, policy_keys)
        self._world, self._pod_seq, self._policy_seq = world, world.pod_log.end, world.policy_log.end
        return dict(programs)

    def _match_new_selectors(self, world: World) -> None:
        """Selectors a policy registered since the last compile: their pods match them from now on (the next
        pod change's `before` must know it, or a set would keep a pod that left it)."""
        matches = self._matches
        for sid in world.index.selector_ids() - self._sids:
            for kind, namespace, name in cast(set[tuple[str, str, str]], world.index.members_view(sid)):
                if kind == "pod" and (found := matches.get((namespace, name))) is not None:
                    found.add(sid)

    def _policies_changed(self, world: World, wanted: dict[str, dict[PodKey, str]], change: PolicyChange
                          ) -> dict[str, HostProgram]:
        """Patches the hosts a policy change touches; returns those compiled anew (their pods moved). The
        patched ones replace `self.programs` entries, so pod changes in the same compile apply on top."""
        programs = dict(self.programs)
        done: dict[str, HostProgram] = {}
        touched_pods = change.pods_touched(world, self._matches)
        for host, local in wanted.items():
            previous = programs.get(host)
            if previous is None or local != self._placement.get(host):
                done[host] = self._full(world, host, local)
                continue
            patched, refs = _patch_policies(world, previous, local, host, self._named_refs.get(host, {}), change,
                                            touched_pods)
            if patched is not previous:
                programs[host], self._named_refs[host] = patched, refs
        self.programs = programs
        return done

    def _full(self, world: World, host: str, local: Mapping[PodKey, str]) -> HostProgram:
        program, refs = _compile_host(world, local, host)
        self._named_refs[host] = refs
        return program

    def _pods_only(self, world: World, wanted: dict[str, dict[PodKey, str]],
                   done: Mapping[str, HostProgram] | None = None, keys: Iterable[Any] | None = None,
                   ) -> dict[str, HostProgram]:
        """`done`: hosts already brought up to date (by a policy change): kept as they are. `keys`: the only
        pods that may have changed (the world's change log); None: compare them all."""
        done = done or {}
        candidates = world.pods.keys() | self._pods.keys() if keys is None else set(keys)
        changed = {k for k in candidates if world.pods.get(k) is not self._pods.get(k)}
        sids: set[str] = set()
        for key in changed:
            old, new = self._pods.get(key), world.pods.get(key)
            before = self._matches.get(key, set())
            after = set(world.index.matches_view(("pod", key[0], key[1]))) if new is not None else set()
            moved = old is None or new is None or old.ips != new.ips  # type: ignore[attr-defined]
            sids |= (before | after) if moved else (before ^ after)
            if new is None:
                self._matches.pop(key, None)
            else:
                self._matches[key] = after
        programs: dict[str, HostProgram] = {}
        for host, local in wanted.items():
            if host in done:
                programs[host] = done[host]
                continue
            previous = self.programs.get(host)
            placed_before = self._placement.get(host, {})
            moved = set() if local == placed_before else {k for k, _ in set(local.items()) ^ set(placed_before.items())}
            if previous is None or not moved <= changed:
                programs[host] = self._full(world, host, local)
                continue
            if any(k in local or k in placed_before for k in changed):
                previous, self._named_refs[host] = _patch_endpoints(
                    world, previous, placed_before, local, changed, self._named_refs.get(host, {}))
            sets = previous.address_sets
            stale = [name for sid in sids if (name := f"s-{sid}") in sets]
            if stale:
                sets = dict(sets)
                for name in stale:
                    sets[name] = selector_members(world, world.index.selector(name[2:]))
            named = previous.named_port_sets
            if changed and named:
                named = {name: named_port_members(world, ref, set(local))
                         for name, ref in self._named_refs[host].items()}
            programs[host] = previous if sets is previous.address_sets and named is previous.named_port_sets \
                else HostProgram(sets, named, previous.policies, previous.endpoints, previous.node)
        return programs


def _follow(copy: MutableMapping[Any, Any], table: Mapping[Any, Any], keys: Iterable[Any] | None) -> None:
    """Bring `copy` in line with `table`: only at `keys` when those are all that changed."""
    if keys is None:
        copy.clear()
        copy.update(table)
        return
    for key in keys:
        if key in table:
            copy[key] = table[key]
        else:
            copy.pop(key, None)


__all__ = ["IncrementalCompiler", "PolicyChange", "compile_host", "compile_hosts", "compile_policy", "compile_rule", "selector_members", "NamedPortRef"]
