"""The lab's responder: pods answer on their declared ports with real kernel sockets.

    python -m topology.responder --lab LAB --pods-file FILE --pid-file FILE [--status-file FILE]

One process per lab. For every pod and declared TCP port a listening socket is opened inside the pod's
namespace (connections are accepted and echoed until the peer closes; an HTTP request gets a short HTTP
answer naming the pod, so `curl` works in demos); for every UDP port an echo socket.
SCTP is skipped (this kernel has no SCTP sockets). SIGHUP re-reads the pods file: new pods get sockets,
removed pods lose them (which also lets their namespaces go). SIGTERM ends it. After every load the
status file says how many sockets are open, so callers wait for it, not for time.

Control functions (start, reload, stop, the pods file) live in `topology.responder_ctl`.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import signal
import socket
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from topology import netns
from topology.responder_ctl import (
    PodsFile,
    Status,
    read_responder_pods,
    reload_responder,
    start_responder,
    stop_responder,
    write_responder_pods,
    write_status,
)

MAX_CONNECTIONS = 4096  # oldest accepted connections are closed beyond this (probes rarely close cleanly)
BACKLOG = 512


@dataclass(frozen=True, order=True)
class Endpoint:
    netns: str
    protocol: str  # "TCP" | "UDP"
    port: int


def wanted_endpoints(pods: PodsFile) -> tuple[set[Endpoint], list[str]]:
    """The sockets the pods file asks for, and what is skipped (SCTP)."""
    wanted, skipped = set(), []
    for target in pods.targets:
        for port in target.ports:
            if port.protocol in ("TCP", "UDP"):
                wanted.add(Endpoint(target.netns, port.protocol, port.port))
            else:
                skipped.append(f"{target.key} {port.port}/{port.protocol}")
    return wanted, skipped


HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"OPTIONS ")


def http_reply(request: bytes, who: str) -> bytes | None:
    """A `200 OK` naming `who` when `request` starts an HTTP/1.x request; None for anything else (echoed)."""
    first_line = request.split(b"\r\n", 1)[0]
    if not first_line.startswith(HTTP_METHODS) or b" HTTP/1." not in first_line:
        return None
    content = f"{who}\n".encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(content)}\r\n"
    body = b"" if first_line.startswith(b"HEAD ") else content
    return head.encode() + b"Connection: close\r\n\r\n" + body


def open_endpoint(endpoint: Endpoint) -> socket.socket:
    """A socket bound inside the endpoint's namespace (it stays there after we come back)."""
    kind = socket.SOCK_STREAM if endpoint.protocol == "TCP" else socket.SOCK_DGRAM
    with netns.entered(endpoint.netns):
        sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", endpoint.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class Responder:
    def __init__(self, pods_file: Path, status_file: Path) -> None:
        self.pods_file, self.status_file = pods_file, status_file
        self.selector = selectors.DefaultSelector()
        # Each socket with the identity (nsfs inode) of the namespace it lives in: a pod deleted and created
        # again under the same name is a new namespace, and its old sockets must go.
        self.endpoints: dict[Endpoint, tuple[socket.socket, int]] = {}
        self.connections: OrderedDict[int, tuple[socket.socket, tuple[str, int]]] = OrderedDict()
        self.names: dict[str, str] = {}  # namespace -> the pod's (or server's) key, for HTTP answers
        self.generation = 0
        self.reload_wanted = True
        self.running = True
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, ("wake", None))

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)

    def _on_hup(self, signum: int, frame: object) -> None:
        self.reload_wanted = True

    def _on_term(self, signum: int, frame: object) -> None:
        self.running = False

    def load(self) -> None:
        """(Re)read the pods file: close what is no longer wanted, open what is missing, report."""
        failed: list[str] = []
        try:
            pods = read_responder_pods(self.pods_file)
            wanted, skipped = wanted_endpoints(pods)
            self.names = {target.netns: target.key for target in pods.targets}
        except (OSError, ValueError) as exc:
            wanted, skipped = set(self.endpoints), []
            failed.append(f"pods file {self.pods_file}: {exc}")
        identity = {name: netns.identity(name) for name in {e.netns for e in wanted | set(self.endpoints)}}
        self._close_stale(wanted, identity)
        failed += self._open_missing(wanted, identity)
        self._close_connections_of_gone_namespaces()
        self.generation += 1
        status = Status(
            pid=os.getpid(),
            generation=self.generation,
            listening=len(self.endpoints),
            skipped=tuple(skipped),
            failed=tuple(failed),
        )
        write_status(self.status_file, status)
        for line in failed:
            print(f"responder: {line}", file=sys.stderr, flush=True)

    def _close_stale(self, wanted: set[Endpoint], identity: dict[str, int | None]) -> None:
        for endpoint, (sock, inode) in list(self.endpoints.items()):
            if endpoint not in wanted or identity[endpoint.netns] != inode:
                del self.endpoints[endpoint]
                self.selector.unregister(sock)
                sock.close()

    def _open_missing(self, wanted: set[Endpoint], identity: dict[str, int | None]) -> list[str]:
        failed = []
        for endpoint in sorted(wanted - set(self.endpoints)):
            inode = identity[endpoint.netns]
            try:
                if inode is None:
                    raise netns.NetnsError(f"network namespace {endpoint.netns!r} does not exist")
                sock = open_endpoint(endpoint)
            except (OSError, netns.NetnsError) as exc:
                failed.append(f"{endpoint.netns} {endpoint.port}/{endpoint.protocol}: {exc}")
                continue
            self.endpoints[endpoint] = (sock, inode)
            self.selector.register(sock, selectors.EVENT_READ, (endpoint.protocol, (endpoint.netns, inode)))
        return failed

    def _close_connections_of_gone_namespaces(self) -> None:
        # An accepted connection pins its namespace as much as a listener does.
        alive = {(e.netns, inode) for e, (_sock, inode) in self.endpoints.items()}
        for fd, (_conn, where) in list(self.connections.items()):
            if where not in alive:
                self._close_connection(fd)

    def _close_connection(self, fd: int) -> None:
        entry = self.connections.pop(fd, None)
        if entry is not None:
            self.selector.unregister(entry[0])
            entry[0].close()

    def _accept(self, listener: socket.socket, where: tuple[str, int]) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        conn.setblocking(False)
        self.connections[conn.fileno()] = (conn, where)
        self.selector.register(conn, selectors.EVENT_READ, ("conn", where))
        while len(self.connections) > MAX_CONNECTIONS:
            self._close_connection(next(iter(self.connections)))

    def _echo(self, conn: socket.socket, where: tuple[str, int]) -> None:
        try:
            data = conn.recv(65536)
            reply = http_reply(data, self.names.get(where[0], where[0])) if data else None
            if reply is not None:
                conn.send(reply)  # then close: the reply says `Connection: close`
            elif data:
                conn.send(data)
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close_connection(conn.fileno())

    @staticmethod
    def _echo_datagram(sock: socket.socket) -> None:
        try:
            data, peer = sock.recvfrom(65536)
            sock.sendto(data, peer)
        except OSError:
            pass

    def serve(self) -> None:
        while self.running:
            if self.reload_wanted:
                self.reload_wanted = False
                self.load()
            for key, _ in self.selector.select(timeout=None):
                kind, where = key.data
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if kind == "wake":
                    try:
                        sock.recv(4096)
                    except BlockingIOError:
                        pass
                elif kind == "TCP":
                    self._accept(sock, where)
                elif kind == "UDP":
                    self._echo_datagram(sock)
                elif sock.fileno() in self.connections:
                    self._echo(sock, where)

    def close(self) -> None:
        for fd in list(self.connections):
            self._close_connection(fd)
        for sock, _inode in self.endpoints.values():
            sock.close()
        self.endpoints.clear()


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _remove_if_ours(pid_file: Path, status_file: Path) -> None:
    """A newer responder may already have taken the files over: leave them alone then."""
    me = str(os.getpid())
    try:
        if pid_file.read_text().split()[:1] == [me]:
            pid_file.unlink()
        if Status.model_validate_json(status_file.read_text()).pid == os.getpid():
            status_file.unlink()
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topology.responder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", required=True)
    parser.add_argument("--pods-file", required=True, type=Path)
    parser.add_argument("--pid-file", required=True, type=Path)
    parser.add_argument("--status-file", type=Path, default=None)
    args = parser.parse_args(argv)
    status_file = args.status_file or args.pid_file.with_name("responder-status.json")
    _raise_fd_limit()
    args.pid_file.parent.mkdir(parents=True, exist_ok=True)
    args.pid_file.write_text(f"{os.getpid()}\n")
    responder = Responder(args.pods_file, status_file)
    responder.install_signals()
    try:
        responder.serve()
    finally:
        responder.close()
        _remove_if_ours(args.pid_file, status_file)
    return 0


__all__ = [
    "Endpoint",
    "Responder",
    "main",
    "open_endpoint",
    "reload_responder",
    "start_responder",
    "stop_responder",
    "wanted_endpoints",
    "write_responder_pods",
]

if __name__ == "__main__":
    sys.exit(main())
