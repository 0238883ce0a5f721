"""ADB services the twin answers: shell, exec, sync, tcp, framebuffer, root, reboot."""

from __future__ import annotations

import asyncio
import logging
import shlex
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from harness.twin.apk import install_bytes
from harness.twin.proc import BrokenPipe, Pipe, Sink, StreamSink, V2Sink
from harness.twin.shell import Shell
from harness.twin.sync import serve_sync
from harness.twin.transport import Stream, StreamClosed

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

_TASKS: set[asyncio.Task] = set()  # fire-and-forget tasks, referenced until they finish


def _keep(task: asyncio.Task) -> asyncio.Task:
    """Keep a reference to a background task (the loop holds only weak ones) until it is done."""
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


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
        # adb reverse: device port -> (host spec such as "tcp:4000", the transport to use)
        self.reverses: dict[int, tuple[str, object]] = {}

    def resolve(self, service: str) -> Handler | None:  # noqa: C901 -- one branch per adb service (services.md)
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
        if name == "reverse":
            return (lambda s: self._reverse(s, arg)) if pers.has_reverse else None
        if name in ("abb_exec", "abb"):
            if name not in pers.features:
                return None
            return lambda s: self._abb(s, arg, v2=name == "abb")
        if name == "sync":
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
        out = StreamSink(stream)
        words = cmd.replace("'", "").split()
        if words[:3] == ["cmd", "package", "install"] and "-S" in words:
            await self._streamed_install(stream, words[3:], out)
            return
        stdin = Pipe()
        await self._run_until_closed(
            stream, Shell(self.twin).run(cmd, out, out, stdin.reader), stdin=stdin
        )

    async def _shell_v2(self, stream: Stream, cmd: str, raw: bool) -> None:
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

    # --- package installs streamed over the service (adb install on API 24+)
    async def _streamed_install(self, stream: Stream, args: list[str], out) -> None:
        try:
            size = int(args[args.index("-S") + 1])
        except (ValueError, IndexError):
            await out.write(b"Error: -S needs a size\n")
            return
        data = await stream.read_exactly(size) if size else b""
        line = install_bytes(
            self.twin,
            data,
            replace="-r" in args or self.twin.personality.api >= 28,
            downgrade="-d" in args,
        )
        await out.write((line + "\n").encode())

    async def _abb(self, stream: Stream, arg: str, v2: bool) -> None:
        """abb_exec:/abb: <service>\0<args...>: the binder call `cmd` makes, raw (abb_exec) or
        in shell-protocol packets (abb)."""
        words = arg.split("\0")
        out = V2Sink(stream, ID_STDOUT) if v2 else StreamSink(stream)
        if words[:2] == ["package", "install"] and "-S" in words:
            await self._streamed_install(stream, words[2:], out)
            code = 0
        else:
            line = "cmd " + " ".join(shlex.quote(w) for w in words)
            err = V2Sink(stream, ID_STDERR) if v2 else out
            code = await self._run_until_closed(stream, Shell(self.twin).run(line, out, err))
        if v2 and code is not None and not stream.closed:
            await stream.write(_V2_HEADER.pack(ID_EXIT, 1) + bytes([code & 0xFF]))

    # --- adb reverse (AOSP adb daemon: reverse_service -> handle_forward_request)
    async def _reverse(self, stream: Stream, arg: str) -> None:
        if arg == "list-forward":
            body = "".join(
                f"host {_spec(port)} {spec}\n" for port, (spec, _) in sorted(self.reverses.items())
            ).encode()
            # adbd sends the list without an OKAY (only the host side acknowledges first)
            await stream.write(f"{len(body):04x}".encode() + body)
            return
        if arg == "killforward-all":
            self.reverses.clear()
            await stream.write(b"OKAY")
            return
        if arg.startswith("killforward:"):
            port = _port(arg.split(":", 1)[1])
            if port is None or port not in self.reverses:
                await _fail_block(stream, f"listener '{arg.split(':', 1)[1]}' not found")
                return
            del self.reverses[port]
            await stream.write(b"OKAY")
            return
        if arg.startswith("forward:"):
            rest = arg[len("forward:") :]
            norebind = rest.startswith("norebind:")
            if norebind:
                rest = rest[len("norebind:") :]
            local, _, remote = rest.partition(";")
            port = _port(local)
            if port is None or not remote.startswith(
                ("tcp:", "localabstract:", "localfilesystem:")
            ):
                await _fail_block(stream, f"cannot bind listener: unsupported '{local}'")
                return
            if norebind and port in self.reverses:
                await _fail_block(stream, "cannot rebind existing socket")
                return
            self.reverses[port] = (remote, stream.conn)
            self.twin.truth.record("reverse_added", device=local, host=remote)
            await stream.write(b"OKAY")
            return
        await _fail_block(stream, f"unknown reverse command '{arg}'")

    async def _reverse_connect(self, stream: Stream, port: int) -> None:
        """Something on the device connected to a reversed port: open a stream to the host."""
        spec, conn = self.reverses[port]
        try:
            host = await conn.open_to_host(spec)
        except StreamClosed as e:
            self.twin.truth.record("reverse_refused", port=port, reason=str(e))
            return
        self.twin.truth.record("reverse_connected", port=port, host=spec)
        await _splice(stream, host)

    # --- others
    async def _message(self, stream: Stream, text: str) -> None:
        await stream.write(text.encode())

    async def _reboot(self, stream: Stream, arg: str) -> None:
        self.twin.truth.record("reboot_requested", target=arg or "system")
        await stream.close()
        _keep(
            asyncio.get_running_loop().create_task(
                self.twin.reboot(self.twin.options.extra.get("boot_s", 1.0), target=arg)
            )
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
        if port in self.reverses:
            return lambda s: self._reverse_connect(s, port)
        if port in self.tcp_forwards:
            host_port = self.tcp_forwards[port]
            return lambda s: _pipe_to_host(s, host_port)
        return None


def _spec(port: int) -> str:
    return f"tcp:{port}"


def _port(spec: str) -> int | None:
    kind, _, value = spec.partition(":")
    if kind != "tcp" or not value.isdigit():
        return None
    return int(value)


async def _fail_block(stream: Stream, msg: str) -> None:
    data = msg.encode()
    await stream.write(b"FAIL" + f"{len(data):04x}".encode() + data)


async def _splice(a: Stream, b: Stream) -> None:
    """Copy both ways between two streams until either side closes; close both."""

    async def pump(src: Stream, dst: Stream) -> None:
        while True:
            data = await src.read()
            if not data:
                return
            await dst.write(data)

    tasks = [asyncio.ensure_future(pump(a, b)), asyncio.ensure_future(pump(b, a))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await b.close()


async def _drain_input(  # noqa: C901 -- shell v1/v2 input and the PTY line discipline in one read loop
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
