"""What a probe is and what it found: the vocabulary every traffic module and the CLI share.

Frozen dataclasses only; nothing here touches the system. The lead turns a running lab's pods, hosts and
external hosts into `ProbeEndpoint`s (see `lab.runtime.probe_endpoints`); everything in `traffic` is written
against that one type so it does not care how the lab was built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address
from typing import Literal

EndpointKind = Literal["pod", "external", "host", "service"]  # a service: packets to its ClusterIP


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"
    ICMP = "icmp"

    @property
    def has_ports(self) -> bool:
        return self is not Protocol.ICMP

    @property
    def answered_by_stack(self) -> bool:
        """SCTP has no kernel stack here: its delivery is seen at the destination, nobody answers."""
        return self is not Protocol.SCTP


@dataclass(frozen=True)
class ProbeEndpoint:
    """Something packets can be sent from and to: a pod, a host or an external host.

    `namespace` (the Kubernetes namespace) and `host` (the node a pod runs on) are optional extras used to
    group matrices and to tell same-host from cross-host paths; when `namespace` is missing it is read from a
    `namespace/pod` name.
    """

    name: str
    netns: str
    ip: IPv4Address
    kind: EndpointKind = "pod"
    namespace: str | None = None
    host: str | None = None

    @property
    def group(self) -> str:
        """The row/column group of a truth table: the pod's namespace, or the endpoint's kind."""
        if self.namespace:
            return self.namespace
        if self.kind == "pod" and "/" in self.name:
            return self.name.split("/", 1)[0]
        return self.kind


@dataclass(frozen=True)
class Probe:
    src: ProbeEndpoint
    dst: ProbeEndpoint
    protocol: Protocol
    port: int = 0  # ignored for ICMP


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found.

    `delivered`: the packet reached the destination (a reply proves it; for SCTP the capture at the
    destination saw it). `replied`: an answer came back to the source (always False for SCTP).
    `rtt_us`: send to reply for answered probes, send to capture (one way) for SCTP, None when dropped.
    `evidence`: what was seen, e.g. "syn-ack", "rst", "echo-reply", "port-unreachable", "udp-reply",
    "captured", "rejected icmp 3/13", or "nothing" when the probe was dropped.
    """

    probe: Probe
    delivered: bool
    replied: bool
    rtt_us: float | None
    evidence: str
    sent_ns: int = 0  # wall clock (time.time_ns) when the probe left

    @property
    def verdict(self) -> str:
        return "allow" if self.delivered else "deny"


def find_endpoint(endpoints: list[ProbeEndpoint], key: str) -> ProbeEndpoint:
    """An endpoint by name (`ns/pod`, host or external name), IP address or namespace name."""
    for endpoint in endpoints:
        if key in (endpoint.name, str(endpoint.ip), endpoint.netns):
            return endpoint
    close = sorted(e.name for e in endpoints if key.split("/")[-1] in e.name)[:5]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise KeyError(f"no endpoint {key!r}{hint}")
