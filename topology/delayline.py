"""The lab's delay line: `python -m topology.delayline --lab L --config F --pid-file P --status-file S`.

For kernels without sch_netem (see shaping.py). It binds one nfqueue per shaped link, each inside the
link's namespace (setns in this thread; the socket stays bound there), and holds every queued packet for
the link's delay ± jitter (uniform, as netem's default) or drops it with the link's loss probability.
Releases come from one heap, so a packet leaves within a fraction of a millisecond of its due time.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import os
import random
import select
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from topology.engines import get_engine
from topology.nfqueue import NF_ACCEPT, NF_DROP, QueueSocket

MODULE = "topology.delayline"


@dataclass(frozen=True)
class QueueConfig:
    netns: str
    queue: int
    delay_ms: float
    jitter_ms: float
    loss_pct: float


def read_config(path: Path) -> list[QueueConfig]:
    return [QueueConfig(**entry) for entry in json.loads(path.read_text())["queues"]]


def hold_seconds(config: QueueConfig, rng: random.Random) -> float | None:
    """How long to hold one packet; None to drop it."""
    if config.loss_pct and rng.random() * 100 < config.loss_pct:
        return None
    jitter = rng.uniform(-config.jitter_ms, config.jitter_ms) if config.jitter_ms else 0.0
    return max(0.0, config.delay_ms + jitter) / 1000


class DelayLine:
    def __init__(self, configs: list[QueueConfig]) -> None:
        self.rng = random.Random()
        self.queues: list[tuple[QueueSocket, QueueConfig]] = []
        engine = get_engine()  # the socket is opened in the link's namespace and stays bound there
        for config in configs:
            self.queues.append((engine.call_in(config.netns, functools.partial(QueueSocket, config.queue)), config))
        self.due: list[tuple[float, int, int]] = []  # (release time, queue index, packet id)
        self.stopping = False

    def serve(self) -> None:
        by_fd = {q.fileno(): i for i, (q, _) in enumerate(self.queues)}
        while not self.stopping:
            # select, not poll: its timeout has microseconds, poll's whole milliseconds (1 ms late a pass).
            timeout = 1.0 if not self.due else max(0.0, self.due[0][0] - time.monotonic())
            readable, _, _ = select.select(list(by_fd), [], [], timeout)
            for fd in readable:
                self._take(by_fd[fd])
            self._release(time.monotonic())

    def _take(self, index: int) -> None:
        queue, config = self.queues[index]
        now = time.monotonic()
        for packet_id in queue.packet_ids():
            hold = hold_seconds(config, self.rng)
            if hold is None:
                queue.verdict(packet_id, NF_DROP)
            elif hold == 0:
                queue.verdict(packet_id, NF_ACCEPT)
            else:
                heapq.heappush(self.due, (now + hold, index, packet_id))

    def _release(self, now: float) -> None:
        while self.due and self.due[0][0] <= now:
            _, index, packet_id = heapq.heappop(self.due)
            self.queues[index][0].verdict(packet_id, NF_ACCEPT)

    def close(self) -> None:
        for queue, _ in self.queues:
            queue.close()  # packets still held are dropped by the kernel with the queue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--lab", required=True)  # for `ps` and for processes.our_pid's marker
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--status-file", type=Path, required=True)
    args = parser.parse_args(argv)
    line = DelayLine(read_config(args.config))

    def stop(signum: int, frame: object) -> None:
        line.stopping = True

    signal.signal(signal.SIGTERM, stop)
    args.pid_file.write_text(f"{os.getpid()}\n")
    args.status_file.write_text(json.dumps({"pid": os.getpid(), "queues": len(line.queues)}))
    try:
        line.serve()
    finally:
        line.close()
        args.pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
