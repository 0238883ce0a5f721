"""sed: addresses, s///, d p n q a i c y = and the rest of its command language."""

from __future__ import annotations

import re

from harness.twin.fs import FsError
from harness.twin.proc import Proc, ShellError
from harness.twin.registry import command
from harness.twin.userland.toolkit import (
    bre_to_re,
    failed_status,
    has_toybox,
    inputs,
    usage_error,
)


# --- sed ----------------------------------------------------------------------------------
class _SedCmd:
    def __init__(self, addr1, addr2, neg, cmd, arg):
        self.addr1, self.addr2, self.neg, self.cmd, self.arg = addr1, addr2, neg, cmd, arg
        self.active = False


def _sed_parse(script: str, extended: bool) -> list[_SedCmd]:  # noqa: C901 -- sed's command language: one branch per command
    cmds = []
    i = 0
    n = len(script)

    def addr():
        nonlocal i
        if i < n and script[i].isdigit():
            m = re.match(r"\d+", script[i:])
            i += m.end()
            return int(m.group())
        if i < n and script[i] == "$":
            i += 1
            return "$"
        if i < n and script[i] in "/\\":
            delim = "/"
            if script[i] == "\\":
                i += 1
                delim = script[i]
            i += 1
            start = i
            while i < n and script[i] != delim:
                i += 2 if script[i] == "\\" else 1
            rx = re.compile(bre_to_re(script[start:i], extended, False))
            i += 1
            return rx
        return None

    while i < n:
        while i < n and script[i] in " \t\n;":
            i += 1
        if i >= n:
            break
        a1 = addr()
        a2 = None
        if i < n and script[i] == ",":
            i += 1
            a2 = addr()
        while i < n and script[i] == " ":
            i += 1
        neg = False
        if i < n and script[i] == "!":
            neg = True
            i += 1
        if i >= n:
            raise ShellError("bad command")
        c = script[i]
        i += 1
        if c in "pdqnNPD=":
            cmds.append(_SedCmd(a1, a2, neg, c, None))
        elif c in "s":
            delim = script[i]
            i += 1
            parts = []
            for _ in range(2):
                start = i
                buf = []
                while i < n and script[i] != delim:
                    if script[i] == "\\" and i + 1 < n:
                        buf.append(script[i : i + 2] if script[i + 1] != delim else delim)
                        i += 2
                        continue
                    buf.append(script[i])
                    i += 1
                if i >= n:
                    raise ShellError("unterminated `s' command")
                parts.append("".join(buf))
                i += 1
                del start
            m = re.match(r"[gpiI0-9]*", script[i:])
            flags = m.group()
            i += m.end()
            rx = re.compile(
                bre_to_re(parts[0], extended, False), re.I if "i" in flags.lower() else 0
            )
            rep = re.sub(
                r"\\(\d)", r"\\g<\1>", parts[1].replace("&", "\\g<0>").replace("\\\\g<0>", "&")
            )
            cmds.append(_SedCmd(a1, a2, neg, "s", (rx, rep, flags)))
        elif c in "aic":
            text = script[i:].lstrip("\\").lstrip("\n").lstrip()
            end = text.find("\n")
            text = text if end < 0 else text[:end]
            i = n if end < 0 else script.index(text, i) + len(text)
            cmds.append(_SedCmd(a1, a2, neg, c, text))
        elif c == "y":
            delim = script[i]
            src, dst, _rest = script[i + 1 :].split(delim, 2)
            i = n - len(_rest)
            cmds.append(_SedCmd(a1, a2, neg, "y", str.maketrans(src, dst)))
        else:
            raise ShellError(f"Unknown command '{c}'")
    return cmds


def _sed_match(cmd: _SedCmd, lineno: int, last: bool, line: str) -> bool:
    def hit(a) -> bool:
        if a is None:
            return True
        if a == "$":
            return last
        if isinstance(a, int):
            return lineno == a
        return bool(a.search(line))

    if cmd.addr2 is None:
        ok = hit(cmd.addr1)
    elif cmd.active:
        ok = True
        end = cmd.addr2
        if (isinstance(end, int) and lineno >= end) or (not isinstance(end, int) and hit(end)):
            cmd.active = False
    elif hit(cmd.addr1):
        ok = True
        cmd.active = not (isinstance(cmd.addr2, int) and lineno >= cmd.addr2)
    else:
        ok = False
    return ok != cmd.neg


def _sed_run(cmds: list[_SedCmd], text: str, quiet: bool) -> str:  # noqa: C901 -- sed's command language: one branch per command
    if not text:
        return ""
    out: list[str] = []
    lines = text.split("\n")
    trailing = text.endswith("\n")
    if trailing:
        lines.pop()
    for idx, line in enumerate(lines):
        lineno = idx + 1
        last = idx == len(lines) - 1
        deleted = False
        after: list[str] = []
        quit_now = False
        for cmd in cmds:
            if not _sed_match(cmd, lineno, last, line):
                continue
            c = cmd.cmd
            if c == "p":
                out.append(line + "\n")
            elif c == "d":
                deleted = True
                break
            elif c == "q":
                quit_now = True
                break
            elif c == "=":
                out.append(f"{lineno}\n")
            elif c == "s":
                rx, rep, flags = cmd.arg
                count = 0 if "g" in flags else 1
                nth = re.search(r"\d+", flags)
                if nth:
                    k = int(nth.group())
                    seen = 0

                    def one(m, k=k, rep=rep):
                        nonlocal seen
                        seen += 1
                        return m.expand(rep) if seen == k else m.group()

                    new = rx.sub(one, line)
                else:
                    new = rx.sub(rep, line, count=count)
                if new != line or rx.search(line):
                    line = new
                    if "p" in flags:
                        out.append(line + "\n")
            elif c == "y":
                line = line.translate(cmd.arg)
            elif c == "a":
                after.append(cmd.arg + "\n")
            elif c == "i":
                out.append(cmd.arg + "\n")
            elif c == "c":
                deleted = True
                out.append(cmd.arg + "\n")
                break
        if not deleted and not quiet:
            out.append(line + ("\n" if (not last or trailing) else ""))
        out.extend(after)
        if quit_now:
            break
    return "".join(out)


@command("sed", when=has_toybox)
async def _sed(p: Proc) -> int:  # noqa: C901 -- sed's options, one branch each
    args = p.argv[1:]
    scripts: list[str] = []
    files: list[str] = []
    quiet = inplace = extended = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-e" and i + 1 < len(args):
            scripts.append(args[i + 1])
            i += 2
            continue
        if a.startswith("-i"):
            inplace = True
        elif a == "-n":
            quiet = True
        elif a in ("-E", "-r"):
            extended = True
        elif a.startswith("-") and len(a) > 1 and set(a[1:]) <= set("nErs"):
            quiet = quiet or "n" in a
            extended = extended or "E" in a or "r" in a
        elif not scripts and not files:
            scripts.append(a)
        else:
            files.append(a)
        i += 1
    if not scripts:
        return await usage_error(p, "sed", "Needs 1 argument")
    try:
        cmds = _sed_parse("\n".join(scripts), extended)
    except (ShellError, re.error, ValueError, IndexError) as e:
        await p.eprint(f"sed: bad pattern: {e}")
        return 1
    if inplace:
        status = 0
        for name in files:
            try:
                text = p.twin.fs.read(p.path(name)).decode("utf-8", "replace")
            except FsError as e:
                await p.eprint(f"sed: {name}: {e.reason}")
                status = 1
                continue
            p.twin.fs.write(p.path(name), _sed_run(cmds, text, quiet).encode())
        return status
    text = ""
    async for _, data in inputs(p, files, "sed"):
        text += data.decode("utf-8", "replace")
    await p.out.write(_sed_run(cmds, text, quiet).encode())
    return failed_status(p)
