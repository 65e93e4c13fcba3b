"""Policy latency, the pure half: what a change is, and what a probe stream around it shows.

A `Change` is callbacks plus the paths it affects with their verdict before and after. The runner
(`traffic.stream`) probes every affected path round-robin at a fixed rate, calls `apply` (the "write") while
the stream runs, and hands the sends to `analyse`:
- per path, latency = send time of the first probe after the write that shows the new verdict, minus the
  time of the write (an upper bound: it is known to within one probe interval of that path);
- a write that reports when it reached the lab's controller (committed to the store, the controller asked
  to program it) is also timed from that moment: the controller's part, without the command's own work
  (parsing, validation, the whole-program check) before it;
- flaps = probes after that first one that still show the old verdict; paths whose verdict does not change
  (controls) are not timed: every probe of theirs after the write with another verdict is a flap;
- for paths that did not exist before (`before=None`, a new pod), any delivered probe on a path that must
  be denied is a leak; the pod's "enforced" time is when its last allowed path first delivered (it is then
  up and filtered).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from traffic.latency import percentiles
from traffic.model import Probe


@dataclass(frozen=True)
class AffectedPath:
    probe: Probe
    after: bool  # allowed once the change is enforced
    before: bool | None  # allowed before the change; None: the path did not exist (new pod)


@dataclass(frozen=True)
class Change:
    name: str
    paths: tuple[AffectedPath, ...]
    # the write: called on a helper thread while probes keep flowing; it may return when (time.time_ns) the
    # write reached the controller
    apply: Callable[[], int | None]
    revert: Callable[[], None] = field(default=lambda: None)  # undo, so the next repetition starts clean
    prepare: Callable[[], None] = field(default=lambda: None)  # before the stream starts (not timed)


@dataclass(frozen=True)
class Send:
    path: int
    sent_ns: int
    delivered: bool


@dataclass(frozen=True)
class PathOutcome:
    path: AffectedPath
    latency_us: float | None  # None: never showed the new verdict within the window
    resolution_us: float | None  # the new verdict took effect after the path's previous probe: this much earlier at most
    flaps: int  # after the new verdict first showed, probes showing another (controls: any, after the write)
    leaks: int
    baseline_wrong: int  # probes before the write that did not show `before`
    probes: int


@dataclass(frozen=True)
class ChangeOutcome:
    change: str
    write_us: float  # how long `apply` itself took
    paths: tuple[PathOutcome, ...]
    handover_us: float | None = None  # from the write's start until it reached the controller (None: unknown)

    @property
    def timed(self) -> tuple[PathOutcome, ...]:
        """The paths whose verdict changes (control paths, same verdict before and after, are not timed)."""
        return tuple(p for p in self.paths if p.path.before != p.path.after)

    @property
    def all_paths_us(self) -> float | None:
        """The change is in effect when every affected path shows its new verdict."""
        values = [p.latency_us for p in self.timed]
        return None if not values or None in values else max(v for v in values if v is not None)

    @property
    def from_controller_us(self) -> float | None:
        """From the write reaching the controller until every affected path shows its new verdict."""
        every = self.all_paths_us
        return None if every is None or self.handover_us is None else every - self.handover_us

    @property
    def enforced_us(self) -> float | None:
        """New pods: when the last allowed path first delivered (the pod is reachable, filters in place)."""
        allowed = [p.latency_us for p in self.paths if p.path.before is None and p.path.after]
        return None if not allowed or None in allowed else max(v for v in allowed if v is not None)

    @property
    def leaks(self) -> int:
        return sum(p.leaks for p in self.paths)


def analyse(change: str, paths: Sequence[AffectedPath], sends: Sequence[Send], write_ns: int,
            applied_ns: int, reached_ns: int | None = None) -> ChangeOutcome:
    by_path: list[list[Send]] = [[] for _ in paths]
    for send in sorted(sends, key=lambda s: s.sent_ns):
        by_path[send.path].append(send)
    up_ns = _new_pod_up_ns(paths, by_path, write_ns)
    outcomes = []
    for path, path_sends in zip(paths, by_path, strict=True):
        before = [s for s in path_sends if s.sent_ns < write_ns]
        after = [s for s in path_sends if s.sent_ns >= write_ns]
        # A denied path to a new pod is "dropped" trivially until the pod exists: only drops once it is up
        # (its allowed paths deliver) show enforcement.
        counts_from = up_ns if path.before is None and not path.after and up_ns is not None else write_ns
        if path.before == path.after:  # a control path: nothing to time, any other verdict is a disruption
            flaps = sum(s.delivered != path.after for s in after)
            baseline_wrong = sum(s.delivered != path.before for s in before)
            outcomes.append(PathOutcome(path, None, None, flaps, 0, baseline_wrong, len(path_sends)))
            continue
        first = next((i for i, s in enumerate(after) if s.delivered == path.after and s.sent_ns >= counts_from),
                     None)
        latency = None if first is None else (after[first].sent_ns - write_ns) / 1000.0
        resolution = None
        if first is not None:
            previous = after[first - 1].sent_ns if first > 0 else (before[-1].sent_ns if before else write_ns)
            resolution = (after[first].sent_ns - max(previous, write_ns)) / 1000.0
        flaps = 0 if first is None else sum(s.delivered != path.after for s in after[first:])
        leaks = sum(s.delivered for s in after) if path.before is None and not path.after else 0
        baseline_wrong = 0 if path.before is None else sum(s.delivered != path.before for s in before)
        outcomes.append(PathOutcome(path, latency, resolution, flaps, leaks, baseline_wrong, len(path_sends)))
    handover = None if reached_ns is None else (reached_ns - write_ns) / 1000.0
    return ChangeOutcome(change, (applied_ns - write_ns) / 1000.0, tuple(outcomes), handover)


def _new_pod_up_ns(paths: Sequence[AffectedPath], by_path: Sequence[Sequence[Send]], write_ns: int
                   ) -> int | None:
    """When every allowed path to or from a new pod had delivered once (None: no such path, or never)."""
    firsts = []
    for path, sends in zip(paths, by_path, strict=True):
        if path.before is None and path.after:
            first = next((s.sent_ns for s in sends if s.sent_ns >= write_ns and s.delivered), None)
            if first is None:
                return None
            firsts.append(first)
    return max(firsts) if firsts else None


def distribution(values: Sequence[float | None]) -> dict[str, float | int]:
    """Sample count, missing (never converged) count, and p50/p90/p99/max of the rest (µs)."""
    present = [v for v in values if v is not None]
    out: dict[str, float | int] = {"samples": len(present), "missing": len(values) - len(present)}
    out.update(percentiles(present))
    out["max"] = max(present) if present else float("nan")
    return out


def summarise(outcomes: Sequence[ChangeOutcome]) -> dict[str, object]:
    """The distributions a report prints: per path, per change (all paths), write time, leaks, flaps."""
    per_path = [p.latency_us for o in outcomes for p in o.timed]
    return {
        "changes": len(outcomes),
        "per_path_us": distribution(per_path),
        "all_paths_us": distribution([o.all_paths_us for o in outcomes]),
        "from_controller_us": distribution([o.from_controller_us for o in outcomes if o.handover_us is not None]),
        "resolution_us": distribution([p.resolution_us for o in outcomes for p in o.timed]),
        "write_us": distribution([o.write_us for o in outcomes]),
        "enforced_us": distribution([o.enforced_us for o in outcomes if any(p.path.before is None
                                                                           for p in o.paths)]),
        "leaks": sum(o.leaks for o in outcomes),
        "flaps": sum(p.flaps for o in outcomes for p in o.paths),
        "baseline_wrong": sum(p.baseline_wrong for o in outcomes for p in o.paths),
    }
