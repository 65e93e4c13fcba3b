"""Name lookups from inside a pod, through the pod's own resolver: `ip netns exec` mounts the pod's
resolv.conf (search path, the kube-dns ClusterIP) and glibc asks the cluster DNS, with real packets that
policy can drop."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from lab.runtime import LabRuntime
from lab.targets import resolve_netns

QUICK = "timeout:1 attempts:1"  # a denied lookup fails in about a second per search domain, not 5 s x 2


@dataclass(frozen=True)
class Lookup:
    name: str
    addresses: tuple[str, ...]  # empty: the name did not resolve

    @property
    def resolved(self) -> bool:
        return bool(self.addresses)


def lookup(runtime: LabRuntime, pod: str, name: str, quick: bool = True) -> Lookup:
    """IPv4 addresses of `name` as the pod's resolver finds them (getent ahostsv4)."""
    if not name or name.startswith("-") or any(c.isspace() for c in name):
        raise ValueError(f"{name!r} is not a name to look up")
    netns = resolve_netns(runtime, pod)
    env = {**os.environ, "RES_OPTIONS": QUICK} if quick else None
    out = subprocess.run(["ip", "netns", "exec", netns, "getent", "ahostsv4", name], capture_output=True,
                         text=True, env=env)
    addresses = sorted({line.split()[0] for line in out.stdout.splitlines() if line.strip()})
    return Lookup(name, tuple(addresses))
