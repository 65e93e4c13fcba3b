"""`lab up` and `lab down` as named stages, each usable alone, with progress for long work.

up:   record desired state → allocate addresses → fabric and nodes → fail-closed filters → pods →
      BGP speakers (and reflectors) → responders → policies → wait until every host has every route.
down: end the lab's processes by pid → remove its namespaces → remove its files.
A failing `up` tears down whatever it had made, so nothing is left half-built.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab import converge, warm
from lab.addresses import assign_addresses, fixed_ip_of
from lab.apply import apply_files
from lab.controller import filter_records, launcher
from lab.fabric import Fabric
from lab.labfile import LabSpec, NamespaceSpec
from lab.machines import MachineError, check_machine, local_machine, machine_is_up, remember_machine
from lab.objects import namespace_document, pod_document
from lab.plan import place_pods
from lab.pod_plans import pod_plans, responder_targets
from lab.runtime import LabNotUp, LabRuntime
from lab.store import ObjectKey, Store, StoreError
from lab.stores import create_store, destroy_store, locator_file, store_exists
from topology import batch, names, processes, vxlan
from topology import netns as namespaces
from topology.engine import Engine, Progress
from topology.engines import engine_names, get_engine
from topology.names import LabPaths


class LabError(RuntimeError):
    """A lab-level failure a user can act on (already up, not up, a stage failed)."""


@dataclass
class StageTimer:
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], object]) -> None:
        started = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - started


def _noop(done: int, total: int, what: str) -> None:
    pass


def _engines() -> list[Engine]:
    """Every registered engine: a lab's namespaces are found (and removed) whichever engine made them."""
    return [get_engine(name) for name in engine_names()]


def is_up(lab: str) -> bool:
    paths = LabPaths.for_lab(lab)
    return store_exists(paths) or any(engine.list_owned(lab) for engine in _engines())


def _apply_policy_files(runtime: LabRuntime, files: list[Path]) -> None:
    if files:
        apply_files(runtime, files)


def up(spec: LabSpec, progress: Progress = _noop, wait: bool = True, timeout: float = 60.0,
       controller: bool = True, resync: float = 1.0, machine: str | None = None) -> dict[str, float]:
    """Brings a lab up; returns the seconds each stage took. On failure removes everything it made.
    With `controller`, the lab's controller starts last and keeps it so (resyncing every `resync` s).
    A lab spanning machines comes up one `machine` at a time: the first records the desired state in the
    shared store, each builds and programs only its own part (see `lab/machines.py`)."""
    lab = spec.name
    try:
        machine = check_machine(spec.model, machine, spec.source)
    except MachineError as exc:
        raise LabError(str(exc)) from None
    paths = LabPaths.for_lab(lab)
    if is_up(lab) if machine is None else machine_is_up(paths, machine):
        raise LabError(f"{spec.source}: lab: field name: a lab named {lab!r} is already up (run `lab down` first)")
    warm.forget(lab)  # what this process kept of an earlier lab of that name
    timer = StageTimer()
    try:
        if machine is not None:
            remember_machine(paths, machine)
        joined = _recorded_elsewhere(spec, paths) if machine is not None else None
        recorded = joined is None
        runtime = joined or _record(spec, paths)
        if recorded:
            timer.run("addresses", lambda: _allocate(runtime))
        timer.run("containers ready", lambda: Fabric(runtime).engine.prepare_pods(pod_plans(runtime)))
        timer.run("fabric", lambda: Fabric(runtime).build_nodes(progress))
        timer.run("filters", lambda: runtime.dataplane_install_base())
        timer.run("pods", lambda: Fabric(runtime).add_pods(pod_plans(runtime), progress))
        timer.run("shaping", lambda: Fabric(runtime).shape_links())
        timer.run("bgp", lambda: Fabric(runtime).start_bgp())
        timer.run("responders", lambda: Fabric(runtime).start_responder(responder_targets(runtime)))
        if recorded:
            timer.run("policies", lambda: _apply_policy_files(runtime, spec.policy_files()))
        timer.run("filters synced", lambda: converge.sync(runtime))
        if wait:
            timer.run("converged", lambda: Fabric(runtime).wait_converged(timeout, progress))
        runtime.store.set_meta("status", "up")
        runtime.store.set_meta("resync_interval", resync)
        if controller:  # it adopts the tables just written instead of replacing them
            filter_records.hand_over(paths, runtime.local_hosts(), runtime.spec.dataplane, runtime.store.revision)
        runtime.store.close()
        if controller:
            timer.run("controller", lambda: launcher.start(paths, resync))
    except BaseException:
        down(lab, force=True, machine=machine)
        raise
    return timer.timings


def _recorded_elsewhere(spec: LabSpec, paths: LabPaths) -> LabRuntime | None:
    """A machine joining a lab another machine recorded in the shared store finds it there (None: it is
    not), and it must be the same lab."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    store = create_store(paths, spec.model.store.backend, spec.model.store.endpoints)
    recorded = store.get_meta("spec")
    if recorded is None:
        store.close()
        return None
    if recorded != spec.model.model_dump(mode="json"):
        store.close()
        raise LabError(f"{spec.source}: lab {spec.name!r} is already recorded in the store with another lab "
                       "file: every machine must bring it up from the same file")
    return LabRuntime(spec.name, store=store)


def _record(spec: LabSpec, paths: LabPaths) -> LabRuntime:
    """Stage 1: the desired state goes into the store before anything is built."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    store = create_store(paths, spec.model.store.backend, spec.model.store.endpoints)
    placements = place_pods(spec.host_names(), spec.pod_instances())
    with store.transaction():
        store.set_meta("spec", spec.model.model_dump(mode="json"))
        store.set_meta("source", spec.source)
        store.set_meta("status", "starting")
        for ns in spec.model.namespaces:
            store.put_object(ObjectKey("Namespace", "", ns.name), namespace_document(ns))
        if "default" not in {ns.name for ns in spec.model.namespaces}:
            store.put_object(ObjectKey("Namespace", "", "default"), namespace_document(NamespaceSpec(name="default")))
        if spec.model.clusterDNS is not None:
            _record_cluster_dns(store, spec)
        for placed in placements:
            doc = pod_document(placed.spec, placed.name, placed.host, spec.pod_runtime(placed.spec),
                               spec.pod_image(placed.spec))
            store.put_object(ObjectKey("Pod", placed.namespace, placed.name), doc)
    return LabRuntime(spec.name, store=store)


def _record_cluster_dns(store: Store, spec: LabSpec) -> None:
    from lab.objects import kube_dns_service_document
    from services.dns import DNS_NAMESPACE, DNS_SERVICE
    from services.endpoints import dns_service_ip

    if DNS_NAMESPACE not in {ns.name for ns in spec.model.namespaces}:
        store.put_object(ObjectKey("Namespace", "", DNS_NAMESPACE), namespace_document(NamespaceSpec(name=DNS_NAMESPACE)))
    ip = str(dns_service_ip(spec.model.serviceCIDR))
    store.put_object(ObjectKey("Service", DNS_NAMESPACE, DNS_SERVICE), kube_dns_service_document(ip))


def _allocate(runtime: LabRuntime) -> None:
    """Stage 2: an address for every pod (fixed ones first, so automatic ones never take them)."""
    pods = runtime.pod_documents()
    ordered = sorted(pods, key=lambda item: fixed_ip_of(item[1]) is None)
    with runtime.store.transaction():
        assign_addresses(runtime, [
            (key.namespace, key.name, doc["spec"]["nodeName"], fixed_ip_of(doc)) for key, doc in ordered
        ])


def down(lab: str, force: bool = False, machine: str | None = None) -> list[str]:
    """Removes every process, namespace and file of a lab. Without force, the lab must be known.
    On a machine of a lab spanning machines (given, or remembered by `lab up --machine`), only that
    machine's part goes; the shared store stays for the others."""
    names.check_lab_name(lab)
    warm.forget(lab)
    paths = LabPaths.for_lab(lab)
    machine = machine or local_machine(paths)
    if machine is not None:
        return _down_machine(paths, machine, force)
    engines = _engines()
    owned = [netns for engine in engines for netns in engine.list_owned(lab)]
    if not force and not store_exists(paths) and not owned:
        raise LabError(f"no lab named {lab!r} is up (use --force to clean up after a crash)")
    launcher.stop(paths)  # first: it would restart what is stopped next
    for engine in engines:
        engine.stop_pods(lab)  # Docker pods by label, before the pid sweep below would signal their processes
    pids = set(processes.pids_from_files(paths.run_dir, marker=f"{names.PREFIX}-{lab}")) if paths.run_dir.exists() else set()
    for netns in owned:
        pids.update(processes.pids_in_netns(netns))
    processes.terminate(sorted(pids))
    removed = [netns for engine in engines for netns in engine.destroy(lab)]
    from topology.docker_engine import stop_daemon_if_idle

    stop_daemon_if_idle()
    shutil.rmtree(paths.run_dir, ignore_errors=True)
    from lab.services import remove_files

    remove_files(lab)
    destroy_store(paths)
    return removed



def _down_machine(paths: LabPaths, machine: str, force: bool) -> list[str]:
    """One machine's processes, namespaces and run files; the shared store and the others' part stay."""
    owned = set(namespaces.list_netns(names.lab_netns_prefix(paths.lab)))
    try:
        with LabRuntime(paths.lab) as runtime:
            runtime.machine = machine
            mine = {n.netns for n in Fabric(runtime).local_nodes()} | {p.netns for p in pod_plans(runtime)}
            mine |= set(vxlan.machine_namespaces(paths.lab, machine))
    except (LabNotUp, StoreError):
        if not force:
            raise LabError(f"lab {paths.lab!r}: machine {machine!r} cannot tell its part without the store "
                           "(use --force to remove every namespace of the lab on this machine)") from None
        mine = owned  # on a real machine every namespace of the lab is this machine's
    launcher.stop(paths)
    pids = set(processes.pids_from_files(paths.run_dir, marker=f"{names.PREFIX}-{paths.lab}")) if paths.run_dir.exists() else set()
    removed = sorted(owned & mine)
    for name in removed:
        pids.update(processes.pids_in_netns(name))
    processes.terminate(sorted(pids))
    namespaces.run_ip_batch(batch.netns_delete(removed), force=True)
    wire = names.underlay_netns(paths.lab)
    if wire in owned and not any(n.startswith(names.machine_netns(paths.lab, "")) for n in namespaces.list_netns(
            names.lab_netns_prefix(paths.lab))):  # the last machine on this box takes the underlay wire
        namespaces.run_ip_batch(batch.netns_delete([wire]), force=True)
        removed.append(wire)
    shutil.rmtree(paths.run_dir, ignore_errors=True)
    locator_file(paths).unlink(missing_ok=True)
    return removed
