"""The world: namespaces, pods, network sets, tiers and policies, with a label index kept in step.

`World.apply(objects)` adds or replaces objects, `World.delete(objects_or_keys)` removes them; both keep
the label index current incrementally (a pod relabel touches only the selectors it can affect; a
namespace or service account relabel touches its pods). Items in the index are pods (`("pod", ns, name)`),
network sets (`("set", ns or "", name)`) and host endpoints (`("hep", "", name)`), carrying the labels of
`model.selector_labels` / `model.netset_labels` / `model.hostendpoint_labels`.

The lab's nodes (hosts and external servers, `set_nodes`) are not documents: the lab tells the world which
exist and their addresses, so the oracle can follow a flow through a node (see hostpath.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from policy_dataplane.policy.changelog import ChangeLog
from policy_dataplane.policy.documents import ModelObject, object_key
from policy_dataplane.policy.labelindex import ItemKey, LabelIndex, MembershipChange, memberships_from_scratch
from policy_dataplane.policy.model import (
    DEFAULT_FELIX_CONFIG,
    DEFAULT_TIER,
    DEFAULT_TIER_OBJECT,
    FelixConfig,
    HostEndpoint,
    HostNode,
    IPAddress,
    Labels,
    Namespace,
    NetworkSet,
    Pod,
    Policy,
    PolicyKey,
    Selector,
    ServiceAccount,
    Tier,
    hostendpoint_labels,
    implicit_namespace,
    netset_labels,
    selector_labels,
)


def pod_item(key: tuple[str, str]) -> ItemKey:
    return ("pod", key[0], key[1])


def netset_item(key: tuple[str | None, str]) -> ItemKey:
    return ("set", key[0] or "", key[1])


def hep_item(name: str) -> ItemKey:
    return ("hep", "", name)


class World:
    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self.netsets: dict[tuple[str | None, str], NetworkSet] = {}
        self.tiers: dict[str, Tier] = {DEFAULT_TIER: DEFAULT_TIER_OBJECT}
        self.host_endpoints: dict[str, HostEndpoint] = {}
        self.service_accounts: dict[tuple[str, str], ServiceAccount] = {}
        self.felix: FelixConfig = DEFAULT_FELIX_CONFIG
        self.nodes: dict[str, HostNode] = {}  # the lab's hosts and external servers (set_nodes)
        self.policies: dict[PolicyKey, Policy] = {}  # enforced
        self.staged: dict[PolicyKey, Policy] = {}  # staged (never enforced)
        self.index = LabelIndex()
        self.revision = 0
        self._pods_by_ns: dict[str, set[tuple[str, str]]] = {}
        self._pods_by_ip: dict[IPAddress, tuple[str, str]] = {}
        # applies_to selector id -> policies using it (enforced and staged)
        self._policies_by_selector: dict[str, set[tuple[bool, PolicyKey]]] = {}
        # the pods and enforced policies added, replaced or removed, in order (the incremental compiler's)
        self.pod_log = ChangeLog()
        self.policy_log = ChangeLog()
        # What a reader derives from one item's object (the compiler: a pod's addresses as networks), dropped
        # whenever that object is replaced or goes; labels alone changing leave it.
        self.item_memo: dict[ItemKey, Any] = {}

    @classmethod
    def from_objects(cls, objects: Iterable[ModelObject]) -> World:
        world = cls()
        world.apply(objects)
        return world

    # --- lookups ---------------------------------------------------------------------------------------

    def namespace(self, name: str) -> Namespace:
        return self.namespaces.get(name) or implicit_namespace(name)

    def tier(self, name: str) -> Tier:
        """A declared tier; an undeclared one sorts last and denies by default (noted in traces)."""
        return self.tiers.get(name) or Tier(name, None)

    def set_nodes(self, nodes: Iterable[HostNode]) -> None:
        self.nodes = {n.name: n for n in nodes}

    def node(self, name: str) -> HostNode | None:
        """A node the lab declared, or else one a host endpoint names (its first expected IP as address:
        how `lab explain -f` knows nodes from files alone)."""
        if name in self.nodes:
            return self.nodes[name]
        hep = next((h for h in sorted(self.host_endpoints.values(), key=lambda h: h.name)
                    if h.node == name and h.expected_ips), None)
        return HostNode(name, hep.expected_ips[0]) if hep else None

    def node_at(self, ip: IPAddress) -> HostNode | None:
        found = next((n for n in self.nodes.values() if n.ip == ip), None)
        if found is None:
            hep = next((h for h in self.host_endpoints.values() if ip in h.expected_ips and h.node not in self.nodes),
                       None)
            found = HostNode(hep.node, ip) if hep else None
        return found

    def heps_containing(self, ip: IPAddress) -> list[HostEndpoint]:
        return [h for h in self.host_endpoints.values() if ip in h.expected_ips]

    def _labels_of(self, pod: Pod) -> Labels:
        return selector_labels(pod, self.namespace(pod.namespace),
                               self.service_accounts.get((pod.namespace, pod.service_account)))

    def pod_at(self, ip: IPAddress) -> Pod | None:
        key = self._pods_by_ip.get(ip)
        return self.pods.get(key) if key else None

    def netsets_containing(self, ip: IPAddress) -> list[NetworkSet]:
        return [s for s in self.netsets.values() if s.contains(ip)]

    def policies_applying(self, pod: Pod | HostEndpoint, *, staged: bool = False) -> list[Policy]:
        """Policies whose selector selects this pod or host endpoint (enforced ones; or the staged ones)."""
        out = []
        item = hep_item(pod.name) if isinstance(pod, HostEndpoint) else pod_item(pod.key)
        for sid in self.index.matches(item):
            for is_staged, key in self._policies_by_selector.get(sid, ()):
                if is_staged == staged:
                    out.append((self.staged if staged else self.policies)[key])
        return out

    def selector_matches_item(self, selector: Selector, item: ItemKey) -> bool:
        """Index lookup when the selector is registered; direct evaluation otherwise."""
        if self.index.has_selector(selector.id):
            return self.index.contains(selector.id, item)
        labels = self.index.labels(item)
        return labels is not None and selector.matches(labels)

    # --- changes ---------------------------------------------------------------------------------------

    def apply(self, objects: Iterable[ModelObject]) -> list[MembershipChange]:
        """Add or replace each object (namespaces and service accounts first, so pods see their labels once).
        Returns the membership changes of items whose labels changed (a policy's selectors' are not listed)."""
        ordered = sorted(objects, key=lambda o: 0 if isinstance(o, (Namespace, ServiceAccount)) else 1)
        changes: list[MembershipChange] = []
        for obj in ordered:
            changes += self._apply_one(obj)
        self.revision += 1
        return changes

    def delete(self, objects: Iterable[ModelObject | tuple[str, Any]]) -> list[MembershipChange]:
        """Remove objects, given as model objects or as `documents.object_key` tuples."""
        changes: list[MembershipChange] = []
        for obj in objects:
            key = obj if isinstance(obj, tuple) else object_key(obj)
            changes += self._delete_key(key)
        self.revision += 1
        return changes

    def set_pod_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> list[MembershipChange]:
        pod = self.pods[(namespace, name)]
        return self.apply([replace(pod, labels=Labels(labels))])

    def label_pod(self, namespace: str, name: str, **changes: str | None) -> list[MembershipChange]:
        """Set (or with None remove) some labels of a pod: the `kubectl label` of the model."""
        pod = self.pods[(namespace, name)]
        return self.apply([replace(pod, labels=pod.labels.updated(changes))])

    def _apply_one(self, obj: ModelObject) -> list[MembershipChange]:
        if isinstance(obj, Namespace):
            self.namespaces[obj.name] = obj
            changes: list[MembershipChange] = []
            for key in self._pods_by_ns.get(obj.name, ()):
                changes += self.index.set_item(pod_item(key), self._labels_of(self.pods[key]))
            return changes
        if isinstance(obj, ServiceAccount):
            self.service_accounts[obj.key] = obj
            return self._relabel_service_account(obj.key)
        if isinstance(obj, HostEndpoint):
            self.host_endpoints[obj.name] = obj
            self.item_memo.pop(hep_item(obj.name), None)
            return self.index.set_item(hep_item(obj.name), hostendpoint_labels(obj))
        if isinstance(obj, FelixConfig):
            self.felix = obj
            return []
        if isinstance(obj, Pod):
            old = self.pods.get(obj.key)
            if old is not None:
                for ip in old.ips:
                    self._pods_by_ip.pop(ip, None)
            self.pods[obj.key] = obj
            self.pod_log.add(obj.key)
            self._pods_by_ns.setdefault(obj.namespace, set()).add(obj.key)
            for ip in obj.ips:
                self._pods_by_ip[ip] = obj.key
            self.item_memo.pop(pod_item(obj.key), None)
            return self.index.set_item(pod_item(obj.key), self._labels_of(obj))
        if isinstance(obj, NetworkSet):
            self.netsets[obj.key] = obj
            self.item_memo.pop(netset_item(obj.key), None)
            return self.index.set_item(netset_item(obj.key), netset_labels(obj))
        if isinstance(obj, Tier):
            self.tiers[obj.name] = obj
            return []
        return self._apply_policy(obj)

    def _relabel_service_account(self, key: tuple[str, str]) -> list[MembershipChange]:
        changes: list[MembershipChange] = []
        for pod_key in self._pods_by_ns.get(key[0], ()):
            pod = self.pods[pod_key]
            if pod.service_account == key[1]:
                changes += self.index.set_item(pod_item(pod_key), self._labels_of(pod))
        return changes

    def _apply_policy(self, policy: Policy) -> list[MembershipChange]:
        """No item changes its labels: the selectors' new members are not listed (see LabelIndex)."""
        table = self.staged if policy.staged else self.policies
        # Register the new selectors before releasing the old ones, so shared sets are not churned.
        for sel in policy.selectors():
            self.index.add_selector(sel)
        self._policies_by_selector.setdefault(policy.applies_to.id, set()).add((policy.staged is not None, policy.key))
        old = table.get(policy.key)
        table[policy.key] = policy
        if table is self.policies:
            self.policy_log.add(policy.key)
        if old is not None:
            self._release_policy(old, still_used_selector=policy.applies_to.id)
        return []

    def _release_policy(self, policy: Policy, still_used_selector: str | None = None) -> None:
        if policy.applies_to.id != still_used_selector:
            users = self._policies_by_selector.get(policy.applies_to.id, set())
            users.discard((policy.staged is not None, policy.key))
            if not users:
                self._policies_by_selector.pop(policy.applies_to.id, None)
        for sel in policy.selectors():
            self.index.remove_selector(sel)

    def _delete_key(self, key: tuple[str, Any]) -> list[MembershipChange]:
        kind, ident = key
        if kind == "Namespace":
            self.namespaces.pop(ident, None)
            changes: list[MembershipChange] = []
            for pod_key in self._pods_by_ns.get(ident, ()):
                changes += self.index.set_item(pod_item(pod_key), self._labels_of(self.pods[pod_key]))
            return changes
        if kind == "ServiceAccount":
            if self.service_accounts.pop(ident, None) is None:
                return []
            return self._relabel_service_account(ident)
        if kind == "HostEndpoint":
            if self.host_endpoints.pop(ident, None) is None:
                return []
            self.item_memo.pop(hep_item(ident), None)
            return self.index.remove_item(hep_item(ident))
        if kind == "FelixConfiguration":
            self.felix = DEFAULT_FELIX_CONFIG
            return []
        if kind == "Pod":
            pod = self.pods.pop(ident, None)
            if pod is None:
                return []
            self.pod_log.add(ident)
            self._pods_by_ns[pod.namespace].discard(pod.key)
            for ip in pod.ips:
                if self._pods_by_ip.get(ip) == pod.key:
                    del self._pods_by_ip[ip]
            self.item_memo.pop(pod_item(pod.key), None)
            return self.index.remove_item(pod_item(pod.key))
        if kind == "NetworkSet":
            if self.netsets.pop(ident, None) is None:
                return []
            self.item_memo.pop(netset_item(ident), None)
            return self.index.remove_item(netset_item(ident))
        if kind == "Tier":
            if ident != DEFAULT_TIER:
                self.tiers.pop(ident, None)
            return []
        table = self.staged if kind == "StagedPolicy" else self.policies
        policy = table.pop(ident, None)
        if policy is not None and table is self.policies:
            self.policy_log.add(ident)
        if policy is not None:
            self._release_policy(policy)
        return []

    # --- for tests and tools ---------------------------------------------------------------------------

    def all_policies(self) -> list[Policy]:
        return list(self.policies.values()) + list(self.staged.values())

    def memberships_from_scratch(self) -> dict[str, frozenset[ItemKey]]:
        """Every registered selector's members recomputed the slow, obvious way (compare with the index)."""
        selectors = {s.id: s for p in self.all_policies() for s in p.selectors()}
        return memberships_from_scratch(self.index_items(), selectors.values())

    def index_items(self) -> dict[ItemKey, Labels]:
        """Every item with the labels it should carry, computed afresh from the objects."""
        items: dict[ItemKey, Labels] = {}
        for pod in self.pods.values():
            items[pod_item(pod.key)] = self._labels_of(pod)
        for hep in self.host_endpoints.values():
            items[hep_item(hep.name)] = hostendpoint_labels(hep)
        for netset in self.netsets.values():
            items[netset_item(netset.key)] = netset_labels(netset)
        return items


__all__ = ["World", "pod_item", "netset_item", "hep_item"]
