"""The adbd side of one ADB transport connection: handshake, auth, streams, flow control."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from harness.twin import protocol as p
from harness.twin.auth import parse_public_key

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

# An idle host keeps its transport open for as long as it lives (a real adbd never times out a
# quiet transport): no read timeout; a dead peer is found by TCP keepalive instead.
KEEPALIVE_IDLE_S = 60  # first probe after this much silence
KEEPALIVE_INTERVAL_S = 10  # between unanswered probes
KEEPALIVE_COUNT = 6  # unanswered probes before the kernel drops the connection
_PAYLOAD_TIMEOUT_S = 30.0  # a header announced a payload: it must follow


def enable_keepalive(sock: socket.socket | None) -> bool:
    """Turn on TCP keepalive (idle, interval, count as above). Never raises.

    Returns:
        True when the options were set.
    """
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
            ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ):
            if hasattr(socket, name):  # Linux; macOS has TCP_KEEPALIVE instead of KEEPIDLE
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        return True
    except OSError as e:
        log.warning("TCP keepalive not set: %s", e)
        return False


class StreamClosed(Exception):
    """The host closed the stream (or the transport went away)."""


class Stream:
    """One ADB stream: a service's view of the host socket.

    Writes are chunked to the negotiated payload size and wait for the host's OKAY before
    each next WRTE, as adbd does without the delayed_ack feature.
    """

    def __init__(self, conn: AdbConnection, local_id: int, remote_id: int, service: str):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.closed = False
        self.opened = asyncio.Event()  # the host's OKAY to a stream this side opened
        if remote_id:
            self.opened.set()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buf = bytearray()
        self._eof = False

    # --- host -> device
    def _on_write(self, data: bytes) -> None:
        self._inbox.put_nowait(data)

    def _on_okay(self, remote_id: int) -> None:
        if not self.opened.is_set():  # the host accepted a stream this side opened
            self.remote_id = remote_id
            self.opened.set()
            return
        self._can_write.set()

    def _on_close(self) -> None:
        self.closed = True
        self._inbox.put_nowait(None)
        self._can_write.set()
        self.opened.set()

    async def read(self) -> bytes:
        """Next chunk the host wrote; b"" at end of stream."""
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if self._eof:
            return b""
        data = await self._inbox.get()
        if data is None:
            self._eof = True
            return b""
        return data

    async def read_exactly(self, n: int) -> bytes:
        """Exactly n bytes across WRTE boundaries. Raises StreamClosed at EOF."""
        while len(self._buf) < n:
            if self._eof:
                raise StreamClosed(
                    f"stream {self.service!r} closed after {len(self._buf)} of {n} bytes"
                )
            data = await self._inbox.get()
            if data is None:
                self._eof = True
            else:
                self._buf += data
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    # --- device -> host
    async def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        step = self.conn.max_payload
        for i in range(0, len(view), step):
            await self._can_write.wait()
            if self.closed or self.conn.dead:
                raise StreamClosed(f"stream {self.service!r} closed by the host")
            self._can_write.clear()
            await self.conn.send(p.A_WRTE, self.local_id, self.remote_id, bytes(view[i : i + step]))

    async def close(self) -> None:
        """Close our side (CLSE). Never raises."""
        if self.closed:
            return
        self.closed = True
        self._can_write.set()
        try:
            await self.conn.send(p.A_CLSE, self.local_id, self.remote_id)
        except Exception as e:  # noqa: BLE001 -- transport already gone
            log.debug("close of %s: %s", self.service, e)
        self.conn.streams.pop(self.local_id, None)


ServiceHandler = Callable[[Stream], Awaitable[None]]


class AdbConnection:
    """One TCP connection from the adb server to this twin."""

    def __init__(self, twin: Twin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.twin = twin
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.streams: dict[int, Stream] = {}
        self.tasks: set[asyncio.Task] = set()
        self._next_id = 1
        self.online = False
        self.dead = False
        self.max_payload = twin.personality.max_payload
        self.token: bytes | None = None
        self.pending_key = None
        self.keepalive = enable_keepalive(writer.get_extra_info("socket"))

    # --- sending
    async def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        if self.dead:
            raise StreamClosed("transport closed")
        self.writer.write(
            p.packet(command, arg0, arg1, data, checksum=self.twin.personality.checksum)
        )
        await self.writer.drain()

    async def send_cnxn(self) -> None:
        pers = self.twin.personality
        await self.send(p.A_CNXN, pers.version, pers.max_payload, self.twin.banner().encode())
        self.online = True
        self.twin.truth.record("transport_online", peer=self.peer)

    async def send_auth_token(self) -> None:
        self.token = os.urandom(p.TOKEN_SIZE)
        await self.send(p.A_AUTH, p.AUTH_TOKEN, 0, self.token)

    # --- main loop
    async def run(self) -> None:
        self.twin.connections.add(self)
        reason = "host closed the connection"
        try:
            while True:
                limit = self.max_payload if self.online else p.MAX_HANDSHAKE_PAYLOAD
                raw = await self.reader.readexactly(p.HEADER_SIZE)  # idle: wait as adbd does
                header = p.parse_header(raw, max(limit, p.MAX_HANDSHAKE_PAYLOAD))
                data = (
                    await asyncio.wait_for(
                        self.reader.readexactly(header.length), _PAYLOAD_TIMEOUT_S
                    )
                    if header.length
                    else b""
                )
                await self.dispatch(header, data)
        except asyncio.IncompleteReadError as e:
            if e.partial:
                reason = f"truncated packet ({len(e.partial)} of {e.expected} bytes)"
        except p.ProtocolViolation as e:
            reason = f"protocol violation: {e}"
            log.warning("%s: dropping connection from %s: %s", self.twin.serial_hint, self.peer, e)
        except (TimeoutError, ConnectionError, StreamClosed) as e:
            reason = f"{type(e).__name__}: {e}"
        finally:
            self.twin.truth.record("transport_closed", peer=self.peer, reason=reason)
            await self.shutdown()

    async def shutdown(self) -> None:
        """Drop the transport and every stream. Never raises."""
        if self.dead:
            return
        self.dead = True
        for stream in list(self.streams.values()):
            stream._on_close()
        for task in list(self.tasks):
            task.cancel()
        try:
            self.writer.close()
        except Exception as e:  # noqa: BLE001 -- already closed; cleanup never raises: it logs
            log.debug("transport: closing the writer: %s", e)
        self.twin.connections.discard(self)

    async def dispatch(self, h: p.Header, data: bytes) -> None:
        if h.command == p.A_CNXN:
            await self.on_cnxn(h, data)
        elif h.command == p.A_AUTH:
            await self.on_auth(h, data)
        elif not self.online:
            raise p.ProtocolViolation(f"{h.name} before the connection was authorised")
        elif h.command == p.A_OPEN:
            await self.on_open(h, data)
        elif h.command == p.A_WRTE:
            stream = self.streams.get(h.arg1)
            if stream is None or stream.remote_id != h.arg0:
                await self.send(p.A_CLSE, 0, h.arg0)  # unknown stream: adbd refuses it
                return
            stream._on_write(data)
            await self.send(p.A_OKAY, stream.local_id, stream.remote_id)
        elif h.command == p.A_OKAY:
            stream = self.streams.get(h.arg1)
            if stream is not None:
                stream._on_okay(h.arg0)
        elif h.command == p.A_CLSE:
            stream = self.streams.pop(h.arg1, None)
            if stream is not None:
                stream._on_close()
        elif h.command == p.A_STLS:
            raise p.ProtocolViolation("STLS is not supported by this device")

    async def on_cnxn(self, h: p.Header, data: bytes) -> None:
        self.max_payload = min(self.twin.personality.max_payload, max(h.arg1, 4096))
        banner = data.rstrip(b"\0").decode("utf-8", "replace")
        self.twin.truth.record(
            "cnxn", peer=self.peer, host_version=f"0x{h.arg0:08x}", banner=banner[:200]
        )
        if self.twin.personality.auth_required:
            await self.send_auth_token()
        else:
            await self.send_cnxn()

    async def on_auth(self, h: p.Header, data: bytes) -> None:
        if not self.twin.personality.auth_required or self.online:
            return
        if h.arg0 == p.AUTH_SIGNATURE:
            key = self.token and self.twin.keys.verify(self.token, data)
            if key:
                self.twin.truth.record("auth_accepted", key=key.fingerprint)
                await self.send_cnxn()
            else:
                self.twin.truth.record("auth_rejected_signature")
                await self.send_auth_token()
        elif h.arg0 == p.AUTH_RSAPUBLICKEY:
            try:
                key = parse_public_key(data)
            except ValueError as e:
                raise p.ProtocolViolation(f"bad public key in AUTH: {e}") from None
            self.pending_key = key
            self.twin.truth.record("auth_key_offered", key=key.fingerprint, comment=key.comment)
            if self.twin.accept_new_keys:
                await self.accept_pending_key()
            # else: the "Allow USB debugging?" dialog waits for the user; the host says unauthorized
        else:
            raise p.ProtocolViolation(f"AUTH type {h.arg0} from the host")

    async def accept_pending_key(self) -> bool:
        """The user taps "Allow": remember the key and bring the transport online."""
        if self.pending_key is None or self.online:
            return False
        self.twin.keys.add(self.pending_key)
        self.twin.truth.record("auth_key_allowed", key=self.pending_key.fingerprint)
        self.pending_key = None
        await self.send_cnxn()
        return True

    async def on_open(self, h: p.Header, data: bytes) -> None:
        service = data.rstrip(b"\0").decode("utf-8", "replace")
        handler = self.twin.services.resolve(service)
        if handler is None:
            self.twin.truth.record("open_refused", service=service[:200])
            await self.send(p.A_CLSE, 0, h.arg0)
            return
        local_id = self._next_id
        self._next_id += 1
        stream = Stream(self, local_id, h.arg0, service)
        self.streams[local_id] = stream
        await self.send(p.A_OKAY, local_id, h.arg0)
        task = asyncio.get_running_loop().create_task(self._serve(stream, handler))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open_to_host(self, service: str, timeout_s: float = 10.0) -> Stream:
        """Open a stream towards the host (adb reverse: the device side connects).

        Raises:
            StreamClosed: the host refused it or did not answer within timeout_s.
        """
        local_id = self._next_id
        self._next_id += 1
        stream = Stream(self, local_id, 0, service)
        self.streams[local_id] = stream
        await self.send(p.A_OPEN, local_id, 0, service.encode() + b"\0")
        try:
            await asyncio.wait_for(stream.opened.wait(), timeout_s)
        except TimeoutError:
            stream.closed = True
            self.streams.pop(local_id, None)
            raise StreamClosed(f"host did not answer OPEN {service!r}") from None
        if stream.closed:
            self.streams.pop(local_id, None)
            raise StreamClosed(f"host refused {service!r}")
        return stream

    async def _serve(self, stream: Stream, handler: ServiceHandler) -> None:
        try:
            await handler(stream)
        except (StreamClosed, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: service %r failed", self.twin.serial_hint, stream.service)
        finally:
            await stream.close()
