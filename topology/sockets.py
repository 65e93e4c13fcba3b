"""Netlink sockets kept open per namespace, and waiting for links to come up through them.

A socket stays bound to the namespace it was opened in, so after one setns per namespace every later
request (plumbing, then polling link state) needs no further namespace switch.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

from topology import netns, sysctl
from topology.rtnl import Request, RtnlSocket

READY_TIMEOUT = 30.0  # a safety net for a stuck kernel, not a speed goal


class LinksNotUp(RuntimeError):
    pass


class NetlinkPool:
    """One RtnlSocket per namespace, opened on first use; a context manager that closes them all."""

    def __init__(self) -> None:
        self.sockets: dict[str, RtnlSocket] = {}

    def __enter__(self) -> "NetlinkPool":
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()

    def get(self, name: str, settings: Sequence[sysctl.Setting] = ()) -> RtnlSocket:
        """The namespace's socket; `settings` are written while inside (only when the socket is new)."""
        sock = self.sockets.get(name)
        if sock is None:
            with netns.entered(name):
                sysctl.write_settings(settings)
                sock = RtnlSocket()
            self.sockets[name] = sock
        return sock

    def plumb(self, name: str, settings: Sequence[sysctl.Setting], requests: Sequence[Request]) -> None:
        self.get(name, settings).transact(requests)

    def down_links(self, name: str, ifnames: Collection[str]) -> set[str]:
        links = self.get(name).links()
        return {i for i in ifnames if i not in links or not links[i].oper_up}

    def wait_until_up(self, targets: Mapping[str, Collection[str]], timeout: float = READY_TIMEOUT) -> None:
        """Return once every named link is operationally up in its namespace.

        A veth drops what it is given until the kernel's link watcher (a worker that runs shortly after
        the carrier comes on) activates its queue; operstate turns UP in that same step. Without this
        wait the first packets right after a build or an add can vanish (seen in tests).
        """
        pending = {name: set(ifnames) for name, ifnames in targets.items() if ifnames}
        deadline = time.monotonic() + timeout
        while pending:
            pending = {n: down for n, ifnames in pending.items() if (down := self.down_links(n, ifnames))}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LinksNotUp(f"links still not up after {timeout:.0f} s: {sorted(pending.items())[:5]}")
            time.sleep(0.002)
