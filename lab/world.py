"""The policy model's world of a running lab: stored documents plus where each pod runs and its address."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from typing import Any

from lab.apply import key_of
from lab.runtime import LabRuntime
from policy_dataplane.documents import CONVERTERS, ModelObject
from policy_dataplane.model import Pod
from policy_dataplane.world import World


def model_objects(runtime: LabRuntime) -> list[ModelObject]:
    """Every stored document as a model object; pods carry the address and host the lab gave them."""
    placements = {(p.namespace, p.name): p for p in runtime.store.placements()}
    objects: list[ModelObject] = []
    for key, doc in runtime.store.objects():
        obj = _convert(doc, str(key))
        if isinstance(obj, Pod):
            placed = placements.get(obj.key)
            if placed is None:
                continue  # not running (yet): no address, no endpoint
            obj = dataclasses.replace(obj, ips=(IPv4Address(placed.ip),), node=placed.host)
        objects.append(obj)
    return objects


def _convert(doc: dict[str, Any], where: str) -> ModelObject:
    converter = CONVERTERS[(str(doc["apiVersion"]), str(doc["kind"]))]
    return converter(doc, f"lab store: {where}")


def world_of(runtime: LabRuntime) -> World:
    return World.from_objects(model_objects(runtime))


__all__ = ["world_of", "model_objects", "key_of"]
