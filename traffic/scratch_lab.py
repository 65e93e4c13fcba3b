"""A throwaway Calico-plumbed lab for traffic's own tests and benchmark, independent of `topology/`.

Hosts are namespaces joined point-to-point; pods hang off their host like Calico's (pod /32 on eth0, default
via 169.254.1.1 answered by proxy ARP on a `cali…` veth with MAC ee:ee:ee:ee:ee:ee, a /32 route per pod on
the host). Hosts route each other's pod blocks statically, so no BGP is needed. ICMP rate limits are lifted
in every namespace so port-unreachables keep coming at probe rates. Names come from topology.names.

`plan_*` functions are pure (ip -batch lines); `ScratchLab.up()`/`down()` run them.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from topology import names, sysctl
from traffic.model import ProbeEndpoint
from traffic.netns import call_in_netns

GATEWAY = "169.254.1.1"
CALICO_MAC = "ee:ee:ee:ee:ee:ee"
POD_POOL = IPv4Network("10.64.0.0/12")
HOST_BLOCK_PREFIX = 20  # one block per host, up to 4094 pods (no IPAM here: the benchmark needs 750 a host)
UPLINK_POOL = IPv4Network("10.99.0.0/24")


def pod_mac_for(ip: IPv4Address) -> str:
    """A locally administered MAC made from the pod's address (unique within the lab)."""
    return "02:" + ":".join(f"{b:02x}" for b in ip.packed) + ":01"


@dataclass(frozen=True)
class ScratchLab:
    """`pods_per_host[i]` pods on host `h{i+1}`; pods named `ns{j % namespaces}/p{k}`."""

    lab: str
    pods_per_host: tuple[int, ...] = (3, 1)
    namespaces: int = 2
    endpoints: list[ProbeEndpoint] = field(default_factory=list, compare=False)

    def host_name(self, index: int) -> str:
        return f"h{index + 1}"

    def host_netns(self, index: int) -> str:
        return names.host_netns(self.lab, self.host_name(index))

    def block(self, index: int) -> IPv4Network:
        size = 1 << (32 - HOST_BLOCK_PREFIX)
        return IPv4Network((int(POD_POOL.network_address) + index * size, HOST_BLOCK_PREFIX))

    def host_ip(self, index: int) -> IPv4Address:
        """h1 holds .1 on its loopback; host i>0 sits on its own /30 toward h1 (a star): 4i+1 on h1, 4i+2 on it."""
        return UPLINK_POOL.network_address + (1 if index == 0 else 4 * index + 2)

    def pods(self) -> list[tuple[int, str, str, IPv4Address]]:
        """(host index, namespace, pod, ip) for every pod."""
        out = []
        counter = 0
        for host, count in enumerate(self.pods_per_host):
            block = self.block(host)
            if count > block.num_addresses - 3:
                raise ValueError(f"{count} pods do not fit in host block {block}")
            for k in range(count):
                out.append((host, f"ns{counter % self.namespaces}", f"p{counter}", block.network_address + 2 + k))
                counter += 1
        return out

    def probe_endpoints(self) -> list[ProbeEndpoint]:
        pods = [
            ProbeEndpoint(f"{ns}/{pod}", names.pod_netns(self.lab, ns, pod), ip, "pod", ns, self.host_name(h))
            for h, ns, pod, ip in self.pods()
        ]
        hosts = [
            ProbeEndpoint(self.host_name(i), self.host_netns(i), self.host_ip(i), "host", None, self.host_name(i))
            for i in range(len(self.pods_per_host))
        ]
        return pods + hosts

    def all_netns(self) -> list[str]:
        return [self.host_netns(i) for i in range(len(self.pods_per_host))] + [
            names.pod_netns(self.lab, ns, pod) for _, ns, pod, _ in self.pods()
        ]

    def plan_namespaces(self) -> list[str]:
        return [f"netns add {ns}" for ns in self.all_netns()]

    def plan_links(self) -> list[tuple[str, str]]:
        """(netns, `ip` command) in an order where each namespace's commands run together, hosts first."""
        h1 = self.host_netns(0)
        # h1's own address, and the route proxy ARP needs: it answers for 169.254.1.1 only when that
        # address routes out of another interface than the pod's.
        lines = [(h1, "link set lo up"), (h1, f"addr add {self.host_ip(0)}/32 dev lo"),
                 (h1, f"route add {GATEWAY}/32 dev lo")]
        far_ends: list[tuple[str, str]] = []
        for i in range(1, len(self.pods_per_host)):
            ns = self.host_netns(i)
            near = names.fabric_port_ifname("host", f"{self.lab}-{i}-near")
            far = names.fabric_port_ifname("host", f"{self.lab}-{i}-far")
            h1_side = self.host_ip(i) - 1
            lines += [
                (h1, f"link add {near} type veth peer name {far} netns {ns}"),
                (h1, f"addr add {h1_side}/30 dev {near}"),
                (h1, f"link set {near} up"),
                (h1, f"route add {self.block(i)} via {self.host_ip(i)}"),
            ]
            far_ends += [(ns, "link set lo up"), (ns, f"addr add {self.host_ip(i)}/30 dev {far}"),
                         (ns, f"link set {far} up"), (ns, f"route add default via {h1_side}")]
        lines += far_ends
        pod_lines: list[tuple[str, str]] = []
        for host, ns_name, pod, ip in sorted(self.pods()):
            host_side, pod_side = self.plan_pod(host, ns_name, pod, ip)
            lines += host_side
            pod_lines += pod_side
        return lines + pod_lines

    def plan_pod(self, host: int, ns_name: str, pod: str, ip: IPv4Address
                 ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(host-side, pod-side) commands plumbing one pod the Calico way."""
        hns, pns = self.host_netns(host), names.pod_netns(self.lab, ns_name, pod)
        cali = names.pod_host_ifname(ns_name, pod)
        pod_mac = pod_mac_for(ip)
        # Permanent neighbour entries on both sides (Felix programs the host side the same way): the kernel's
        # ARP cache is one table for all namespaces, capped at gc_thresh3 (1024) dynamic entries, which a few
        # hundred pods exhaust; permanent entries are exempt. Proxy ARP stays on for anything else.
        host_side = [
            (hns, f"link add {cali} type veth peer name eth0 address {pod_mac} netns {pns}"),
            (hns, f"link set {cali} address {CALICO_MAC} up"),
            (hns, f"route add {ip}/32 dev {cali} scope link"),
            (hns, f"neigh replace {ip} lladdr {pod_mac} dev {cali} nud permanent"),
        ]
        pod_side = [
            (pns, "link set lo up"),
            (pns, f"addr add {ip}/32 dev eth0"),
            (pns, "link set eth0 up"),
            (pns, f"route add {GATEWAY} dev eth0 scope link"),
            (pns, f"route add default via {GATEWAY} dev eth0"),
            (pns, f"neigh replace {GATEWAY} lladdr {CALICO_MAC} dev eth0 nud permanent"),
        ]
        return host_side, pod_side

    def add_pod(self, host: int, ns_name: str, pod: str, ip: IPv4Address) -> ProbeEndpoint:
        """Create one more pod on a running scratch lab (e.g. the "new pod" of a policy-latency run)."""
        pns = names.pod_netns(self.lab, ns_name, pod)
        cali = names.pod_host_ifname(ns_name, pod)
        _ip_batch([f"netns add {pns}"])
        host_side, pod_side = self.plan_pod(host, ns_name, pod, ip)
        for netns, commands in _runs(host_side + pod_side):
            _ip_batch(commands, netns=netns)
        call_in_netns(self.host_netns(host), lambda: sysctl.write_settings(_workload_settings(cali)))
        call_in_netns(pns, lambda: sysctl.write_settings(sysctl.COMMON))
        return ProbeEndpoint(f"{ns_name}/{pod}", pns, ip, "pod", ns_name, self.host_name(host))

    def remove_pod(self, ns_name: str, pod: str) -> None:
        """Delete a pod's namespace; its veth, and with it the host's /32 route, go too."""
        _ip_batch([f"netns del {names.pod_netns(self.lab, ns_name, pod)}"], check=False)

    def plan_sysctls(self) -> list[tuple[str, list[sysctl.Setting]]]:
        """(netns, settings) pairs: no ICMP rate limits anywhere; hosts forward and proxy-ARP for their pods."""
        out = [(ns, list(sysctl.COMMON)) for ns in self.all_netns()]
        for i in range(len(self.pods_per_host)):
            settings = [("net.ipv4.ip_forward", "1")]
            for _, ns_name, pod, _ in (p for p in self.pods() if p[0] == i):
                settings += _workload_settings(names.pod_host_ifname(ns_name, pod))
            out.append((self.host_netns(i), settings))
        return out

    def up(self) -> list[ProbeEndpoint]:
        _ip_batch(self.plan_namespaces())
        for netns, commands in _runs(self.plan_links()):
            _ip_batch(commands, netns=netns)
        for ns, settings in self.plan_sysctls():
            call_in_netns(ns, functools.partial(sysctl.write_settings, settings))
        self.endpoints[:] = self.probe_endpoints()
        return list(self.endpoints)

    def down(self) -> None:
        """Delete every namespace of this lab that exists (safe to call after a failed `up`)."""
        prefix = names.lab_netns_prefix(self.lab)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        mine = [line.split()[0] for line in listed.splitlines() if line.startswith(prefix)]
        if mine:
            _ip_batch([f"netns del {ns}" for ns in mine], check=False)


def _workload_settings(cali: str) -> list[sysctl.Setting]:
    return [(f"net.ipv4.conf.{cali}.proxy_arp", "1"), (f"net.ipv4.neigh.{cali}.proxy_delay", "0")]


def _runs(lines: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Group consecutive commands of the same namespace (one `ip -n NS -batch` each)."""
    runs: list[tuple[str, list[str]]] = []
    for netns, command in lines:
        if runs and runs[-1][0] == netns:
            runs[-1][1].append(command)
        else:
            runs.append((netns, [command]))
    return runs


def _ip_batch(lines: list[str], check: bool = True, netns: str | None = None) -> None:
    subprocess.run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=check,
                   capture_output=not check)
