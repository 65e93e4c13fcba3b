"""Carries the planned actions out: the only module of the controller that changes the kernel.

Each action reuses the lab's own building blocks (the topology engine, the speaker, BIRD and responder
control functions, the warm dataplane), so a repair does exactly what `lab up` and `lab apply` do.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab.addresses import ipam_of
from lab.controller import state as st
from lab.fabric import Fabric
from lab.pod_plans import pod_plans, responder_targets
from topology import batch, netns, processes, responder_ctl
from topology.names import LabPaths, host_netns, responder_pods_file

if TYPE_CHECKING:
    from bgp.sessions import BgpPlan
    from lab.controller.observe import HostReader
    from lab.runtime import LabRuntime
    from policy_dataplane.dataplane.lab_dataplane import Dataplane


@dataclass
class Memory:
    """What the controller remembers between passes: the process table and what it wrote to each filter."""

    table: dict[str, st.ProcessRecord] = field(default_factory=dict)
    filters: dict[str, st.FilterRecord] = field(default_factory=dict)
    programmed_revision: int = -1
    last_repair: dict[str, str] = field(default_factory=dict)  # host (or "" for the lab) -> last repair


def exit_status(pid: int | None) -> str:
    """How a process we saw before ended: its status when it was our child, else only that it is gone."""
    if pid is None:
        return "never started"
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return f"pid {pid} gone"
    if done == 0:
        return f"pid {pid} stopped answering"
    if os.WIFSIGNALED(status):
        return f"pid {pid} killed by signal {os.WTERMSIG(status)}"
    return f"pid {pid} exited with {os.WEXITSTATUS(status)}"


class Executor:
    def __init__(self, runtime: LabRuntime, bgp: BgpPlan, reader: HostReader, memory: Memory) -> None:
        self.runtime = runtime
        self.paths: LabPaths = runtime.paths
        self.bgp = bgp
        self.reader = reader
        self.memory = memory
        self.state_unsaved = False

    def run(self, action: st.Action) -> str:
        """Carry one action out; returns the host it concerned ("" for the lab)."""
        if isinstance(action, st.RemoveStrayPods):
            self._reload_responder()  # its sockets would keep the namespaces alive
            netns.run_ip_batch(batch.netns_delete(action.netns), force=True)
            return ""
        if isinstance(action, st.RecreatePods):
            return self._recreate(action.keys)
        if isinstance(action, st.Announce):
            from bgp import speaker

            wanted = ipam_of(self.runtime).announcements(action.node) if self.bgp.speaker(action.node).announces \
                else frozenset()
            speaker.set_announcements(self.paths, action.node, wanted)
            return action.node
        if isinstance(action, st.ReloadResponder):
            self._reload_responder()
            return ""
        if isinstance(action, st.SyncPolicy):
            self.sync_policy()
            return ""
        if isinstance(action, st.SyncServices):
            self._sync_services()
            return ""
        if isinstance(action, st.ReprogramHost):
            self._reprogram(action.host)
            return action.host
        if isinstance(action, st.RestartProcess):
            return self._restart(action.name)
        raise TypeError(f"unknown action {action!r}")

    # filters ------------------------------------------------------------------------------------------
    def dataplane(self) -> Dataplane:
        from lab import warm

        dp = warm.dataplane_of(self.runtime.lab)
        if dp is None:
            self.sync_policy()
            dp = warm.dataplane_of(self.runtime.lab)
            assert dp is not None
        return dp

    def sync_policy(self) -> None:
        from lab import warm

        revision = self.runtime.store.revision
        report = warm.sync(self.runtime, sole_writer=True, save_state=False)  # saved after the waiters' answer
        if report.changed_hosts:
            # Until it is saved again, the file describes filters the kernel no longer holds (also when a
            # command wrote it since this controller's last write). Without it, a command that takes the change
            # lock meanwhile replaces whole tables instead of sending a diff made against the wrong base.
            # (Unlinked after the sync: the first one takes over from the file.)
            self.runtime.dataplane_state.unlink(missing_ok=True)
            self.state_unsaved = True
        services_written = self._sync_services()
        for host, result in report.hosts.items():
            record = self.memory.filters.get(host)
            if result.mode != "none" or host in services_written:
                self._remember_filter(host, revision)
            elif record is not None:  # nothing to write: the table holds this revision if it holds the last
                self.memory.filters[host] = st.FilterRecord(record.fingerprint, revision)
        self.memory.programmed_revision = revision

    def save_state(self) -> None:
        """What the filters hold, for a restarted controller: saved before the generations are recorded, so
        a controller killed in between finds generations it did not record and replaces those tables."""
        from lab import warm

        if self.state_unsaved:
            # Even over a state a command wrote since (holding the change lock): that command changed the
            # tables, the fingerprints show it as drift, and the repair puts back what this saves.
            warm.save(self.runtime)
            self.state_unsaved = False

    def _sync_services(self) -> set[str]:
        """Services' DNAT, DNS records, gateways and resolv.conf (after the filters, as `lab apply` did);
        returns the hosts whose ruleset it wrote. Their generation moved: the caller records it anew, so
        the next pass does not take the controller's own write for drift."""
        from lab import services

        written = set(services.sync(self.runtime))
        for host in written:
            if host in self.memory.filters:
                self._remember_filter(host, self.memory.filters[host].revision)
        return written

    def _reprogram(self, host: str) -> None:
        dp = self.dataplane()
        program = dp.programs.get(host)
        if program is None:
            self.sync_policy()
            program = dp.programs[host]
        dp.host(host).resync(program)
        dp.save_state(self.runtime.dataplane_state)
        from lab import services

        services.forget_hosts(self.runtime, [host])  # same ruleset: a flush took the Services table too
        services.sync(self.runtime)
        self._remember_filter(host, self.memory.programmed_revision)

    def _remember_filter(self, host: str, revision: int) -> None:
        fingerprint = self.reader.fingerprint(host_netns(self.runtime.lab, host))
        if fingerprint is not None:
            self.memory.filters[host] = st.FilterRecord(fingerprint, revision)

    # pods ---------------------------------------------------------------------------------------------
    def _recreate(self, keys: tuple[str, ...]) -> str:
        fabric = Fabric(self.runtime)
        plans = pod_plans(self.runtime, only=set(keys))
        gone = frozenset(p.netns for p in plans)
        self._reload_responder(without=gone)  # release the old namespaces before their veths are removed
        fabric.remove_pods(plans)
        fabric.add_pods(plans)
        self._reload_responder()
        hosts = sorted({p.host for p in plans})
        return hosts[0] if len(hosts) == 1 else ""

    def _reload_responder(self, without: frozenset[str] = frozenset()) -> None:
        targets = [t for t in responder_targets(self.runtime) if t.netns not in without]
        responder_ctl.write_responder_pods(responder_pods_file(self.paths), targets)
        if responder_ctl.running_pid(self.paths) is not None:
            responder_ctl.reload_responder(self.paths)

    # processes ----------------------------------------------------------------------------------------
    def _restart(self, name: str) -> str:
        from bgp import bird, speaker

        record = self.memory.table[name]
        last_exit = exit_status(record.pid)
        pid: int | None = None
        try:
            if record.kind == "speaker":
                speaker.stop_speaker(self.paths, record.node)  # its agent, if it lingers
                # not waited for (ExaBGP takes a second or more to start): the plan gives its agent time
                pid = speaker.launch_speaker(self.paths, self.bgp.speaker(record.node))
            elif record.kind == "reflector":
                bird.stop_reflector(self.paths, record.node)
                plan = next(r for r in self.bgp.reflectors if r.name == record.node)
                pid = bird.start_reflector(self.paths, plan)
            else:
                responder_ctl.stop_responder(self.paths)
                pid = responder_ctl.start_responder(self.paths, responder_targets(self.runtime))
        finally:
            st.record_restart(record, pid, time.monotonic(), last_exit)
            record.argv = tuple(processes.argv(pid)) if pid is not None else record.argv
        return record.node


__all__ = ["Executor", "Memory", "exit_status"]
