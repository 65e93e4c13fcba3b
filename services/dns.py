"""Cluster DNS, pure: the records the lab's DNS pods answer, resolv.conf for pods, and answering one query.

Records: `<svc>.<ns>.svc.<domain>` -> ClusterIP for every Service that has one; the lab file's externals by
their names (and their dnsName when given); an ExternalService's dnsName -> its gateway's ClusterIP when it
hijacks DNS. Every name is checked (DNS rules) before it becomes a record: nothing else reaches the server.
Names outside the records get NXDOMAIN: the lab's DNS never asks anyone outside the lab.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

DOMAIN = "cluster.local"
TTL = 5
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}  # what the DNS pods carry, and what the kube-dns Service selects
DNS_SERVICE = "kube-dns"
DNS_PORT = 53
_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")


class BadName(ValueError):
    pass


def checked_name(name: str) -> str:
    """A lower-case DNS name without the trailing dot, or BadName."""
    name = name.lower().rstrip(".")
    if not _NAME.match(name):
        raise BadName(f"{name!r} is not a valid DNS name")
    return name


def service_name(namespace: str, name: str, domain: str = DOMAIN) -> str:
    return checked_name(f"{name}.{namespace}.svc.{domain}")


def resolv_conf(namespace: str, nameserver: IPv4Address, domain: str = DOMAIN) -> str:
    """What the kubelet writes into a pod with dnsPolicy ClusterFirst."""
    search = " ".join(checked_name(d) for d in (f"{namespace}.svc.{domain}", f"svc.{domain}", domain))
    return f"search {search}\nnameserver {nameserver}\noptions ndots:5\n"


def is_dns_pod(namespace: str, labels: Mapping[str, str]) -> bool:
    return namespace == DNS_NAMESPACE and all(labels.get(k) == v for k, v in DNS_LABELS.items())


def answer(query: bytes, records: Mapping[str, str]) -> bytes:
    """The reply to one DNS message: A records from `records` (name -> IPv4), NXDOMAIN for unknown names, an
    empty NOERROR for other types of a known name (so resolvers asking AAAA too go on), FORMERR for junk."""
    try:
        request = DNSRecord.parse(query)
    except Exception:  # dnslib raises its own and struct errors for malformed packets
        if len(query) >= 2:
            reply = DNSRecord()
            reply.header.id = int.from_bytes(query[:2], "big")
            reply.header.qr, reply.header.rcode = 1, RCODE.FORMERR
            return reply.pack()
        return b""
    reply = request.reply()
    for q in request.questions:
        name = str(q.qname).lower().rstrip(".")
        ip = records.get(name)
        if ip is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
    return reply.pack()
