"""What a command of the twin sees: Proc (argv, stdin, sinks, env, its shell), the Sources and
Sinks its bytes go through, bounded pipes, and the ways a command or shell ends (exit, return,
break, a fatal shell error, SIGPIPE).

The shell (harness.twin.shell) runs commands; the commands (harness.twin.commands, userland, ...)
only see a Proc; both import this module, which imports neither.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.shell.interpreter import Shell
    from harness.twin.transport import Stream

_PIPE_BYTES = 64 * 1024  # a Linux pipe's capacity
_FEED_POLL_S = 0.2  # how often blocked host input checks whether the host went away
_FEED_GIVE_UP_S = 1.0  # host gone and the command took none of its input for this long
SUBST_MAX_BYTES = 16 << 20  # $(...) output kept; more is an error, not the twin's memory
READ_CHUNK = 64 * 1024
SIGPIPE_STATUS = 141

__all__ = [
    "IO",
    "BrokenPipe",
    "BufferSink",
    "BytesSource",
    "FileSink",
    "NullSink",
    "Pipe",
    "Proc",
    "ShellError",
    "ShellExit",
    "Sink",
    "Source",
    "StreamSink",
    "UsageError",
    "V2Sink",
    "ZeroSource",
]


class ShellExit(Exception):
    """`exit N`: stop the shell with status N."""

    def __init__(self, status: int):
        self.status = status


class FunctionReturn(Exception):
    def __init__(self, status: int):
        self.status = status


class LoopBreak(Exception):
    def __init__(self, levels: int, cont: bool):
        self.levels = levels
        self.cont = cont


class ShellError(Exception):
    """A fatal shell error (bad substitution, arithmetic, `${x:?}`): message, exit status 1."""


class UsageError(ShellError):
    """A command's bad option: printed `<tool>: <why> (see "<tool> --help")` (toybox), status 1."""


class BrokenPipe(Exception):
    """The reader of a pipe went away (SIGPIPE)."""


# --- output sinks -------------------------------------------------------------------------
class Sink:
    async def write(self, data: bytes) -> None:
        raise NotImplementedError


class BufferSink(Sink):
    def __init__(self, limit: int | None = None) -> None:
        self.buf = bytearray()
        self.limit = limit

    async def write(self, data: bytes) -> None:
        if self.limit is not None and len(self.buf) + len(data) > self.limit:
            raise ShellError(f"command substitution output over {self.limit} bytes")
        self.buf += data
        await asyncio.sleep(0)


class NullSink(Sink):
    async def write(self, data: bytes) -> None:
        await asyncio.sleep(0)


class StreamSink(Sink):
    """Raw bytes to an adb stream; with crlf=True a PTY's ONLCR turns every LF into CRLF."""

    def __init__(self, stream: Stream, crlf: bool = False):
        self.stream = stream
        self.crlf = crlf

    async def write(self, data: bytes) -> None:
        if data:
            await self.stream.write(data.replace(b"\n", b"\r\n") if self.crlf else data)


class V2Sink(Sink):
    """Shell protocol v2 packets: [id u8][len u32 LE][data]."""

    def __init__(self, stream: Stream, ident: int):
        self.stream = stream
        self.ident = ident

    async def write(self, data: bytes) -> None:
        step = self.stream.conn.max_payload - 5
        for i in range(0, len(data), step):
            chunk = data[i : i + step]
            await self.stream.write(struct.pack("<BI", self.ident, len(chunk)) + chunk)


class FileSink(Sink):
    """`> file` / `>> file`: written through to the twin's file system as the command writes."""

    def __init__(self, shell: Shell, path: str, append: bool):
        self.fs = shell.twin.fs
        self.path = shell.twin.fs.norm(path, shell.cwd)
        if append:
            if self.fs.lookup(self.path) is None:
                self.fs.write(self.path, b"")
        else:
            self.fs.write(self.path, b"")

    async def write(self, data: bytes) -> None:
        self.fs.write(self.path, data, append=True)
        await asyncio.sleep(0)


# --- input sources ------------------------------------------------------------------------
class Source:
    """A command's stdin. Bytes read ahead (by `read`'s line reading) stay for the next reader."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._pos = 0  # bytes of _pending already consumed
        self._eof = False

    async def _fill(self) -> bytes:
        return b""

    def close(self) -> None:
        """The reader is done (a pipe's writer then gets SIGPIPE)."""

    def buffered(self) -> int:
        """Bytes readable without waiting."""
        return len(self._pending) - self._pos

    async def _more(self) -> bool:
        if self._eof:
            return False
        data = await self._fill()
        if not data:
            self._eof = True
            return False
        if self._pos:
            del self._pending[: self._pos]
            self._pos = 0
        self._pending += data
        return True

    async def read(self, n: int = READ_CHUNK) -> bytes:
        """Up to n bytes; b"" at end of input."""
        if not self.buffered():
            await self._more()
        out = bytes(self._pending[self._pos : self._pos + n])
        self._pos += len(out)
        return out

    async def readline(self) -> bytes:
        """One line with its LF (without one at end of input); b"" at end of input."""
        while True:
            cut = self._pending.find(b"\n", self._pos)
            if cut >= 0 or not await self._more():
                break
        end = len(self._pending) if cut < 0 else cut + 1
        out = bytes(self._pending[self._pos : end])
        self._pos = end
        return out

    async def read_all(self, limit: int = SUBST_MAX_BYTES) -> bytes:
        out = bytearray()
        while chunk := await self.read():
            out += chunk
            if len(out) > limit:
                raise ShellError(f"stdin over {limit} bytes")
        return bytes(out)

    async def lines(self):
        """Decoded lines without their LF."""
        while line := await self.readline():
            yield line.decode("utf-8", "replace").removesuffix("\n")


class BytesSource(Source):
    def __init__(self, data: bytes = b"") -> None:
        super().__init__()
        self._pending += data
        self._eof = True


class ZeroSource(Source):
    """/dev/zero."""

    async def _fill(self) -> bytes:
        await asyncio.sleep(0)
        return bytes(READ_CHUNK)


class Pipe:
    """A bounded byte pipe between two commands (or from the adb stream into a command)."""

    def __init__(self, capacity: int = _PIPE_BYTES) -> None:
        self.buf = bytearray()
        self.capacity = capacity
        self.write_closed = False
        self.read_closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.reader = PipeSource(self)
        self.writer = PipeSink(self)

    def close_write(self) -> None:
        self.write_closed = True
        self._readable.set()

    async def feed(self, data: bytes, stop: Callable[[], bool]) -> bool:
        """Write data, waiting for room. Gives up (False) when stop() is true and the reader
        has taken nothing for _FEED_GIVE_UP_S: input that a command does not read must not hide
        the host hanging up, while a slow reader (`exec-in cat > f`) still gets all of it."""
        view = memoryview(bytes(data))
        loop = asyncio.get_running_loop()
        stalled_since: float | None = None
        while len(view):
            if self.read_closed:
                raise BrokenPipe()
            room = self.capacity - len(self.buf)
            if room <= 0:
                now = loop.time()
                if stop():
                    stalled_since = now if stalled_since is None else stalled_since
                    if now - stalled_since >= _FEED_GIVE_UP_S:
                        return False
                self._writable.clear()
                try:
                    await asyncio.wait_for(self._writable.wait(), _FEED_POLL_S)
                    stalled_since = None
                except TimeoutError:
                    pass
                continue
            await self.writer.write(bytes(view[:room]))
            view = view[room:]
        return True

    def close_read(self) -> None:
        self.read_closed = True
        self.buf.clear()
        self._writable.set()


class PipeSink(Sink):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    async def write(self, data: bytes) -> None:
        pipe = self.pipe
        view = memoryview(bytes(data))
        while True:
            if pipe.read_closed:
                raise BrokenPipe()
            room = pipe.capacity - len(pipe.buf)
            if room > 0:
                pipe.buf += view[:room]
                view = view[room:]
                pipe._readable.set()
            if not len(view):
                break
            pipe._writable.clear()
            await pipe._writable.wait()
        await asyncio.sleep(0)


class PipeSource(Source):
    def __init__(self, pipe: Pipe) -> None:
        super().__init__()
        self.pipe = pipe

    async def _fill(self) -> bytes:
        pipe = self.pipe
        while not pipe.buf and not pipe.write_closed:
            pipe._readable.clear()
            await pipe._readable.wait()
        data = bytes(pipe.buf)
        pipe.buf.clear()
        pipe._writable.set()
        return data

    def close(self) -> None:
        self.pipe.close_read()


@dataclass
class IO:
    stdin: Source
    out: Sink
    err: Sink


# --- what a command sees ------------------------------------------------------------------
@dataclass
class Proc:
    """A command's view: argv, stdin (a Source: `await p.stdin.read_all()`), sinks, env, shell."""

    shell: Shell
    argv: list[str]
    stdin: Source
    out: Sink
    err: Sink
    env: dict[str, str]

    def __post_init__(self) -> None:
        if isinstance(self.stdin, bytes | bytearray):  # callers written for the old bytes stdin
            self.stdin = BytesSource(bytes(self.stdin))

    @property
    def twin(self) -> Twin:
        return self.shell.twin

    async def print(self, text: str = "", end: str = "\n") -> None:
        await self.out.write((text + end).encode())

    async def eprint(self, text: str) -> None:
        await self.err.write((text + "\n").encode())

    async def read_stdin(self) -> bytes:
        return await self.stdin.read_all()

    def path(self, name: str) -> str:
        return self.twin.fs.norm(name, self.shell.cwd)
