"""Bulk TCP probing: millions of SYNs with sendmmsg/recvmmsg, one worker thread per core.

Why: a probe's `sendto` carries the SYN through the veths, the hosts' filters and the destination's stack,
and its answer back, all in the sender's own system call (veth delivery runs in the caller's softirq), so
the kernel work is done by whoever sends. `ProbeSession` sends one probe per Python call on one thread.
Here probes are grouped by source namespace; each worker thread takes a source, sends its SYNs in batches
of up to BATCH with one `sendmmsg` (through ctypes, which releases the GIL: two workers keep both cores in
the kernel), then reads that source's capture sockets with `recvmmsg`. Packets are built and answers parsed
as numpy arrays (`traffic.bulk_packets`); ICMP answers (rejections, unreachables), rare, go through
`traffic.answers` one by one. Verdicts are those of `ProbeSession`: SYN-ACK or RST (acknowledging token + 1,
from the probe's destination to its source) or the destination's port-unreachable = delivered; another
ICMP error = rejected; nothing = dropped; the first answer wins. A probe's send time is its batch's.

Sockets are the `ProbeEngine`'s (opened by `engine.prepare`), so the namespaces are entered once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from traffic.answers import is_delivery, parse_answer
from traffic.bulk_packets import EVIDENCE, NO_ANSWER, OTHER, TCP_PACKET_LEN, parse_tcp_answers, tcp_syns
from traffic.model import Probe, ProbeEndpoint, ProbeResult, Protocol
from traffic.netns import SO_TIMESTAMPNS
from traffic.probes import ProbeEngine

BATCH = 512  # messages per sendmmsg / recvmmsg
SNAP = 128  # bytes kept of each captured packet: headers, and an ICMP error's quoted probe
_CONTROL = 32  # CMSG_SPACE(16): one SO_TIMESTAMPNS timespec
_MSG_DONTWAIT = 0x40

Progress = Callable[[int, int], None]


def _libc() -> ctypes.CDLL:
    if sys.byteorder != "little" or ctypes.sizeof(ctypes.c_void_p) != 8:
        raise RuntimeError("bulk probing lays out struct mmsghdr for 64-bit little-endian Linux only")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    for name in ("sendmmsg", "recvmmsg"):
        getattr(libc, name).restype = ctypes.c_int
    libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    return libc


class _Messages:
    """`count` struct mmsghdr (8 words each: name, namelen, iov, iovlen, control, controllen, flags,
    msg_len) with their iovecs, sockaddr_in and control buffers, owned by one thread and reused."""

    def __init__(self, count: int, receive: bool) -> None:
        self.headers = np.zeros((count, 8), dtype=np.uint64)
        self.iov = np.zeros((count, 2), dtype=np.uint64)
        rows = np.arange(count, dtype=np.uint64)
        self.headers[:, 2] = self.iov.ctypes.data + rows * 16
        self.headers[:, 3] = 1
        if receive:
            self.data = np.zeros((count, SNAP), dtype=np.uint8)
            self.control = np.zeros((count, _CONTROL), dtype=np.uint8)
            self.iov[:, 0] = self.data.ctypes.data + rows * SNAP
            self.iov[:, 1] = SNAP
            self.headers[:, 4] = self.control.ctypes.data + rows * _CONTROL
        else:
            self.names = np.zeros((count, 16), dtype=np.uint8)
            self.names[:, 0] = socket.AF_INET  # sin_family, little-endian u16; port 0
            self.headers[:, 0] = self.names.ctypes.data + rows * 16
            self.headers[:, 1] = 16
            self.iov[:, 1] = TCP_PACKET_LEN

    def address(self, first: int) -> int:
        return int(self.headers.ctypes.data) + first * 64


@dataclass
class BulkResults:
    """Per probe, in the order given: the kind of answer (`bulk_packets` codes), when it arrived and when
    its batch was sent (time.time_ns), and texts for ICMP answers and probes that could not be sent."""

    kind: npt.NDArray[np.uint8]
    answer_ns: npt.NDArray[np.int64]
    sent_ns: npt.NDArray[np.int64]
    texts: dict[int, str] = field(default_factory=dict)  # index -> ICMP evidence or "not sent: ..."

    @property
    def delivered(self) -> npt.NDArray[np.bool_]:
        out = (self.kind != NO_ANSWER) & (self.kind != OTHER)
        for index, text in self.texts.items():
            out[index] = self.kind[index] == OTHER and is_delivery(text)
        return out

    def evidence(self, index: int) -> str:
        kind = int(self.kind[index])
        if kind == NO_ANSWER:
            return self.texts.get(index, "nothing")
        return EVIDENCE.get(kind) or self.texts[index]

    def to_results(self, probes: Sequence[Probe]) -> list[ProbeResult]:
        """The same `ProbeResult`s a `ProbeSession` gives (RTT measured from the batch's send time)."""
        delivered = self.delivered
        out = []
        for i, probe in enumerate(probes):
            ok = bool(delivered[i])
            rtt = (int(self.answer_ns[i]) - int(self.sent_ns[i])) / 1000.0 if ok else None
            out.append(ProbeResult(probe, ok, ok, rtt, self.evidence(i), int(self.sent_ns[i])))
        return out


class BulkTcpProbe:
    """TCP SYNs from `endpoints[sources[i]]` to `endpoints[destinations[i]]` on `ports` (one for all, or
    `ports[i]`), one probe per i."""

    def __init__(self, engine: ProbeEngine, endpoints: Sequence[ProbeEndpoint], sources: npt.ArrayLike,
                 destinations: npt.ArrayLike, ports: int | npt.ArrayLike, workers: int | None = None) -> None:
        src_index = np.asarray(sources, dtype=np.intp)
        dst_index = np.asarray(destinations, dtype=np.intp)
        if src_index.shape != dst_index.shape or src_index.ndim != 1:
            raise ValueError("bulk probe: one source and one destination per probe")
        self._engine = engine
        self._libc = _libc()
        self._workers = workers or os.cpu_count() or 1
        self.count = n = len(src_index)
        ips = np.array([int(e.ip) for e in endpoints], dtype=np.uint32)
        self._src, self._dst = ips[src_index], ips[dst_index]
        self._base = random.randrange(1, 1 << 31)
        tokens = (np.arange(n, dtype=np.uint64) + np.uint64(self._base)).astype(np.uint32)
        self._packets = tcp_syns(self._src, self._dst, ports, tokens)
        # probes by source namespace: one worker at a time owns a namespace's sender and capture sockets
        namespaces = sorted({e.netns for e in endpoints})
        number = {ns: k for k, ns in enumerate(namespaces)}
        ns_of = np.array([number[e.netns] for e in endpoints], dtype=np.intp)[src_index]
        order = np.argsort(ns_of, kind="stable")
        bounds = np.searchsorted(ns_of[order], np.arange(len(namespaces) + 1))
        self._groups = [(ns, order[bounds[k]:bounds[k + 1]]) for k, ns in enumerate(namespaces)
                        if bounds[k + 1] > bounds[k]]
        first_of = {e.netns: e for e in (endpoints[i] for i in np.unique(src_index))}
        engine.prepare(Probe(e, e, Protocol.TCP) for e in first_of.values())
        self.results = BulkResults(np.zeros(n, dtype=np.uint8), np.zeros(n, dtype=np.int64),
                                   np.zeros(n, dtype=np.int64))
        self._answered = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, engine: ProbeEngine, probes: Sequence[Probe], workers: int | None = None) -> "BulkTcpProbe":
        """From `Probe`s (all TCP)."""
        if {p.protocol for p in probes} - {Protocol.TCP}:
            raise ValueError("bulk probe: TCP probes only")
        ids: dict[int, int] = {}
        endpoints: list[ProbeEndpoint] = []
        for probe in probes:
            for e in (probe.src, probe.dst):
                if id(e) not in ids:
                    ids[id(e)] = len(endpoints)
                    endpoints.append(e)
        sources = [ids[id(p.src)] for p in probes]
        destinations = [ids[id(p.dst)] for p in probes]
        return cls(engine, endpoints, sources, destinations, [p.port for p in probes], workers)

    @property
    def outstanding(self) -> int:
        """Probes sent and not answered yet."""
        return self.count - self._answered - self._failed

    @property
    def _failed(self) -> int:
        return sum(1 for text in self.results.texts.values() if text.startswith("not sent"))

    def send_all(self, progress: Progress | None = None) -> None:
        """Every probe sent once, each source's answers read right after its sends."""
        queue = list(reversed(self._groups))
        done = [0]
        errors: list[BaseException] = []

        def work() -> None:
            out, inp = _Messages(BATCH, receive=False), _Messages(BATCH, receive=True)
            while True:
                with self._lock:
                    if not queue or errors:
                        return
                    netns, indices = queue.pop()
                try:
                    self._send_group(netns, indices, out, inp)
                except BaseException as error:  # noqa: BLE001 - raised again by send_all, in the caller
                    with self._lock:
                        errors.append(error)
                    return
                with self._lock:
                    done[0] += len(indices)
                    if progress:
                        progress(done[0], self.count)

        threads = [threading.Thread(target=work, name=f"bulk-probe-{k}") for k in range(self._workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def drain(self, timeout: float) -> None:
        """Read every capture socket the probes use (waiting up to `timeout` s for the first answer)."""
        inp = _Messages(BATCH, receive=True)
        for sock in self._engine.readable(timeout):
            self._read(sock, inp)

    def wait(self, timeout: float, expected_answers: int | None = None) -> None:
        """Read answers until `expected_answers` (default: all) arrived or `timeout` s passed."""
        goal = self.count if expected_answers is None else expected_answers
        deadline = time.monotonic() + timeout
        while self.count - self.outstanding < goal and time.monotonic() < deadline:
            self.drain(min(0.01, max(0.0, deadline - time.monotonic())))

    def _send_group(self, netns: str, indices: npt.NDArray[np.intp], out: _Messages, inp: _Messages) -> None:
        sender = self._engine.sender(netns)
        receivers = [self._engine.receiver(netns, p) for p in (Protocol.TCP, Protocol.ICMP)]
        base = int(self._packets.ctypes.data)
        dst_bytes = self._dst.astype(">u4").view(np.uint8).reshape(-1, 4)
        for start in range(0, len(indices), BATCH):
            chunk = indices[start:start + BATCH]
            n = len(chunk)
            out.iov[:n, 0] = np.uint64(base) + chunk.astype(np.uint64) * np.uint64(TCP_PACKET_LEN)
            out.names[:n, 4:8] = dst_bytes[chunk]
            self._sendmmsg(sender, out, chunk, receivers, inp)
            for sock in receivers:
                self._read(sock, inp)

    def _sendmmsg(self, sock: socket.socket, out: _Messages, chunk: npt.NDArray[np.intp],
                  receivers: list[socket.socket], inp: _Messages) -> None:
        fd, first, n = sock.fileno(), 0, len(chunk)
        while first < n:
            self.results.sent_ns[chunk[first:]] = time.time_ns()
            sent = self._libc.sendmmsg(fd, out.address(first), n - first, 0)
            if sent > 0:
                first += sent
                continue
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.ENOBUFS):  # send buffer full: let the answers out, retry
                for receiver in receivers:
                    self._read(receiver, inp)
                time.sleep(0.0005)
                continue
            # no route, or refused by the source's own filter: this probe fails, the rest go on
            self.results.texts[int(chunk[first])] = f"not sent: {errno.errorcode.get(code, os.strerror(code))}"
            first += 1

    def _read(self, sock: socket.socket, inp: _Messages) -> None:
        fd = sock.fileno()
        icmp = sock.proto == socket.IPPROTO_ICMP
        while True:
            inp.headers[:, 5] = _CONTROL
            got = self._libc.recvmmsg(fd, inp.address(0), BATCH, _MSG_DONTWAIT, None)
            if got <= 0:
                return
            lengths = (inp.headers[:got, 7] & np.uint64(0xFFFFFFFF)).astype(np.int64)
            stamps = _timestamps(inp.control[:got], inp.headers[:got, 5])
            if icmp:
                self._match_icmp(inp.data[:got], lengths, stamps)
            else:
                self._match_tcp(inp.data[:got], lengths, stamps)
            if got < BATCH:
                return

    def _index(self, tokens: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        return ((tokens.astype(np.int64) - self._base) % (1 << 32)).astype(np.int64)

    def _match_tcp(self, rows: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64],
                   stamps: npt.NDArray[np.int64]) -> None:
        tokens, probe_src, probe_dst, kind = parse_tcp_answers(rows, np.minimum(lengths, SNAP))
        index = self._index(tokens)
        ok = (kind != NO_ANSWER) & (index < self.count)
        safe = np.where(ok, index, 0)
        ok &= (self._src[safe] == probe_src) & (self._dst[safe] == probe_dst)
        self._record(safe[ok], kind[ok], stamps[ok])

    def _match_icmp(self, rows: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64],
                    stamps: npt.NDArray[np.int64]) -> None:
        for row, length, stamp in zip(rows, lengths, stamps, strict=True):
            answer = parse_answer(bytes(row[:min(int(length), SNAP)]))
            if answer is None:
                continue
            token, probe_src, probe_dst, evidence = answer
            i = int(self._index(np.array([token], dtype=np.uint32))[0])
            if (i >= self.count or int(self._src[i]) != int.from_bytes(probe_src, "big")
                    or int(self._dst[i]) != int.from_bytes(probe_dst, "big")):
                continue
            if self._record(np.array([i]), np.array([OTHER], dtype=np.uint8), np.array([stamp])):
                self.results.texts[i] = evidence

    def _record(self, index: npt.NDArray[np.int64], kind: npt.NDArray[np.uint8], stamps: npt.NDArray[np.int64]
                ) -> int:
        """The first answer of each probe wins (a later one, or a second in this batch, is ignored)."""
        if len(index) == 0:
            return 0
        index, first = np.unique(index, return_index=True)
        fresh = self.results.kind[index] == NO_ANSWER
        index, first = index[fresh], first[fresh]
        self.results.kind[index] = kind[first]
        self.results.answer_ns[index] = stamps[first]
        with self._lock:
            self._answered += len(index)
        return len(index)


def _timestamps(control: npt.NDArray[np.uint8], lengths: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """SO_TIMESTAMPNS of each message (the only control message asked for); now where it is missing."""
    words = control.view(np.int64).reshape(len(control), 4)  # cmsg_len, level|type, tv_sec, tv_nsec
    level = control.view(np.int32).reshape(len(control), 8)
    present = (lengths >= np.uint64(_CONTROL)) & (level[:, 2] == socket.SOL_SOCKET) & (level[:, 3] == SO_TIMESTAMPNS)
    stamps = words[:, 2] * 1_000_000_000 + words[:, 3]
    return np.where(present, stamps, time.time_ns())


__all__ = ["BulkTcpProbe", "BulkResults", "BATCH"]
