"""Warm reads: what `lab get` and `lab explain` ask the controller, answered from what it holds in memory.

The controller keeps the store's documents and placements as of the revision it last read (`StoreView`,
refreshed by revision: only what the store wrote since is read again) and the policy world it programs from.
So a read costs a lookup, not a rebuild of the world from SQLite, and it answers with the world that is
enforced. Pure functions of that state; the socket thread calls them under the controller's world lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.store import ObjectKey, Placement, Store
    from policy_dataplane.policy.world import World


@dataclass
class StoreView:
    """The store's objects and placements at `revision`, kept in memory and followed revision by revision."""

    revision: int = -1
    docs: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    placements: dict[tuple[str, str], Placement] = field(default_factory=dict)

    def follow(self, store: Store) -> StoreView:
        """A view at the store's current revision (self when it did not move; a new object otherwise, so a
        reader holding the old one keeps a consistent picture)."""
        revision = store.revision
        if revision == self.revision:
            return self
        if self.revision < 0 or revision < self.revision:
            docs = dict(store.objects())
        else:
            written = dict(store.objects_since(self.revision))
            deleted = store.deleted_since(self.revision)
            if deleted is None:
                present = store.object_keys()
                docs = {k: d for k, d in self.docs.items() if k in present}
            else:
                docs = dict(self.docs)
                for key in deleted:
                    docs.pop(key, None)
            docs.update(written)
        placements = {(p.namespace, p.name): p for p in store.placements()}
        return StoreView(revision, docs, placements)


def get_answer(view: StoreView, kinds: list[str]) -> dict[str, Any]:
    """The stored documents of these kinds, in the store's order (kind, namespace, name), with placements."""
    wanted = set(kinds)
    keys = sorted((k for k in view.docs if k.kind in wanted), key=lambda k: (k.kind, k.namespace, k.name))
    objects = []
    for key in keys:
        placed = view.placements.get((key.namespace, key.name)) if key.kind == "Pod" else None
        objects.append({"kind": key.kind, "namespace": key.namespace, "name": key.name, "doc": view.docs[key],
                        "host": placed.host if placed else "", "ip": placed.ip if placed else ""})
    return {"ok": True, "revision": view.revision, "objects": objects}


def explain_verdict(world: World, nodes: dict[str, str], request: dict[str, Any]) -> Any:
    """`lab explain`'s verdict on `world` (the trace), or the message saying why there is none (an unknown
    pod, a bad protocol). `nodes`: a node's name -> its fabric address (`tasks` means the external)."""
    from policy_dataplane.policy.evaluate import verdict

    src, dst = str(request.get("src")), str(request.get("dst"))
    try:
        return verdict(world, nodes.get(src, src), nodes.get(dst, dst), request.get("protocol", "TCP"),
                       request.get("port"), request.get("icmp_type"), request.get("icmp_code"),
                       src_ip=request.get("src_ip"), dst_ip=request.get("dst_ip"))
    except (KeyError, ValueError) as exc:
        return str(exc.args[0]) if exc.args else str(exc)


__all__ = ["StoreView", "explain_verdict", "get_answer"]
