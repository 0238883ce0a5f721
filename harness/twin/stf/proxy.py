"""The remote adb port of one leased device: a loopback TCP forwarder to a twin's adb port.

A DeviceFarmer STF provider opens one port per remote-connected device (7400-7700 by default)
and closes it when the device is released or leaves. Its adb answers nothing for a while after
`adb connect` (the device shows "offline"): `offline_s` plays that by holding each new
connection's bytes until the window ends.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

log = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.2
CONNECT_TIMEOUT_S = 3.0
CHUNK_BYTES = 65536


class RemotePort:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port> until closed."""

    def __init__(self, target_port: int, offline_s: float = 0.0):
        self.target_port = target_port
        self.offline_until = time.monotonic() + max(0.0, offline_s)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(ACCEPT_POLL_S)
        self.port: int = self._listener.getsockname()[1]
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(
            target=self._accept, name=f"stf-port-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """STF's remoteConnectUrl form: host:port."""
        return f"127.0.0.1:{self.port}"

    def _track(self, s: socket.socket) -> bool:
        with self._lock:
            if self._closed.is_set():
                return False
            self._socks.add(s)
            return True

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._track(client):
                client.close()
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        wait_s = self.offline_until - time.monotonic()
        if wait_s > 0 and self._closed.wait(wait_s):  # offline after connect: no answer yet
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), CONNECT_TIMEOUT_S)
            upstream.settimeout(None)
            client.settimeout(None)
            for s in (upstream, client):  # adb packets are small: no Nagle stalls
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            log.info("remote port %d: twin port %d: %s", self.port, self.target_port, e)
            self._drop(client)
            return
        if not self._track(upstream):
            upstream.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(CHUNK_BYTES)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._drop(src)
        self._drop(dst)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def close(self) -> None:
        """Close the port and every connection through it. Never raises."""
        self._closed.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            self._drop(s)
        self._thread.join(ACCEPT_POLL_S * 5)
