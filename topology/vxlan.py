"""Fabrics of several machines joined by the kernel's VXLAN (see docs/ARCHITECTURE.md, Several machines).

Each machine has its own fabric bridge in its own namespace. A machine's network stack is stood for by a
"machine" namespace holding its underlay address (on `uplink`); on one box the machines' uplinks meet on an
underlay bridge (its own namespace). The VXLAN device is created inside the machine namespace, so its UDP
socket and underlay route stay there, then moved into the fabric namespace and made a port of the bridge:
frames cross between fabrics only as VXLAN packets over the underlay. Head-end replication: one all-zero
FDB entry per peer sends broadcast (ARP) and unknown frames to every other machine; replies are learnt.

VXLAN adds 50 bytes: with the underlay at 1500 the tunnel carries 1450, and a bridge forwards at its
smallest port's MTU, silently dropping larger frames, so every node's fabric link is set to 1450 too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from topology import names, netns
from topology.kernel_text import token
from topology.model import FabricPlan, NodePlan

VNI = 4242
VXLAN_PORT = 4789  # IANA's; Linux would pick 8472 when none is given
VXLAN_MTU = 1450
UPLINK = "uplink"
UNDERLAY_BRIDGE = "underlay"


@dataclass(frozen=True)
class MachinePlan:
    lab: str
    name: str
    underlay: IPv4Interface
    device: str | None = None  # a real machine's interface; None: simulated on one box

    @property
    def netns(self) -> str:
        return names.machine_netns(self.lab, self.name)


def _ip(namespace: str, lines: Iterable[str]) -> None:
    netns.run_in(namespace, ["ip", "-batch", "-"], stdin="\n".join(lines) + "\n")


def _ensure_netns(name: str) -> None:
    if not netns.exists(name):
        netns.run_ip_batch([f"netns add {token(name)}"], force=True)  # another machine may add it meanwhile
    if not netns.exists(name):
        raise netns.NetnsError(f"namespace {name} could not be created")


def uplink_on_device(machine: MachinePlan) -> list[str]:
    """`ip -batch` lines (run in the machine's own namespace, where the device is) making `uplink` a macvlan
    of the machine's real interface, created directly inside the machine namespace: nothing is added to
    the namespace the device lives in, and the device itself is never moved."""
    assert machine.device is not None
    return [f"link add {UPLINK} link {token(machine.device)} netns {token(machine.netns)} type macvlan mode bridge"]


def plug_underlay(machine: MachinePlan) -> None:
    """The machine namespace with its address on `uplink`: a macvlan of the machine's real interface, or
    (simulated machines) a veth into the one-box underlay bridge."""
    if machine.device is not None:  # not exercised on the test box: it would send packets out of a real NIC
        _ensure_netns(machine.netns)
        netns.run_ip_batch(uplink_on_device(machine))
        _ip(machine.netns, ["link set lo up", f"address add {machine.underlay} dev {UPLINK}", f"link set {UPLINK} up"])
        return
    wire = names.underlay_netns(machine.lab)
    _ensure_netns(wire)
    if not netns.run_in(wire, ["ip", "-o", "link", "show", "dev", UNDERLAY_BRIDGE], check=False):
        # the first machine up adds the bridge; the others find it
        _ip(wire, [f"link add {UNDERLAY_BRIDGE} type bridge stp_state 0 forward_delay 0",
                   f"link set {UNDERLAY_BRIDGE} up"])
    _ensure_netns(machine.netns)
    port = names.underlay_ifname(machine.name)
    _ip(wire, [f"link add {token(port)} type veth peer name {UPLINK} netns {token(machine.netns)}",
               f"link set {token(port)} master {UNDERLAY_BRIDGE} up"])
    _ip(machine.netns, ["link set lo up", f"address add {machine.underlay} dev {UPLINK}", f"link set {UPLINK} up"])


def join_fabric(machine: MachinePlan, fabric: FabricPlan, peers: Sequence[IPv4Address],
                nodes: Sequence[NodePlan]) -> None:
    """The VXLAN port of this machine's fabric bridge, sending to every peer machine's underlay address,
    and every link of the fabric at the tunnel's MTU."""
    vx = names.vxlan_ifname()
    _ip(machine.netns, [
        f"link add {token(vx)} type vxlan id {VNI} local {machine.underlay.ip} dstport {VXLAN_PORT} dev {UPLINK}",
        f"link set {token(vx)} netns {token(fabric.netns)}",
    ])
    lines = [f"link set {token(vx)} mtu {VXLAN_MTU} master {token(fabric.bridge)} up"]
    lines += [f"link set {token(n.fabric_port)} mtu {VXLAN_MTU}" for n in nodes]
    _ip(fabric.netns, lines)
    for peer in peers:
        netns.run_in(fabric.netns, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", vx, "dst", str(peer)])
    for node in nodes:
        _ip(node.netns, [f"link set eth0 mtu {VXLAN_MTU}"])


def machine_namespaces(lab: str, machine: str) -> list[str]:
    """What a machine adds beside its nodes and pods (the underlay wire is shared and goes last)."""
    return [names.fabric_netns(lab, machine), names.machine_netns(lab, machine)]
