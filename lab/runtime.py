"""An opened lab: its store, spec and paths (use it with `with`), its machine, and its hosts' filters.

Its pods' addresses live in `lab.addresses`, their topology plans in `lab.pod_plans`.

Everything reads the store (the desired state) first; the kernel is only ever changed through the fabric
(`lab.fabric`) and the dataplane (`lab.warm`). This module imports nothing of the lab above it (apply,
fabric, warm, the commands): they import it.
"""

from __future__ import annotations

import fcntl
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from lab.labfile import LabSpecModel
from lab.machines import holds_shared_nodes, hosts_on, local_machine
from lab.store import ObjectKey, Placement, Store
from lab.stores import open_store, store_exists
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from topology import names


class LabNotUp(RuntimeError):
    pass


P = ParamSpec("P")
R = TypeVar("R")


def one_change_at_a_time(change: Callable[Concatenate["LabRuntime", P], R]) -> Callable[Concatenate["LabRuntime", P], R]:
    """Runs a change of a running lab under `LabRuntime.exclusive()`."""

    @functools.wraps(change)
    def locked(runtime: "LabRuntime", *args: P.args, **kwargs: P.kwargs) -> R:
        with runtime.exclusive():
            return change(runtime, *args, **kwargs)

    return locked


class LabRuntime:
    def __init__(self, lab: str, store: Store | None = None):
        self.lab = names.check_lab_name(lab)
        self.paths = names.LabPaths.for_lab(lab)
        if store is None:
            if not store_exists(self.paths):
                raise LabNotUp(f"no lab named {lab!r} is up (its state {self.paths.database} does not exist)")
            store = open_store(self.paths)
        self.store = store
        self.machine = local_machine(self.paths)  # None: the lab is on one machine, this one owns all of it
        self._await_revision: int | None = None  # a change left to the lab's controller: its revision
        self.handed_over_ns: int | None = None  # when the last change was handed to the controller

    @classmethod
    def open(cls, lab: str) -> "LabRuntime":
        return cls(lab)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One change at a time per lab: another command changing it waits here, so the store, the kernel
        and the saved dataplane state move together (a lock file in the run directory, released on exit
        even if the process dies)."""
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.paths.config_file("changes.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        if self._await_revision is not None:  # the change is committed: wait until the controller programs it
            from lab.controller.launcher import wait_programmed

            revision, self._await_revision = self._await_revision, None
            self.handed_over_ns = time.time_ns()  # the write reaches the controller (`lab policy-latency`)
            wait_programmed(self.paths, revision)

    def await_revision(self, revision: int) -> None:
        """Leave a committed change to the lab's controller: `exclusive()` waits until it is programmed."""
        self._await_revision = revision

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "LabRuntime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # desired state --------------------------------------------------------------------------------
    @cached_property
    def spec(self) -> LabSpecModel:
        return LabSpecModel.model_validate(self.store.get_meta("spec"))

    def host_names(self) -> list[str]:
        """Every host of the lab, on whatever machine."""
        return self.spec.host_names()

    def local_hosts(self) -> list[str]:
        """The hosts this machine programs (all of them unless the lab spans machines)."""
        return hosts_on(self.spec, self.machine)

    def local_externals(self) -> list[str]:
        return [e.name for e in self.spec.externals] if holds_shared_nodes(self.spec, self.machine) else []

    def pod_documents(self) -> list[tuple[ObjectKey, dict[str, Any]]]:
        return self.store.objects(kinds=["Pod"])

    # policy -------------------------------------------------------------------------------------
    @property
    def dataplane_state(self) -> Path:
        return self.paths.config_file("dataplane.state")

    def dataplane(self) -> "Dataplane":
        """The hosts' filters, taking over what earlier commands applied (so changes go as diffs)."""

        dp = Dataplane(self.lab, backend=self.spec.dataplane, host_netns=self.node_netns)
        dp.load_state(self.dataplane_state)
        return dp

    def node_netns(self, node: str) -> str:
        """The namespace of a host or an external server (both carry a filter table: externals are
        standalone hosts that host endpoints can guard)."""
        externals = {e.name for e in self.spec.externals}
        return names.external_netns(self.lab, node) if node in externals else names.host_netns(self.lab, node)

    def placement(
        self, placements: Iterable[Placement] | None = None
    ) -> dict[str, list[tuple[tuple[str, str], str]]]:
        """node -> [((namespace, pod), host-side interface)] of every running pod (from `placements` when the
        caller has read them already); external servers are nodes without pods."""
        out: dict[str, list[tuple[tuple[str, str], str]]] = {h: [] for h in self.local_hosts()}
        out.update({e: [] for e in self.local_externals()})
        for p in self.store.placements() if placements is None else placements:
            # placements and pod documents are written together; other machines program their own hosts
            if p.host in out:
                out[p.host].append(((p.namespace, p.name), names.pod_host_ifname(p.namespace, p.name)))
        return out

    def dataplane_install_base(self) -> None:
        """Fail-closed filters on every host before any pod exists: an unknown pod interface is dropped."""
        dp = self.dataplane()
        try:
            for host in self.local_hosts():
                dp.install_base(host)
            dp.save_state(self.dataplane_state)
        finally:
            dp.close()
