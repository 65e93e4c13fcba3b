"""The lab's services process: answers DNS in the DNS pods and proxies TCP in the egress gateway pods.

    python -m services.daemon --config FILE --pid-file FILE --status-file FILE

One process per lab (like the responder). The config file (JSON, written by `services.daemon_ctl`) lists:
* `dns`: {"pods": [netns, ...], "records": {name: ipv4}}: a UDP and a TCP socket on port 53 in each DNS
  pod's namespace, answering from the records (`services.dns.answer`);
* `gateways`: [{"netns", "port", "target"}]: a TCP listener in the gateway pod's namespace; each accepted
  connection is spliced to a connection to target:port opened from the same namespace, so policy sees the
  gateway pod as the client of the external host.
SIGHUP re-reads the config: sockets still wanted stay, others close, new ones open; the status file then
says which generation is loaded. SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.dns import answer
from topology import netns
from traffic.packets import MAGIC as PROBE_MAGIC

BACKLOG = 256


@dataclass(frozen=True)
class Listener:
    netns: str
    identity: int  # nsfs inode: a pod created again under one name is a new namespace
    kind: str  # "dns-udp" | "dns-tcp" | "gateway"
    port: int
    target: str = ""


def _socket_in(ns: str, kind: int) -> socket.socket:
    with netns.entered(ns):
        sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    return sock


def _bound(listener: Listener) -> socket.socket:
    sock = _socket_in(listener.netns, socket.SOCK_DGRAM if listener.kind == "dns-udp" else socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", listener.port))
        if listener.kind != "dns-udp":
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class DnsUdp(asyncio.DatagramProtocol):
    def __init__(self, daemon: "Daemon") -> None:
        self.daemon = daemon
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # the lab's own UDP probes are echoed, as every pod's responder does, so `lab probe` measures DNS
        # pods like any other pod; everything else is a DNS query
        reply = data if data.startswith(PROBE_MAGIC) else answer(data, self.daemon.records)
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)


class Daemon:
    def __init__(self, config: Path, status: Path) -> None:
        self.config, self.status = config, status
        self.records: dict[str, str] = {}
        self.open: dict[Listener, Any] = {}  # listener -> asyncio server or transport
        self.generation = 0
        self.failures: list[str] = []

    def wanted(self, data: dict[str, Any]) -> set[Listener]:
        out = set()
        for ns in data.get("dns", {}).get("pods", []):
            if (ident := netns.identity(ns)) is not None:
                out |= {Listener(ns, ident, "dns-udp", 53), Listener(ns, ident, "dns-tcp", 53)}
        for gw in data.get("gateways", []):
            if (ident := netns.identity(gw["netns"])) is not None:
                out.add(Listener(gw["netns"], ident, "gateway", int(gw["port"]), str(gw["target"])))
        return out

    async def reload(self) -> None:
        data = json.loads(self.config.read_text())
        self.records = {str(k): str(v) for k, v in data.get("dns", {}).get("records", {}).items()}
        wanted = self.wanted(data)
        for listener in [x for x in self.open if x not in wanted]:
            self.open.pop(listener).close()
        self.failures = []
        loop = asyncio.get_running_loop()
        for listener in sorted(wanted - self.open.keys(), key=lambda x: (x.netns, x.kind, x.port)):
            try:
                sock = _bound(listener)
            except OSError as exc:
                self.failures.append(f"{listener.netns} {listener.kind} {listener.port}: {exc.strerror}")
                continue
            if listener.kind == "dns-udp":
                transport, _ = await loop.create_datagram_endpoint(lambda: DnsUdp(self), sock=sock)
                self.open[listener] = transport
            elif listener.kind == "dns-tcp":
                self.open[listener] = await asyncio.start_server(self.serve_dns_tcp, sock=sock)
            else:
                self.open[listener] = await asyncio.start_server(functools.partial(self.proxy, listener), sock=sock)
        self.generation = int(data.get("generation", self.generation + 1))
        self.write_status()

    def write_status(self) -> None:
        tmp = self.status.with_suffix(".tmp")
        tmp.write_text(json.dumps({"generation": self.generation, "listeners": len(self.open),
                                   "records": len(self.records), "failures": self.failures, "pid": os.getpid()}))
        tmp.replace(self.status)

    async def serve_dns_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = answer(await reader.readexactly(size), self.records)
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def proxy(self, gateway: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection to the gateway, spliced to the external host (opened from the gateway pod)."""
        upstream = _socket_in(gateway.netns, socket.SOCK_STREAM)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(upstream, (gateway.target, gateway.port)), 5)
            up_reader, up_writer = await asyncio.open_connection(sock=upstream)
        except (OSError, asyncio.TimeoutError):
            upstream.close()
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def main_async(config: Path, status: Path) -> None:
    daemon = Daemon(config, status)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: asyncio.Queue[None] = asyncio.Queue()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, None)
    await daemon.reload()

    async def reloader() -> None:
        while True:
            await reloads.get()
            await daemon.reload()

    task = asyncio.create_task(reloader())
    await stop.wait()
    task.cancel()
    for handle in daemon.open.values():
        handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--status-file", type=Path, required=True)
    args = parser.parse_args()
    args.pid_file.write_text(f"{os.getpid()}\n")
    asyncio.run(main_async(args.config, args.status_file))


if __name__ == "__main__":
    main()
