"""External servers (`externals:` in the lab file) added to or removed from a running lab.

An external is a node on the fabric, outside the cluster, with its own ExaBGP speaker that only learns the
pods' routes. Adding one changes the lab spec in the store (validated as a whole, as `lab up` would),
then the kernel: its namespace and veth to the fabric, its filter (externals can carry host endpoints),
its speaker, the new peer on every other speaker (mesh: ExaBGP reloads its configuration on SIGUSR1 and
keeps its other sessions) or on every route reflector (`birdc configure`), and the responder's sockets
for its ports. Removing one undoes that in reverse; a HostEndpoint still naming it refuses the removal.

Node addresses stay where they are: the stored spec pins every external's address when one is added or
removed, so no other node moves (a node moving would break every session with it). The lab's
controller, whose BGP plan is fixed when it starts, is stopped for the change and started again after.
"""

from __future__ import annotations

from typing import Any

from bgp import bird, speaker
from lab import converge, warm
from lab.controller import launcher
from lab.fabric import Fabric
from lab.labfile import LabFileError, LabSpecModel, parse_lab
from lab.plan import plan_node_addresses_from_model
from lab.pod_plans import responder_targets
from lab.runtime import LabRuntime
from topology import responder_ctl
from topology.model import NodePlan


class ExternalError(ValueError):
    """A change of the lab's externals that cannot be made; nothing was changed."""


def pinned_spec(runtime: LabRuntime) -> dict[str, Any]:
    """The stored spec as lab-file data, every external at the address it has now."""
    data = runtime.spec.model_dump(mode="json")
    ips = {n.name: str(n.ip.ip) for n in plan_node_addresses_from_model(runtime.lab, runtime.spec) if n.kind == "external"}
    data["externals"] = [{**e, "ip": ips[e["name"]]} for e in data["externals"]]
    return data


def validated_spec(runtime: LabRuntime, data: dict[str, Any], what: str) -> LabSpecModel:
    """The lab spec with the change, checked as `lab up` checks a lab file; every node that stays keeps its
    address."""
    source = f"lab {runtime.lab} ({what})"
    try:
        model = parse_lab({**data, "apply": []}, source, runtime.paths.run_dir).model  # files were read at `up`
    except LabFileError as exc:
        raise ExternalError(str(exc)) from None
    before = {n.name: n.ip for n in plan_node_addresses_from_model(runtime.lab, runtime.spec)}
    after = {n.name: n.ip for n in plan_node_addresses_from_model(runtime.lab, model)}
    if moved := sorted(name for name, ip in after.items() if name in before and before[name] != ip):
        raise ExternalError(f"{source}: nodes would change address: {', '.join(moved)}")
    return LabSpecModel.model_validate({**data, "apply": runtime.spec.apply})


def add_external(runtime: LabRuntime, external: dict[str, Any]) -> NodePlan:
    """Add an external server (a mapping as under `externals:` in a lab file) to the running lab."""
    if not isinstance(external, dict) or not isinstance(external.get("name"), str):
        raise ExternalError(f"lab {runtime.lab}: an external is a mapping with a name (as under `externals:`)")
    data = pinned_spec(runtime)
    data["externals"].append(external)
    model = validated_spec(runtime, data, f"adding external {external['name']}")
    return _change(runtime, model, added=external["name"])


def remove_external(runtime: LabRuntime, name: str) -> NodePlan:
    """Remove an external server from the running lab."""
    if name not in {e.name for e in runtime.spec.externals}:
        known = ", ".join(e.name for e in runtime.spec.externals) or "none"
        raise ExternalError(f"lab {runtime.lab}: no external named {name!r} (externals: {known})")
    guarding = [f"{k}" for k, doc in runtime.store.objects(kinds=["HostEndpoint"]) if (doc.get("spec") or {}).get("node") == name]
    if guarding:
        raise ExternalError(f"external {name}: HostEndpoint(s) {', '.join(guarding)} name it: delete them first")
    data = pinned_spec(runtime)
    data["externals"] = [e for e in data["externals"] if e["name"] != name]
    return _change(runtime, validated_spec(runtime, data, f"removing external {name}"), removed=name)


def _change(runtime: LabRuntime, model: LabSpecModel, added: str | None = None, removed: str | None = None) -> NodePlan:
    """Store the new spec, then bring the kernel in line. The controller is stopped meanwhile (its BGP plan
    is the old one). A kernel step that fails puts the old spec back and undoes what it can."""
    controller = launcher.running_pid(runtime.paths) is not None
    launcher.stop(runtime.paths)
    try:
        with runtime.exclusive():
            before = runtime.spec
            old_nodes = {n.name: n for n in Fabric(runtime).nodes()}
            _store_spec(runtime, model)
            new_nodes = {n.name: n for n in Fabric(runtime).nodes()}
            try:
                return _carry_out(runtime, old_nodes, added, removed)
            except Exception as exc:
                _store_spec(runtime, before)
                message = f"the change failed ({exc}); the lab spec was rolled back"
                try:
                    _carry_out(runtime, {**old_nodes, **new_nodes}, added=removed, removed=added)
                except Exception as again:
                    message += f", but the kernel could not be brought back in line ({again}): run `lab down` and `lab up`"
                raise ExternalError(message) from None
    finally:
        if controller:
            launcher.start(runtime.paths, launcher.resync_interval(runtime.paths))


def _store_spec(runtime: LabRuntime, model: LabSpecModel) -> None:
    with runtime.store.transaction():
        runtime.store.set_meta("spec", model.model_dump(mode="json"))
    runtime.__dict__.pop("spec", None)  # the cached spec is the old one
    warm.forget(runtime.lab)  # its world's nodes are the old ones


def _carry_out(runtime: LabRuntime, old_nodes: dict[str, NodePlan], added: str | None, removed: str | None) -> NodePlan:
    """The kernel side of a stored change: the added node (namespace, fail-closed filter, speaker), every
    other speaker's or reflector's peers, the responder, the removed node; then the filters."""
    fabric = Fabric(runtime)
    nodes = {n.name: n for n in fabric.nodes()}
    plans = fabric.speaker_plans()
    if added and added in nodes and nodes[added].netns not in fabric.engine.list_owned(runtime.lab):
        fabric.engine.add_nodes(fabric.topology_plan().fabric, [nodes[added]])
        dp = runtime.dataplane()
        try:
            dp.install_base(added)  # fail closed before anything reaches it
            dp.save_state(runtime.dataplane_state)
        finally:
            dp.close()
    if removed:
        speaker.stop_speaker(runtime.paths, removed)
    for reflector in plans.reflectors:
        bird.reconfigure(runtime.paths, reflector)
    for plan in plans.speakers:
        if plan.name != added:
            speaker.reconfigure(runtime.paths, plan)
    if added and speaker.speaker_pid(runtime.paths, added) is None:
        speaker.start_speaker(runtime.paths, plans.speaker(added))
    responder_ctl.start_responder(runtime.paths, responder_targets(runtime))
    if removed and removed in old_nodes:
        fabric.engine.remove_nodes([old_nodes[removed]])
        dp = runtime.dataplane()
        try:
            dp.forget(removed)  # what its filter held went with its namespace
            dp.save_state(runtime.dataplane_state)
        finally:
            dp.close()
    converge.sync(runtime)
    return nodes[added] if added else old_nodes[removed or ""]


__all__ = ["ExternalError", "add_external", "pinned_spec", "remove_external", "validated_spec"]
