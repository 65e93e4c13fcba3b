"""Mininet's own CLI on a running lab: every host, external, reflector, pod and the fabric as a Mininet node.

Each node is a Mininet `Host` whose shell (`mnexec ... bash`, as Mininet starts it) runs inside the lab's
existing namespace (`ip netns exec`), with the lab's interfaces and links registered as Mininet `Intf`
and link objects. Nothing is created or moved: no switch, no veth, no controller, nothing in the root
namespace; leaving the CLI stops only the shells it started (never `net.stop()`, which deletes
interfaces, and never `mn -c`, which kills processes machine-wide). So `dev/web ping prod/db`, `pingall`,
`net`, `dump`, `nodes`, `links` and `xterm`-free commands behave as Mininet users expect.

Debian's mininet is a system package; scripts/bootstrap links it into the lab's virtual environment.
"""

from __future__ import annotations

import cmd
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface
from typing import Any

from topology.mininet_lib import load_mininet


@dataclass(frozen=True)
class CliNode:
    """A lab namespace as the CLI shows it: `name` as users type it, its interfaces and their addresses."""

    name: str
    netns: str
    kind: str  # host, external, reflector, pod, fabric
    addresses: tuple[tuple[str, IPv4Interface | None], ...]  # (ifname, address) in order; the first is default


@dataclass(frozen=True)
class CliLink:
    node1: str
    intf1: str
    node2: str
    intf2: str


def build_net(nodes: Sequence[CliNode], links: Sequence[CliLink]) -> Any:
    """A Mininet object over the lab's namespaces (shells started, nothing else touched)."""
    mininet = load_mininet()

    class LabNode(mininet.node.Host):  # type: ignore[name-defined,misc]
        """A Mininet host living in an existing named namespace."""

        def __init__(self, name: str, netns: str, **params: Any) -> None:
            self.lab_netns = netns
            super().__init__(name, inNamespace=False, **params)

        def _popen(self, argv: list[str], **params: Any) -> subprocess.Popen[bytes]:
            return super()._popen(["ip", "netns", "exec", self.lab_netns, *argv], **params)

    class ExistingLink(mininet.link.Link):  # type: ignore[name-defined,misc]
        """A link between two interfaces the lab made: recorded for `net`/`links`, never created or deleted."""

        def __init__(self, intf1: Any, intf2: Any) -> None:
            self.intf1, self.intf2 = intf1, intf2
            intf1.link = intf2.link = self

        def stop(self) -> None:
            pass

        def delete(self) -> None:
            pass

    def keep_in_place(*_: Any, **__: Any) -> bool:
        return True

    net = mininet.net.Mininet(topo=None, build=False, controller=None, autoSetMacs=False)
    for spec in nodes:
        node = LabNode(spec.name, spec.netns)
        for ifname, address in spec.addresses:
            intf = mininet.link.Intf(ifname, node=node, moveIntfFn=keep_in_place)
            if address is not None:
                intf.ip, intf.prefixLen = str(address.ip), address.network.prefixlen
        # The fabric is the lab's switch: listed by `net`/`dump`, left out of `pingall` (it routes no pods).
        (net.switches if spec.kind == "fabric" else net.hosts).append(node)
        net.nameToNode[spec.name] = node
    for link in links:
        net.links.append(ExistingLink(net[link.node1].intf(link.intf1), net[link.node2].intf(link.intf2)))
    return net


def close_net(net: Any) -> None:
    """Stop the shells this CLI started; interfaces and namespaces stay (deleteIntfs=False)."""
    for node in [*net.hosts, *net.switches]:
        node.stop(deleteIntfs=False)


def run_cli(net: Any, script: str | None = None) -> None:
    """Mininet's CLI, taking node names with '/', '-' and '.' (`dev/web ping prod/db`)."""
    mininet = load_mininet()

    class LabCLI(mininet.cli.CLI):  # type: ignore[name-defined,misc]
        identchars = cmd.IDENTCHARS + "/-."
        prompt = "netpol-lab> "

    LabCLI(net, script=script)
