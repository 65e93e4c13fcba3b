"""Puts HostPrograms into host namespaces: one `nft -f` transaction per host and change.

`NftablesHostFilter(netns)` remembers the program it last applied. `install_base()` writes the empty program
(the table, the dispatch maps and the fail-closed rules) before any pod exists; `apply(new)` sends only the diff
(when only set members changed, the usual label change, as one nf_tables netlink batch; any other diff through
libnftables in this process, `libnft.py`: no `nft` process either);
`resync(new)` replaces the whole table atomically (after a restart, when nothing is remembered): conntrack
entries are not touched and the first rule accepts established flows, so open connections survive.

nft applies a script as one transaction: if any line fails, nothing changes, and `applied` stays as it was.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from policy_dataplane.dataplane import conntrack
from policy_dataplane.dataplane.backend import ApplyResult
from policy_dataplane.dataplane.hostprogram import EMPTY_PROGRAM, TABLE, HostProgram
from policy_dataplane.dataplane.nft import libnft
from policy_dataplane.dataplane.nft.nftnl import ElementChange, NetlinkRefused, NftSocket
from policy_dataplane.dataplane.nft.render import element_changes, render_diff, render_full
from topology.engine import Engine
from topology.engines import get_engine
from topology.netns import CommandFailed, finish

NFT = ["nft", "-f", "-"]


@dataclass(frozen=True)
class Plan:
    mode: str  # "none", "elements" (netlink set element batch), "diff" (nft -f), "full" (nft -f, replace)
    text: str = ""  # nft script for diff / full
    elements: tuple[ElementChange, ...] = ()

    @property
    def commands(self) -> int:
        return len(self.elements) if self.mode == "elements" else self.text.count("\n")


class NftablesHostFilter:
    """The lab's nftables table in one host namespace (a `backend.HostFilter`)."""

    def __init__(self, netns: str, use_netlink: bool = True, engine: Engine | None = None) -> None:
        self.netns = netns
        self.engine = engine or get_engine()
        self.applied: HostProgram | None = None  # None: unknown (fresh start): the next apply is a full one
        self.use_netlink = use_netlink
        self._netlink: NftSocket | None = None
        self._libnft: libnft.NftContext | None = None
        # True when `applied` came from elsewhere (a saved state): a failed diff then falls back to a full
        # replace instead of failing (the kernel may have been reset since)
        self.fallback_full = False

    def install_base(self) -> ApplyResult:
        result = self.resync(EMPTY_PROGRAM)
        conntrack.tune(self.engine, self.netns)
        return result

    def plan(self, new: HostProgram) -> Plan:
        """What would bring the kernel from the applied program to `new`."""
        if new is self.applied:
            return Plan("none")
        new.check()
        if self.applied is None:
            return Plan("full", render_full(new))
        if self.use_netlink:
            elements = element_changes(self.applied, new)
            if elements is not None:
                return Plan("elements" if elements else "none", elements=tuple(elements))
        text = render_diff(self.applied, new)
        return Plan("diff", text) if text else Plan("none")

    def apply(self, new: HostProgram) -> ApplyResult:
        return self.start(new).wait()

    def resync(self, new: HostProgram) -> ApplyResult:
        new.check()
        return self._start(new, Plan("full", render_full(new))).wait()

    def start(self, new: HostProgram) -> "_Pending":
        plan = self.plan(new)
        try:
            return self._start(new, plan)
        except NetlinkRefused:
            if not self.fallback_full:
                raise
            return self._start(new, Plan("full", render_full(new)))

    def _start(self, new: HostProgram, plan: Plan) -> "_Pending":
        started = time.perf_counter()
        proc = None
        if plan.mode == "elements":  # synchronous: a netlink batch takes well under a millisecond
            if self._netlink is None:
                self._netlink = NftSocket(self.netns, self.engine)
            self._netlink.send(plan.elements)
        elif plan.mode == "diff" and (context := self._context()) is not None:  # synchronous: about 1 ms
            try:
                context.run(plan.text)
            except libnft.LibNftFailed as refused:
                if not self.fallback_full:
                    raise CommandFailed(self.netns, NFT, refused.message) from None
                plan = Plan("full", render_full(new))
                proc = self._start_nft()
        elif plan.text:
            proc = self._start_nft()
        return _Pending(self, new, plan, proc, started)

    def _start_nft(self) -> subprocess.Popen[str]:
        """`nft -f -` in the host's namespace; `_Pending.wait` feeds it the script."""
        return self.engine.start_in(self.netns, NFT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)

    def _context(self) -> libnft.NftContext | None:
        """The host's libnftables context, made inside its namespace on first use (None: no libnftables)."""
        if self._libnft is None and self.use_netlink and libnft.available():
            self._libnft = self.engine.call_in(self.netns, libnft.NftContext)
        return self._libnft

    def listing(self) -> dict[str, Any]:
        return normalized_listing(self.netns, self.engine)

    def remove(self) -> None:
        """Delete the table (the namespace stays); the next apply starts over."""
        self.engine.run_in(self.netns, ["nft", "delete", "table", "inet", TABLE], check=False)
        self.applied = None
        self.close()

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None
        if self._libnft is not None:
            self._libnft.close()
            self._libnft = None


@dataclass
class _Pending:
    host: NftablesHostFilter
    new: HostProgram
    plan: Plan
    proc: subprocess.Popen[str] | None
    started: float

    def wait(self) -> ApplyResult:
        if self.proc is not None:
            try:
                finish(self.host.netns, NFT, self.proc, self.plan.text)
            except CommandFailed:
                if not (self.host.fallback_full and self.plan.mode == "diff"):
                    raise
                self.plan = Plan("full", render_full(self.new))
                self.host.engine.run_in(self.host.netns, NFT, stdin=self.plan.text)
        self.host.applied = self.new
        self.host.fallback_full = False
        return ApplyResult(self.host.netns, self.plan.mode, self.plan.commands, time.perf_counter() - self.started)


# --- reading back -----------------------------------------------------------------------------------------


def _strip(obj: Any) -> Any:
    """Drop what differs between equal programs: handles, counter values, element order."""
    if isinstance(obj, dict):
        out = {k: _strip(v) for k, v in obj.items() if k != "handle"}
        if "counter" in out and isinstance(out["counter"], dict):
            out["counter"] = {}
        if "elem" in out and isinstance(out["elem"], list):
            out["elem"] = sorted(out["elem"], key=lambda e: json.dumps(e, sort_keys=True))
        return out
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def normalized_listing(netns: str, engine: Engine | None = None) -> dict[str, Any]:
    """The table as the kernel holds it, comparable across loads: objects by (kind, name), rules by chain."""
    raw = json.loads((engine or get_engine()).run_in(netns, ["nft", "-j", "list", "table", "inet", TABLE]))
    objects: dict[str, Any] = {}
    rules: dict[str, list[Any]] = {}
    for entry in raw.get("nftables", []):
        for kind, body in entry.items():
            if kind == "metainfo":
                continue
            if kind == "rule":
                rules.setdefault(body["chain"], []).append(_strip(body))
            else:
                objects[f"{kind}:{body['name']}"] = _strip(body)
    return {"objects": objects, "rules": rules}


__all__ = ["NftablesHostFilter", "Plan", "normalized_listing"]
