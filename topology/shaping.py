"""Link shaping, pure: delay, jitter, loss and bandwidth of a fabric or pod link, and how to apply them.

Like Mininet's TCLink, a link's shape applies in each direction: a 20 ms delay on a node's fabric link
adds 20 ms each way, about 40 ms to a round trip across it. Two ways to apply it, same fields:

- `netem` (the kernel's sch_netem, what TCLink uses): a netem qdisc on the egress of both ends.
- `delayline`, for kernels built without sch_netem: in the namespace of the link's lab end, mangle
  PREROUTING (in) and POSTROUTING (out) rules send the link's IPv4 packets to an nfqueue; the lab's
  delay-line process (delayline.py) holds each one for delay ± jitter, or drops it (loss), then lets it go.

Bandwidth is a tbf qdisc on both ends either way (with netem as its child when netem is used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from topology.kernel_text import token

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)?\s*$")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}
TBF_BURST_BYTES = 32 * 1024
TBF_LATENCY_MS = 100
Method = str  # "netem" or "delayline"


def duration_ms(value: str | float | int) -> float:
    """'20ms', '500us', '0.1s' or a number of milliseconds -> milliseconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        ms = float(value)
    else:
        match = DURATION_RE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 20ms, 500us or 0.1s")
        ms = float(match[1]) * UNIT_MS[match[2]]
    if not 0 <= ms <= 60_000:
        raise ValueError(f"{value!r} must be between 0 and 60 s")
    return ms


@dataclass(frozen=True)
class LinkShape:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    bandwidth_mbit: float | None = None

    @property
    def timed(self) -> bool:
        """Anything beyond bandwidth (what netem or the delay line does)."""
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)


@dataclass(frozen=True)
class ShapedLink:
    """A veth with a shape. `netns`/`ifname` is the lab end (node or host namespace, where the delay line's
    rules go); `peer_netns`/`peer_ifname` the other end (fabric bridge port, or the pod's eth0)."""

    name: str
    netns: str
    ifname: str
    peer_netns: str
    peer_ifname: str
    shape: LinkShape


def _ms(value: float) -> str:
    return f"{round(value * 1000)}us"


def netem_args(shape: LinkShape) -> list[str]:
    args = ["netem"]
    if shape.delay_ms or shape.jitter_ms:
        args += ["delay", _ms(shape.delay_ms)] + ([_ms(shape.jitter_ms)] if shape.jitter_ms else [])
    if shape.loss_pct:
        args += ["loss", f"{shape.loss_pct:g}%"]
    return args


def tbf_args(mbit: float) -> list[str]:
    return ["tbf", "rate", f"{mbit:g}mbit", "burst", str(TBF_BURST_BYTES), "latency", f"{TBF_LATENCY_MS}ms"]


def tc_commands(link: ShapedLink, method: Method) -> list[tuple[str, list[str]]]:
    """(namespace, `tc` argv) for both ends: tbf for bandwidth, netem (under it, if any) for the rest.
    The caller runs each inside its namespace through the topology engine."""
    commands = []
    for netns, ifname in ((link.netns, link.ifname), (link.peer_netns, link.peer_ifname)):
        base = ["tc", "qdisc", "replace", "dev", token(ifname, "interface")]
        netem = method == "netem" and link.shape.timed
        if link.shape.bandwidth_mbit:
            commands.append((netns, [*base, "root", "handle", "1:", *tbf_args(link.shape.bandwidth_mbit)]))
            if netem:
                commands.append((netns, [*base, "parent", "1:1", "handle", "10:", *netem_args(link.shape)]))
        elif netem:
            commands.append((netns, [*base, "root", "handle", "1:", *netem_args(link.shape)]))
    return commands


def delayline_rules(links: list[tuple[ShapedLink, int]]) -> str:
    """iptables-restore --noflush text for one namespace: each link's packets, both ways, to its queue.
    `--queue-bypass`: with no delay line bound (not started yet, or gone), packets pass unshaped."""
    lines = ["*mangle"]
    for link, queue in links:
        target = f"-j NFQUEUE --queue-num {queue} --queue-bypass"
        ifname = token(link.ifname, "interface")  # iptables-restore text: checked in kernel_text's one place
        lines += [f"-A PREROUTING -i {ifname} {target}", f"-A POSTROUTING -o {ifname} {target}"]
    return "\n".join(lines + ["COMMIT", ""])
