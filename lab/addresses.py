"""Pod addresses of a running lab: its IPAM, loaded from and written back to the store (`ipam` records),
and the placements (host and address per pod) written with them. A store transaction around a caller's
change makes an allocation and its placement one write."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from bgp.ipam import Ipam, IpamConfig, IpamError
from lab.objects import fixed_ip
from lab.runtime import LabRuntime
from lab.store import Placement


class PodAddressError(ValueError):
    """The IPAM refused the `index`-th pod of a batch; `cause` is its own message."""

    def __init__(self, index: int, namespace: str, name: str, cause: Exception):
        super().__init__(f"pod {namespace}/{name}: {cause}")
        self.index, self.cause = index, cause


def fixed_ip_of(doc: dict[str, Any]) -> IPv4Address | None:
    """The address a pod document asks for (its annotation), if any."""
    ip = fixed_ip(doc)
    return IPv4Address(ip) if ip else None


def ipam_of(runtime: LabRuntime) -> Ipam:
    """The lab's IPAM as the store holds it (its pool and blocks from the lab file)."""
    cfg = runtime.spec.ipam
    config = IpamConfig(
        pool=cfg.pool, block_prefix=cfg.blockSize, max_blocks_per_host=cfg.maxBlocksPerHost,
        strict_affinity=cfg.strictAffinity,
    )
    records = runtime.store.get_ipam_records()
    return Ipam.from_records(config, records) if records else Ipam(config)


def assign_addresses(runtime: LabRuntime, pods: list[tuple[str, str, str, IPv4Address | None]]) -> list[IPv4Address]:
    """Allocates and records addresses for (namespace, name, host, fixed) pods with one IPAM load and one
    store write; call inside a store transaction (a failure then leaves no trace)."""
    ipam = ipam_of(runtime)
    ips = []
    for index, (namespace, name, host, fixed) in enumerate(pods):
        try:
            ip = ipam.allocate(f"{namespace}/{name}", host, fixed)
        except IpamError as exc:
            raise PodAddressError(index, namespace, name, exc) from None
        runtime.store.put_placement(Placement(namespace, name, host, str(ip)))
        ips.append(ip)
    runtime.store.set_ipam_records(ipam.to_records())
    return ips


def release_addresses(runtime: LabRuntime, pods: list[tuple[str, str]]) -> None:
    """Gives the (namespace, name) pods' addresses back with one IPAM load and one store write."""
    if not pods:
        return
    ipam = ipam_of(runtime)
    for namespace, name in pods:
        ipam.release(f"{namespace}/{name}")
        runtime.store.delete_placement(namespace, name)
    runtime.store.set_ipam_records(ipam.to_records())


__all__ = ["PodAddressError", "assign_addresses", "fixed_ip_of", "ipam_of", "release_addresses"]
