"""Kernel settings of each kind of lab namespace, as data, and the in-process writer.

Files under /proc/sys/net belong to the network namespace of the thread that opens them, so writing them
from inside `netns.entered(...)` sets that namespace only: nothing here ever touches the root namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

Setting = tuple[str, str]  # (key under /proc/sys, dotted or slashed, value)

PROC_SYS = Path("/proc/sys")
ICMP_UNLIMITED = "1000000"

# Every lab namespace: ICMP errors (port unreachable, ...) are measurements here, never throttled.
# icmp_ratemask=0 also bypasses the global icmp_msgs_per_sec limiter (it only applies to masked types).
# (IPv6 stays quiet without a sysctl: every interface is set to addrgenmode none by netlink.)
COMMON: tuple[Setting, ...] = (
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv4.icmp_ratemask", "0"),
    ("net.ipv4.icmp_msgs_per_sec", ICMP_UNLIMITED),
    ("net.ipv4.icmp_msgs_burst", ICMP_UNLIMITED),
)

# The fabric only bridges: it must never route between the nodes on its own. Nor does it filter: where
# br_netfilter is loaded, every bridged frame would also go through the fabric namespace's IPv4, IPv6 and
# ARP hooks (~1.5 us more per new flow between pods on two hosts, measured on the bank).
FABRIC: tuple[Setting, ...] = (
    ("net.ipv4.ip_forward", "0"),
    ("net.bridge.bridge-nf-call-iptables", "0"),
    ("net.bridge.bridge-nf-call-ip6tables", "0"),
    ("net.bridge.bridge-nf-call-arptables", "0"),
)
# Files that exist only with a kernel feature loaded (net.bridge.*: br_netfilter); without it there is nothing
# to turn off.
IF_PRESENT = ("net.bridge.",)

# Hosts route for their pods. rp_filter is off on the uplink (routes come and go with BGP; asymmetric paths
# must not be dropped) and redirects are off (a host forwarding back out of eth0 must not teach others).
HOST: tuple[Setting, ...] = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
)

# Externals and reflectors are plain end hosts.
END_HOST: tuple[Setting, ...] = (("net.ipv4.ip_forward", "0"),)


def node_settings(kind: str) -> tuple[Setting, ...]:
    return COMMON + (HOST if kind == "host" else END_HOST)


# Per-interface settings go by netlink (`rtnl.link_configure`), one message instead of one /proc write each:
# a first /proc/sys write in a fresh namespace or for a fresh interface costs ~0.15-0.3 ms (the kernel builds
# its sysctl entries), which is seconds over 1500 pods.

# The host's uplink: rp_filter off, no redirects.
UPLINK_DEVCONF: dict[str, int] = {"rp_filter": 0, "send_redirects": 0}

# Felix's settings of a host-side pod veth: route, answer ARP for 169.254.1.1 by proxy, strict reverse-path
# check (a pod cannot spoof another address), and answer ARP at once (neigh proxy_delay 0 ms).
WORKLOAD_DEVCONF: dict[str, int] = {"forwarding": 1, "proxy_arp": 1, "rp_filter": 1}
WORKLOAD_PROXY_DELAY_MS = 0


def sysctl_path(key: str) -> Path:
    """`net.ipv4.conf.eth0.rp_filter` to its /proc/sys file. Interface names never hold dots here."""
    return PROC_SYS / key.replace(".", "/")


def write_settings(settings: Iterable[Setting]) -> None:
    """Write each setting in the current thread's network namespace (IF_PRESENT ones only if they exist)."""
    for key, value in settings:
        path = sysctl_path(key)
        if key.startswith(IF_PRESENT) and not path.exists():
            continue
        with open(path, "w") as f:
            f.write(value)
