"""Services as one nftables table per host, the way kube-proxy's nftables mode builds it. Pure.

    table ip <TABLE>
      map service-ips   { ipv4_addr . inet_proto . inet_service : verdict }  ClusterIP.proto.port -> svc chain
      chain nat-prerouting  (nat, prerouting, priority dstnat): pods' packets, before routing and policy
      chain nat-output      (nat, output, priority dstnat): the host's own packets
      chain svc-<hash>  numgen random mod N vmap { 0 : goto ep-<hash>, ... }  (one endpoint: goto it)
      chain ep-<hash>   meta l4proto tcp dnat to <pod>:<port>
      set cluster-ips   every ClusterIP
      chain reject-forward / reject-output (filter, priority filter - 10): a new flow still addressed to a
            ClusterIP was not translated (no ready endpoint, or no such port): rejected, as kube-proxy does

DNAT happens in prerouting, so the forward chain of the policy table (`inet npl`, priority filter) sees the
backend pod's address: policy decides on the real destination, as in a cluster. Replies are translated back
by conntrack. Host endpoint policy that must see the original destination (Calico's preDNAT policy) hooks
prerouting at PRE_DNAT_PRIORITY, which runs before DNAT_PRIORITY.

Only addresses, numbers and names made here (hashes) reach the text, never a user's string.
"""

from __future__ import annotations

from policy_dataplane.dataplane.hostprogram import short_hash
from services.endpoints import Endpoint, ServiceEndpoints

TABLE = "services"
FAMILY_TABLE = f"ip {TABLE}"
DNAT_PRIORITY = -100  # dstnat (nft knows the word only for prerouting)
PRE_DNAT_PRIORITY = -150  # mangle: the hook for preDNAT (host endpoint) policy, before any translation
REJECT_PRIORITY = -10  # filter - 10: before the policy table's chains


def service_chain(svc: ServiceEndpoints, port: int, protocol: str) -> str:
    return "svc-" + short_hash(svc.service.key, str(port), protocol)


def endpoint_chain(svc: ServiceEndpoints, port: int, protocol: str, ep: Endpoint) -> str:
    return "ep-" + short_hash(svc.service.key, str(port), protocol, ep.backend.key, str(ep.port))


def render(services: list[ServiceEndpoints]) -> str:
    """The whole table, replacing any earlier one in the same transaction (existing flows keep their
    translation: it lives in conntrack)."""
    elements, chains = [], []
    for svc in services:
        for port, endpoints in svc.by_port:
            if not endpoints:
                continue  # no ready endpoint: left to the reject chains
            proto = port.protocol.lower()
            chain = service_chain(svc, port.port, proto)
            elements.append(f"{svc.cluster_ip} . {proto} . {port.port} : goto {chain}")
            targets = [endpoint_chain(svc, port.port, proto, ep) for ep in endpoints]
            if len(targets) == 1:
                chains.append(f"  chain {chain} {{\n    goto {targets[0]}\n  }}")
            else:
                vmap = ", ".join(f"{i} : goto {t}" for i, t in enumerate(targets))
                chains.append(f"  chain {chain} {{\n    numgen random mod {len(targets)} vmap {{ {vmap} }}\n  }}")
            for ep, target in zip(endpoints, targets, strict=True):
                chains.append(f"  chain {target} {{\n    meta l4proto {proto} dnat to {ep.backend.ip}:{ep.port}\n  }}")
    lines = [f"table {FAMILY_TABLE}", f"delete table {FAMILY_TABLE}", f"table {FAMILY_TABLE} {{"]
    lines.append("  map service-ips {\n    type ipv4_addr . inet_proto . inet_service : verdict")
    if elements:
        lines.append("    elements = {\n      " + ",\n      ".join(elements) + "\n    }")
    lines.append("  }")
    lines.append("  set cluster-ips {\n    type ipv4_addr")
    if services:
        lines.append("    elements = { " + ", ".join(sorted({str(s.cluster_ip) for s in services})) + " }")
    lines.append("  }")
    lines.extend(chains)
    for name, hook in (("nat-prerouting", "prerouting"), ("nat-output", "output")):
        lines.append(f"  chain {name} {{\n    type nat hook {hook} priority {DNAT_PRIORITY}; policy accept;\n"
                     f"    ip daddr . meta l4proto . th dport vmap @service-ips\n  }}")
    for name, hook in (("reject-forward", "forward"), ("reject-output", "output")):
        lines.append(f"  chain {name} {{\n    type filter hook {hook} priority {REJECT_PRIORITY}; policy accept;\n"
                     "    ct state new ip daddr @cluster-ips reject\n  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_removal() -> str:
    return f"table {FAMILY_TABLE}\ndelete table {FAMILY_TABLE}\n"
