"""printf (toybox's conversions) and expr."""

from __future__ import annotations

import re

from harness.twin.proc import Proc, ShellError
from harness.twin.registry import command
from harness.twin.shell.builtins import echo_escapes
from harness.twin.userland.toolkit import (
    bre_to_re,
    has_toybox,
    usage_error,
)

_PRINTF_SPEC = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([diouxXeEfFgGcsb%])")


def _printf_escapes(text: str) -> str:
    out, _ = echo_escapes(text.replace("\\c", "\\\\c"))
    return out


class _PrintfBad(Exception):
    """A numeric conversion got a non-number (printf prints 0, complains, exits 1)."""


def _printf_num(v: str, bad: list[str] | None = None) -> int:
    v = v.strip()
    if v[:1] in "'\"" and len(v) > 1:
        return ord(v[1])
    try:
        return int(v, 0) if v.lower().startswith(("0x", "-0x")) else int(v or "0")
    except ValueError:
        if re.fullmatch(r"-?\d+\.\d*", v):
            return int(float(v))
        if bad is not None:
            bad.append(v)
        return 0


def printf_format(fmt: str, args: list[str], bad: list[str] | None = None) -> str:  # noqa: C901 -- printf conversions, one branch each
    """printf(1): the format is reused while arguments remain; non-numbers for numeric
    conversions are collected in `bad`."""
    fmt = _printf_escapes(fmt)
    out = []
    args = list(args)
    while True:
        used = False

        def repl(m: re.Match) -> str:
            nonlocal used
            flags, width, prec, conv = m.groups()
            if conv == "%":
                return "%"
            if width == "*":
                width = str(_printf_num(args.pop(0))) if args else "0"
            if prec == "*":
                prec = str(_printf_num(args.pop(0))) if args else "0"
            used = True
            arg = args.pop(0) if args else ""
            spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
            if conv in "diouxX":
                c = "d" if conv in "iu" else conv
                wrong: list[str] = []
                value = _printf_num(arg, wrong)
                if wrong and bad is not None:
                    bad.append(f"%{conv} {arg}")
                return (spec + c) % value
            if conv in "eEfFgG":
                try:
                    return (spec + conv) % float(arg or 0)
                except ValueError:
                    return (spec + conv) % 0.0
            if conv == "c":
                return (spec + "s") % (arg[:1])
            if conv == "b":
                return (spec + "s") % _printf_escapes(arg)
            return (spec + "s") % arg

        out.append(_PRINTF_SPEC.sub(repl, fmt))
        if not args or not used:
            break
    return "".join(out)


@command("printf", when=has_toybox)
async def _printf(p: Proc) -> int:
    if len(p.argv) < 2:
        return await usage_error(p, "printf", "Needs 1 argument")
    bad: list[str] = []
    await p.out.write(printf_format(p.argv[1], p.argv[2:], bad).encode())
    for v in bad:
        await p.eprint(f"printf: bad {v}")
    return 1 if bad else 0


@command("expr", when=has_toybox)
async def _expr(p: Proc) -> int:  # noqa: C901 -- expr operators, one branch each
    args = p.argv[1:]
    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(args):
            raise ShellError("syntax error")
        a = args[pos]
        pos += 1
        if a == "(":
            v = orexp()
            pos += 1
            return v
        if a == "length" and pos < len(args):
            pos += 1
            return len(args[pos - 1])
        return int(a) if re.fullmatch(r"-?\d+", a) else a

    def match():
        nonlocal pos
        v = atom()
        while pos < len(args) and args[pos] == ":":
            pos += 1
            rx = args[pos]
            pos += 1
            m = re.match(bre_to_re(rx, False, False), str(v))
            if m and m.groups():
                v = m.group(1) or ""
            else:
                v = len(m.group()) if m else 0
        return v

    def mul():
        nonlocal pos
        v = match()
        while pos < len(args) and args[pos] in ("*", "/", "%"):
            op = args[pos]
            pos += 1
            r = match()
            a, b = int(v), int(r)
            if op != "*" and b == 0:
                raise ShellError("division by zero")
            v = a * b if op == "*" else int(a / b) if op == "/" else a - int(a / b) * b
        return v

    def add():
        nonlocal pos
        v = mul()
        while pos < len(args) and args[pos] in ("+", "-"):
            op = args[pos]
            pos += 1
            r = mul()
            try:
                v = int(v) + int(r) if op == "+" else int(v) - int(r)
            except ValueError:
                raise ShellError("non-integer argument") from None
        return v

    def cmp():
        nonlocal pos
        v = add()
        while pos < len(args) and args[pos] in ("=", "==", "!=", "<", "<=", ">", ">="):
            op = args[pos]
            pos += 1
            r = add()
            a, b = (v, r) if isinstance(v, int) and isinstance(r, int) else (str(v), str(r))
            v = int(
                {
                    "=": a == b,
                    "==": a == b,
                    "!=": a != b,
                    "<": a < b,
                    "<=": a <= b,
                    ">": a > b,
                    ">=": a >= b,
                }[op]
            )
        return v

    def andexp():
        nonlocal pos
        v = cmp()
        while pos < len(args) and args[pos] == "&":
            pos += 1
            r = cmp()
            v = v if (v not in (0, "") and r not in (0, "")) else 0
        return v

    def orexp():
        nonlocal pos
        v = andexp()
        while pos < len(args) and args[pos] == "|":
            pos += 1
            r = andexp()
            v = v if v not in (0, "") else r
        return v

    try:
        result = orexp()
        if pos != len(args):
            raise ShellError("syntax error")
    except (ShellError, ValueError, IndexError) as e:
        await p.eprint(f"expr: {e if isinstance(e, ShellError) else 'syntax error'}")
        return 2
    await p.print(str(result))
    return 0 if result not in (0, "") else 1
