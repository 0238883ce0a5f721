"""The twin's /system/bin/sh: Android's mksh, interpreted over the twin's file system and commands.

harness.twin.grammar parses; this module expands words and runs the tree:
- expansions: parameters (`$?`, `$$`, `$!`, `$#`, `$@`, `$*`, `$0`-`$9`, `${10}`, `${..}`
  forms, `set -u`), `~`, `$(...)`/backticks, `$((...))` (32-bit signed, `010` is ten, as
  mksh), field splitting on IFS, pathname globbing against the twin's file system;
- pipelines run concurrently through bounded pipes (flow control: a writer waits for its
  reader, `yes | head -1` ends with SIGPIPE status 141 for `yes`); every member of a pipeline
  runs in a subshell, the last one too (`echo x | read v` leaves v unset, as mksh 59c does);
- `&` runs a job as a task with a pid (`$!`) that `wait` collects; its stdin is /dev/null; a job
  still writing to the session holds it open, one redirected elsewhere lives on (a daemon);
- builtins with shell state live here (cd pwd export readonly unset local shift set exit
  return break continue read wait eval . source exec type whence command test [ echo true
  false : sh let getopts trap(EXIT) umask), plus `[[ ]]` and `(( ))`; other commands come
  from the `@command` registry (commands.py, userland.py and the other modules);
- loops and commands yield to the event loop every few steps, so `while true; do :; done`
  never stops the twin; the service ends a job when the host closes its stream.
Messages follow mksh (`/system/bin/sh: x: not found`, 127; `script[3]: ...` inside scripts),
worded as mksh 59c on API 33+. Checked against Debian's mksh in tests/twin/test_shell_grammar.py.
Not modelled: signals other than the host hanging up, `exec` of file descriptors above 2,
job control (`fg`, `jobs`), aliases, arrays.

Size: the executor, its expansions and builtins share the Shell object (2,200 lines); splitting it
(expansion, builtins, I/O plumbing) is left to issue 17's next step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import logging
import os
import random
import re
import stat as st
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.fs import FsError
from harness.twin.grammar import ShellSyntaxError

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.transport import Stream

log = logging.getLogger(__name__)

_MAX_LINE = 64 * 1024
_PIPE_BYTES = 64 * 1024  # a Linux pipe's capacity
_FEED_POLL_S = 0.2  # how often blocked host input checks whether the host went away
_FEED_GIVE_UP_S = 1.0  # host gone and the command took none of its input for this long
_SUBST_MAX_BYTES = 16 << 20  # $(...) output kept; more is an error, not the twin's memory
_READ_CHUNK = 64 * 1024
_MAX_DEPTH = 64  # function/eval/source nesting; deeper is an error, not a Python RecursionError
_SH = "/system/bin/sh"
_PATH = "/sbin:/vendor/bin:/system/sbin:/system/bin:/system/xbin"
_SIGPIPE_STATUS = 141
_YIELD_EVERY = 16  # commands or loop turns between two yields to the event loop
_FIRST_PID = 5000

__all__ = [
    "BufferSink",
    "NullSink",
    "Proc",
    "Shell",
    "ShellExit",
    "ShellSyntaxError",
    "Sink",
    "Source",
    "StreamSink",
    "UsageError",
    "V2Sink",
    "parse",
]
parse = g.parse


class ShellExit(Exception):
    """`exit N`: stop the shell with status N."""

    def __init__(self, status: int):
        self.status = status


class _Return(Exception):
    def __init__(self, status: int):
        self.status = status


class _Break(Exception):
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

    async def read(self, n: int = _READ_CHUNK) -> bytes:
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

    async def read_all(self, limit: int = _SUBST_MAX_BYTES) -> bytes:
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
        return bytes(_READ_CHUNK)


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
        self.reader = _PipeSource(self)
        self.writer = _PipeSink(self)

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


class _PipeSink(Sink):
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


class _PipeSource(Source):
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


# --- arithmetic ---------------------------------------------------------------------------
_ARITH_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|"
    r"(<<=|>>=|\+\+|--|\+=|-=|\*=|/=|%=|&=|\^=|\|=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&^|!~?:=(),]))"
)
_BINARY = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


class _Arith:
    """mksh arithmetic: 32-bit signed integers, C operators, variables by name (no `**`)."""

    def __init__(self, text: str, shell: Shell):
        self.text = text
        self.shell = shell
        self.toks: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _ARITH_TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                self.fail(f"unexpected '{stripped[pos:].strip()[:1]}'")
            num, name, op = m.groups()
            self.toks.append(("num", num) if num else ("name", name) if name else ("op", op))
            pos = m.end()
        self.i = 0

    def fail(self, why: str) -> None:
        raise ShellError(f"{self.text.strip()}: {why}")

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def eval(self) -> int:
        if not self.toks:
            return 0
        v = self.assign()
        while self.peek() == ("op", ","):
            self.i += 1
            v = self.assign()
        if self.i < len(self.toks):
            self.fail(f"unexpected '{self.peek()[1]}'")
        return v

    def var(self, name: str) -> int:
        raw = self.shell.get(name) or "0"
        try:
            return _i32(int(raw, 0) if raw.strip().lower().startswith("0x") else int(raw))
        except ValueError:
            return _Arith(raw, self.shell).eval()

    def assign(self) -> int:
        kind, name = self.peek()
        if kind == "name" and self.i + 1 < len(self.toks):
            op = self.toks[self.i + 1]
            if op[0] == "op" and op[1].endswith("=") and op[1] not in ("==", "!=", "<=", ">="):
                self.i += 2
                rhs = self.assign()
                if op[1] != "=":
                    rhs = self.binop(op[1][:-1], self.var(name), rhs)
                self.shell.set(name, str(rhs))
                return rhs
        return self.ternary()

    def ternary(self) -> int:
        cond = self.binary(1)
        if self.peek() == ("op", "?"):
            self.i += 1
            a = self.assign()
            if self.peek() != ("op", ":"):
                self.fail("unexpected 'end of expression'")
            self.i += 1
            b = self.assign()
            return a if cond else b
        return cond

    def binop(self, op: str, a: int, b: int) -> int:
        if op in ("/", "%") and b == 0:
            self.fail("zero divisor")
        r = {
            "||": lambda: int(bool(a) or bool(b)),
            "&&": lambda: int(bool(a) and bool(b)),
            "|": lambda: a | b,
            "^": lambda: a ^ b,
            "&": lambda: a & b,
            "==": lambda: int(a == b),
            "!=": lambda: int(a != b),
            "<": lambda: int(a < b),
            "<=": lambda: int(a <= b),
            ">": lambda: int(a > b),
            ">=": lambda: int(a >= b),
            "<<": lambda: a << (b & 31),
            ">>": lambda: a >> (b & 31),
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: int(a / b),
            "%": lambda: a - int(a / b) * b,
        }[op]()
        return _i32(r)

    def binary(self, level: int) -> int:
        left = self.unary()
        while True:
            kind, op = self.peek()
            prec = _BINARY.get(op) if kind == "op" else None
            if prec is None or prec < level:
                return left
            self.i += 1
            right = self.binary(prec + 1)
            left = self.binop(op, left, right)

    def unary(self) -> int:
        kind, val = self.peek()
        if kind == "op" and val in ("-", "+", "!", "~"):
            self.i += 1
            v = self.unary()
            return _i32({"-": -v, "+": v, "!": int(not v), "~": ~v}[val])
        if kind == "op" and val in ("++", "--"):
            self.i += 1
            k2, name = self.peek()
            if k2 != "name":
                self.fail(f"unexpected '{val}'")
            self.i += 1
            v = _i32(self.var(name) + (1 if val == "++" else -1))
            self.shell.set(name, str(v))
            return v
        if kind == "op" and val == "(":
            self.i += 1
            v = self.assign()
            while self.peek() == ("op", ","):
                self.i += 1
                v = self.assign()
            if self.peek() != ("op", ")"):
                self.fail("unexpected 'end of expression'")
            self.i += 1
            return v
        if kind == "num":
            self.i += 1
            base = 16 if val.lower().startswith("0x") else 10  # mksh: 010 is ten
            try:
                return _i32(int(val, base))
            except ValueError:
                self.fail("bad number")
        if kind == "name":
            self.i += 1
            v = self.var(val)
            k2, op = self.peek()
            if k2 == "op" and op in ("++", "--"):
                self.i += 1
                self.shell.set(val, str(_i32(v + (1 if op == "++" else -1))))
            return v
        self.fail("unexpected 'end of expression'" if kind == "end" else f"unexpected '{val}'")
        return 0


# --- the shell ----------------------------------------------------------------------------
@dataclass
class _Root:
    """What all shells of one session share: pids, jobs, the session's tasks."""

    next_pid: int = _FIRST_PID
    jobs: dict[int, asyncio.Task] = field(default_factory=dict)
    tasks: set[asyncio.Task] = field(default_factory=set)
    session: tuple[Sink, ...] = ()  # the stream's sinks: a job writing there holds the session
    holding: set[int] = field(default_factory=set)
    signalled: dict[int, int] = field(default_factory=dict)  # job pid -> 128 + the signal
    ticks: int = 0

    def pid(self) -> int:
        self.next_pid += 1
        return self.next_pid


Segs = list[tuple[str, bool]]  # (text, quoted) pieces of one field


class Shell:
    """One shell (a process): variables, functions, cwd, positional parameters, options."""

    def __init__(self, twin: Twin, parent: Shell | None = None):
        self.twin = twin
        if parent is None:
            self.root = _Root()
            _install_system_bin(twin)
            self.vars: dict[str, str] = {
                "PATH": _PATH,
                "HOME": "/",
                "ANDROID_DATA": "/data",
                "ANDROID_ROOT": "/system",
                "EXTERNAL_STORAGE": "/sdcard",
                "IFS": " \t\n",
                "PS1": "$ ",
            }
            self.exported = set(self.vars) - {"IFS", "PS1"}
            self.funcs: dict[str, g.Node] = {}
            self.cwd = "/"
            self.params: list[str] = []
            self.arg0 = _SH
            self.opts: set[str] = set()
            self.status = 0
            self.last_bg = ""
            self.pid = self.root.pid()
        else:
            self.root = parent.root
            self.vars = dict(parent.vars)
            self.exported = set(parent.exported)
            self.funcs = dict(parent.funcs)
            self.cwd = parent.cwd
            self.params = list(parent.params)
            self.arg0 = parent.arg0
            self.opts = set(parent.opts)
            self.status = parent.status
            self.last_bg = parent.last_bg
            self.pid = parent.pid  # $$ stays the parent's in a subshell
        self.script: str | None = None  # a script's name for messages (`name[line]: ...`)
        self.traps: dict[str, str] = {}  # only EXIT is acted on (no signals reach the twin)
        self.base_io: IO | None = None  # set by `exec >file`
        self._optsub = 1  # getopts: the next letter inside a grouped `-abc`...
        self._optsub_for = 1  # ...of the argument at this OPTIND
        self.line = 1
        self.depth = 0
        self.locals: list[dict[str, str | None]] = []
        self._noerr = 0  # inside a condition: `set -e` does not apply
        self.background = self.root.tasks

    # compatibility: older code reads/writes shell.env
    @property
    def env(self) -> dict[str, str]:
        return self.vars

    def fork(self) -> Shell:
        return Shell(self.twin, self)

    # variables
    def get(self, name: str) -> str | None:  # noqa: C901 -- one branch per special parameter ($?, $#, $@, ...)
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(self.pid)
        if name == "!":
            return self.last_bg
        if name == "#":
            return str(len(self.params))
        if name == "@":
            return " ".join(self.params)
        if name == "*":
            return self.vars.get("IFS", " \t\n")[:1].join(self.params)
        if name == "0":
            return self.arg0
        if name == "-":
            return "".join(sorted(self.opts))
        if name.isdigit():
            k = int(name)
            return self.params[k - 1] if 0 < k <= len(self.params) else None
        if name == "LINENO":
            return str(self.line)
        if name == "PWD":
            return self.vars.get("PWD", self.cwd)
        if name == "RANDOM":
            return str(random.randrange(32768))
        return self.vars.get(name)

    def set(self, name: str, value: str) -> None:
        self.vars[name] = value

    def unset(self, name: str) -> None:
        self.vars.pop(name, None)
        self.exported.discard(name)

    def exported_env(self) -> dict[str, str]:
        return {k: v for k, v in self.vars.items() if k in self.exported}

    @property
    def new_msgs(self) -> bool:
        """mksh R59 wording (Android 13+, estimate)."""
        return self.twin.personality.api >= 33

    def prefix(self) -> str:
        if self.script is not None:
            return f"{self.script}[{self.line}]"
        return self.arg0 if self.arg0 != _SH else _SH

    async def error(self, io: IO, text: str) -> None:
        await io.err.write(f"{self.prefix()}: {text}\n".encode())

    # --- entry points ------------------------------------------------------------------
    async def run(
        self, line: str, out: Sink, err: Sink, stdin: bytes | Source = b"", record: bool = True
    ) -> int:
        """Run a command line (`adb shell CMD` runs `sh -c CMD`); returns the exit status."""
        if len(line) > _MAX_LINE:
            await err.write(f"{_SH}: line too long\n".encode())
            return 2
        if record:
            self.twin.truth.record("shell", cmd=line[:500])
        source = stdin if isinstance(stdin, Source) else BytesSource(stdin)
        io = IO(source, out, err)
        self.root.session = (out, err)
        try:
            status = await self.run_source(line, io)
            # adbd ends the session when the last holder of its stdout/stderr is gone: wait for
            # jobs still writing there; a job with both redirected elsewhere lives on detached
            await self.wait_jobs([p for p in self.root.jobs if p in self.root.holding])
            return status
        finally:
            for pid in self.root.holding:
                task = self.root.jobs.get(pid)
                if task is not None and not task.done():
                    task.cancel()

    async def run_source(self, src: str, io: IO) -> int:
        """Parse and run source one top-level command at a time (as mksh reads a script);
        then the EXIT trap, if one was set."""
        status = await self._run_source(src, io)
        trap = self.traps.pop("EXIT", None)
        if trap:
            await self._run_source(trap, io)
            self.status = status
        return status

    async def _run_source(self, src: str, io: IO) -> int:
        parser = g.Parser(src)
        try:
            while True:
                try:
                    node = parser.complete_command()
                except ShellSyntaxError as e:
                    self.line = e.line
                    await self.error(io, e.message(self.new_msgs))
                    self.status = 1
                    return 1
                if node is None:
                    return self.status
                await self.exec(node, self.base_io or io)
        except ShellExit as e:
            self.status = e.status
            return e.status
        except _Return as e:  # `return` outside a function ends a script like exit
            self.status = e.status
            return e.status
        except _Break:
            return self.status
        except ShellError as e:
            await self.error(io, str(e))
            self.status = 1
            return 1
        except RecursionError:
            await self.error(io, "recursion too deep")
            self.status = 1
            return 1
        except BrokenPipe:
            self.status = _SIGPIPE_STATUS
            return _SIGPIPE_STATUS

    async def run_script(self, name: str, text: str, args: list[str], io: IO) -> int:
        """`sh FILE args` in this (fresh) shell."""
        self.script = name
        self.arg0 = name
        self.params = list(args)
        return await self.run_source(text, io)

    # --- execution ----------------------------------------------------------------------
    async def exec(self, node: g.Node, io: IO) -> int:
        status = await self._exec(node, io)
        self.status = status
        return status

    async def _exec(self, node: g.Node, io: IO) -> int:  # noqa: C901 -- one branch per node type of the shell's syntax tree
        if isinstance(node, g.ListNode):
            status = self.status
            for item, background in node.items:
                before = self.base_io
                if background:
                    await self._spawn(item, io)
                    status = 0
                else:
                    status = await self.exec(item, io)
                    if not isinstance(item, g.AndOr):
                        self._errexit(status, item)
                if self.base_io is not before and self.base_io is not None:
                    io = self.base_io  # `exec >log`: the rest of this list writes there too
            return status
        if isinstance(node, g.AndOr):
            # `set -e` ignores every failure but that of the last command, if it ran
            status = await self._cond(node.first, io)
            for k, (op, nxt) in enumerate(node.rest):
                if (op == "&&") != (status == 0):
                    continue
                if k == len(node.rest) - 1:
                    status = await self.exec(nxt, io)
                    self._errexit(status, nxt)
                else:
                    status = await self._cond(nxt, io)
            return status
        if isinstance(node, g.Pipeline):
            if node.negate:
                self._noerr += 1
            try:
                status = await self._pipeline(node.cmds, io)
            finally:
                if node.negate:
                    self._noerr -= 1
            return int(status == 0) if node.negate else status
        if isinstance(node, g.Simple):
            return await self._simple(node, io)
        if isinstance(node, g.DBracket):
            return await self._dbracket(node, io)
        if isinstance(node, g.ArithCmd):
            text = await self.expand_str(node.expr, io)
            return 0 if _Arith(text, self).eval() else 1
        if isinstance(node, g.FuncDef):
            self.funcs[node.name] = node.body
            return 0
        # compound commands: redirections around the body
        redirected = await self._redirect(node.redirects, io)  # type: ignore[union-attr]
        if redirected is None:
            return 1
        return await self._compound(node, redirected)

    def _errexit(self, status: int, node: g.Node) -> None:
        if status != 0 and "e" in self.opts and self._noerr == 0:
            if not (isinstance(node, g.Pipeline) and node.negate):
                raise ShellExit(status)

    async def _compound(self, node: g.Node, io: IO) -> int:  # noqa: C901 -- one branch per compound command of the shell
        if isinstance(node, g.Subshell):
            child = self.fork()
            try:
                return await child.exec(node.body, io)
            except ShellExit as e:
                return e.status
            except (_Return, _Break):
                return child.status
            except ShellError as e:  # a fatal error ends the subshell only
                await child.error(io, str(e))
                return 1
        if isinstance(node, g.Group):
            return await self.exec(node.body, io)
        if isinstance(node, g.If):
            for cond, body in node.clauses:
                if await self._cond(cond, io) == 0:
                    return await self.exec(body, io)
            if node.else_ is not None:
                return await self.exec(node.else_, io)
            return 0
        if isinstance(node, g.For):
            if node.words is None:
                values = list(self.params)
            else:
                values = [v for w in node.words for v in await self.expand(w, io)]
            status = 0
            for value in values:
                await self._tick()
                self.set(node.var, value)
                try:
                    status = await self.exec(node.body, io)
                except _Break as b:
                    if b.levels > 1:
                        raise _Break(b.levels - 1, b.cont) from None
                    if b.cont:
                        continue
                    break
            return status
        if isinstance(node, g.While):
            status = 0
            while True:
                await self._tick()
                ok = await self._cond(node.cond, io) == 0
                if ok == node.until:
                    break
                try:
                    status = await self.exec(node.body, io)
                except _Break as b:
                    if b.levels > 1:
                        raise _Break(b.levels - 1, b.cont) from None
                    if b.cont:
                        continue
                    break
            return status
        if isinstance(node, g.Case):
            subject = await self.expand_str(node.word, io)
            for pats, body in node.items:
                for pat in pats:
                    segs = await self._expand_segs(pat, io, split=False)
                    if fnmatch.fnmatchcase(subject, _glob_pattern(segs[0] if segs else [])):
                        return await self.exec(body, io) if body is not None else 0
            return 0
        raise ShellError(f"cannot run {type(node).__name__}")

    async def _dbracket(self, node: g.DBracket, io: IO) -> int:
        args: list[str] = []
        patterns: dict[int, str] = {}
        for item in node.args:
            if isinstance(item, str):
                args.append({"&&": "-a", "||": "-o"}.get(item, item))
                continue
            segs = (await self._expand_segs(item, io, split=False))[0]
            patterns[len(args)] = _glob_pattern(segs)
            args.append("".join(t for t, _ in segs))
        try:
            return 0 if await _test_eval(self, args, patterns) else 1
        except ShellError as e:
            await self.error(io, f"[[: {e}")
            return 2

    async def _cond(self, node: g.Node, io: IO) -> int:
        self._noerr += 1
        try:
            return await self.exec(node, io)
        finally:
            self._noerr -= 1

    async def _spawn(self, node: g.Node, io: IO) -> None:
        child = self.fork()
        pid = self.root.pid()
        child.pid = pid
        bg_io = IO(BytesSource(b""), io.out, io.err)
        redirects = getattr(node, "redirects", None)
        if redirects:  # opened before the job starts, so we know what it holds
            opened = await self._redirect(redirects, bg_io)
            if opened is None:
                self.last_bg = str(pid)
                return
            bg_io = opened
            node = dataclasses.replace(node, redirects=[])  # type: ignore[type-var]

        task = asyncio.ensure_future(self._run_child(child, node, bg_io))
        self.root.jobs[pid] = task
        if bg_io.out in self.root.session or bg_io.err in self.root.session:
            self.root.holding.add(pid)
        self.root.tasks.add(task)
        task.add_done_callback(self.root.tasks.discard)
        self.last_bg = str(pid)
        self.twin.truth.record("shell_job", pid=pid)

    async def wait_jobs(self, pids) -> int:
        status = 0
        for pid in list(pids):
            task = self.root.jobs.get(pid)
            if task is None:
                continue
            try:
                status = await task
            except asyncio.CancelledError:
                if asyncio.current_task() and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                status = self.root.signalled.pop(pid, 143)
            self.root.jobs.pop(pid, None)
        return status

    async def _pipeline(self, cmds: list[g.Node], io: IO) -> int:
        if len(cmds) == 1:
            return await self.exec(cmds[0], io)
        tasks: list[asyncio.Task] = []
        stdin = io.stdin
        pipes: list[Pipe] = []
        for cmd in cmds[:-1]:
            pipe = Pipe()
            pipes.append(pipe)
            child = self.fork()
            tasks.append(
                asyncio.ensure_future(self._pipe_member(child, cmd, IO(stdin, pipe.writer, io.err)))
            )
            tasks[-1].add_done_callback(lambda _t, p=pipe: p.close_write())
            stdin = pipe.reader
        try:
            status = await self._pipe_member(self.fork(), cmds[-1], IO(stdin, io.out, io.err))
        finally:
            for pipe in pipes:
                pipe.close_read()
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                for t in tasks:
                    t.cancel()
        return status

    async def _run_child(self, child: Shell, cmd: g.Node, io: IO) -> int:
        """A subshell's run (a background job or a pipeline member): its exit status, whatever
        ends it (exit, return/break, a closed pipe, a shell error printed to its stderr)."""
        try:
            return await child.exec(cmd, io)
        except ShellExit as e:
            return e.status
        except (_Return, _Break):
            return child.status
        except BrokenPipe:
            return _SIGPIPE_STATUS
        except ShellError as e:
            await child.error(io, str(e))
            return 1

    async def _pipe_member(self, child: Shell, cmd: g.Node, io: IO) -> int:
        try:
            return await self._run_child(child, cmd, io)
        finally:
            io.stdin.close() if isinstance(io.stdin, _PipeSource) else None

    async def _redirect(self, redirects: list[g.Redirect], io: IO) -> IO | None:  # noqa: C901 -- one branch per redirection operator
        """Apply redirections; None after printing the error when a file cannot be opened."""
        if not redirects:
            return io
        fds: dict[int, Source | Sink] = {0: io.stdin, 1: io.out, 2: io.err}
        for r in redirects:
            if r.op in ("<<", "<<-"):
                body = await self.expand_str(r.heredoc, io) if r.heredoc else ""
                fds[r.fd] = BytesSource(body.encode())
                continue
            target = await self.expand_str(r.target, io)
            if r.op in (">&", "<&"):
                if target == "-":
                    fds[r.fd] = NullSink() if r.fd else BytesSource(b"")
                elif target.isdigit() and int(target) in fds:
                    fds[r.fd] = fds[int(target)]
                elif target.isdigit():
                    await self.error(
                        io,
                        f"{target}: bad file descriptor"
                        if not self.new_msgs
                        else f"{target}: illegal file descriptor name",
                    )
                    return None
                else:
                    try:
                        fds[r.fd] = self._open_out(target, False)
                    except FsError as e:
                        await self._open_error(io, target, e.reason, True)
                        return None
                continue
            try:
                if r.op == "<":
                    fds[r.fd] = self.open_in(target)
                elif r.op == "<>":
                    fds[r.fd] = self.open_in(target)
                else:
                    fds[r.fd] = self._open_out(target, r.op == ">>")
            except FsError as e:
                await self._open_error(io, target, e.reason, r.op != "<")
                return None
        stdin, out, err = fds[0], fds[1], fds[2]
        if not isinstance(stdin, Source):
            stdin = BytesSource(b"")
        if not isinstance(out, Sink):
            out = NullSink()
        if not isinstance(err, Sink):
            err = NullSink()
        return IO(stdin, out, err)

    async def _open_error(self, io: IO, target: str, reason: str, create: bool) -> None:
        if self.new_msgs:
            await self.error(io, f"{target}: {'create' if create else 'open'}: {reason}")
        else:
            await self.error(io, f"can't {'create' if create else 'open'} {target}: {reason}")

    def open_in(self, name: str) -> Source:
        """A file as stdin (the twin's /dev/null, /dev/zero included)."""
        path = self.twin.fs.norm(name, self.cwd)
        if path == "/dev/zero":
            return ZeroSource()
        if path in ("/dev/null", "/dev/random", "/dev/urandom"):
            if path == "/dev/null":
                return BytesSource(b"")
            return BytesSource(os.urandom(_READ_CHUNK))
        return BytesSource(self.twin.fs.read(path))

    def _open_out(self, name: str, append: bool) -> Sink:
        path = self.twin.fs.norm(name, self.cwd)
        if path in ("/dev/null", "/dev/zero"):
            return NullSink()
        return FileSink(self, name, append)

    # --- simple commands ------------------------------------------------------------------
    async def _tick(self) -> None:
        """Yield to the event loop every few commands: endless loops never starve the twin."""
        self.root.ticks += 1
        if self.root.ticks % _YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _simple(self, cmd: g.Simple, io: IO) -> int:
        await self._tick()
        self.line = cmd.line
        self._subst_status: int | None = None
        argv: list[str] = []
        for w in cmd.words:
            argv.extend(await self.expand(w, io))
        assigns = []
        for name, w in cmd.assigns:
            assigns.append((name, await self.expand_str(w, io)))
            if not argv:  # `a=1 b=$a`: each assignment sees the ones before it
                self.set(name, assigns[-1][1])
        if "x" in self.opts:
            shown = [f"{n}={_quote(v)}" for n, v in assigns] + [_quote(a) for a in argv]
            tail = "" if argv else " "  # mksh leaves a space after a lone assignment
            await io.err.write(("+ " + " ".join(shown) + tail + "\n").encode())
        redirected = await self._redirect(cmd.redirects, io)
        if redirected is None:
            return 1
        io = redirected
        if not argv:
            for name, value in assigns:
                self.set(name, value)
            return self._subst_status if self._subst_status is not None else 0
        return await self.call(argv, io, assigns)

    async def call(self, argv: list[str], io: IO, assigns: list[tuple[str, str]] = ()) -> int:  # type: ignore[assignment]
        """Run argv: special builtin, function, builtin, registry command, or script file."""
        name = argv[0]
        if name in _SPECIAL:
            for n, v in assigns:
                self.set(n, v)
            return await _BUILTINS[name](self, argv, io)
        if name in self.funcs:
            return await self._function(name, argv, io, assigns)
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            saved = {n: self.vars.get(n) for n, _ in assigns}
            saved_exported = set(self.exported)
            for n, v in assigns:
                self.set(n, v)
                self.exported.add(n)  # `F=2 sh -c ...`: the prefix reaches the child
            try:
                return await builtin(self, argv, io)
            finally:
                self.exported = saved_exported
                for n, old in saved.items():
                    if old is None:
                        self.vars.pop(n, None)
                    else:
                        self.vars[n] = old
        return await self._external(argv, io, assigns)

    async def _function(self, name: str, argv: list[str], io: IO, assigns) -> int:
        if self.depth >= _MAX_DEPTH:
            raise ShellError(f"{name}: recursion too deep")
        saved_params = self.params
        self.params = argv[1:]
        self.locals.append({})
        for n, v in assigns:
            self.locals[-1].setdefault(n, self.vars.get(n))
            self.set(n, v)
        self.depth += 1
        try:
            return await self.exec(self.funcs[name], io)
        except _Return as r:
            return r.status
        finally:
            self.depth -= 1
            self.params = saved_params
            for n, old in self.locals.pop().items():
                if old is None:
                    self.vars.pop(n, None)
                else:
                    self.vars[n] = old

    def resolve(self, name: str):
        """The registry command that `name` runs, or None."""
        from harness.twin import userland  # noqa: F401  (registers the userland commands)
        from harness.twin.commands import lookup

        base = name
        if "/" in name:
            head, _, tail = name.rpartition("/")
            if head not in ("/system/bin", "/system/xbin", "/sbin", "/vendor/bin"):
                return None
            base = tail
        return lookup(base, self.twin.personality)

    async def _external(self, argv: list[str], io: IO, assigns) -> int:
        name = argv[0]
        func = self.resolve(name)
        if func is None and "/" in name:
            return await self._exec_file(argv, io, assigns)
        if func is None:
            await self.error(io, f"{name}: not found")
            return 127
        env = self.exported_env()  # what a process sees: exported variables and prefixes
        env.update(dict(assigns))
        base = name.rsplit("/", 1)[-1]
        proc = Proc(self, [base] + argv[1:], io.stdin, io.out, io.err, env)
        try:
            status = await func(proc)
        except FsError as e:
            await io.err.write(f"{base}: {e}\n".encode())
            status = 1
        except ShellError as e:  # a command's usage error is its own, not the shell's
            hint = f' (see "{base} --help")' if isinstance(e, UsageError) else ""
            await io.err.write(f"{base}: {e}{hint}\n".encode())
            status = 1
        return int(status or 0) & 0xFF

    async def _exec_file(self, argv: list[str], io: IO, assigns) -> int:
        path = self.twin.fs.norm(argv[0], self.cwd)
        node = self.twin.fs.lookup(path)
        if node is None:
            await self.error(io, f"{argv[0]}: not found")
            return 127
        if node.is_dir or not node.mode & 0o111:
            reason = "Is a directory" if node.is_dir else "Permission denied"
            await self.error(io, f"{argv[0]}: can't execute: {reason}")  # mksh 59c too
            return 126
        child = self.subprocess(assigns)
        text = bytes(node.data or b"").decode("utf-8", "replace")
        return await child.run_script(argv[0], text, argv[1:], io)

    def subprocess(self, assigns=()) -> Shell:
        """A new sh process: exported variables only, no functions, a new pid."""
        child = Shell(self.twin, self)
        child.vars = self.exported_env()
        child.vars.setdefault("IFS", " \t\n")
        child.vars.update(dict(assigns))
        child.exported = set(self.exported) | {n for n, _ in assigns}
        child.funcs = {}
        child.opts = set()
        child.pid = self.root.pid()
        return child

    # --- expansion ----------------------------------------------------------------------
    async def expand(self, word: g.Word, io: IO) -> list[str]:
        """A word -> fields (after splitting and globbing)."""
        out: list[str] = []
        for segs in await self._expand_segs(word, io, split=True):
            out.extend(self._glob(segs))
        return out

    async def expand_str(self, word: g.Word, io: IO) -> str:
        """A word -> one string (assignments, redirection targets, here-documents, case)."""
        fields = await self._expand_segs(word, io, split=False)
        return "".join(t for t, _ in fields[0]) if fields else ""

    async def _expand_segs(self, word: g.Word, io: IO, split: bool) -> list[Segs]:  # noqa: C901 -- word expansion: quoting, fields and globbing as mksh
        fields: list[Segs] = [[]]
        real = [False]  # whether the current field exists (quoted or non-empty)

        def add(text: str, quoted: bool) -> None:
            fields[-1].append((text, quoted))
            if quoted or text:
                real[-1] = True

        def new_field() -> None:
            fields.append([])
            real.append(False)

        for k, part in enumerate(word.parts):
            if isinstance(part, g.Lit):
                text = part.text
                if k == 0 and not part.quoted and (text == "~" or text.startswith("~/")):
                    add(self.vars.get("HOME", "/"), True)  # tilde: $HOME, not split
                    text = text[1:]
                add(text, part.quoted)
                continue
            if isinstance(part, g.Param) and part.name == "@" and part.quoted and not part.op:
                for k, value in enumerate(self.params):
                    if k:
                        new_field()
                    add(value, True)
                continue
            value = await self._expand_part(part, io)
            if part.quoted or not split:
                add(value, True)
                continue
            ifs = self.vars.get("IFS", " \t\n")
            pieces, lead, trail = _split(value, ifs)
            if lead and real[-1]:
                new_field()
            for k, piece in enumerate(pieces):
                if k:
                    new_field()
                add(piece, False)
                if piece == "" and k < len(pieces) - 1:
                    real[-1] = True  # an empty field between two non-space IFS characters
            if trail and pieces:
                new_field()
        return [f for f, ok in zip(fields, real, strict=True) if ok] if split else fields

    async def _expand_part(self, part: g.Part, io: IO) -> str:  # noqa: C901 -- one branch per ${...} operator
        if isinstance(part, g.CmdSub):
            return await self._substitute(part.body, io)
        if isinstance(part, g.Arith):
            text = await self.expand_str(part.expr, io)
            return str(_Arith(text, self).eval())
        assert isinstance(part, g.Param)
        name, op = part.name, part.op
        value = self.get(name)
        if value is None and "u" in self.opts and op in ("", "len") and name not in "@*":
            raise ShellError(f"{name}: parameter not set")
        if op == "":
            return value or ""
        if op == "len":
            return str(len(value or ""))
        unset = value is None
        empty = unset or value == ""
        if op in (":-", "-"):
            return (
                await self.expand_str(part.arg, io)
                if (empty if op == ":-" else unset)
                else value or ""
            )  # type: ignore[arg-type]
        if op in (":=", "="):
            if empty if op == ":=" else unset:
                value = await self.expand_str(part.arg, io)  # type: ignore[arg-type]
                self.set(name, value)
            return value or ""
        if op in (":+", "+"):
            return "" if (empty if op == ":+" else unset) else await self.expand_str(part.arg, io)  # type: ignore[arg-type]
        if op in (":?", "?"):
            if empty if op == ":?" else unset:
                msg = await self.expand_str(part.arg, io) if part.arg else ""  # type: ignore[arg-type]
                raise ShellError(f"{name}: {msg or 'parameter null or not set'}")
            return value or ""
        # pattern removal: # ## % %%
        segs = (await self._expand_segs(part.arg, io, split=False))[0] if part.arg else []  # type: ignore[arg-type]
        pat = _glob_pattern(segs)
        value = value or ""
        cands = range(len(value) + 1)
        if op in ("#", "##"):
            order = cands if op == "#" else reversed(cands)
            for k in order:
                if fnmatch.fnmatchcase(value[:k], pat):
                    return value[k:]
            return value
        order = reversed(cands) if op == "%" else cands
        for k in order:
            if fnmatch.fnmatchcase(value[k:], pat):
                return value[:k]
        return value

    async def _substitute(self, body: g.Node, io: IO) -> str:
        sink = BufferSink(limit=_SUBST_MAX_BYTES)
        child = self.fork()
        try:
            status = await child.exec(body, IO(io.stdin, sink, io.err))
        except ShellExit as e:
            status = e.status
        except (_Return, _Break):
            status = child.status
        except ShellError as e:
            await child.error(io, str(e))
            status = 1
        self._subst_status = status
        self.status = status
        return bytes(sink.buf).decode("utf-8", "replace").rstrip("\n")

    def _glob(self, segs: Segs) -> list[str]:
        text = "".join(t for t, _ in segs)
        if not any(not q and _GLOB_CHARS.search(t) for t, q in segs):
            return [text]
        pattern = _glob_pattern(segs)
        fs = self.twin.fs
        absolute = pattern.startswith("/")
        parts = [p for p in pattern.split("/") if p]
        found = [("/" if absolute else "", fs.norm(".", self.cwd) if not absolute else "/")]
        for k, comp in enumerate(parts):
            nxt: list[tuple[str, str]] = []
            for shown, real in found:
                if any(c in comp for c in "*?["):
                    node = fs.lookup(real)
                    if node is None or not node.is_dir:
                        continue
                    for child, _ in fs.listdir(real):
                        if child.startswith(".") and not comp.startswith("."):
                            continue
                        if fnmatch.fnmatchcase(child, comp):
                            nxt.append((_join(shown, child), _join(real, child)))
                else:
                    lit = _unescape_glob(comp)
                    if fs.lookup(_join(real, lit)) is not None or k == len(parts) - 1:
                        nxt.append((_join(shown, lit), _join(real, lit)))
            found = [f for f in nxt if fs.lookup(f[1]) is not None]
        return sorted(shown for shown, _ in found) or [text]

    # --- interactive ----------------------------------------------------------------------
    async def interactive(self, stream: Stream, out: Sink, stdin: Source | None = None) -> None:
        """`adb shell` with no command: a prompt, one line at a time."""
        prompt = "shell@" + self.twin.props.get("ro.product.device", "android") + ":/ $ "
        await out.write(prompt.encode())
        if stdin is None:
            pipe = Pipe()

            async def pump() -> None:
                while data := await stream.read():
                    await pipe.writer.write(data)
                pipe.close_write()

            pump_task = asyncio.ensure_future(pump())
            stdin = pipe.reader
        else:
            pump_task = None
        try:
            while True:
                raw = await stdin.readline()
                if not raw:
                    return
                text = raw.decode("utf-8", "replace").replace("\r", "").strip()
                if text == "exit":
                    return
                if text:
                    self.twin.truth.record("shell", cmd=text[:500])
                    try:
                        await self.run_source(text, IO(stdin, out, out))
                    except ShellExit:
                        return
                await out.write(prompt.encode())
        finally:
            if pump_task is not None:
                pump_task.cancel()


# userland tools that are links to the multi-call binary (the rest are their own files)
_MULTICALL_NOT = {
    "sh",
    "mksh",
    "getprop",
    "setprop",
    "pm",
    "am",
    "wm",
    "input",
    "dumpsys",
    "screencap",
    "screenrecord",
    "uiautomator",
    "app_process",
    "monkey",
    "settings",
    "svc",
    "cmd",
    "logcat",
    "log",
    "ime",
    "toybox",
    "toolbox",
    "content",
}


def _install_system_bin(twin: Twin) -> None:
    """Once per twin: /system/bin holds the commands of its API level, so `ls /system/bin`,
    `[ -x /system/bin/screenrecord ]` and `ls -l /system/bin/ls` (-> toybox) answer as on a
    device. Running them still goes through the command registry."""
    fs = twin.fs
    if getattr(fs, "system_bin_installed", False):
        return
    fs.system_bin_installed = True  # type: ignore[attr-defined]
    from harness.twin import userland  # noqa: F401  (registers the userland commands)
    from harness.twin.commands import _COMMANDS

    pers = twin.personality
    multi = "toybox" if pers.has_toybox else "toolbox"
    sealed = getattr(fs, "sealed", False)
    fs.sealed = False  # part of the system image: written before /system is read-only to users
    try:
        for name in (multi, "sh"):
            if fs.lookup(f"/system/bin/{name}") is None:
                fs.write(f"/system/bin/{name}", b"\x7fELF", mode=0o755)
        if fs.lookup("/system/bin/mksh") is None:
            fs.symlink("sh", "/system/bin/mksh")
        for name, (_, when) in sorted(_COMMANDS.items()):
            path = f"/system/bin/{name}"
            if not when(pers) or fs.lookup(path, follow=False) is not None:
                continue
            if name in _MULTICALL_NOT:
                fs.write(path, b"\x7fELF", mode=0o755)
            else:
                fs.symlink(multi, path)
    except FsError as e:  # a twin whose /system is arranged otherwise keeps it
        log.warning("twin /system/bin not filled: %s", e)
    finally:
        fs.sealed = sealed


_GLOB_CHARS = re.compile(r"[*?]|\[.+\]")  # a lone `[` (the test command) is no pattern


def _join(a: str, b: str) -> str:
    if not a:
        return b
    return a + b if a.endswith("/") else a + "/" + b


def _unescape_glob(comp: str) -> str:
    return re.sub(r"\[([*?\[])\]", r"\1", comp)


def _glob_pattern(segs: Segs) -> str:
    """fnmatch pattern from field pieces: quoted pieces match literally."""
    out = []
    for text, quoted in segs:
        if quoted:
            out.append("".join(f"[{c}]" if c in "*?[" else c for c in text))
        else:
            out.append(text)
    return "".join(out)


def _split(value: str, ifs: str) -> tuple[list[str], bool, bool]:
    """IFS field splitting -> (pieces, leading separator, trailing separator)."""
    if not value:
        return [], False, False
    if not ifs:
        return [value], False, False
    ws = "".join(c for c in ifs if c in " \t\n")
    other = "".join(c for c in ifs if c not in " \t\n")
    lead = value[0] in ifs
    trail = value[-1] in ifs
    core = value.strip(ws) if ws else value
    if not core:
        return [], lead, trail
    if other:
        sep = (
            f"[{re.escape(ws)}]*[{re.escape(other)}][{re.escape(ws)}]*"
            if ws
            else f"[{re.escape(other)}]"
        )
        if ws:
            sep = f"(?:{sep}|[{re.escape(ws)}]+)"
        pieces = re.split(sep, core)
        if pieces and pieces[-1] == "" and core[-1] in other:
            pieces.pop()
            trail = True
    else:
        pieces = re.split(f"[{re.escape(ws)}]+", core)
    return pieces, lead, trail


# --- builtins -----------------------------------------------------------------------------
Builtin = Callable[[Shell, list[str], IO], Awaitable[int]]
_BUILTINS: dict[str, Builtin] = {}
_SPECIAL = {
    ":",
    ".",
    "break",
    "continue",
    "eval",
    "exec",
    "exit",
    "export",
    "readonly",
    "return",
    "set",
    "shift",
    "trap",
    "unset",
    "times",
}


def builtin(*names: str):
    def deco(func):
        for n in names:
            _BUILTINS[n] = func
        return func

    return deco


async def _out(io: IO, text: str) -> None:
    await io.out.write(text.encode())


@builtin(":", "true")
async def _b_true(sh: Shell, argv: list[str], io: IO) -> int:
    return 0


@builtin("false")
async def _b_false(sh: Shell, argv: list[str], io: IO) -> int:
    return 1


_ECHO_ESC = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "e": "\x1b",
}


def _echo_escapes(text: str) -> tuple[str, bool]:
    """mksh echo's backslash escapes; (text, stop) where \\c stops output."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "c":
                return "".join(out), True
            if n in _ECHO_ESC:
                out.append(_ECHO_ESC[n])
                i += 2
                continue
            if n == "0":
                m = re.match(r"[0-7]{0,3}", text[i + 2 :])
                digits = m.group() if m else ""
                out.append(chr(int(digits or "0", 8)))
                i += 2 + len(digits)
                continue
        out.append(c)
        i += 1
    return "".join(out), False


@builtin("echo")
async def _b_echo(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    newline, escapes = True, True
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for ch in args[0][1:]:
            if ch == "n":
                newline = False
            elif ch == "e":
                escapes = True
            else:
                escapes = False
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = _echo_escapes(text)
        if stop:
            newline = False
    await _out(io, text + ("\n" if newline else ""))
    return 0


@builtin("exit")
async def _b_exit(sh: Shell, argv: list[str], io: IO) -> int:
    status = sh.status
    if len(argv) > 1:
        try:
            status = int(argv[1])
        except ValueError:
            await sh.error(io, f"exit: {argv[1]}: bad number")
            status = 1
    raise ShellExit(status & 0xFF)


@builtin("return")
async def _b_return(sh: Shell, argv: list[str], io: IO) -> int:
    status = int(argv[1]) if len(argv) > 1 and argv[1].lstrip("-").isdigit() else sh.status
    raise _Return(status & 0xFF)


@builtin("break", "continue")
async def _b_break(sh: Shell, argv: list[str], io: IO) -> int:
    levels = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 1
    raise _Break(max(levels, 1), argv[0] == "continue")


@builtin("cd")
async def _b_cd(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if a not in ("-L", "-P")]
    target = args[0] if args else sh.vars.get("HOME", "/")
    if target == "-":
        target = sh.vars.get("OLDPWD", sh.cwd)
    path = sh.twin.fs.norm(target, sh.cwd)
    node = sh.twin.fs.lookup(path)
    if node is None or not node.is_dir:
        reason = "No such file or directory" if node is None else "Not a directory"
        if sh.new_msgs:
            await sh.error(io, f"cd: {path}: {reason}")
        else:
            await sh.error(io, f"cd: /{target.lstrip('/')}: {reason}")
        return 2
    sh.vars["OLDPWD"] = sh.cwd
    sh.cwd = path
    sh.vars["PWD"] = path
    return 0


@builtin("pwd")
async def _b_pwd(sh: Shell, argv: list[str], io: IO) -> int:
    await _out(io, sh.cwd + "\n")
    return 0


@builtin("export", "readonly")
async def _b_export(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if a != "-p"]
    if not args:
        for k in sorted(sh.exported):
            if k in sh.vars:
                await _out(io, f"export {k}={_quote(sh.vars[k])}\n")
        return 0
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq:
            sh.set(name, value)
        if argv[0] == "export":
            sh.exported.add(name)
    return 0


def _quote(v: str) -> str:
    return v if re.fullmatch(r"[A-Za-z0-9_./:,@%+=-]+", v) else "'" + v.replace("'", "'\\''") + "'"


@builtin("unset")
async def _b_unset(sh: Shell, argv: list[str], io: IO) -> int:
    funcs = "-f" in argv
    for name in (a for a in argv[1:] if not a.startswith("-")):
        if funcs:
            sh.funcs.pop(name, None)
        else:
            sh.unset(name)
    return 0


@builtin("local", "typeset")
async def _b_local(sh: Shell, argv: list[str], io: IO) -> int:
    for arg in (a for a in argv[1:] if not a.startswith("-")):
        name, eq, value = arg.partition("=")
        if sh.locals:
            sh.locals[-1].setdefault(name, sh.vars.get(name))
        if eq:
            sh.set(name, value)
        elif sh.locals:
            sh.vars.pop(name, None)
    return 0


@builtin("shift")
async def _b_shift(sh: Shell, argv: list[str], io: IO) -> int:
    n = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 1
    if n > len(sh.params):  # fatal, as for every special builtin
        raise ShellError("shift: nothing to shift")
    sh.params = sh.params[n:]
    return 0


@builtin("set")
async def _b_set(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    if not args:
        for k in sorted(sh.vars):
            await _out(io, f"{k}={_quote(sh.vars[k])}\n")
        return 0
    while args and args[0][:1] in "-+" and args[0] not in ("-", "--"):
        flag = args.pop(0)
        on = flag[0] == "-"
        letters = flag[1:]
        if letters == "o" and args:
            letters = {"errexit": "e", "xtrace": "x", "nounset": "u", "noglob": "f"}.get(
                args.pop(0), ""
            )
        for ch in letters:
            (sh.opts.add if on else sh.opts.discard)(ch)
    if args and args[0] in ("-", "--"):
        args.pop(0)
        sh.params = args
    elif args:
        sh.params = args
    return 0


@builtin("eval")
async def _b_eval(sh: Shell, argv: list[str], io: IO) -> int:
    src = " ".join(argv[1:])
    if sh.depth >= _MAX_DEPTH:
        raise ShellError("eval: recursion too deep")
    node = g.Parser(src).parse_all()
    sh.depth += 1
    try:
        return await sh.exec(node, io)
    finally:
        sh.depth -= 1


@builtin(".", "source")
async def _b_source(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 2:
        await sh.error(io, f"{argv[0]}: missing argument")
        return 1
    try:
        text = sh.twin.fs.read(sh.twin.fs.norm(argv[1], sh.cwd)).decode("utf-8", "replace")
    except FsError as e:
        raise ShellError(f"{argv[0]}: {argv[1]}: {e.reason}") from None
    if sh.depth >= _MAX_DEPTH:
        raise ShellError(f"{argv[0]}: recursion too deep")
    node = g.Parser(text).parse_all()
    saved = sh.params
    if len(argv) > 2:
        sh.params = argv[2:]
    sh.depth += 1
    try:
        return await sh.exec(node, io)
    except _Return as r:
        return r.status
    finally:
        sh.depth -= 1
        sh.params = saved


@builtin("exec")
async def _b_exec(sh: Shell, argv: list[str], io: IO) -> int:
    """`exec cmd`: run it and end the shell. `exec >log 2>&1`: the redirections stay for the
    rest of the script (the commands after it in the same list, and every later line)."""
    if len(argv) < 2:
        sh.base_io = io
        return 0
    raise ShellExit(await sh.call(argv[1:], io))


@builtin("trap")
async def _b_trap(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 3:
        for sig, cmd in sh.traps.items():
            await _out(io, f"trap -- {_quote(cmd)} {sig}\n")
        return 0
    action = argv[1]
    for sig in argv[2:]:
        name = "EXIT" if sig in ("0", "EXIT") else sig.upper().removeprefix("SIG")
        if action == "-":
            sh.traps.pop(name, None)
        else:
            sh.traps[name] = action
    return 0


@builtin("umask", "times", "ulimit", "hash", "alias", "unalias")
async def _b_noop(sh: Shell, argv: list[str], io: IO) -> int:
    if argv[0] == "umask" and len(argv) == 1:
        await _out(io, "0077\n" if sh.twin.personality.api < 21 else "0000\n")
    return 0


@builtin("read")
async def _b_read(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    raw = False
    timeout_s: float | None = None
    prompt = ""
    while args and args[0].startswith("-") and len(args[0]) > 1:
        opt = args.pop(0)
        if opt == "-r":
            raw = True
        elif opt == "-t" and args:
            timeout_s = float(args.pop(0))
        elif opt == "-p" and args:
            prompt = args.pop(0)
        elif opt.startswith("-t"):
            timeout_s = float(opt[2:])
    names = args or ["REPLY"]
    if prompt:
        await io.err.write(prompt.encode())
    text = ""
    ended = False
    while True:
        try:
            if timeout_s is not None:
                line = await asyncio.wait_for(io.stdin.readline(), max(timeout_s, 0.0))
            else:
                line = await io.stdin.readline()
        except TimeoutError:
            return 1
        chunk = line.decode("utf-8", "replace")
        ended = chunk.endswith("\n")
        chunk = chunk.removesuffix("\n")
        if not raw and ended and chunk.endswith("\\"):
            text += chunk[:-1]
            continue
        text += chunk
        break
    if not raw:
        text = re.sub(r"\\(.)", r"\1", text)
    _assign_fields(sh, names, text)
    return 0 if ended else 1


def _assign_fields(sh: Shell, names: list[str], text: str) -> None:
    """`read`'s split: one IFS field per name, the rest of the line to the last one."""
    ifs = sh.vars.get("IFS", " \t\n")
    ws = "".join(c for c in ifs if c in " \t\n")
    rest = text.strip(ws) if ws else text
    for k, name in enumerate(names):
        if k == len(names) - 1:
            sh.set(name, rest)
            break
        m = re.match(f"[^{re.escape(ifs)}]*", rest) if ifs else None
        first = m.group() if m else rest
        sh.set(name, first)
        rest = rest[len(first) :].lstrip(ws)
        if rest and rest[0] in ifs and rest[0] not in ws:
            rest = rest[1:].lstrip(ws)


@builtin("let")
async def _b_let(sh: Shell, argv: list[str], io: IO) -> int:
    value = 0
    for expr in argv[1:]:
        value = _Arith(expr, sh).eval()
    return 0 if value else 1


@builtin("getopts")
async def _b_getopts(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 3:
        await sh.error(io, "getopts: missing argument")
        return 2
    spec, name = argv[1], argv[2]
    args = argv[3:] if len(argv) > 3 else sh.params
    silent = spec.startswith(":")
    optind = int(sh.vars.get("OPTIND", "1") or "1")
    sub = sh._optsub if sh._optsub_for == optind else 1  # OPTIND reset by the script
    sh.vars.pop("OPTARG", None)
    if optind > len(args):
        sh.set(name, "?")
        return 1
    arg = args[optind - 1]
    if sub == 1 and (arg == "--" or not arg.startswith("-") or arg == "-"):
        if arg == "--":
            sh.set("OPTIND", str(optind + 1))
        sh.set(name, "?")
        return 1
    ch = arg[sub]
    sub += 1
    pos = spec.find(ch)
    if ch == ":" or pos < 0:
        sh.set(name, "?")
        if silent:
            sh.set("OPTARG", ch)
        else:
            await sh.error(io, f"getopts: -{ch}: unknown option")
    elif pos + 1 < len(spec) and spec[pos + 1] == ":":
        if sub < len(arg):
            sh.set("OPTARG", arg[sub:])
            sub = len(arg)
        elif optind < len(args):
            optind += 1
            sh.set("OPTARG", args[optind - 1])
            sub = len(arg)
        else:
            sh.set(name, ":" if silent else "?")
            if silent:
                sh.set("OPTARG", ch)
            else:
                await sh.error(io, f"getopts: -{ch}: requires argument")
            sub = len(arg)
            sh.set("OPTIND", str(optind + 1))
            sh._optsub, sh._optsub_for = 1, optind + 1
            return 0
        sh.set(name, ch)
    else:
        sh.set(name, ch)
    if sub >= len(arg):
        optind += 1
        sub = 1
    sh._optsub, sh._optsub_for = sub, optind
    sh.set("OPTIND", str(optind))
    return 0


_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15}


@builtin("kill")
async def _b_kill(sh: Shell, argv: list[str], io: IO) -> int:
    """mksh's kill: a job of this session (`$!`) gets the signal, which ends it (status 128 +
    the signal, as `wait` reports it); other pids are the device's processes
    (harness.twin.packages.kill_pid: what the shell user may kill)."""
    from harness.twin.packages import kill_pid

    args = argv[1:]
    sig = _SIGNALS["TERM"]
    if args[:1] == ["-s"] and len(args) > 1:
        args = ["-" + args[1], *args[2:]]
    if args and args[0].startswith("-") and args[0] != "--":
        name = args[0][1:].upper().removeprefix("SIG")
        sig = int(name) if name.isdigit() else _SIGNALS.get(name, 0)
        if not sig:
            await sh.error(io, f"kill: {args[0][1:]}: unknown signal")
            return 1
        args = args[1:]
    elif args[:1] == ["--"]:
        args = args[1:]
    if not args:
        await sh.error(io, "kill: usage: kill [-s signame | -signum | -signame] pid ...")
        return 1
    status = 0
    for arg in args:
        pid = int(arg.lstrip("%")) if arg.lstrip("%").isdigit() else None
        if pid is None:
            await sh.error(io, f"kill: {arg}: arguments must be jobs or process IDs")
            status = 1
            continue
        task = sh.root.jobs.get(pid)
        if task is not None:
            if not task.done():
                sh.root.signalled[pid] = 128 + sig
                task.cancel()
            continue
        err = kill_pid(sh.twin, pid)
        if err is not None:
            await sh.error(io, f"kill: {arg}: {err}")
            status = 1
    return status


@builtin("wait")
async def _b_wait(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) == 1:
        await sh.wait_jobs(list(sh.root.jobs))
        return 0
    status = 0
    for arg in argv[1:]:
        pid = int(arg.lstrip("%")) if arg.lstrip("%").isdigit() else -1
        if pid not in sh.root.jobs:  # mksh: 127, silently
            status = 127
            continue
        status = await sh.wait_jobs([pid])
    return status


def _kind(sh: Shell, name: str) -> str | None:
    if name in _RESERVED_WORDS:
        return "reserved"
    if name in sh.funcs:
        return "function"
    if name in _SPECIAL:
        return "special"
    if name in _BUILTINS:
        return "builtin"
    if sh.resolve(name) is not None:
        return "command"
    if "/" in name and sh.twin.fs.lookup(sh.twin.fs.norm(name, sh.cwd)) is not None:
        return "file"
    return None


_RESERVED_WORDS = g.RESERVED | {"[["}


@builtin("type", "whence")
async def _b_type(sh: Shell, argv: list[str], io: IO) -> int:
    status = 0
    for name in argv[1:]:
        kind = _kind(sh, name)
        if kind is None:
            await _out(io, f"{name} not found\n")
            status = 1
        elif kind == "reserved":
            await _out(io, f"{name} is a reserved word\n")
        elif kind == "function":
            await _out(io, f"{name} is a function\n")
        elif kind == "special":
            await _out(io, f"{name} is a special shell builtin\n")
        elif kind == "builtin":
            await _out(io, f"{name} is a shell builtin\n")
        elif kind == "file":
            await _out(io, f"{name} is {name}\n")
        else:
            await _out(io, f"{name} is {_where(name)}\n")
    return status


def _where(name: str) -> str:
    return name if "/" in name else f"/system/bin/{name}"


@builtin("command")
async def _b_command(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    if args and args[0] in ("-v", "-V"):
        verbose = args[0] == "-V"
        status = 0
        for name in args[1:]:
            kind = _kind(sh, name)
            if kind is None:
                status = 1
                if verbose:
                    await _out(io, f"{name} not found\n")
            elif verbose:
                await _b_type(sh, ["type", name], io)
            else:
                await _out(
                    io,
                    (
                        name
                        if kind in ("function", "special", "builtin", "reserved")
                        else _where(name)
                    )
                    + "\n",
                )
        return status
    if not args:
        return 0
    if args[0] in _BUILTINS:
        return await _BUILTINS[args[0]](sh, args, io)
    return await sh._external(args, io, [])


@builtin("sh", "mksh")
async def _b_sh(sh: Shell, argv: list[str], io: IO) -> int:
    """`sh -c CMD [arg0 args]`, `sh FILE args`, `sh` (script on stdin); -e -x options."""
    args = argv[1:]
    child = sh.subprocess()
    cmd: str | None = None
    while args and args[0].startswith("-") and len(args[0]) > 1 and args[0] != "--":
        opt = args.pop(0)
        for ch in opt[1:]:
            if ch == "c":
                if not args:
                    await sh.error(io, "-c: option requires an argument")
                    return 1
                cmd = args.pop(0)
            elif ch in "exuf":
                child.opts.add(ch)
            elif ch in "si":
                pass
            else:
                await sh.error(io, f"-{ch}: unknown option")
                return 1
    if args and args[0] == "--":
        args.pop(0)
    if cmd is not None:
        if args:
            child.arg0 = args[0]
            child.params = args[1:]
        return await child.run_source(cmd, io)
    if args:
        path = sh.twin.fs.norm(args[0], sh.cwd)
        try:
            text = sh.twin.fs.read(path).decode("utf-8", "replace")
        except FsError as e:
            await io.err.write(f"{argv[0]}: {args[0]}: {e.reason}\n".encode())
            return 127 if e.reason.startswith("No such") else 1
        return await child.run_script(args[0], text, args[1:], io)
    text = (await io.stdin.read_all()).decode("utf-8", "replace")
    return await child.run_source(text, io)


# test / [
async def _test_eval(sh: Shell, args: list[str], patterns: dict[int, str] | None = None) -> bool:  # noqa: C901 -- test/[ ]: one branch per operator, as POSIX test
    """test/[ (and [[ ]] with `patterns`: the right of = == != is a glob pattern)."""
    fs = sh.twin.fs

    def node(p: str):
        return fs.lookup(fs.norm(p, sh.cwd)) if p else None

    def num(v: str) -> int:
        try:
            return int(v.strip())
        except ValueError:  # mksh evaluates it as an arithmetic expression (`a` is $a)
            return _Arith(v, sh).eval()

    def unary(op: str, a: str) -> bool:  # noqa: C901 -- test/[ ]: one branch per unary operator
        n = node(a) if op not in ("-z", "-n", "-t") else None
        if op == "-z":
            return a == ""
        if op == "-n":
            return a != ""
        if op == "-t":
            return False
        if op in ("-e", "-a") and op == "-e":
            return n is not None
        if op == "-f":
            return n is not None and not n.is_dir and not _is_chr(n)
        if op == "-d":
            return n is not None and n.is_dir
        if op == "-s":
            return n is not None and n.size > 0
        if op in ("-r", "-w"):
            return n is not None
        if op == "-x":
            return n is not None and bool(n.mode & 0o111)
        if op in ("-L", "-h"):
            return n is not None and getattr(n, "target", None) is not None
        if op == "-c":
            return n is not None and _is_chr(n)
        if op == "-p":
            return False
        raise ShellError(f"{op}: unexpected operator")

    def binary(a: str, op: str, b: str, b_at: int = -1) -> bool:
        if patterns is not None and b_at in patterns and op in ("=", "==", "!="):
            hit = fnmatch.fnmatchcase(a, patterns[b_at])
            return hit if op != "!=" else not hit
        if op in ("=", "=="):
            return a == b
        if op == "!=":
            return a != b
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        ops = {
            "-eq": int.__eq__,
            "-ne": int.__ne__,
            "-lt": int.__lt__,
            "-le": int.__le__,
            "-gt": int.__gt__,
            "-ge": int.__ge__,
        }
        if op in ops:
            return ops[op](num(a), num(b))
        if op in ("-nt", "-ot"):
            na, nb = node(a), node(b)
            if na is None or nb is None:
                return (na is not None) if op == "-nt" else (nb is not None)
            return na.mtime > nb.mtime if op == "-nt" else na.mtime < nb.mtime
        raise ShellError(f"{op}: unexpected operator")

    pos = 0

    def expr() -> bool:
        nonlocal pos
        v = term()
        while pos < len(args) and args[pos] == "-o":
            pos += 1
            r = term()
            v = v or r
        return v

    def term() -> bool:
        nonlocal pos
        v = factor()
        while pos < len(args) and args[pos] == "-a":
            pos += 1
            r = factor()
            v = v and r
        return v

    def factor() -> bool:
        nonlocal pos
        if pos >= len(args):
            raise ShellError("argument expected")
        a = args[pos]
        if a == "!" and pos + 1 < len(args):
            pos += 1
            return not factor()
        if a == "(" and pos + 2 < len(args) and ")" in args[pos + 1 :]:
            pos += 1
            v = expr()
            if pos >= len(args) or args[pos] != ")":
                raise ShellError("')' expected")
            pos += 1
            return v
        if pos + 2 < len(args) + 0 and pos + 2 <= len(args) - 1 and args[pos + 1] in _TEST_BINOPS:
            pos += 3
            return binary(a, args[pos - 2], args[pos - 1], pos - 1)
        if a.startswith("-") and len(a) == 2 and pos + 1 < len(args):
            pos += 2
            return unary(a, args[pos - 1])
        pos += 1
        return a != ""

    if not args:
        return False
    result = expr()
    if pos != len(args):
        raise ShellError(f"{args[pos]}: unexpected operator")
    return result


_TEST_BINOPS = {"=", "==", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot"}


def _is_chr(n) -> bool:
    return st.S_ISCHR(n.mode)


@builtin("test", "[")
async def _b_test(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            await sh.error(io, "[: missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if await _test_eval(sh, args) else 1
    except ShellError as e:
        await sh.error(io, f"{argv[0]}: {e}")
        return 2
