"""Listeners the traffic tests start inside a pod namespace: a TCP listener and a UDP echo.

Run as `python servers.py TCP_PORT UDP_PORT`; prints "ready" once both are bound.
"""

from __future__ import annotations

import socket
import sys
import threading


def tcp_accept(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(1024)
    ready.release()
    while True:
        conn, _ = server.accept()
        conn.close()


def udp_echo(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", port))
    ready.release()
    while True:
        data, peer = server.recvfrom(4096)
        server.sendto(data, peer)


ready = threading.Semaphore(0)

if __name__ == "__main__":
    tcp_port, udp_port = int(sys.argv[1]), int(sys.argv[2])
    threading.Thread(target=tcp_accept, args=(tcp_port,), daemon=True).start()
    threading.Thread(target=udp_echo, args=(udp_port,), daemon=True).start()
    ready.acquire()
    ready.acquire()
    print("ready", flush=True)
    threading.Event().wait()
