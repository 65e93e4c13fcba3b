"""The policy model's world of a running lab: stored documents plus where each pod runs and its address."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from lab.runtime import LabRuntime
from lab.store import ObjectKey, Placement
from policy_dataplane.policy.documents import CONVERTERS, ModelObject
from policy_dataplane.policy.model import HostNode, Pod
from policy_dataplane.policy.world import World


def model_objects(runtime: LabRuntime) -> list[ModelObject]:
    """Every stored document as a model object; pods carry the address and host the lab gave them."""
    placements = {(p.namespace, p.name): p for p in runtime.store.placements()}
    objects = [model_object(key, doc, placements) for key, doc in runtime.store.objects()]
    return [obj for obj in objects if obj is not None]


def model_object(key: ObjectKey, doc: dict[str, Any], placements: Mapping[tuple[str, str], Placement]
                 ) -> ModelObject | None:
    """One stored document as a model object; None for a pod that is not running (yet): no address, and for
    the kinds policy does not read."""
    if (str(doc.get("apiVersion")), str(doc.get("kind"))) not in CONVERTERS:
        return None  # a Service or an ExternalService: no policy object
    obj = _convert(doc, str(key))
    if isinstance(obj, Pod):
        placed = placements.get(obj.key)
        if placed is None:
            return None
        obj = dataclasses.replace(obj, ips=(IPv4Address(placed.ip),), node=placed.host)
    return obj


def _convert(doc: dict[str, Any], where: str) -> ModelObject:
    converter = CONVERTERS[(str(doc["apiVersion"]), str(doc["kind"]))]
    return converter(doc, f"lab store: {where}")


def lab_nodes(runtime: LabRuntime) -> list[HostNode]:
    """The lab's hosts and external servers with their fabric addresses (route reflectors are not nodes
    that policy knows)."""
    from lab.plan import plan_node_addresses_from_model

    return [HostNode(n.name, n.ip.ip, n.kind == "external")
            for n in plan_node_addresses_from_model(runtime.lab, runtime.spec) if n.kind in ("host", "external")]


def world_of(runtime: LabRuntime) -> World:
    world = World.from_objects(model_objects(runtime))
    world.set_nodes(lab_nodes(runtime))
    return world


@dataclass(frozen=True)
class PlannedWorld:
    world: World
    unplaced: tuple[str, ...]  # new pods in the files: no address yet, so not part of a dry run


def planned_world(runtime: LabRuntime, sources: list[tuple[str, str]], delete: bool = False) -> PlannedWorld:
    """The lab's world as it would be with the files applied (or deleted), changing nothing. Raises the
    model's DocumentsInvalid for bad files, as apply would. Existing pods keep their address and host."""
    from policy_dataplane.policy.documents import load_sources, object_key

    current = {object_key(obj): obj for obj in model_objects(runtime)}
    unplaced = []
    for obj in load_sources(sources):
        key = object_key(obj)
        if delete:
            current.pop(key, None)
        elif isinstance(obj, Pod):
            old = current.get(key)
            if old is None:
                unplaced.append(f"{obj.namespace}/{obj.name}")
                continue
            assert isinstance(old, Pod)
            current[key] = dataclasses.replace(obj, ips=old.ips, node=old.node)
        else:
            current[key] = obj
    world = World.from_objects(current.values())
    world.set_nodes(lab_nodes(runtime))
    return PlannedWorld(world, tuple(unplaced))


__all__ = ["world_of", "lab_nodes", "model_objects", "planned_world", "PlannedWorld"]
