"""Every name the lab gives to something outside Python: namespaces, interfaces, files, processes.

All of them carry the lab prefix so that `lab down --force` can find exactly what a lab made, and nothing
else, even when the lab's own state is gone. Pure functions: nothing here touches the system.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

# The prefix of every kernel name and file the lab makes. NETPOL_LAB_PREFIX changes it, so that two test
# runs (or two developers) on one machine never share a namespace name; 2-5 lower-case letters.
PREFIX_ENV = "NETPOL_LAB_PREFIX"
DEFAULT_PREFIX = "npl"


def _prefix_from_environment() -> str:
    prefix = os.environ.get(PREFIX_ENV, DEFAULT_PREFIX)
    if not re.fullmatch(r"[a-z]{2,5}", prefix):
        raise ValueError(f"{PREFIX_ENV}={prefix!r} must be 2-5 lower-case letters")
    return prefix


PREFIX = _prefix_from_environment()
MAX_LAB_NAME = 12
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
IFNAME_MAX = 15
HOST_VETH_PREFIX = "cali"  # Calico's own convention: cali + 11 hex characters of a hash

# Where the lab keeps its files. Tests point these elsewhere with the environment variables.
STATE_ROOT_ENV = "NETPOL_LAB_STATE"
RUN_ROOT_ENV = "NETPOL_LAB_RUN"
DEFAULT_STATE_ROOT = "/var/lib/netpol-lab"
DEFAULT_RUN_ROOT = "/run/netpol-lab"


class NameError_(ValueError):
    """A name that the kernel or the lab's conventions would not accept."""


def check_lab_name(lab: str) -> str:
    if not LAB_NAME_RE.match(lab):
        raise NameError_(
            f"lab name {lab!r} must be 1-{MAX_LAB_NAME} characters, lower-case letters and digits, "
            "starting with a letter"
        )
    return lab


def _digest(*parts: str, length: int) -> str:
    import hashlib  # here: the thin client (lab/thin_client.py) needs only LabPaths, and hashlib costs ~7 ms

    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:length]


def lab_netns_prefix(lab: str) -> str:
    """Every namespace of a lab starts with this (the trailing dash keeps lab `a` apart from lab `ab`)."""
    return f"{PREFIX}-{lab}-"


def fabric_netns(lab: str, machine: str | None = None) -> str:
    """The fabric of a one-machine lab; a lab on several machines has one fabric per machine."""
    return f"{lab_netns_prefix(lab)}fabric" + (f"-{machine}" if machine else "")


def machine_netns(lab: str, machine: str) -> str:
    """Stands for a machine's own network stack: its underlay address and the VXLAN tunnels' sockets."""
    return f"{lab_netns_prefix(lab)}m-{machine}"


def underlay_netns(lab: str) -> str:
    """The wire between simulated machines on one box: a bridge every machine namespace is plugged into."""
    return f"{lab_netns_prefix(lab)}underlay"


def host_netns(lab: str, host: str) -> str:
    return f"{lab_netns_prefix(lab)}h-{host}"


def external_netns(lab: str, external: str) -> str:
    return f"{lab_netns_prefix(lab)}x-{external}"


def route_reflector_netns(lab: str, index: int) -> str:
    return f"{lab_netns_prefix(lab)}rr{index}"


def pod_netns(lab: str, namespace: str, pod: str) -> str:
    """Pod namespaces read `npl-<lab>-p-<namespace>.<pod>`; very long names end in a hash instead."""
    name = f"{lab_netns_prefix(lab)}p-{namespace}.{pod}"
    if len(name) > 200:
        name = f"{lab_netns_prefix(lab)}p-{namespace[:60]}.{pod[:60]}-{_digest(namespace, pod, length=12)}"
    return name


def pod_host_ifname(namespace: str, pod: str) -> str:
    """Host-side veth of a pod: `cali` + 11 hex digits, like Calico (unique within a host namespace)."""
    return HOST_VETH_PREFIX + _digest(namespace, pod, length=IFNAME_MAX - len(HOST_VETH_PREFIX))


def fabric_port_ifname(kind: str, name: str) -> str:
    """Fabric-side veth of a host, external or reflector, inside the fabric namespace (≤ 15 chars)."""
    return f"{PREFIX}{kind[0]}{_digest(kind, name, length=IFNAME_MAX - len(PREFIX) - 1)}"


class LabPaths(NamedTuple):  # not a dataclass: `dataclasses` costs the thin client ~15 ms to import
    """Files of one lab: durable state (the desired-state database) and run-time files (pids, configs)."""

    lab: str
    state_root: Path
    run_root: Path

    @classmethod
    def for_lab(cls, lab: str) -> "LabPaths":
        check_lab_name(lab)
        return cls(
            lab=lab,
            state_root=Path(os.environ.get(STATE_ROOT_ENV, DEFAULT_STATE_ROOT)),
            run_root=Path(os.environ.get(RUN_ROOT_ENV, DEFAULT_RUN_ROOT)),
        )

    @property
    def database(self) -> Path:
        return self.state_root / f"{PREFIX}-{self.lab}.db"

    @property
    def run_dir(self) -> Path:
        return self.run_root / f"{PREFIX}-{self.lab}"

    def pid_file(self, process: str) -> Path:
        return self.run_dir / f"{process}.pid"

    def config_file(self, name: str) -> Path:
        return self.run_dir / name


# Added by the topology engine: names inside the fabric namespace and the responder's files.
RESPONDER_PROCESS = "responder"


def fabric_bridge_ifname() -> str:
    """The Linux bridge of the fabric namespace (alone in its namespace, so one fixed name)."""
    return f"{PREFIX}-fabric"


def vxlan_ifname() -> str:
    """The VXLAN port of a fabric bridge (one per fabric namespace, so one fixed name)."""
    return f"{PREFIX}-vxlan"


def underlay_ifname(machine: str) -> str:
    """A machine's underlay veth: `uplink` inside its machine namespace, this name on the underlay bridge."""
    return f"{PREFIX}u-{machine}"


def responder_pid_file(paths: LabPaths) -> Path:
    return paths.pid_file(RESPONDER_PROCESS)


def responder_pods_file(paths: LabPaths) -> Path:
    return paths.config_file(f"{RESPONDER_PROCESS}-pods.json")


def responder_status_file(paths: LabPaths) -> Path:
    """Written by the responder after each (re)load: lets callers wait for sockets, not for time."""
    return paths.config_file(f"{RESPONDER_PROCESS}-status.json")
