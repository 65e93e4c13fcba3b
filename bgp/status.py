"""What `lab bgp` and `lab routes` show: session states of every speaker and reflector, routes per node.

Speakers: read from the status file each agent writes (no process is asked anything). Reflectors: asked
with `birdc show protocols all`. Both come out in one shape, `SessionStatus`, with the state normalised
to `established`, `connecting`, `idle`, `down`, or `stopped` (the speaker itself is not running).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from ipaddress import IPv4Network
from typing import Any

from bgp import bird, speaker
from bgp.files import SpeakerFiles, read_json
from bgp.sessions import BgpPlan
from topology.names import LabPaths

_EXABGP_STATES = {"up": "established", "connected": "connecting", "down": "down"}


@dataclass(frozen=True)
class SessionStatus:
    speaker: str
    peer: str
    peer_address: str
    state: str
    since: str | None  # ISO 8601, UTC
    received: int  # prefixes received from that peer
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RouteTable:
    speaker: str
    running: bool
    announced: tuple[IPv4Network, ...]
    blackholes: tuple[IPv4Network, ...]
    routes: dict[IPv4Network, str]  # learnt prefix -> next hop, as installed in the kernel
    errors: tuple[str, ...]
    updated: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "running": self.running,
            "announced": [str(p) for p in self.announced],
            "blackholes": [str(p) for p in self.blackholes],
            "routes": {str(p): nh for p, nh in self.routes.items()},
            "errors": list(self.errors),
            "updated": self.updated,
        }


def _iso(epoch: Any) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(float(epoch), tz=timezone.utc).isoformat(timespec="seconds")


def _bird_time(stamp: str) -> str:
    """BIRD prints today's times as HH:MM:SS.fff (local time): make them ISO 8601 like the speakers'."""
    try:
        clock = datetime.strptime(stamp.split(".")[0], "%H:%M:%S").time()
    except ValueError:
        return stamp  # an older date: BIRD prints it in full already
    local = datetime.combine(datetime.now().date(), clock).astimezone()
    return local.astimezone(timezone.utc).isoformat(timespec="seconds")


def _agent_status(paths: LabPaths, name: str) -> dict[str, Any] | None:
    data = read_json(SpeakerFiles.of(paths, name).status)
    return data if isinstance(data, dict) else None


def sessions(paths: LabPaths, plan: BgpPlan) -> list[SessionStatus]:
    """Every planned session, from both of its ends (speaker to peer, reflector to client)."""
    out: list[SessionStatus] = []
    for sp in plan.speakers:
        running = speaker.speaker_pid(paths, sp.name) is not None
        peers = ((_agent_status(paths, sp.name) or {}).get("peers") or {}) if running else {}
        for peer in sp.peers:
            info = peers.get(str(peer.address)) or {}
            state = _EXABGP_STATES.get(info.get("state", ""), "idle") if running else "stopped"
            out.append(
                SessionStatus(sp.name, peer.name, str(peer.address), state, _iso(info.get("since")),
                              int(info.get("received", 0)), str(info.get("reason", "")))
            )
    for rr in plan.reflectors:
        found = bird.reflector_sessions(paths, rr.name)
        by_client = {s.client: s for s in found or []}
        for client in rr.clients:
            session = by_client.get(client.name)
            if found is None or session is None:
                out.append(SessionStatus(rr.name, client.name, str(client.address), "stopped", None, 0))
                continue
            state = session.state.lower()
            state = state if state in ("established", "idle") else "connecting"
            out.append(SessionStatus(rr.name, client.name, str(client.address), state, _bird_time(session.since),
                                     session.imported, session.reason))
    return out


def routes(paths: LabPaths, name: str) -> RouteTable | None:
    """The routes a speaker's agent announced and installed, None before its first status file."""
    data = _agent_status(paths, name)
    if data is None:
        return None
    running = bool(data.get("running")) and speaker.speaker_pid(paths, name) is not None
    return RouteTable(
        speaker=name,
        running=running,
        announced=tuple(IPv4Network(p) for p in data.get("announced", [])),
        blackholes=tuple(IPv4Network(p) for p in data.get("blackholes", [])),
        routes={IPv4Network(p): str(nh) for p, nh in (data.get("routes") or {}).items()},
        errors=tuple(data.get("errors", [])),
        updated=_iso(data.get("updated")),
    )
