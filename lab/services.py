"""Services, cluster DNS and egress gateways of a running lab: from the store to the hosts and the daemon.

On apply (`prepare`): ExternalServices are expanded into their gateway's objects, and Services without a
ClusterIP get one from the lab's service range (kept across re-applies). On every sync (`sync`, after the
policy filters): each host's `ip services` table is rewritten when the Services or their endpoints changed,
the DNS records and gateways go to the services process, and every pod gets a resolv.conf pointing at the
kube-dns Service.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from lab.objects import pod_ports
from lab.runtime import LabRuntime
from lab.store import ObjectKey
from services import daemon_ctl, dns, egress
from services.endpoints import Backend, ClusterIPAllocator, ServiceEndpoints, resolve
from services.nat import render, render_removal
from services.objects import (
    EXTERNAL_SERVICE_KIND,
    SERVICE_KIND,
    ExternalService,
    Service,
    external_service_from_doc,
    service_from_doc,
)
from topology import names

ETC_NETNS = Path(os.environ.get("NETPOL_LAB_ETC_NETNS", "/etc/netns"))  # where `ip netns exec` finds resolv.conf


class ServicesError(ValueError):
    pass


# --- apply -----------------------------------------------------------------------------------------------


def external_addresses(runtime: LabRuntime) -> dict[str, str]:
    """Every name the lab file gives an external host (its name and its dnsNames) -> its address."""
    from lab.targets import node_addresses

    ips = node_addresses(runtime, "external")
    out = {}
    for ext in runtime.spec.externals:
        out[ext.name] = ips[ext.name]
        for dns_name in ext.dnsNames:
            out[dns_name] = ips[ext.name]
    return out


def prepare(runtime: LabRuntime, sourced: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The documents to store: ExternalServices followed by their gateway's objects, Services with their
    ClusterIP. Raises ServicesError naming file, object and field for every problem; changes nothing."""
    problems: list[str] = []
    externals = external_addresses(runtime)
    out: list[tuple[str, dict[str, Any]]] = []
    needs_namespace = False
    for source, doc in sourced:
        out.append((source, doc))
        if doc.get("kind") == EXTERNAL_SERVICE_KIND:
            es = external_service_from_doc(doc)
            if es.dns_name not in externals:
                problems.append(f"{source}: ExternalService {es.name}: spec.dnsName: {es.dns_name!r} is no external "
                                f"host of lab {runtime.lab!r} (known: {', '.join(sorted(externals)) or 'none'})")
            out.extend((source, d) for d in egress.gateway_documents(es))
            needs_namespace = True
    if needs_namespace and runtime.store.get_object(ObjectKey("Namespace", "", egress.NAMESPACE)) is None:
        out.insert(0, ("(egress-operator)", egress.namespace_document()))
    out = _with_cluster_ips(runtime, out, problems)
    if problems:
        raise ServicesError(f"{len(problems)} problem(s), nothing applied:\n" + "\n".join(f"  - {p}" for p in problems))
    return out


def allocator(runtime: LabRuntime) -> ClusterIPAllocator:
    alloc = ClusterIPAllocator(runtime.spec.serviceCIDR, excluded=(runtime.spec.fabric,))
    for key, doc in runtime.store.objects(kinds=[SERVICE_KIND]):
        ip = (doc.get("spec") or {}).get("clusterIP")
        if ip:
            alloc.taken[IPv4Address(ip)] = f"{key.namespace}/{key.name}"
    return alloc


def _with_cluster_ips(runtime: LabRuntime, sourced: list[tuple[str, dict[str, Any]]],
                      problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    alloc = allocator(runtime)
    out = []
    for source, doc in sourced:
        if doc.get("kind") != SERVICE_KIND:
            out.append((source, doc))
            continue
        svc = service_from_doc(doc)
        old = runtime.store.get_object(ObjectKey(SERVICE_KIND, svc.namespace, svc.name))
        kept = ((old or {}).get("spec") or {}).get("clusterIP")
        if svc.cluster_ip is not None:
            if kept and IPv4Address(kept) != svc.cluster_ip:
                problems.append(f"{source}: Service {svc.key}: spec.clusterIP: is immutable ({kept})")
            elif (problem := alloc.check(svc.cluster_ip, svc.key)) is not None:
                problems.append(f"{source}: Service {svc.key}: spec.clusterIP: {problem}")
            else:
                alloc.claim(svc.cluster_ip, svc.key)
            out.append((source, doc))
            continue
        doc = copy.deepcopy(doc)
        ip = kept or str(alloc.allocate(svc.key))
        doc.setdefault("spec", {})["clusterIP"] = ip
        out.append((source, doc))
    return out


def with_owned(runtime: LabRuntime, keys: list[ObjectKey]) -> list[ObjectKey]:
    """The keys plus what the lab made for them (an ExternalService's gateway objects)."""
    owners = {f"ExternalService/{k.name}" for k in keys if k.kind == EXTERNAL_SERVICE_KIND}
    if not owners:
        return keys
    extra = [key for key, doc in runtime.store.objects(kinds=["Pod", SERVICE_KIND, "NetworkPolicy"])
             if ((doc.get("metadata") or {}).get("annotations") or {}).get(egress.OWNER_ANNOTATION) in owners]
    return [*keys, *[k for k in extra if k not in keys]]


# --- state of a running lab ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabServices:
    services: list[Service]
    external_services: list[ExternalService]
    backends: list[Backend]
    netns: dict[str, str]  # "ns/pod" -> network namespace of every running pod

    def endpoints(self) -> list[ServiceEndpoints]:
        return resolve(self.services, self.backends)

    def service(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key == key), None)


def lab_services(runtime: LabRuntime) -> LabServices:
    placed = {(p.namespace, p.name): p for p in runtime.store.placements()}
    backends, netns = [], {}
    for key, doc in runtime.pod_documents():
        p = placed.get((key.namespace, key.name))
        if p is None:
            continue
        labels = (doc.get("metadata") or {}).get("labels") or {}
        named = {(name, proto): port for port, proto, name in pod_ports(doc) if name}
        backends.append(Backend(key.namespace, key.name, IPv4Address(p.ip), labels, named))
        netns[f"{key.namespace}/{key.name}"] = names.pod_netns(runtime.lab, key.namespace, key.name)
    services = [service_from_doc(d) for _, d in runtime.store.objects(kinds=[SERVICE_KIND])]
    external = [external_service_from_doc(d) for _, d in runtime.store.objects(kinds=[EXTERNAL_SERVICE_KIND])]
    return LabServices(services, external, backends, netns)


# --- sync --------------------------------------------------------------------------------------------------


def sync(runtime: LabRuntime) -> dict[str, str]:
    """Returns the hosts whose services table was written (their nftables generation moved)."""
    if _nothing_to_do(runtime):
        return {}
    state = lab_services(runtime)
    written = program_hosts(runtime, state)
    serve(runtime, state)
    write_resolv_confs(runtime, state)
    return written


def forget_hosts(runtime: LabRuntime, hosts: Iterable[str]) -> None:
    """The next sync rewrites these hosts' services table whatever it thinks they hold (their ruleset was
    replaced or flushed behind the lab's back)."""
    path = _nat_state_file(runtime)
    try:
        applied: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    gone = [h for h in hosts if h in applied]
    for host in gone:
        applied[host] = "unknown"
    if gone:
        path.write_text(json.dumps(applied))


def _nothing_to_do(runtime: LabRuntime) -> bool:
    """No Service, no ExternalService, no DNS pod, and nothing of ours left to remove: a lab without Services
    pays nothing for them."""
    if runtime.store.objects(kinds=[SERVICE_KIND, EXTERNAL_SERVICE_KIND]):
        return False
    if _nat_state_file(runtime).exists() or daemon_ctl.config_file(runtime.paths).exists():
        return False
    return not any(lab_resolv_dirs(runtime.lab))


def _nat_state_file(runtime: LabRuntime) -> Path:
    return runtime.paths.config_file("services-nat.json")


def program_hosts(runtime: LabRuntime, state: LabServices) -> dict[str, str]:
    """Rewrite each host's services table whose text changed (all hosts get the same table). Returns
    host -> "replaced" | "removed" for the hosts written."""
    from topology.engines import get_engine
    from topology.netns import CommandFailed

    engine = get_engine(runtime.spec.engine)

    path = _nat_state_file(runtime)
    try:
        applied: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError):
        applied = {}
    text = render(state.endpoints()) if state.services else None
    digest = hashlib.sha256(text.encode()).hexdigest() if text else None
    work = {}
    for host in runtime.local_hosts():
        if applied.get(host) == digest or (digest is None and host not in applied):
            continue
        work[host] = text if text is not None else render_removal()
    procs = []
    for host, script in work.items():
        netns = names.host_netns(runtime.lab, host)
        proc = engine.start_in(netns, ["nft", "-f", "-"], stdin=-1, stdout=-1, stderr=-1)
        proc.stdin.write(script)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
        procs.append((host, netns, proc))
    failed = []
    for host, netns, proc in procs:
        err = proc.stderr.read()  # type: ignore[union-attr]
        if proc.wait() != 0:
            failed.append(CommandFailed(netns, ["nft", "-f", "-"], err))
            continue
        if digest is None:
            applied.pop(host, None)
        else:
            applied[host] = digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(applied))
    if failed:
        raise failed[0]
    return {h: "removed" if digest is None else "replaced" for h in work}


def dns_records(runtime: LabRuntime, state: LabServices) -> dict[str, str]:
    records = {dns.checked_name(name): ip for name, ip in external_addresses(runtime).items()}
    for svc in state.services:
        if svc.cluster_ip is not None:
            records[dns.service_name(svc.namespace, svc.name)] = str(svc.cluster_ip)
    for es in state.external_services:
        gateway = state.service(f"{egress.NAMESPACE}/{es.name}")
        if es.hijack_dns and gateway is not None and gateway.cluster_ip is not None:
            records[dns.checked_name(es.dns_name)] = str(gateway.cluster_ip)
    return records


def serve(runtime: LabRuntime, state: LabServices) -> None:
    dns_pods = [state.netns[b.key] for b in state.backends if dns.is_dns_pod(b.namespace, b.labels)]
    externals = external_addresses(runtime)
    gateways = []
    for es in state.external_services:
        ns = state.netns.get(f"{egress.NAMESPACE}/{es.name}")
        target = externals.get(es.dns_name)
        if ns is not None and target is not None:
            gateways += [{"netns": ns, "port": port, "target": target} for port, _ in es.ports]
    daemon_ctl.apply_config(runtime.paths, dns_pods, dns_records(runtime, state) if dns_pods else {}, gateways)


def nameserver(state: LabServices) -> IPv4Address | None:
    svc = state.service(f"{dns.DNS_NAMESPACE}/{dns.DNS_SERVICE}")
    return svc.cluster_ip if svc is not None else None


def resolv_conf_dir(netns: str) -> Path:
    return ETC_NETNS / netns


def write_resolv_confs(runtime: LabRuntime, state: LabServices) -> int:
    """A resolv.conf for every running pod (`ip netns exec` mounts it over /etc/resolv.conf) when the lab
    has a kube-dns Service; stale ones (pods gone) removed. Returns how many files were written."""
    server = nameserver(state)
    wanted = {}
    if server is not None:
        for b in state.backends:
            wanted[state.netns[b.key]] = dns.resolv_conf(b.namespace, server)
    written = 0
    for netns, text in wanted.items():
        path = resolv_conf_dir(netns) / "resolv.conf"
        try:
            if path.read_text() == text:
                continue
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written += 1
    for stale in set(lab_resolv_dirs(runtime.lab)) - {resolv_conf_dir(n) for n in wanted}:
        shutil.rmtree(stale, ignore_errors=True)
    return written


def lab_resolv_dirs(lab: str) -> Iterable[Path]:
    """/etc/netns folders of the lab's namespaces (they carry the lab's prefix)."""
    return ETC_NETNS.glob(names.lab_netns_prefix(lab) + "*") if ETC_NETNS.is_dir() else []


def remove_files(lab: str) -> None:
    """What `lab down` removes besides the run directory."""
    for path in lab_resolv_dirs(lab):
        shutil.rmtree(path, ignore_errors=True)
