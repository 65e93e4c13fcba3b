"""A warm policy controller per process: the lab's world and compiled filters, kept between syncs.

Every command is a fresh process that rebuilds the world from the store and compiles every host (about a
second at 1500 services). A process that changes the lab again and again (`lab policy-latency`, scenarios,
benchmarks) keeps what it built, as Felix keeps its in-memory state: the next sync converts only the
objects the store wrote since, updates the world's label index incrementally and lets the dataplane patch
only what they touch. When anything else may have changed the lab in between (a revision it did not
follow), it starts again from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.runtime import LabRuntime
from lab.store import ObjectKey, Placement
from lab.stored_world import lab_nodes, model_object
from policy_dataplane.dataplane.lab_dataplane import Dataplane, SyncReport
from policy_dataplane.policy.documents import object_key
from policy_dataplane.policy.world import World


@dataclass
class WarmPolicy:
    revision: int  # the store revision the world and the filters reflect
    database: Path
    world: World
    dataplane: Dataplane
    model_keys: dict[ObjectKey, tuple[str, Any]] = field(default_factory=dict)  # store key -> world key
    placements: dict[tuple[str, str], Placement] = field(default_factory=dict)
    placements_version: int = -1  # the store's placements_version when `placements` was read
    store_keys: set[ObjectKey] = field(default_factory=set)  # every object in the store at `revision`
    pods_by_host: dict[str, Any] | None = None  # runtime.placement() of `placements`, while they hold


_WARM: dict[str, WarmPolicy] = {}


def forget(lab: str) -> None:
    """Drop what this process keeps for the lab (its filters are about to be changed another way)."""
    warm = _WARM.pop(lab, None)
    if warm is not None:
        warm.dataplane.close()


def sync(runtime: LabRuntime, sole_writer: bool = False, save_state: bool = True) -> SyncReport:
    """Brings every host's filters in line with the store, from the warm state when it can follow.
    `sole_writer` (the lab's controller): nobody else programs the filters, so any number of revisions
    since the warm one can be followed. Without `save_state` the caller saves what was applied later
    (`save`), off the path of the change."""
    warm = _WARM.pop(runtime.lab, None)
    if warm is not None and warm.database != runtime.paths.database:  # another lab of that name
        warm.dataplane.close()
        warm = None
    try:
        if warm is None or not _catch_up(runtime, warm, sole_writer):
            if warm is not None:
                warm.dataplane.close()
            warm = _from_scratch(runtime)
        if warm.pods_by_host is None:  # as dicts: converted once, not at every sync
            warm.pods_by_host = {h: dict(p) for h, p in runtime.placement(warm.placements.values()).items()}
        report = warm.dataplane.sync(warm.world, warm.pods_by_host)
        if save_state:
            warm.dataplane.save_state(runtime.dataplane_state)
        warm.revision = runtime.store.revision
    except BaseException:
        if warm is not None:
            warm.dataplane.close()
        raise
    _WARM[runtime.lab] = warm
    return report


def _from_scratch(runtime: LabRuntime) -> WarmPolicy:
    version = runtime.store.placements_version
    placements = {(p.namespace, p.name): p for p in runtime.store.placements()}
    keys, objects = {}, []
    for key, doc in runtime.store.objects():
        obj = model_object(key, doc, placements)
        if obj is not None:
            keys[key] = object_key(obj)
            objects.append(obj)
    world = World.from_objects(objects)
    world.set_nodes(lab_nodes(runtime))
    return WarmPolicy(runtime.store.revision, runtime.paths.database, world, runtime.dataplane(), keys, placements,
                      version, runtime.store.object_keys())


def _catch_up(runtime: LabRuntime, warm: WarmPolicy, sole_writer: bool = False) -> bool:
    """Apply what the store wrote since the warm revision; False when that cannot be followed safely."""

    revision = runtime.store.revision
    if revision == warm.revision:
        return True
    if revision != warm.revision + 1 and not sole_writer:  # someone else changed the lab too: their kernel state is unknown here
        return False
    version = runtime.store.placements_version
    if version == warm.placements_version:
        placements = warm.placements
    else:
        placements = {(p.namespace, p.name): p for p in runtime.store.placements()}
    docs = dict(runtime.store.objects_since(warm.revision))
    if placements != warm.placements:
        moved = {k for k in placements.keys() | warm.placements.keys() if placements.get(k) != warm.placements.get(k)}
        for namespace, name in moved:  # a pod placed or removed without its document changing
            key = ObjectKey("Pod", namespace, name)
            if key not in docs and (doc := runtime.store.get_object(key)) is not None:
                docs[key] = doc
        warm.pods_by_host = None
    new_keys = docs.keys() - warm.store_keys
    deleted = runtime.store.deleted_since(warm.revision)
    if deleted is not None:  # the store's log of deletions: no key needs reading (4500 at bank scale)
        warm.store_keys -= deleted  # in place: a copy of 4500 keys per write is ~0.4 ms
        warm.store_keys |= new_keys
        gone = [k for k in deleted if k in warm.model_keys]
    elif runtime.store.object_count() == len(warm.store_keys) + len(new_keys):  # no deletion
        warm.store_keys |= new_keys
        gone = []
    else:
        warm.store_keys = set(runtime.store.object_keys())
        gone = [k for k in warm.model_keys if k not in warm.store_keys]
    apply_documents(warm, docs.items(), placements, gone)
    warm.placements, warm.placements_version = placements, version
    return True


def apply_documents(warm: WarmPolicy, docs: Iterable[tuple[ObjectKey, dict[str, Any]]],
                    placements: Mapping[tuple[str, str], Placement], gone: Iterable[ObjectKey] = ()) -> None:
    """Stored documents (and the keys of deleted ones) into the warm world; a pod without an address is
    taken out of it."""
    gone = list(gone)
    changed = []
    for key, doc in docs:
        obj = model_object(key, doc, placements)
        if obj is None:  # a pod without an address any more
            gone.append(key)
            continue
        warm.model_keys[key] = object_key(obj)
        changed.append(obj)
    warm.world.delete([warm.model_keys.pop(k) for k in gone if k in warm.model_keys])
    warm.world.apply(changed)


def save(runtime: LabRuntime) -> None:
    """Save what the warm dataplane applied (see `sync(save_state=False)`)."""
    warm = _WARM.get(runtime.lab)
    if warm is not None:
        warm.dataplane.save_state(runtime.dataplane_state)


def dataplane_of(lab: str) -> Dataplane | None:
    """The dataplane this process keeps warm for the lab (None before its first sync)."""
    warm = _WARM.get(lab)
    return warm.dataplane if warm is not None else None


def state_of(lab: str) -> WarmPolicy | None:
    """Everything this process keeps warm for the lab (None before its first sync)."""
    return _WARM.get(lab)


def world_of(lab: str) -> World | None:
    """The world this process keeps warm for the lab (None before its first sync)."""
    warm = _WARM.get(lab)
    return warm.world if warm is not None else None


__all__ = ["WarmPolicy", "apply_documents", "sync", "save", "forget", "dataplane_of", "state_of", "world_of"]
