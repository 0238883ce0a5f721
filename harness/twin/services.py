"""ADB services the twin answers: shell, exec, sync, tcp, framebuffer, root, reboot."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from harness.twin.transport import Stream, StreamClosed

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.shell import Pipe, Sink

log = logging.getLogger(__name__)

# Shell v2 packet ids (AOSP adb shell_protocol.h)
ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW = 0, 1, 2, 3, 4, 5
_V2_HEADER = struct.Struct("<BI")
_TCP_CONNECT_TIMEOUT_S = 3.0
_HANGUP_GRACE_S = 1.0  # a shell job's time to finish after the host closed its stream

Handler = Callable[[Stream], Awaitable[None]]
TcpHandler = Callable[[Stream], Awaitable[None]]


class ServiceTable:
    def __init__(self, twin: Twin):
        self.twin = twin
        # device-local TCP services: port -> in-twin handler, or -> a host loopback port
        self.tcp_handlers: dict[int, TcpHandler] = {}
        self.tcp_forwards: dict[int, int] = {}
        self.stalled: set[str] = set()  # fault injection: service prefixes that hang

    def resolve(self, service: str) -> Handler | None:
        pers = self.twin.personality
        name, _, arg = service.partition(":")
        base = name.split(",")[0]
        if any(service.startswith(s) for s in self.stalled):
            return self._stall
        if base == "shell":
            opts = name.split(",")[1:]
            if "v2" in opts:
                if not pers.shell_v2:
                    return None
                return lambda s: self._shell_v2(s, arg, raw="raw" in opts)
            return lambda s: self._shell_v1(s, arg)
        if name == "exec":
            return (lambda s: self._exec(s, arg)) if pers.has_exec else None
        if name == "sync":
            from harness.twin.sync import serve_sync

            return lambda s: serve_sync(self.twin, s)
        if name == "tcp":
            return self._tcp_handler(arg)
        if name == "framebuffer":
            return self._framebuffer
        if name == "root":
            return lambda s: self._message(s, "adbd cannot run as root in production builds\n")
        if name == "unroot":
            return lambda s: self._message(s, "adbd not running as root\n")
        if name == "reboot":
            return lambda s: self._reboot(s, arg)
        if service == "reconnect":
            return lambda s: self._reconnect(s)
        if name == "remount":
            return lambda s: self._message(s, "remount failed: Operation not permitted\n")
        return None

    # --- shell
    async def _shell_v1(self, stream: Stream, cmd: str) -> None:
        """`shell:` (raw). API <= 20 ran it under a PTY: output LF -> CRLF, input echoed."""
        from harness.twin.shell import Pipe, Shell, StreamSink

        pty = self.twin.personality.pty_crlf
        out = StreamSink(stream, crlf=pty)
        shell = Shell(self.twin)
        stdin = Pipe()
        if not cmd.strip():
            watcher = asyncio.ensure_future(
                _drain_input(stream, False, stdin, out if pty else None)
            )
            try:
                await shell.interactive(stream, out, stdin.reader)
            finally:
                watcher.cancel()
            return
        await self._run_until_closed(
            stream, shell.run(cmd, out, out, stdin.reader), stdin=stdin, echo=out if pty else None
        )

    async def _exec(self, stream: Stream, cmd: str) -> None:
        from harness.twin.shell import Pipe, Shell, StreamSink

        out = StreamSink(stream)
        stdin = Pipe()
        await self._run_until_closed(
            stream, Shell(self.twin).run(cmd, out, out, stdin.reader), stdin=stdin
        )

    async def _shell_v2(self, stream: Stream, cmd: str, raw: bool) -> None:
        from harness.twin.shell import Pipe, Shell, V2Sink

        shell = Shell(self.twin)
        out, err = V2Sink(stream, ID_STDOUT), V2Sink(stream, ID_STDERR)
        stdin = Pipe()
        if not cmd.strip():
            if not raw:  # `adb shell` on a terminal: a prompt (the PTY itself is not modelled)
                watcher = asyncio.ensure_future(_drain_input(stream, True, stdin))
                try:
                    await shell.interactive(stream, out, stdin.reader)
                finally:
                    watcher.cancel()
                if not stream.closed:
                    await stream.write(_V2_HEADER.pack(ID_EXIT, 1) + bytes([0]))
                return
            cmd = "sh"  # `echo 'cmds' | adb shell`: sh reads its script from stdin
        code = await self._run_until_closed(
            stream, shell.run(cmd, out, err, stdin.reader), v2=True, stdin=stdin
        )
        if code is not None and not stream.closed:
            await stream.write(_V2_HEADER.pack(ID_EXIT, 1) + bytes([code & 0xFF]))

    async def _run_until_closed(
        self,
        stream: Stream,
        job: Awaitable[int],
        v2: bool = False,
        stdin: Pipe | None = None,
        echo: Sink | None = None,
    ) -> int | None:
        """Run a shell job with the host's input as its stdin; cancel it when the host closes
        the stream (Ctrl-C, timeout) as SIGHUP would."""
        task = asyncio.ensure_future(job)
        watcher = asyncio.ensure_future(_drain_input(stream, v2, stdin, echo, task))
        try:
            done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            # host went away: its input ends (EOF); a command still running after a short
            # grace (to finish what it read, e.g. `exec-in 'cat > f'`) is stopped like SIGHUP
            if stdin is not None:
                stdin.close_write()
            done, _ = await asyncio.wait({task}, timeout=_HANGUP_GRACE_S)
            if task in done:
                return None
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, StreamClosed):
                pass
            return None
        except StreamClosed:
            return None
        finally:
            watcher.cancel()
            if not task.done():
                task.cancel()

    # --- others
    async def _message(self, stream: Stream, text: str) -> None:
        await stream.write(text.encode())

    async def _reboot(self, stream: Stream, arg: str) -> None:
        self.twin.truth.record("reboot_requested", target=arg or "system")
        await stream.close()
        asyncio.get_running_loop().create_task(
            self.twin.reboot(self.twin.options.extra.get("boot_s", 1.0))
        )

    async def _reconnect(self, stream: Stream) -> None:
        await stream.write(b"done")
        await stream.close()
        await self.twin.drop_transports()

    async def _stall(self, stream: Stream) -> None:
        self.twin.truth.record("service_stalled", service=stream.service)
        while not stream.closed:
            await stream.read()

    async def _framebuffer(self, stream: Stream) -> None:
        rgba = self.twin.screen.frame()
        h, w = rgba.shape[:2]
        # version 2; bpp; colorSpace (1, see adb-wire-facts 2); size; w; h; r,b,g,a offsets/lengths
        header = struct.pack("<14I", 2, 32, 1, w * h * 4, w, h, 0, 8, 16, 8, 8, 8, 24, 8)
        self.twin.truth.record("framebuffer", frame=self.twin.screen.frame_no)
        await stream.write(header)
        await stream.write(memoryview(rgba).cast("B"))

    def _tcp_handler(self, arg: str) -> Handler | None:
        try:
            port = int(arg.rsplit(":", 1)[-1])
        except ValueError:
            return None
        if port in self.tcp_handlers:
            return self.tcp_handlers[port]
        if port in self.tcp_forwards:
            host_port = self.tcp_forwards[port]
            return lambda s: _pipe_to_host(s, host_port)
        return None


async def _drain_input(
    stream: Stream,
    v2: bool,
    stdin: Pipe | None = None,
    echo: Sink | None = None,
    job: asyncio.Task | None = None,
) -> None:
    """Feed what the host sends on a shell stream into the command's stdin until it closes.

    v2: packets [id u8][len u32 LE][data]; id 0 is stdin, id 4 closes stdin, id 5 (window size)
    is ignored. v1/exec: raw bytes. With a PTY (echo given, API <= 20) the line discipline is
    modelled: input echoed (LF shown as CRLF), CR read as LF (ICRNL), Ctrl-D ends input,
    Ctrl-C interrupts the command. Returns when the host closes the stream.
    """
    from harness.twin.shell import BrokenPipe

    buf = bytearray()
    try:
        while True:
            data = await stream.read()
            if not data:
                return
            if stdin is None or stdin.write_closed:
                continue
            if not v2:
                if echo is not None:
                    if b"\x03" in data and job is not None:
                        job.cancel()
                        return
                    eof = b"\x04" in data
                    data = data.split(b"\x04", 1)[0].replace(b"\r", b"\n")
                    if data:
                        await echo.write(data)
                    if not await stdin.feed(data, lambda: stream.closed):
                        return
                    if eof:
                        stdin.close_write()
                    continue
                if not await stdin.feed(data, lambda: stream.closed):
                    return
                continue
            buf += data
            while len(buf) >= _V2_HEADER.size:
                ident, length = _V2_HEADER.unpack_from(buf)
                if len(buf) < _V2_HEADER.size + length:
                    break
                payload = bytes(buf[_V2_HEADER.size : _V2_HEADER.size + length])
                del buf[: _V2_HEADER.size + length]
                if ident == ID_STDIN and not stdin.write_closed:
                    if not await stdin.feed(payload, lambda: stream.closed):
                        return
                elif ident == ID_CLOSE_STDIN:
                    stdin.close_write()
    except BrokenPipe:  # the command stopped reading its stdin: keep draining until close
        while await stream.read():
            pass
    finally:
        if stdin is not None:
            stdin.close_write()


async def _pipe_to_host(stream: Stream, host_port: int) -> None:
    """Splice a device tcp:<port> stream onto a loopback port of the twin's world."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", host_port), _TCP_CONNECT_TIMEOUT_S
        )
    except (TimeoutError, OSError):
        return

    async def up() -> None:
        while True:
            data = await stream.read()
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def down() -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await stream.write(data)

    tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        writer.close()
