"""A small Android-like /system/bin/sh: parses command lines and runs the twin's commands.

Supports what adbutils, uiautomator2 and the harness send: `;`, `&&`, `||`, `|`, `&`,
redirections (`>`, `>>`, `<`, `2>`, `2>&1`), quotes, `$?`, `$VAR` and `VAR=x cmd` prefixes.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.twin.fs import FsError

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.transport import Stream

log = logging.getLogger(__name__)

_OPERATORS = ("&&", "||", ";;", ";", "|", "&")
_MAX_LINE = 64 * 1024


class ShellSyntaxError(Exception):
    pass


class ShellExit(Exception):
    """`exit N`: stop the command line with status N."""

    def __init__(self, status: int):
        self.status = status


# --- output sinks -------------------------------------------------------------------------
class Sink:
    async def write(self, data: bytes) -> None:
        raise NotImplementedError


class BufferSink(Sink):
    def __init__(self) -> None:
        self.buf = bytearray()

    async def write(self, data: bytes) -> None:
        self.buf += data


class NullSink(Sink):
    async def write(self, data: bytes) -> None:
        return None


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
    def __init__(self, shell: Shell, path: str, append: bool):
        self.shell = shell
        self.path = path
        self.append = append
        self.buf = bytearray()

    async def write(self, data: bytes) -> None:
        self.buf += data

    def flush(self) -> None:
        self.shell.twin.fs.write(
            self.shell.twin.fs.norm(self.path, self.shell.cwd), bytes(self.buf), append=self.append
        )


# --- parsing -------------------------------------------------------------------------------
@dataclass
class Word:
    parts: list[tuple[str, str]]  # ("lit", text) or ("var", name)

    def expand(self, env: dict[str, str]) -> str:
        return "".join(text if kind == "lit" else env.get(text, "") for kind, text in self.parts)

    @property
    def literal(self) -> str | None:
        return "".join(t for _, t in self.parts) if all(k == "lit" for k, _ in self.parts) else None


@dataclass
class Redirect:
    fd: int
    op: str  # ">", ">>", "<", ">&"
    target: Word


@dataclass
class Command:
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


def tokenize(line: str) -> list[Word | str]:
    """Split a command line into Words and operator strings (redirections included)."""
    tokens: list[Word | str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\r\n":
            if c == "\n":
                tokens.append(";")
            i += 1
            continue
        if c == "#":
            while i < n and line[i] != "\n":
                i += 1
            continue
        # redirections: [n]>, [n]>>, [n]>&m, <, &>
        if (
            c in "<>"
            or (c.isdigit() and i + 1 < n and line[i + 1] in "<>")
            or line.startswith("&>", i)
        ):
            j = i
            fd = ""
            while j < n and line[j].isdigit():
                fd += line[j]
                j += 1
            if line.startswith("&>", j):
                tokens.append("&>")
                i = j + 2
                continue
            op = line[j]
            j += 1
            if j < n and line[j] == ">" and op == ">":
                op = ">>"
                j += 1
            elif j < n and line[j] == "&":
                op += "&"
                j += 1
            tokens.append(f"{fd}{op}")
            i = j
            continue
        matched = next((op for op in _OPERATORS if line.startswith(op, i)), None)
        if matched:
            tokens.append(";" if matched == ";;" else matched)
            i += len(matched)
            continue
        word, i = _read_word(line, i)
        tokens.append(word)
    return tokens


def _read_word(line: str, i: int) -> tuple[Word, int]:  # noqa: C901 -- the shell lexer: one branch per quoting and escape kind
    parts: list[tuple[str, str]] = []
    lit = []

    def flush() -> None:
        if lit:
            parts.append(("lit", "".join(lit)))
            lit.clear()

    n = len(line)
    while i < n and line[i] not in " \t\r\n;&|<>":
        c = line[i]
        if c == "\\" and i + 1 < n:
            lit.append(line[i + 1])
            i += 2
        elif c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated '")
            lit.append(line[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '"\\$`':
                    lit.append(line[i + 1])
                    i += 2
                elif line[i] == "$":
                    i = _var_or_dollar(line, i, lit, parts, flush)
                else:
                    lit.append(line[i])
                    i += 1
            if i >= n:
                raise ShellSyntaxError('unterminated "')
            i += 1
        elif c == "$":
            i = _var_or_dollar(line, i, lit, parts, flush)
        else:
            lit.append(c)
            i += 1
    flush()
    if not parts:
        parts.append(("lit", ""))
    return Word(parts), i


def _var_or_dollar(line: str, i: int, lit: list[str], parts: list[tuple[str, str]], flush) -> int:
    """At a `$`: a variable part ($?, $NAME, ${NAME}) or a literal dollar. Returns the next index."""
    name, i = _read_var(line, i)
    if name is None:
        lit.append("$")
    else:
        flush()
        parts.append(("var", name))
    return i


def _read_var(line: str, i: int) -> tuple[str | None, int]:
    j = i + 1
    if j < len(line) and line[j] in "?$#!0123456789":
        return line[j], j + 1
    if j < len(line) and line[j] == "{":
        end = line.find("}", j)
        if end > 0:
            return line[j + 1 : end], end + 1
    k = j
    while k < len(line) and (line[k].isalnum() or line[k] == "_"):
        k += 1
    if k == j:
        return None, j
    return line[j:k], k


def parse(line: str) -> list[tuple[list[Command], str]]:  # noqa: C901 -- the shell grammar: one branch per operator
    """Command line -> [(pipeline, separator)] with separator in ';', '&&', '||', '&'."""
    tokens = tokenize(line)
    items: list[tuple[list[Command], str]] = []
    pipeline: list[Command] = []
    cmd = Command()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, Word):
            lit = tok.literal
            if not cmd.words and lit and "=" in lit and lit.split("=", 1)[0].isidentifier():
                name, _, _ = lit.partition("=")
                value_parts = list(tok.parts)
                k, text = value_parts[0]
                value_parts[0] = (k, text.split("=", 1)[1])
                cmd.assigns.append((name, Word(value_parts)))
            elif (
                not cmd.words
                and tok.parts[0][0] == "lit"
                and "=" in tok.parts[0][1]
                and tok.parts[0][1].split("=", 1)[0].isidentifier()
            ):
                first = tok.parts[0][1]
                name, rest = first.split("=", 1)
                cmd.assigns.append((name, Word([("lit", rest)] + tok.parts[1:])))
            else:
                cmd.words.append(tok)
            i += 1
        elif tok in ("|",):
            if not cmd.words:
                raise ShellSyntaxError("syntax error: '|' unexpected")
            pipeline.append(cmd)
            cmd = Command()
            i += 1
        elif tok in (";", "&&", "||", "&"):
            if cmd.words or cmd.assigns:
                pipeline.append(cmd)
            elif pipeline or tok != ";":
                raise ShellSyntaxError(f"syntax error: '{tok}' unexpected")
            if pipeline:
                items.append((pipeline, tok))
            pipeline, cmd = [], Command()
            i += 1
        else:  # redirection operator
            if i + 1 >= len(tokens) or not isinstance(tokens[i + 1], Word):
                raise ShellSyntaxError(f"syntax error: '{tok}' needs a target")
            target = tokens[i + 1]
            op = tok.lstrip("0123456789")
            fd_text = tok[: len(tok) - len(op)]
            if op == "&>":
                cmd.redirects.append(Redirect(1, ">", target))
                cmd.redirects.append(Redirect(2, ">&", Word([("lit", "1")])))
            else:
                fd = int(fd_text) if fd_text else (0 if op == "<" else 1)
                cmd.redirects.append(Redirect(fd, op, target))
            i += 2
    if cmd.words or cmd.assigns:
        pipeline.append(cmd)
    if pipeline:
        items.append((pipeline, ";"))
    return items


# --- execution -----------------------------------------------------------------------------
@dataclass
class Proc:
    """What a command sees: its arguments, stdin, stdout/stderr sinks and the shell."""

    shell: Shell
    argv: list[str]
    stdin: bytes
    out: Sink
    err: Sink
    env: dict[str, str]

    @property
    def twin(self) -> Twin:
        return self.shell.twin

    async def print(self, text: str = "", end: str = "\n") -> None:
        await self.out.write((text + end).encode())

    async def eprint(self, text: str) -> None:
        await self.err.write((text + "\n").encode())


class Shell:
    def __init__(self, twin: Twin):
        self.twin = twin
        self.env: dict[str, str] = {
            "PATH": "/sbin:/vendor/bin:/system/sbin:/system/bin:/system/xbin",
            "HOME": "/",
            "ANDROID_DATA": "/data",
            "EXTERNAL_STORAGE": "/sdcard",
            "?": "0",
            "$": "4242",
        }
        self.cwd = "/"
        self.background: set[asyncio.Task] = set()

    async def run(self, line: str, out: Sink, err: Sink, stdin: bytes = b"") -> int:
        """Run a command line; returns the exit status of the last command."""
        from harness.twin.commands import lookup

        if len(line) > _MAX_LINE:
            await err.write(b"/system/bin/sh: line too long\n")
            return 2
        self.twin.truth.record("shell", cmd=line[:500])
        try:
            items = parse(line)
        except ShellSyntaxError as e:
            await err.write(f"/system/bin/sh: {e}\n".encode())
            self.env["?"] = "2"
            return 2
        try:
            return await self._run_items(items, out, err, stdin, lookup)
        except ShellExit as e:
            self.env["?"] = str(e.status)
            return e.status

    async def _run_items(self, items, out: Sink, err: Sink, stdin: bytes, lookup) -> int:
        status = int(self.env["?"])
        skip_next = False
        for pipeline, sep in items:
            if not skip_next:
                if sep == "&":
                    task = asyncio.ensure_future(
                        self._pipeline(pipeline, NullSink(), NullSink(), b"", lookup)
                    )
                    self.background.add(task)
                    task.add_done_callback(self.background.discard)
                    status = 0
                else:
                    status = await self._pipeline(pipeline, out, err, stdin, lookup)
                self.env["?"] = str(status)
            # `a && b || c` is ((a && b) || c): a skipped b leaves a's status for c
            skip_next = (sep == "&&" and status != 0) or (sep == "||" and status == 0)
        return status

    async def _pipeline(
        self, pipeline: list[Command], out: Sink, err: Sink, stdin: bytes, lookup
    ) -> int:
        data = stdin
        status = 0
        for idx, cmd in enumerate(pipeline):
            last = idx == len(pipeline) - 1
            sink = out if last else BufferSink()
            status = await self._command(cmd, sink, err, data, lookup)
            if not last:
                data = bytes(sink.buf)  # type: ignore[attr-defined]
        return status

    async def _command(self, cmd: Command, out: Sink, err: Sink, stdin: bytes, lookup) -> int:  # noqa: C901 -- one branch per redirection and builtin kind
        env = dict(self.env)
        for name, word in cmd.assigns:
            env[name] = word.expand(self.env)
        if not cmd.words:
            self.env.update({k: env[k] for k, _ in cmd.assigns})
            return 0
        argv = [w.expand(env) for w in cmd.words]
        files: list[FileSink] = []
        for r in cmd.redirects:
            target = r.target.expand(env)
            if r.op in (">", ">>"):
                if target == "/dev/null":
                    sink: Sink = NullSink()
                else:
                    fs = FileSink(self, target, r.op == ">>")
                    files.append(fs)
                    sink = fs
                if r.fd == 1:
                    out = sink
                elif r.fd == 2:
                    err = sink
            elif r.op == ">&":
                if r.fd == 2 and target == "1":
                    err = out
                elif r.fd == 1 and target == "2":
                    out = err
            elif r.op == "<":
                try:
                    stdin = self.twin.fs.read(self.twin.fs.norm(target, self.cwd))
                except FsError as e:
                    await err.write(f"/system/bin/sh: can't open {target}: {e.reason}\n".encode())
                    return 1
        name = argv[0].rsplit("/", 1)[-1] if argv[0].startswith("/system/") else argv[0]
        func = lookup(name, self.twin.personality)
        if func is None:
            await err.write(f"/system/bin/sh: {argv[0]}: not found\n".encode())
            return 127
        proc = Proc(self, [name] + argv[1:], stdin, out, err, env)
        try:
            status = await func(proc)
        except FsError as e:
            await err.write(f"{name}: {e}\n".encode())
            status = 1
        for f in files:
            try:
                f.flush()
            except FsError as e:
                await err.write(f"/system/bin/sh: can't create {f.path}: {e.reason}\n".encode())
                status = 1
        return int(status or 0)

    async def interactive(self, stream: Stream, out: Sink) -> None:
        """`adb shell` with no command: a prompt, one line at a time."""
        prompt = "shell@" + self.twin.props.get("ro.product.device", "android") + ":/ $ "
        await out.write(prompt.encode())
        buf = b""
        while True:
            data = await stream.read()
            if not data:
                return
            buf += data
            while b"\n" in buf or b"\r" in buf:
                cut = min(i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0)
                line, buf = buf[:cut], buf[cut + 1 :]
                text = line.decode("utf-8", "replace").strip()
                if text == "exit":
                    return
                if text:
                    await self.run(text, out, out)
                await out.write(prompt.encode())
