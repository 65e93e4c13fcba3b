"""What the controller compares: the desired state, the observed state and the process table (pure data).

Actions are what `plan` decides and `act` carries out; each carries the reason it is needed, which becomes
the event recorded when it is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Restart backoff: the first restart is immediate, later ones in a row wait 0.5 s, 1 s, 2 s ... up to 30 s.
# A process that stayed up STABLE_AFTER seconds starts the count again (runit restarts every second).
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0


@dataclass(frozen=True)
class ProcessWant:
    """A process the lab needs: a host's ExaBGP speaker (with its route agent), a BIRD reflector, the responder."""

    name: str  # "speaker node1", "reflector rr1", "responder"
    kind: str  # "speaker" | "reflector" | "responder"
    node: str  # the node it serves ("" for the responder)
    netns: str


@dataclass(frozen=True)
class PodWant:
    key: str  # "ns/name"
    host: str
    netns: str
    host_netns: str
    host_ifname: str
    ip: str


@dataclass(frozen=True)
class Desired:
    revision: int  # the store revision this was read at
    hosts: tuple[str, ...]
    pods: dict[str, PodWant]
    processes: tuple[ProcessWant, ...]
    announcements: dict[str, tuple[str, ...]]  # speaker node -> prefixes it must announce
    responder_targets: frozenset[str]  # netns names the responder must hold sockets in


@dataclass(frozen=True)
class ProcessSeen:
    pid: int | None  # None: not running
    helper_alive: bool = True  # a speaker's route agent (ExaBGP respawns it; dead for long means restart)
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostSeen:
    exists: bool
    fingerprint: str | None  # nftables generation id, or a hash of iptables-save; None when unreadable
    pod_links: frozenset[str] = frozenset()  # host-side pod interfaces that are up
    pod_routes: frozenset[str] = frozenset()  # /32 destinations routed to a pod interface
    destinations: frozenset[str] = frozenset()  # every route's destination (BGP's routes among them)


@dataclass(frozen=True)
class FilterRecord:
    """What the controller last wrote to a host: the fingerprint right after its write, and the revision."""

    fingerprint: str
    revision: int


@dataclass
class ProcessRecord:
    """One row of the process table (the lab's runit): `lab status` renders it."""

    name: str
    kind: str
    node: str
    netns: str
    argv: tuple[str, ...] = ()
    pid: int | None = None
    restarts: int = 0
    failures_in_a_row: int = 0
    started_at: float = 0.0
    next_attempt: float = 0.0
    last_exit: str = ""
    helper_dead_since: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "node": self.node, "netns": self.netns,
                "argv": list(self.argv), "pid": self.pid, "restarts": self.restarts, "last_exit": self.last_exit}


@dataclass(frozen=True)
class Observed:
    now: float
    pod_netns: frozenset[str]  # the lab's pod namespaces that exist
    hosts: dict[str, HostSeen]
    processes: dict[str, ProcessSeen]
    announcements: dict[str, tuple[str, ...]]  # what each speaker's announcement file says
    responder_targets: frozenset[str] | None  # None: no pods file
    table: dict[str, ProcessRecord] = field(default_factory=dict)
    filters: dict[str, FilterRecord] = field(default_factory=dict)
    programmed_revision: int = -1  # the store revision the warm world was last synced to
    services_configured: bool = False  # the services process (DNS, egress gateways) has something to serve
    services_pid: int | None = None  # and runs as this pid (None: it does not run)


# --- actions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    reason: str


@dataclass(frozen=True)
class RemoveStrayPods(Action):
    netns: tuple[str, ...]


@dataclass(frozen=True)
class RecreatePods(Action):
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Announce(Action):
    node: str


@dataclass(frozen=True)
class ReloadResponder(Action):
    pass


@dataclass(frozen=True)
class SyncPolicy(Action):
    """The store moved on: bring every host's filter to it (incrementally, from the warm world)."""


@dataclass(frozen=True)
class SyncServices(Action):
    """Services' DNAT tables, DNS records, gateways and resolv.conf files brought in line with the store
    (the services process started again when it is gone)."""


@dataclass(frozen=True)
class ReprogramHost(Action):
    """A host's filter is not what the controller wrote (drift), or unknown (at start): replace its table in
    one transaction, and write its Services table again (the same ruleset, so the same drift)."""

    host: str
    drift: bool = True


@dataclass(frozen=True)
class RestartProcess(Action):
    name: str


def backoff(failures_in_a_row: int) -> float:
    """Seconds to wait before the next restart after `failures_in_a_row` quick deaths."""
    if failures_in_a_row <= 0:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures_in_a_row - 1))


def record_restart(record: ProcessRecord, pid: int | None, now: float, last_exit: str) -> None:
    """Update a process table row after a restart attempt (pid None: it failed to start)."""
    quick = record.started_at and now - record.started_at < STABLE_AFTER
    record.failures_in_a_row = record.failures_in_a_row + 1 if quick or pid is None else 0
    record.restarts += 1
    record.last_exit = last_exit
    record.pid = pid
    record.started_at = now
    record.helper_dead_since = None
    record.next_attempt = now + backoff(record.failures_in_a_row + (1 if pid is None else 0))
