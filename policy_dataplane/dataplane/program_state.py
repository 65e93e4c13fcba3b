"""HostPrograms as versioned JSON: what `Dataplane.save_state` leaves for the next command's process.

JSON instead of pickle: reading the file runs no code, whoever wrote it. A file from another version of
this format, or one that does not parse, raises `StateError` saying to rebuild the lab; it never
half-loads. Bump `VERSION` whenever the HostProgram dataclasses change shape.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from policy_dataplane.dataplane.hostprogram import (
    Dir,
    EndpointProgram,
    HostProgram,
    PolicyProgram,
    RuleProgram,
    SideMatch,
    TierProgram,
    Verdict,
)

FORMAT = "netpol-lab dataplane state"
VERSION = 1
REBUILD = "rebuild the lab with `lab down` and `lab up`"


class StateError(ValueError):
    pass


def dumps(backend: str, applied: dict[str, HostProgram]) -> str:
    return assemble(backend, {host: program_json(p) for host, p in applied.items()})


def program_json(program: HostProgram) -> str:
    """One host's part of the file: a writer that saves often keeps these for the hosts that did not change
    (a whole bank state is ~130 ms to serialise; a label change touches a few hosts)."""
    return json.dumps(_program(program))


def assemble(backend: str, programs: dict[str, str]) -> str:
    """The file from each host's `program_json`: the same JSON document `dumps` makes."""
    head = json.dumps({"format": FORMAT, "version": VERSION, "backend": backend})[:-1]
    applied = ", ".join(f"{json.dumps(host)}: {text}" for host, text in programs.items())
    return f'{head}, "applied": {{{applied}}}}}'


def loads(text: str | bytes, source: str = "dataplane state") -> tuple[str, dict[str, HostProgram]]:
    """(backend, host -> program) of a saved state; StateError for any other file."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise StateError(f"{source} is not a saved dataplane state (an older format or a damaged file): "
                         f"{REBUILD}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateError(f"{source} is not a saved dataplane state: {REBUILD}")
    if data.get("version") != VERSION:
        raise StateError(f"{source} was written by another version (format {data.get('version')!r}, this "
                         f"one reads {VERSION}): {REBUILD}")
    try:
        return str(data["backend"]), {str(h): _host_program(p) for h, p in data["applied"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"{source} is damaged ({exc!r}): {REBUILD}") from None


def _program(p: HostProgram) -> dict[str, Any]:
    return {
        "address_sets": {n: sorted(str(net) for net in m) for n, m in p.address_sets.items()},
        "named_port_sets": {n: sorted([str(a), proto, port] for a, proto, port in m)
                            for n, m in p.named_port_sets.items()},
        "policies": {c: asdict(pol) for c, pol in p.policies.items()},
        "endpoints": {i: asdict(e) for i, e in p.endpoints.items()},
    }


def _host_program(d: dict[str, Any]) -> HostProgram:
    return HostProgram(
        address_sets={n: frozenset(IPv4Network(x) for x in m) for n, m in d["address_sets"].items()},
        named_port_sets={n: frozenset((IPv4Address(a), int(proto), int(port)) for a, proto, port in m)
                         for n, m in d["named_port_sets"].items()},
        policies={c: _policy(pol) for c, pol in d["policies"].items()},
        endpoints={i: _endpoint(e) for i, e in d["endpoints"].items()},
    )


def _policy(d: dict[str, Any]) -> PolicyProgram:
    return PolicyProgram(d["name"], Dir(d["direction"]), tuple(_rule(r) for r in d["rules"]))


def _rule(d: dict[str, Any]) -> RuleProgram:
    return RuleProgram(
        verdict=Verdict(d["verdict"]), protocol=d["protocol"], not_protocol=d["not_protocol"],
        icmp=_icmp(d["icmp"]), not_icmp=_icmp(d["not_icmp"]),
        source=_side(d["source"]), destination=_side(d["destination"]), never=bool(d["never"]),
    )


def _icmp(value: list[Any] | None) -> tuple[int, int | None] | None:
    return None if value is None else (int(value[0]), None if value[1] is None else int(value[1]))


def _side(d: dict[str, Any]) -> SideMatch:
    def spans(key: str) -> tuple[tuple[int, int], ...]:
        return tuple((int(a), int(b)) for a, b in d[key])

    return SideMatch(d["nets"], d["not_nets"], d["members"], d["not_members"], spans("ports"), d["named_ports"],
                     spans("not_ports"), d["not_named_ports"], bool(d["never"]))


def _endpoint(d: dict[str, Any]) -> EndpointProgram:
    def tiers(items: list[dict[str, Any]]) -> tuple[TierProgram, ...]:
        return tuple(TierProgram(t["name"], tuple(t["policies"]), bool(t["default_pass"])) for t in items)

    return EndpointProgram(d["key"], d["ifname"], tiers(d["ingress"]), tiers(d["egress"]))


__all__ = ["dumps", "loads", "StateError", "VERSION", "REBUILD"]
