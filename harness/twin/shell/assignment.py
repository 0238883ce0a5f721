"""Builtins that set variables from input or arguments: read, getopts, let."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from harness.twin.proc import (
    IO,
)
from harness.twin.shell.arith import Arith
from harness.twin.shell.builtins import builtin

if TYPE_CHECKING:
    from harness.twin.shell.interpreter import Shell


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
        value = Arith(expr, sh).eval()
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
