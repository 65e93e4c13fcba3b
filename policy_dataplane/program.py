"""Puts HostPrograms into host namespaces: one `nft -f` transaction per host and change.

`HostFilter(netns)` remembers the program it last applied. `install_base()` writes the empty program (the
table, the dispatch maps and the fail-closed rules) before any pod exists; `apply(new)` sends only the diff;
`resync(new)` replaces the whole table atomically (after a restart, when nothing is remembered): conntrack
entries are not touched and the first rule accepts established flows, so open connections survive.

nft applies a script as one transaction: if any line fails, nothing changes, and `applied` stays as it was.
`apply_hosts` starts one `nft` per changed host at once and then waits for all (hosts are independent).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy_dataplane.hostprogram import EMPTY_PROGRAM, TABLE, HostProgram
from policy_dataplane.netns_exec import CommandFailed, finish, run_in_netns, start_in_netns
from policy_dataplane.render import render_diff, render_full

NFT = ["nft", "-f", "-"]


@dataclass(frozen=True)
class ApplyResult:
    netns: str
    mode: str  # "none" (no change), "diff", "full"
    commands: int  # lines of the transaction
    seconds: float


class HostFilter:
    """The lab's nftables table in one host namespace."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.applied: HostProgram | None = None  # None: unknown (fresh start): the next apply is a full one

    def install_base(self) -> ApplyResult:
        return self.resync(EMPTY_PROGRAM)

    def plan(self, new: HostProgram) -> tuple[str, str]:
        """(mode, nft script) that would bring the kernel from the applied program to `new`."""
        new.check()
        if self.applied is None:
            return "full", render_full(new)
        text = render_diff(self.applied, new)
        return ("diff", text) if text else ("none", "")

    def apply(self, new: HostProgram) -> ApplyResult:
        mode, text = self.plan(new)
        return self._run(new, mode, text)

    def resync(self, new: HostProgram) -> ApplyResult:
        new.check()
        return self._run(new, "full", render_full(new))

    def start(self, new: HostProgram) -> "_Pending":
        mode, text = self.plan(new)
        proc = start_in_netns(self.netns, NFT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) if text else None
        return _Pending(self, new, mode, text, proc, time.perf_counter())

    def _run(self, new: HostProgram, mode: str, text: str) -> ApplyResult:
        started = time.perf_counter()
        if text:
            run_in_netns(self.netns, NFT, stdin=text)
        self.applied = new
        return ApplyResult(self.netns, mode, text.count("\n"), time.perf_counter() - started)

    def listing(self) -> dict[str, Any]:
        return normalized_listing(self.netns)

    def remove(self) -> None:
        """Delete the table (the namespace stays); the next apply starts over."""
        run_in_netns(self.netns, ["nft", "delete", "table", "inet", TABLE], check=False)
        self.applied = None


@dataclass
class _Pending:
    host: HostFilter
    new: HostProgram
    mode: str
    text: str
    proc: subprocess.Popen[str] | None
    started: float

    def wait(self) -> ApplyResult:
        if self.proc is not None:
            finish(self.host.netns, NFT, self.proc, self.text)
        self.host.applied = self.new
        return ApplyResult(self.host.netns, self.mode, self.text.count("\n"), time.perf_counter() - self.started)


def apply_hosts(changes: Mapping[HostFilter, HostProgram]) -> list[ApplyResult]:
    """Apply each host's program, all hosts at once. A host whose transaction fails keeps its old program;
    the others are applied; the first failure is raised after all have finished."""
    pending = [host.start(program) for host, program in changes.items()]
    results, failures = [], []
    for p in pending:
        try:
            results.append(p.wait())
        except CommandFailed as error:
            failures.append(error)
    if failures:
        raise failures[0]
    return results


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


def normalized_listing(netns: str) -> dict[str, Any]:
    """The table as the kernel holds it, comparable across loads: objects by (kind, name), rules by chain."""
    raw = json.loads(run_in_netns(netns, ["nft", "-j", "list", "table", "inet", TABLE]))
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


__all__ = ["HostFilter", "ApplyResult", "apply_hosts", "normalized_listing"]
