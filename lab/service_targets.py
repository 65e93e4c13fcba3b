"""`svc/NS/NAME` as the destination of `lab probe`, `lab matrix` and `lab explain`.

Packets go to the ClusterIP (the hosts' DNAT picks a backend); the oracle answers for every ready backend at
the port the Service sends that port to. A flow to a Service is expected to pass when it passes to all of
them (a backend the policy refuses makes the result depend on the random pick: the check then fails, which
is the point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.runtime import LabRuntime
    from policy_dataplane.policy.evaluate import Verdict
    from policy_dataplane.policy.world import World
    from traffic.model import ProbeEndpoint

PREFIX = "svc/"


def is_service_ref(text: str) -> bool:
    return text.startswith(PREFIX)


def service_key(ref: str) -> str:
    """`svc/NS/NAME` (or `svc/NAME`: namespace default) -> `NS/NAME`."""
    rest = ref[len(PREFIX):]
    return rest if "/" in rest else f"default/{rest}"


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # "ns/pod"
    port: int  # the backend's port


def backends(runtime: "LabRuntime", ref: str, port: int, protocol: str) -> tuple[str, list[BackendChoice]]:
    """The Service's ClusterIP and the backends of its port `port`/`protocol`; KeyError naming what is missing."""
    from lab.services import lab_services

    state = lab_services(runtime)
    key = service_key(ref)
    for svc in state.endpoints():
        if svc.service.key != key:
            continue
        svc_port = svc.service.port(port, protocol)
        if svc_port is None:
            ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.service.ports)
            raise KeyError(f"Service {key} has no port {port}/{protocol.upper()} (ports: {ports})")
        return str(svc.cluster_ip), [BackendChoice(e.backend.key, e.port) for e in svc.endpoints(svc_port)]
    raise KeyError(f"no Service {key!r} in lab {runtime.lab!r} (see `lab get services`)")


def probe_endpoint(runtime: "LabRuntime", ref: str) -> "ProbeEndpoint":
    """The Service as a probe destination: its ClusterIP (answers come back from it, translated)."""
    from ipaddress import IPv4Address

    from lab.services import lab_services
    from traffic.model import ProbeEndpoint

    key = service_key(ref)
    svc = lab_services(runtime).service(key)
    if svc is None or svc.cluster_ip is None:
        raise KeyError(f"no Service {key!r} in lab {runtime.lab!r} (see `lab get services`)")
    host = runtime.host_names()[0]
    from topology import names

    return ProbeEndpoint(name=f"{PREFIX}{key}", netns=names.host_netns(runtime.lab, host),
                         ip=IPv4Address(str(svc.cluster_ip)), kind="service", namespace=svc.namespace)


def verdicts(world: "World", runtime: "LabRuntime", src: str, ref: str, protocol: str, port: int
             ) -> list[tuple[BackendChoice, "Verdict"]]:
    """The oracle's verdict from `src` to each backend of the Service port."""
    from policy_dataplane.policy.evaluate import verdict

    _, choices = backends(runtime, ref, port, protocol)
    return [(c, verdict(world, src, c.backend, protocol, c.port)) for c in choices]


def expected(world: "World", runtime: "LabRuntime", src: str, ref: str, protocol: str, port: int) -> bool:
    found = verdicts(world, runtime, src, ref, protocol, port)
    return bool(found) and all(v.allowed for _, v in found)


def find_target(lab: str, endpoints: list["ProbeEndpoint"], key: str) -> "ProbeEndpoint":
    """An endpoint by name or address, or a Service as `svc/NS/NAME` (KeyError naming what is missing)."""
    from traffic.model import find_endpoint

    if not is_service_ref(key):
        return find_endpoint(endpoints, key)
    from lab.runtime import LabRuntime

    runtime = LabRuntime.open(lab)
    try:
        return probe_endpoint(runtime, key)
    finally:
        runtime.close()
