"""Policy latency, the measuring half: a fixed-rate probe stream over the affected paths, with the change
written on a helper thread while the stream runs (so the write never pauses the probes)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from traffic.policy_latency import Change, ChangeOutcome, Send, analyse
from traffic.probes import ProbeEngine, ProbeSession


@dataclass(frozen=True)
class StreamOptions:
    rate: float = 2000.0  # probes per second, all paths together
    baseline: float = 0.05  # seconds of stream before the write (checks the "before" verdicts)
    window: float = 3.0  # give up on paths that have not turned after this many seconds
    tail: float = 0.05  # keep probing this long after every path turned, to catch flaps
    reply_timeout: float = 0.1  # a probe unanswered this long counts as dropped


SWITCH_INTERVAL = 0.0002
"""The GIL hand-over interval while a stream runs (Python's default is 5 ms): the write runs Python code on
another thread, and with the default the probe loop could stall for whole switch intervals."""


def run_change(engine: ProbeEngine, change: Change, options: StreamOptions | None = None) -> ChangeOutcome:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return _run_change(engine, change, options or StreamOptions())
    finally:
        sys.setswitchinterval(previous)


def _run_change(engine: ProbeEngine, change: Change, opts: StreamOptions) -> ChangeOutcome:
    probes = [p.probe for p in change.paths]
    engine.prepare(probes)
    change.prepare()
    session = engine.session()
    convergence = _Convergence(change, session, int(opts.reply_timeout * 1e9))
    sent: list[tuple[int, int]] = []  # (path, session index)
    interval_ns = int(1e9 / opts.rate)
    start = time.time_ns()
    write_ns = start + int(opts.baseline * 1e9)
    applied: dict[str, int] = {}
    writer: threading.Thread | None = None
    converged_at: int | None = None
    next_send = start
    turn = 0

    failure: list[BaseException] = []

    def write() -> None:
        try:
            reached = change.apply()
            applied["reached_ns"] = reached if isinstance(reached, int) else 0
        except BaseException as error:  # re-raised on the caller's thread below
            failure.append(error)
        applied["ns"] = time.time_ns()

    while True:
        now = time.time_ns()
        if writer is None and now >= write_ns:
            write_ns = time.time_ns()
            writer = threading.Thread(target=write, name="policy-write", daemon=True)
            writer.start()
        while next_send <= now:
            path = turn % len(probes)
            sent.append((path, session.send(probes[path])))
            turn += 1
            next_send += interval_ns
        session.drain(max(0.0, (next_send - time.time_ns()) / 1e9 - 0.0005))
        if failure:
            writer.join()  # type: ignore[union-attr]
            raise failure[0]
        if writer is not None and "ns" in applied:
            if converged_at is None and convergence.done(sent, write_ns):
                converged_at = time.time_ns()
            stop_at = (converged_at + int(opts.tail * 1e9)) if converged_at else write_ns + int(opts.window * 1e9)
            if time.time_ns() >= stop_at:
                break
    if writer is not None:
        writer.join()
    session.wait(opts.reply_timeout)
    sends = [Send(path, session.sent_ns(i), session.result(i).delivered) for path, i in sent]
    return analyse(change.name, change.paths, sends, write_ns, applied["ns"], applied.get("reached_ns") or None)


class _Convergence:
    """Walks the sends made after the write, in order, as their fate becomes known (answered, or silent
    for longer than the reply timeout), and tells when every path has shown its new verdict.

    Paths to a new pod that must stay denied are dropped trivially while the pod does not exist yet, so
    for them only drops seen once the pod is up (all its allowed new paths delivered) count."""

    def __init__(self, change: Change, session: ProbeSession, timeout_ns: int) -> None:
        self._after = [p.after for p in change.paths]
        self._new_denied = [p.before is None and not p.after for p in change.paths]
        self._new_allowed = {i for i, p in enumerate(change.paths) if p.before is None and p.after}
        self._turned = [False] * len(change.paths)
        self._session = session
        self._timeout_ns = timeout_ns
        self._cursor = 0
        self._up_ns: int | None = None if self._new_allowed else 0

    def done(self, sent: Sequence[tuple[int, int]], write_ns: int) -> bool:
        now = time.time_ns()
        session = self._session
        while self._cursor < len(sent):
            path, index = sent[self._cursor]
            sent_ns = session.sent_ns(index)
            if sent_ns >= write_ns:
                delivered = session.answered(index) and session.result(index).delivered
                if not delivered and now - sent_ns < self._timeout_ns:
                    break  # fate unknown yet
                counts = not self._new_denied[path] or (self._up_ns is not None and sent_ns >= self._up_ns)
                if delivered == self._after[path] and counts:
                    self._turned[path] = True
                    if self._up_ns is None and all(self._turned[i] for i in self._new_allowed):
                        self._up_ns = sent_ns
            self._cursor += 1
        return all(self._turned)


def run_experiment(
    engine: ProbeEngine, make_change: Callable[[int], Change], repetitions: int,
    options: StreamOptions | None = None, settle: float = 0.05,
) -> list[ChangeOutcome]:
    """`repetitions` changes made by `make_change(i)`, each measured then reverted."""
    outcomes = []
    for i in range(repetitions):
        change = make_change(i)
        try:
            outcomes.append(run_change(engine, change, options))
        finally:
            change.revert()
        time.sleep(settle)
    return outcomes
