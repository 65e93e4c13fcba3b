"""The probe engine: send crafted packets from endpoints' namespaces and read what comes back, in bulk.

Sockets are opened once per namespace (traffic.netns) and kept: one IP_HDRINCL raw sender per source
namespace, raw capture sockets per namespace and protocol where answers arrive (at the source; at the
destination for SCTP, which nothing answers). Packets are patched templates (traffic.packets); answers are
matched to probes by token (traffic.answers). Sending and capturing interleave in one thread: a burst of
sends, then whatever the capture sockets hold, so the socket buffers never overflow and nothing waits on a
per-probe round trip. Nothing is inferred: a probe is delivered only if a packet proves it.
"""

from __future__ import annotations

import ctypes
import errno
import random
import resource
import select
import socket
import struct
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from traffic.answers import CAPTURED, is_delivery, parse_answer
from traffic.model import Probe, ProbeEndpoint, ProbeResult, Protocol
from traffic.netns import SO_TIMESTAMPNS, open_sockets
from traffic.packets import SOURCE_PORT_BASE, SOURCE_PORT_COUNT, builder

IPPROTO = {Protocol.TCP: socket.IPPROTO_TCP, Protocol.UDP: socket.IPPROTO_UDP,
           Protocol.ICMP: socket.IPPROTO_ICMP, Protocol.SCTP: 132}
ICMP_FILTER = 1  # SOL_RAW option: a bit mask of ICMP types the socket will NOT receive
SOL_RAW = 255  # not exported by Python's socket module
SO_ATTACH_FILTER = 26  # idem
_ANC_SIZE = socket.CMSG_SPACE(16)


@dataclass(frozen=True)
class ProbeOptions:
    reply_timeout: float = 0.5
    """Seconds to wait, after the last probe is sent, for answers before calling the rest dropped."""
    burst: int = 64
    """Probes sent between two reads of the capture sockets."""


def _port_range_filter() -> bytes:
    """Classic BPF for TCP/UDP capture sockets: keep only packets whose destination port is one of our probe
    source ports (answers), not the probes themselves arriving at a destination namespace."""
    low, high = SOURCE_PORT_BASE, SOURCE_PORT_BASE + SOURCE_PORT_COUNT - 1
    insns = [
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf): x = IP header length
        (0x48, 0, 0, 2),  # ldh [x+2]: destination port
        (0x35, 0, 2, low),  # jge low  -> next, else drop
        (0x25, 1, 0, high),  # jgt high -> drop, else accept
        (0x06, 0, 0, 0xFFFF),  # accept
        (0x06, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("HBBI", *i) for i in insns)


_BPF = _port_range_filter()


def _attach_filters(sock: socket.socket, protocol: Protocol) -> None:
    if protocol in (Protocol.TCP, Protocol.UDP):
        buf = ctypes.create_string_buffer(_BPF)
        prog = struct.pack("HL", len(_BPF) // 8, ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
    elif protocol is Protocol.ICMP:
        keep = (1 << 0) | (1 << 3)  # echo reply, destination unreachable
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~keep & 0xFFFFFFFF))


class ProbeEngine:
    """Owns the sockets. Use as a context manager; `run()` as often as wanted, sockets are reused."""

    def __init__(self, options: ProbeOptions | None = None) -> None:
        self.options = options or ProbeOptions()
        self._senders: dict[str, socket.socket] = {}
        self._receivers: dict[tuple[str, Protocol], socket.socket] = {}
        self._by_fd: dict[int, socket.socket] = {}
        self._epoll = select.epoll()
        self._next_token = random.randrange(1, 1 << 31)

    def __enter__(self) -> "ProbeEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in [*self._senders.values(), *self._receivers.values()]:
            sock.close()
        self._senders.clear()
        self._receivers.clear()
        self._by_fd.clear()
        self._epoll.close()

    def take_token(self) -> int:
        token = self._next_token
        self._next_token = (token + 1) & 0xFFFFFFFF or 1
        return token

    def sender(self, netns: str) -> socket.socket:
        sock = self._senders.get(netns)
        if sock is None:
            self._open(netns, True, ())
            sock = self._senders[netns]
        return sock

    def receiver(self, netns: str, protocol: Protocol) -> socket.socket:
        """The capture socket for `protocol` in `netns` (opened by `prepare`)."""
        return self._receivers[(netns, protocol)]

    def _open(self, netns: str, sender: bool, protocols: Iterable[Protocol]) -> None:
        wanted = [p for p in protocols if (netns, p) not in self._receivers]
        sender = sender and netns not in self._senders
        if not sender and not wanted:
            return
        made_sender, receivers = open_sockets(netns, sender, tuple(IPPROTO[p] for p in wanted))
        if made_sender is not None:
            self._senders[netns] = made_sender
        for protocol, sock in zip(wanted, receivers, strict=True):
            _attach_filters(sock, protocol)
            self._receivers[(netns, protocol)] = sock
            self._by_fd[sock.fileno()] = sock
            self._epoll.register(sock.fileno(), select.EPOLLIN)

    def prepare(self, probes: Iterable[Probe]) -> None:
        """Open every socket the probes need (once per namespace, one visit each), before timing starts:
        a sender in each source; where answers arrive, a capture socket per protocol (ICMP always, for
        echo replies, port-unreachables and rejections; SCTP at the destination, nothing answers it)."""
        senders: set[str] = set()
        receivers: dict[str, set[Protocol]] = defaultdict(set)
        for src_ns, dst_ns, protocol in {(p.src.netns, p.dst.netns, p.protocol) for p in probes}:
            senders.add(src_ns)
            receivers[src_ns].add(Protocol.ICMP)
            if protocol is Protocol.SCTP:
                receivers[dst_ns].add(Protocol.SCTP)
            elif protocol is not Protocol.ICMP:
                receivers[src_ns].add(protocol)
        _allow_files(len(self._by_fd) + len(self._senders) + len(senders) + sum(map(len, receivers.values())))
        for netns in sorted(senders | set(receivers)):
            self._open(netns, netns in senders, sorted(receivers.get(netns, ())))

    def session(self) -> "ProbeSession":
        return ProbeSession(self)

    def run(self, probes: Sequence[Probe]) -> list[ProbeResult]:
        """Send every probe once and return one result per probe, in order."""
        self.prepare(probes)
        session = self.session()
        burst = self.options.burst
        for start in range(0, len(probes), burst):
            for probe in probes[start : start + burst]:
                session.send(probe)
            session.drain(0.0)
        session.wait(self.options.reply_timeout)
        return session.results()

    def readable(self, timeout: float) -> list[socket.socket]:
        return [self._by_fd[fd] for fd, _ in self._epoll.poll(timeout)]


class ProbeSession:
    """One batch or stream of probes: tokens handed out, answers matched, results collected."""

    def __init__(self, engine: ProbeEngine) -> None:
        self._engine = engine
        self._probes: list[Probe] = []
        self._sent_ns: list[int] = []
        self._tokens: list[int] = []
        self._answers: dict[int, tuple[str, int]] = {}  # index -> (evidence, answer time ns)
        self._failures: dict[int, str] = {}  # index -> why it could not even be sent
        self._pending: dict[int, tuple[int, bytes, bytes]] = {}  # token -> (index, src ip, dst ip)
        self._endpoint_cache: dict[int, tuple[ProbeEndpoint, bytes, str]] = {}
        self._build = {p: builder(p) for p in Protocol}

    def _addr(self, endpoint: ProbeEndpoint) -> tuple[bytes, str]:
        """Packed and text address, cached by object identity (hashing a dataclass per probe is slow); the
        cache holds the endpoint itself so its id cannot be reused by another object."""
        cached = self._endpoint_cache.get(id(endpoint))
        if cached is None or cached[0] is not endpoint:
            cached = self._endpoint_cache[id(endpoint)] = (endpoint, endpoint.ip.packed, str(endpoint.ip))
        return cached[1], cached[2]

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def send(self, probe: Probe) -> int:
        """Send one probe now; returns its index in `results()`."""
        index = len(self._probes)
        token = self._engine.take_token()
        src_b, _ = self._addr(probe.src)
        dst_b, dst_s = self._addr(probe.dst)
        packet = self._build[probe.protocol](src_b, dst_b, probe.port, token)
        sock = self._engine.sender(probe.src.netns)
        self._probes.append(probe)
        self._tokens.append(token)
        self._pending[token] = (index, src_b, dst_b)
        while True:
            self._sent_ns.append(time.time_ns())
            try:
                sock.sendto(packet, (dst_s, 0))
                break
            except BlockingIOError:  # send buffer full: read answers to let the kernel catch up, retry
                self._sent_ns.pop()
                self.drain(0.001)
            except OSError as error:  # no route, or refused by the source's own filter
                self._pending.pop(token, None)
                self._failures[index] = f"not sent: {errno.errorcode.get(error.errno or 0, error.strerror)}"
                break
        return index

    def drain(self, timeout: float) -> int:
        """Read every answer waiting in the capture sockets (waiting up to `timeout` s for the first)."""
        matched = 0
        pending = self._pending
        answers = self._answers
        for sock in self._engine.readable(timeout):
            recvmsg = sock.recvmsg
            while True:
                try:
                    data, ancdata, _, _ = recvmsg(2048, _ANC_SIZE)
                except BlockingIOError:
                    break
                answer = parse_answer(data)
                if answer is None:
                    continue
                token, probe_src, probe_dst, evidence = answer
                entry = pending.get(token)
                if entry is None or entry[1] != probe_src or entry[2] != probe_dst:
                    continue
                del pending[token]
                answers[entry[0]] = (evidence, _timestamp_ns(ancdata))
                matched += 1
        return matched

    def wait(self, timeout: float) -> None:
        """Keep reading answers until every probe is answered or `timeout` s pass without completing."""
        deadline = time.monotonic() + timeout
        while self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.drain(min(left, 0.05))

    def sent_ns(self, index: int) -> int:
        return self._sent_ns[index]

    def result(self, index: int) -> ProbeResult:
        probe = self._probes[index]
        answer = self._answers.get(index)
        if answer is None:
            evidence = self._failures.get(index, "nothing")
            return ProbeResult(probe, False, False, None, evidence, self._sent_ns[index])
        evidence, at_ns = answer
        delivered = is_delivery(evidence)
        rtt = (at_ns - self._sent_ns[index]) / 1000.0 if delivered else None
        return ProbeResult(probe, delivered, delivered and evidence != CAPTURED, rtt, evidence,
                           self._sent_ns[index])

    def results(self) -> list[ProbeResult]:
        return [self.result(i) for i in range(len(self._probes))]

    def answered(self, index: int) -> bool:
        return index in self._answers


def _allow_files(sockets: int) -> None:
    """Raise the soft limit on open files (1024 on Debian) when the sockets need it: a 1500-pod lab's
    verification holds three per pod."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + 256  # and what the process holds besides
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard),
                                                    hard))


def _timestamp_ns(ancdata: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanos
    return time.time_ns()


def run_probes(probes: Sequence[Probe], options: ProbeOptions | None = None) -> list[ProbeResult]:
    """One-shot convenience: open the sockets, probe, close."""
    with ProbeEngine(options) as engine:
        return engine.run(probes)
