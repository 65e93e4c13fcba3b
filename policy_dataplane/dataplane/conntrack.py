"""Connection tracking in a host namespace that runs the lab's stateful filter (nftables or iptables).

One setting differs from the kernel's defaults: a half-open TCP entry (SYN seen, no answer yet: SYN_SENT)
is kept 5 s, not 120 s. A flow a host lets out but the destination's host drops leaves such an entry on the
source's host. Verifying the bank sends 2.25 million SYNs in ~20-30 s, nearly all of them denied, and with
120 s entries every host namespace holds ~140,000 of them by the end. All namespaces share the kernel's one
conntrack hash (262,144 buckets here), so every packet's lookup walks chains of ~8 entries. Interleaved runs
on one bank lab: 75,000 and 78,000 probes/s at 120 s, 89,000 and 110,000 at 5 s.

At 5 s a client's first SYN retransmissions (1, 2 and 4 s apart) still find their entry; a later one makes
a new entry, which policy decides again, the same way. Established flows are untouched.

The files are the namespace's own (see topology.sysctl): the root namespace is never written.
"""

from __future__ import annotations

from topology import sysctl
from topology.engine import Engine

SYN_SENT_TIMEOUT_S = 5
SETTINGS: tuple[sysctl.Setting, ...] = (
    ("net.netfilter.nf_conntrack_tcp_timeout_syn_sent", str(SYN_SENT_TIMEOUT_S)),
)


def tune(engine: Engine, netns: str) -> None:
    """Write SETTINGS in `netns`. Called once its filter is in: the filter's conntrack rules have loaded
    conntrack by then, so its files exist even where conntrack is a module."""
    engine.call_in(netns, lambda: sysctl.write_settings(SETTINGS))


__all__ = ["SETTINGS", "SYN_SENT_TIMEOUT_S", "tune"]
