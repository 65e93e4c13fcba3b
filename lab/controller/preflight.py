"""A write's whole-program check on the controller's warm world, in a forked child.

Before a change commits, every host's program as the change would leave it must be one the lab's backend can
be given (`policy_dataplane.dataplane.preflight`). Built from the store, that world costs about a second at
bank scale. The controller holds it already, compiled: a fork is a copy-on-write snapshot of it, taken in a
few milliseconds with the world lock held (so no sync is halfway). The child applies the change to its copy,
lets the incremental compiler redo what the change touches, checks those hosts' programs and reports; the
controller's own world never sees the change, and the child's memory goes with it.
"""

from __future__ import annotations

import json
import os
import select
import signal
from typing import TYPE_CHECKING, Any

from lab.store import ObjectKey, Placement

if TYPE_CHECKING:
    from lab.runtime import LabRuntime
    from lab.warm import WarmPolicy

CHILD_TIMEOUT = 30.0


def candidate_problems(warm: WarmPolicy, runtime: LabRuntime, puts: list[tuple[ObjectKey, dict[str, Any]]],
                       placed: list[Placement]) -> list[str]:
    """'host: why' for every host the backend could not be given its program once `puts` (and the new
    pods' `placed` addresses) are in the world. Changes `warm`: run it on a copy (the forked child)."""
    from lab.warm import apply_documents
    from policy_dataplane.dataplane.backends import get_backend
    from policy_dataplane.dataplane.preflight import unprogrammable_hosts

    placements = {**warm.placements, **{(p.namespace, p.name): p for p in placed}}
    apply_documents(warm, puts, placements)
    pods_by_host = runtime.placement(placements.values()) if placed or warm.pods_by_host is None else warm.pods_by_host
    programs = warm.dataplane.compile(warm.world, pods_by_host)
    touched = {h: programs[h] for h in warm.dataplane.last_recompiled() if h in programs}
    return unprogrammable_hosts(touched, get_backend(runtime.spec.dataplane))


def check_in_child(warm: WarmPolicy, runtime: LabRuntime, request: dict[str, Any]) -> dict[str, Any]:
    return finish_check(*start_check(warm, runtime, request))


def start_check(warm: WarmPolicy, runtime: LabRuntime, request: dict[str, Any]) -> tuple[int, int]:
    """Fork a child that runs `candidate_problems` on its copy of `warm` (call it with the world lock held:
    no sync halfway in the snapshot); (its pid, the pipe its answer comes on) for `finish_check`."""
    puts = [(ObjectKey(*key), doc) for key, doc in request.get("puts", [])]
    placed = [Placement(*p) for p in request.get("placed", [])]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own copy of everything; it must never return into the controller's code
        status = 0
        try:
            os.close(read_end)
            answer = {"ok": True, "warm": True, "problems": candidate_problems(warm, runtime, puts, placed)}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which falls back to a cold check
            answer, status = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, 1
        try:
            data = json.dumps(answer).encode()
            while data:
                data = data[os.write(write_end, data):]
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def finish_check(pid: int, read_end: int) -> dict[str, Any]:
    """The child's answer (it is waited for, or killed after CHILD_TIMEOUT)."""
    return _collect(pid, read_end)


def _collect(pid: int, read_end: int) -> dict[str, Any]:
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], CHILD_TIMEOUT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return {"ok": False, "error": f"the check took longer than {CHILD_TIMEOUT:g} s"}
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    try:
        answer: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError:
        return {"ok": False, "error": "the check's child died without an answer"}
    return answer


MADV_POPULATE_WRITE = 23  # Linux 5.14+
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_pages_writable_again() -> int:
    """After a fork the kernel write-protects every page of this process; each first write afterwards is a
    page fault (about 10,000 of them in the next sync at bank scale, ~15 ms on the write's critical path).
    Asks the kernel to take them now, before the write commits: MADV_POPULATE_WRITE on every private
    anonymous page that is present (never on untouched ones, which would only grow the process). Returns
    how many pages were present; 0 where the kernel cannot do it."""
    import ctypes

    import numpy as np

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    try:
        return _populate_present_pages(libc, np)
    except OSError:
        return 0  # no /proc to read: the faults come later, as before


def _populate_present_pages(libc: Any, np: Any) -> int:
    present = 0
    with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
        for line in maps:
            fields = line.split()
            anonymous = len(fields) == 5 or fields[5] == "[heap]"
            if not (anonymous and fields[1].startswith("rw") and fields[1][3] == "p"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            pagemap.seek(start // PAGE * 8)
            mask = np.frombuffer(pagemap.read((end - start) // PAGE * 8), dtype=np.uint64) >> np.uint64(63)
            edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
            for first, last in zip(edges[::2], edges[1::2], strict=True):
                if libc.madvise(start + int(first) * PAGE, int(last - first) * PAGE, MADV_POPULATE_WRITE) != 0:
                    return 0  # an older kernel: the faults come later, as before
                present += int(last - first)
    return present


__all__ = ["candidate_problems", "check_in_child", "finish_check", "make_pages_writable_again", "start_check"]
