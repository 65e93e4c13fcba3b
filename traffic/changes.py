"""A ready-made change for policy-latency runs that needs no policy compiler: a plain nftables drop rule.

It denies chosen sources to one destination with one `nft -f` in a namespace (the destination pod's own, on
the input hook, by default; or its host's, on the forward hook), and deletes the table again on revert.
Other sources to the same destination are control paths: they must stay allowed throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

from topology.engines import get_engine
from topology.names import PREFIX
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.policy_latency import AffectedPath, Change

TABLE = f"{PREFIX}_latency_probe"


def render_drop_table(sources: Sequence[ProbeEndpoint], destination: ProbeEndpoint, hook: str) -> str:
    addresses = ", ".join(str(s.ip) for s in sources)
    return (
        f"table inet {TABLE} {{\n"
        f"  chain c {{\n"
        f"    type filter hook {hook} priority 0; policy accept;\n"
        f"    ip saddr {{ {addresses} }} ip daddr {destination.ip} drop\n"
        f"  }}\n"
        f"}}\n"
    )


def nft_in(netns: str, script: str) -> None:
    get_engine().run_in(netns, ["nft", "-f", "-"], stdin=script)


def nft_deny_change(
    name: str,
    destination: ProbeEndpoint,
    denied: Sequence[ProbeEndpoint],
    allowed: Sequence[ProbeEndpoint],
    protocol: Protocol = Protocol.TCP,
    port: int = 80,
    netns: str | None = None,
    hook: str = "input",
) -> Change:
    where = netns or destination.netns
    paths = tuple(
        [AffectedPath(Probe(s, destination, protocol, port), after=False, before=True) for s in denied]
        + [AffectedPath(Probe(s, destination, protocol, port), after=True, before=True) for s in allowed]
    )

    def remove() -> None:
        get_engine().run_in(where, ["nft", "delete", "table", "inet", TABLE], check=False)  # absent is fine

    def apply() -> None:  # a raw rule: no controller involved
        nft_in(where, render_drop_table(denied, destination, hook))

    return Change(name, paths, apply=apply, revert=remove, prepare=remove)
