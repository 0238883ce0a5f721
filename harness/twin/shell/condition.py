"""Conditions: test and [ (POSIX test), and the evaluator behind [[ ]] (patterns on the right of
= == !=).
"""

from __future__ import annotations

import fnmatch
import stat as st
from typing import TYPE_CHECKING

from harness.twin.proc import (
    IO,
    ShellError,
)
from harness.twin.shell.arith import Arith
from harness.twin.shell.builtins import builtin

if TYPE_CHECKING:
    from harness.twin.shell.interpreter import Shell


async def test_eval(sh: Shell, args: list[str], patterns: dict[int, str] | None = None) -> bool:  # noqa: C901 -- test/[ ]: one branch per operator, as POSIX test
    """test/[ (and [[ ]] with `patterns`: the right of = == != is a glob pattern)."""
    fs = sh.twin.fs

    def node(p: str):
        return fs.lookup(fs.norm(p, sh.cwd)) if p else None

    def num(v: str) -> int:
        try:
            return int(v.strip())
        except ValueError:  # mksh evaluates it as an arithmetic expression (`a` is $a)
            return Arith(v, sh).eval()

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
async def test_builtin(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            await sh.error(io, "[: missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if await test_eval(sh, args) else 1
    except ShellError as e:
        await sh.error(io, f"{argv[0]}: {e}")
        return 2
