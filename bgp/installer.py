"""Applies route operations to the kernel of the namespace this process runs in (pyroute2, netlink).

Every route it writes carries protocol 186 (`proto bgp` in `ip route`), so the agent can find and remove
exactly its own routes: at start (a previous agent may have died without cleaning up) and at exit.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from bgp.routes import Install, KernelOp

RTPROT_BGP = 186
RTN_UNICAST = 1
RTN_BLACKHOLE = 6
MAIN_TABLE = 254


class KernelRoutes:
    def __init__(self) -> None:
        self._ipr = IPRoute()
        self._ours: set[IPv4Network] = set(self.owned())

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> KernelRoutes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(self, ops: Iterable[KernelOp]) -> list[str]:
        """Apply in order; failures (e.g. an unreachable next hop) are returned as messages, not raised,
        so that one bad route never stops the others."""
        errors = []
        for op in ops:
            try:
                if isinstance(op, Install):
                    self.install(op.prefix, op.next_hop)
                else:
                    self.remove(op.prefix)
            except NetlinkError as err:
                errors.append(f"{op}: {err}")
        return errors

    def _write(self, prefix: IPv4Network, **route: object) -> None:
        # Replace only a route we made; `add` fails (EEXIST) rather than clobber anyone else's route
        # to the same destination, such as the connected route of the fabric.
        command = "replace" if prefix in self._ours else "add"
        try:
            self._ipr.route(command, dst=str(prefix), proto=RTPROT_BGP, table=MAIN_TABLE, **route)
        except NetlinkError as err:
            if err.code == 17:
                raise NetlinkError(17, f"{prefix} already has a route that is not ours: left alone") from None
            raise
        self._ours.add(prefix)

    def install(self, prefix: IPv4Network, next_hop: IPv4Address) -> None:
        self._write(prefix, gateway=str(next_hop))

    def remove(self, prefix: IPv4Network) -> None:
        self._ours.discard(prefix)
        try:
            self._ipr.route("del", dst=str(prefix), proto=RTPROT_BGP, table=MAIN_TABLE)
        except NetlinkError as err:
            if err.code != 3:  # ESRCH: already gone, which is what we wanted
                raise

    def blackhole(self, prefix: IPv4Network) -> None:
        self._write(prefix, type=RTN_BLACKHOLE)

    def remove_blackhole(self, prefix: IPv4Network) -> None:
        self._ours.discard(prefix)
        try:
            self._ipr.route("del", dst=str(prefix), type=RTN_BLACKHOLE, proto=RTPROT_BGP, table=MAIN_TABLE)
        except NetlinkError as err:
            if err.code != 3:
                raise

    def owned(self) -> dict[IPv4Network, IPv4Address | None]:
        """Our routes now in the kernel: prefix -> next hop (None for a blackhole)."""
        routes: dict[IPv4Network, IPv4Address | None] = {}
        for route in self._ipr.route("dump", proto=RTPROT_BGP, table=MAIN_TABLE):
            prefix = IPv4Network(f"{route.get('dst') or '0.0.0.0'}/{route['dst_len']}")
            gateway = route.get("gateway")
            routes[prefix] = IPv4Address(gateway) if gateway and route["type"] == RTN_UNICAST else None
        return routes

    def flush(self) -> int:
        """Remove every route of ours; return how many there were."""
        owned = self.owned()
        for prefix, next_hop in owned.items():
            if next_hop is None:
                self.remove_blackhole(prefix)
            else:
                self.remove(prefix)
        return len(owned)
