"""What the userland tools share: toybox-style option parsing, reading files and stdin, usage
errors, and the API-level predicates of each tool family.
"""

from __future__ import annotations

import re

from harness.twin.fs import FsError
from harness.twin.personality import Personality
from harness.twin.proc import Proc, ShellError, Source, UsageError
from harness.twin.registry import COMMANDS, command


def fallback_command(name: str, when):
    """Register `name` unless another module already did (the process commands' own module
    gives a richer pidof; this one only reads twin.processes)."""

    def deco(func):
        return func if name in COMMANDS else command(name, when=when)(func)

    return deco


def has_toybox(pers: Personality) -> bool:
    return pers.has_toybox


def has_toolbox_18(pers: Personality) -> bool:
    return pers.api >= 18


def has_awk(pers: Personality) -> bool:
    return pers.api >= 28


# --- helpers ------------------------------------------------------------------------------
def parse_opts(
    argv: list[str], flags: str, valued: str = ""
) -> tuple[dict[str, str | bool], list[str]]:
    """Parse `-abc -n 3 -n3` options anywhere among the operands (toybox permutes); `--` ends
    them. Raises ShellError for an unknown option (the shell prints `<tool>: ...`, status 1)."""
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i + 1 :])
            break
        if (
            a.startswith("-")
            and len(a) > 1
            and not a[1:].lstrip("-").isdigit()
            or (a.startswith("-") and len(a) > 1 and a[1] in valued)
        ):
            j = 1
            while j < len(a):
                c = a[j]
                if c in valued:
                    val = a[j + 1 :] or (argv[i + 1] if i + 1 < len(argv) else "")
                    if not a[j + 1 :]:
                        i += 1
                    opts[c] = val
                    break
                if c in flags:
                    opts[c] = True
                else:
                    raise UsageError(f"Unknown option '{c}'")
                j += 1
            i += 1
            continue
        rest.append(a)
        i += 1
    return opts, rest


async def read_file(p: Proc, name: str) -> bytes:
    if name == "-":
        return await p.stdin.read_all()
    path = p.path(name)
    if path == "/dev/zero":
        raise FsError(name, "File too large")
    node = p.twin.fs.lookup(path)
    if node is not None and node.is_dir:
        raise FsError(name, "Is a directory")
    return p.twin.fs.read(path)


def open_file(p: Proc, name: str) -> Source:
    node = p.twin.fs.lookup(p.path(name))
    if node is not None and node.is_dir:
        raise FsError(name, "Is a directory")
    return p.shell.open_in(name)


async def inputs(p: Proc, files: list[str], tool: str):
    """(name, data) for each file operand, or stdin; errors printed as toybox does."""
    if not files:
        yield "-", await p.stdin.read_all()
        return
    for name in files:
        try:
            yield name, await read_file(p, name)
        except FsError as e:
            await p.eprint(f"{tool}: {name}: {e.reason}")
            p.env["__status"] = "1"


def split_lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def failed_status(p: Proc) -> int:
    return 1 if p.env.pop("__status", None) else 0


async def usage_error(p: Proc, tool: str, why: str) -> int:
    """toybox's usage error: `<tool>: <why> (see "<tool> --help")`, status 1."""
    await p.eprint(f'{tool}: {why} (see "{tool} --help")')
    return 1


async def guarded(p: Proc, coro) -> int:
    try:
        return await coro
    except ShellError as e:
        await p.eprint(f"{p.argv[0]}: {e}")
        return 1


def bre_to_re(pattern: str, extended: bool, fixed: bool) -> str:
    if fixed:
        return re.escape(pattern)
    if extended:
        return pattern
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            out.append(n if n in "(){}|+?" else "\\" + n)
            i += 2
            continue
        out.append("\\" + c if c in "(){}|+?" else c)
        i += 1
    return "".join(out)
