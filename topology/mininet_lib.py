"""Importing Debian's mininet (a system package that scripts/bootstrap links into the lab's venv) safely.

`Mininet()` runs a one-time class init that raises machine-wide sysctls (fs.file-max, net.core.*mem_max,
the root namespace's ARP table sizes, kernel.pty.max). The lab never changes what the machine owns, so
that init is marked done before any Mininet object is made; the lab's namespaces get their own settings.
"""

from __future__ import annotations

from typing import Any

MININET_HINT = "Debian's mininet is missing from the lab's environment: run scripts/bootstrap"


class MininetUnavailable(RuntimeError):
    pass


def load_mininet() -> Any:
    """The `mininet` package with its cli, link, net, node and nodelib modules imported."""
    try:
        import mininet.cli
        import mininet.link
        import mininet.log
        import mininet.net
        import mininet.node
        import mininet.nodelib
    except ImportError as exc:
        raise MininetUnavailable(f"{MININET_HINT} ({exc})") from None
    mininet.net.Mininet.inited = True  # skip fixLimits(): it writes the root namespace's sysctls
    return mininet
