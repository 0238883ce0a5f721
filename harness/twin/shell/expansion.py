"""Word expansion: parameters, `~`, `$(...)`, `$((...))`, IFS field splitting, pathname globbing."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.proc import (
    IO,
    SUBST_MAX_BYTES,
    BufferSink,
    FunctionReturn,
    LoopBreak,
    ShellError,
    ShellExit,
)
from harness.twin.shell.arith import Arith

if TYPE_CHECKING:
    pass

Segs = list[tuple[str, bool]]  # (text, quoted) pieces of one field


class Expansion:
    """The Shell's word expansion (a part of harness.twin.shell.interpreter.Shell)."""

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
            return str(Arith(text, self).eval())
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
        pat = glob_pattern(segs)
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
        sink = BufferSink(limit=SUBST_MAX_BYTES)
        child = self.fork()
        try:
            status = await child.exec(body, IO(io.stdin, sink, io.err))
        except ShellExit as e:
            status = e.status
        except (FunctionReturn, LoopBreak):
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
        pattern = glob_pattern(segs)
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


_GLOB_CHARS = re.compile(r"[*?]|\[.+\]")  # a lone `[` (the test command) is no pattern


def _join(a: str, b: str) -> str:
    if not a:
        return b
    return a + b if a.endswith("/") else a + "/" + b


def _unescape_glob(comp: str) -> str:
    return re.sub(r"\[([*?\[])\]", r"\1", comp)


def glob_pattern(segs: Segs) -> str:
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
