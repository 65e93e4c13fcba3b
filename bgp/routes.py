"""ExaBGP's JSON messages turned into route operations, without touching the kernel.

`parse_message` reads one line ExaBGP writes to its API process (`encoder json`, `receive { parsed;
update; }`, `neighbor-changes`) into events; `LearntRoutes` keeps what each peer announced and answers
each event with the kernel operations that follow (install or replace `prefix via next-hop`, remove
`prefix`). A session going down removes everything learnt from that peer: that is how a stopped host's
blocks disappear from the others within the hold time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

FAMILY = "ipv4 unicast"


@dataclass(frozen=True)
class PeerState:
    peer: IPv4Address
    state: str  # "connected", "up", "down"
    reason: str = ""
    time: float = 0.0


@dataclass(frozen=True)
class Announce:
    peer: IPv4Address
    prefix: IPv4Network
    next_hop: IPv4Address


@dataclass(frozen=True)
class Withdraw:
    peer: IPv4Address
    prefix: IPv4Network


@dataclass(frozen=True)
class EndOfRib:
    peer: IPv4Address


Event = PeerState | Announce | Withdraw | EndOfRib


@dataclass(frozen=True)
class Install:
    prefix: IPv4Network
    next_hop: IPv4Address


@dataclass(frozen=True)
class Remove:
    prefix: IPv4Network


KernelOp = Install | Remove


class MessageError(ValueError):
    pass


def parse_message(line: str) -> list[Event]:
    """Events in one JSON line from ExaBGP; messages we do not use (keepalives, opens...) give none."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError as err:
        raise MessageError(f"not JSON: {line[:120]!r}") from err
    if not isinstance(message, dict):
        raise MessageError(f"not a JSON object: {line[:120]!r}")
    kind = message.get("type")
    neighbor = message.get("neighbor") or {}
    try:
        peer = IPv4Address(neighbor["address"]["peer"])
    except (KeyError, TypeError, ValueError):
        return []
    if kind == "state":
        return [
            PeerState(peer, str(neighbor.get("state", "")), str(neighbor.get("reason", "")),
                      float(message.get("time", 0.0)))
        ]
    if kind == "update":
        return _update_events(peer, neighbor.get("message") or {})
    return []


def _update_events(peer: IPv4Address, body: dict[str, Any]) -> list[Event]:
    if "eor" in body:
        return [EndOfRib(peer)]
    update = body.get("update") or {}
    events: list[Event] = []
    for entry in (update.get("withdraw") or {}).get(FAMILY, []):
        events.append(Withdraw(peer, IPv4Network(_nlri(entry))))
    for next_hop, entries in ((update.get("announce") or {}).get(FAMILY) or {}).items():
        for entry in entries:
            events.append(Announce(peer, IPv4Network(_nlri(entry)), IPv4Address(next_hop)))
    return events


def _nlri(entry: Any) -> str:
    # ExaBGP 5 writes {"nlri": "P"}; older versions wrote the bare prefix.
    return str(entry["nlri"]) if isinstance(entry, dict) else str(entry)


class LearntRoutes:
    """Routes learnt per peer and the one installed per prefix (the lowest peer address wins a tie)."""

    def __init__(self, local_prefixes: Iterable[IPv4Network] = ()) -> None:
        self._by_peer: dict[IPv4Address, dict[IPv4Network, IPv4Address]] = {}
        self._installed: dict[IPv4Network, IPv4Address] = {}
        self._local: frozenset[IPv4Network] = frozenset(local_prefixes)
        self.refused: list[Announce] = []

    @property
    def installed(self) -> dict[IPv4Network, IPv4Address]:
        return dict(self._installed)

    def received_from(self, peer: IPv4Address) -> int:
        return len(self._by_peer.get(peer, {}))

    def set_local(self, prefixes: Iterable[IPv4Network]) -> list[KernelOp]:
        """Our own announcements are never installed as learnt routes (a reflector could echo them)."""
        touched = self._local | frozenset(prefixes)
        self._local = frozenset(prefixes)
        return self._resolve(touched)

    def apply(self, event: Event) -> list[KernelOp]:
        if isinstance(event, Announce):
            if event.next_hop in event.prefix:
                # A route to P via an address inside P would cut the next hop itself off (a peer
                # leaking the fabric subnet, say): never install it.
                self.refused.append(event)
                return []
            self._by_peer.setdefault(event.peer, {})[event.prefix] = event.next_hop
            return self._resolve([event.prefix])
        if isinstance(event, Withdraw):
            self._by_peer.get(event.peer, {}).pop(event.prefix, None)
            return self._resolve([event.prefix])
        if isinstance(event, PeerState) and event.state == "down":
            lost = self._by_peer.pop(event.peer, {})
            return self._resolve(lost)
        return []

    def clear(self) -> list[KernelOp]:
        """Forget everything: the operations remove every installed route."""
        touched = list(self._installed)
        self._by_peer.clear()
        return self._resolve(touched)

    def _resolve(self, prefixes: Iterable[IPv4Network]) -> list[KernelOp]:
        ops: list[KernelOp] = []
        for prefix in sorted(set(prefixes)):
            candidates = sorted(
                (peer, routes[prefix]) for peer, routes in self._by_peer.items() if prefix in routes
            )
            wanted = candidates[0][1] if candidates and prefix not in self._local else None
            current = self._installed.get(prefix)
            if wanted == current:
                continue
            if wanted is None:
                del self._installed[prefix]
                ops.append(Remove(prefix))
            else:
                self._installed[prefix] = wanted
                ops.append(Install(prefix, wanted))
        return ops


def announcement_commands(announced: Iterable[IPv4Network], desired: Iterable[IPv4Network]) -> list[str]:
    """ExaBGP API commands taking the announced set to the desired one (withdrawals first)."""
    old, new = frozenset(announced), frozenset(desired)
    return [f"withdraw route {p} next-hop self" for p in sorted(old - new)] + [
        f"announce route {p} next-hop self" for p in sorted(new - old)
    ]


def blackholes(announced: Iterable[IPv4Network]) -> frozenset[IPv4Network]:
    """A host blackholes each of its own blocks (unknown addresses in them die locally, as in Calico); a /32
    is a borrowed address (or a one-address block) whose pod route already exists, so it gets none."""
    return frozenset(p for p in announced if p.prefixlen < 32)
