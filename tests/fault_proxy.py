"""A TCP proxy in front of a test server that can stall replies, like a network that goes silent.

The proxy forwards bytes both ways. Once a client request containing `match`
has passed, the reply to it is forwarded for `pass_bytes` bytes and then held
back for `delay` seconds (the "delay" action); the socket stays open, so the
client sees silence, not an error.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fleettickets_dev.localdb import free_port


class FaultProxy:
    def __init__(self, target_port: int, *, match: bytes, pass_bytes: int, delay: float) -> None:
        self.target_port = target_port
        self.match = match
        self.pass_bytes = pass_bytes
        self.delay = delay
        self.port = free_port()
        self.stalls = 0
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = [self._listener]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for sock in self._sockets:
            _close(sock)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            armed = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, armed), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, armed), daemon=True).start()

    def _requests(self, source: socket.socket, target: socket.socket, armed: threading.Event) -> None:
        while data := _recv(source):
            if self.match in data:
                armed.set()
            target.sendall(data)
        _close(target)

    def _replies(self, source: socket.socket, target: socket.socket, armed: threading.Event) -> None:
        passed, stalled = 0, False
        while data := _recv(source):
            if armed.is_set() and not stalled:
                if passed + len(data) > self.pass_bytes:
                    head = self.pass_bytes - passed
                    target.sendall(data[:head])
                    stalled = True
                    self.stalls += 1
                    if self._stopping.wait(self.delay):
                        return
                    data = data[head:]
                else:
                    passed += len(data)
            try:
                target.sendall(data)
            except OSError:
                return
        _close(target)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


@contextmanager
def fault_proxy(target_port: int, **kwargs: object) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target_port, **kwargs)  # type: ignore[arg-type]
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
