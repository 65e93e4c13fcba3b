"""The oracle for host endpoints: which nodes a flow crosses, and what their host endpoints say about it.

In the lab every node (a host, or an external server: a standalone host) has one fabric interface, `eth0`,
and hosts also have their pods' `cali…` veths. A host endpoint guards a node's fabric interface when it
names it, or is `*`, or expects the node's address (`fabric_endpoint`). A flow crosses at most two nodes:
the one it leaves (a node's own process, or a pod's host forwarding it out) and the one it reaches (a
node's process, or a pod's host forwarding it in). At each, as Calico documents it:

* traffic to the node's own processes (`host_ingress`): failsafe inbound ports pass first; then doNotTrack
  policy (an Allow lets the packet through untracked, so its reply must be allowed by a doNotTrack egress
  rule too; a Deny drops), then preDNAT policy (an Allow skips normal policy), then normal policy, whose
  end denies unless the endpoint has the default-allow profile (a host endpoint with no policy denies);
* traffic from the node's processes (`host_egress`): failsafe outbound ports, doNotTrack policy, normal
  policy, the same way;
* traffic forwarded in to a local pod (`forward_ingress`): preDNAT policy, then applyOnForward policy;
  with no applyOnForward policy selecting the endpoint in that direction, it passes;
* traffic a local pod sends out (`forward_egress`): applyOnForward policy, passing when there is none.

Two paths never meet a host endpoint, as in Felix: a host's traffic to its own pods leaves on a workload
interface (only the pods' ingress policy applies: the lab keeps that, where Felix does not police host ->
local workload at all), and a pod's traffic to its own host arrives on a workload interface: after the
pod's egress policy, FelixConfiguration's DefaultEndpointToHostAction decides (Accept, Drop, or Return to
the host's own INPUT rules, which in the lab accept).
doNotTrack policy is applied to the node's own traffic only (forwarded flows it could only break: their
replies find no conntrack state).
"""

from __future__ import annotations

from dataclasses import replace

from policy_dataplane.policy.model import ALL_INTERFACES, Direction, FailsafePort, HostEndpoint, HostNode, Pod
from policy_dataplane.policy.resolve import Phase, resolve
from policy_dataplane.policy.tiers import DirectionTrace, Flow, Outcome, Reason, Side, walk_tiers
from policy_dataplane.policy.world import World

FABRIC_IFNAME = "eth0"  # every node's one interface on the fabric (topology.model.NODE_IFNAME)
TCP = 6


def fabric_endpoint(world: World, node: str) -> HostEndpoint | None:
    """The host endpoint guarding a node's fabric interface: one naming it, else `*`, else one that
    expects the node's address (ties: the first by name)."""
    mine = sorted((h for h in world.host_endpoints.values() if h.node == node), key=lambda h: h.name)
    for wanted in (FABRIC_IFNAME, ALL_INTERFACES):
        for hep in mine:
            if hep.interface_name == wanted:
                return hep
    known = world.node(node)
    address = known.ip if known else None
    return next((h for h in mine if h.interface_name is None and address in h.expected_ips), None)


def node_of(endpoint: object) -> str | None:
    if isinstance(endpoint, Pod):
        return endpoint.node
    if isinstance(endpoint, HostNode):
        return endpoint.name
    return None


def host_hops(world: World, flow: Flow, src: Side, dst: Side, staged_view: bool) -> tuple[DirectionTrace, ...]:
    """The host endpoint verdicts on the flow's way, in path order (empty when no host endpoint is met)."""

    s, d = flow.src, flow.dst
    src_node, dst_node = node_of(s), node_of(d)
    same = src_node is not None and src_node == dst_node
    hops: list[DirectionTrace] = []
    if same:  # a host and its own pod: no host endpoint on the way
        if isinstance(s, Pod) and isinstance(d, HostNode):
            action = world.felix.endpoint_to_host_action
            hops.append(DirectionTrace(Direction.INGRESS, str(d), action != "Drop", Reason.ENDPOINT_TO_HOST,
                                       notes=(f"DefaultEndpointToHostAction is {action}",)))
        return tuple(hops)
    view = _View(world, flow, src, dst, staged_view)
    if src_node is not None and (hep := fabric_endpoint(world, src_node)) is not None:
        hops.append(view.host_egress(hep) if isinstance(s, HostNode) else view.forward(hep, Direction.EGRESS))
    if dst_node is not None and (hep := fabric_endpoint(world, dst_node)) is not None:
        hops.append(view.host_ingress(hep) if isinstance(d, HostNode) else view.forward(hep, Direction.INGRESS))
    return tuple(hops)


class _View:
    """One flow seen by host endpoints (and its reply, for untracked policy)."""

    def __init__(self, world: World, flow: Flow, src: Side, dst: Side, staged_view: bool) -> None:
        self.world, self.flow, self.src, self.dst, self.staged = world, flow, src, dst, staged_view

    def _tiers(self, hep: HostEndpoint, direction: Direction, phase: Phase, reply: bool = False,
               decides: bool = True) -> DirectionTrace:
        """Walk the endpoint's tiers of one phase. `decides`: tier defaults and the profile apply (normal and
        applyOnForward policy); otherwise only rules decide (doNotTrack, preDNAT: NO_DECISION at the end)."""
        tiers = resolve(self.world, hep, direction, staged_view=self.staged, phase=phase)
        flow, src, dst = self.flow, self.src, self.dst
        if reply:  # the reply: addresses and ports swapped (the client's port is not known)
            flow = replace(flow, src=flow.dst, dst=flow.src, port=None, src_port=flow.port)
            src, dst = Side(self.dst.endpoint, self.dst.ip, self.dst.port), Side(self.src.endpoint, self.src.ip, None)
        end = (Outcome.ALLOW if hep.default_allow else Outcome.DENY) if decides else Outcome.NO_MATCH
        return walk_tiers(self.world, flow, direction, tiers, src, dst, str(hep), end=end, tier_default=decides)

    def _failsafe(self, hep: HostEndpoint, ports: tuple[FailsafePort, ...], direction: Direction,
                  ) -> DirectionTrace | None:
        remote = self.src.ip if direction is Direction.INGRESS else self.dst.ip
        for fs in ports:
            if fs.protocol == self.flow.protocol and fs.port == self.flow.port and (
                    fs.net is None or (remote is not None and remote in fs.net)):
                return DirectionTrace(direction, str(hep), True, Reason.FAILSAFE, notes=(f"failsafe {fs}",))
        return None

    def _untracked(self, hep: HostEndpoint, direction: Direction) -> DirectionTrace | None:
        """None when no doNotTrack rule decides; else the verdict, reply included."""
        first = self._tiers(hep, direction, Phase.UNTRACKED, decides=False)
        if first.reason is Reason.NO_DECISION:
            return None
        if not first.allowed:
            return first
        back = Direction.INGRESS if direction is Direction.EGRESS else Direction.EGRESS
        reply = self._tiers(hep, back, Phase.UNTRACKED, reply=True, decides=False)
        if reply.allowed and reply.reason is not Reason.NO_DECISION:
            return _with(first, reason=Reason.UNTRACKED_ALLOWED)
        if self.flow.protocol != TCP and reply.reason is Reason.NO_DECISION:
            # a UDP (or other) reply without conntrack state is a new flow for the normal policy
            normal = self._tiers(hep, back, Phase.NORMAL, reply=True)
            if normal.allowed:
                return _with(first, reason=Reason.UNTRACKED_ALLOWED, notes=first.notes + (
                    "the reply, untracked, is allowed by normal policy",))
        return _with(first, allowed=False, reason=Reason.UNTRACKED_REPLY_DENIED)

    def host_ingress(self, hep: HostEndpoint) -> DirectionTrace:
        failsafe = self._failsafe(hep, self.world.felix.failsafe_inbound, Direction.INGRESS)
        if failsafe is not None:
            return failsafe
        untracked = self._untracked(hep, Direction.INGRESS)
        if untracked is not None:
            return untracked
        pre = self._pre_dnat(hep)
        return pre if pre is not None else self._normal(hep, Direction.INGRESS)

    def host_egress(self, hep: HostEndpoint) -> DirectionTrace:
        failsafe = self._failsafe(hep, self.world.felix.failsafe_outbound, Direction.EGRESS)
        if failsafe is not None:
            return failsafe
        untracked = self._untracked(hep, Direction.EGRESS)
        if untracked is not None:
            return untracked
        return self._normal(hep, Direction.EGRESS)

    def _pre_dnat(self, hep: HostEndpoint) -> DirectionTrace | None:
        """None when no preDNAT rule decides (new flows arriving through the endpoint, before any DNAT)."""
        view = self._before_dnat()
        pre = view._tiers(hep, Direction.INGRESS, Phase.PRE_DNAT, decides=False)
        if pre.reason is Reason.NO_DECISION:
            return None
        return _with(pre, reason=Reason.PRE_DNAT_ALLOWED) if pre.allowed else pre

    def _before_dnat(self) -> _View:
        """The flow as it arrives at the destination's node, before that node's Service DNAT. Only an external
        server sends a ClusterIP over the fabric: pods and hosts have the Service translated on their own
        host (prerouting, output), so the packet arrives already addressed to the backend."""
        original = self.flow.pre_dnat_dst
        if original is None or not (isinstance(self.flow.src, HostNode) and self.flow.src.external):
            return self
        ip, port = original
        flow = replace(self.flow, port=port, dst_ip=ip)
        return _View(self.world, flow, self.src, Side(self.dst.endpoint, ip, port), self.staged)

    def _normal(self, hep: HostEndpoint, direction: Direction) -> DirectionTrace:
        trace = self._tiers(hep, direction, Phase.NORMAL)
        if trace.allowed and trace.reason in (Reason.PASSED_THROUGH, Reason.NOT_ISOLATED):
            return _with(trace, reason=Reason.PROFILE_ALLOWS)
        return trace

    def forward(self, hep: HostEndpoint, direction: Direction) -> DirectionTrace:
        if direction is Direction.INGRESS and (pre := self._pre_dnat(hep)) is not None:
            return pre
        if not resolve(self.world, hep, direction, staged_view=self.staged, phase=Phase.FORWARD):
            return DirectionTrace(direction, str(hep), True, Reason.NOT_FORWARD_POLICED)
        return self._tiers(hep, direction, Phase.FORWARD)


def _with(trace: DirectionTrace, **changes: object) -> DirectionTrace:
    return replace(trace, **changes)  # type: ignore[arg-type]


__all__ = ["FABRIC_IFNAME", "fabric_endpoint", "host_hops", "node_of"]
