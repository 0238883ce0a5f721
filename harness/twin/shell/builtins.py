"""The builtins' registry, and the builtins of control flow and variables (echo, exit, return,
break, continue, cd, pwd, export, readonly, unset, local, shift, set, eval, ., exec, trap, ...).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.fs import FsError
from harness.twin.proc import (
    IO,
    FunctionReturn,
    LoopBreak,
    ShellError,
    ShellExit,
)

if TYPE_CHECKING:
    from harness.twin.shell.interpreter import Shell

MAX_DEPTH = 64  # function/eval/source nesting; deeper is an error, not a Python RecursionError

Builtin = Callable[["Shell", list[str], IO], Awaitable[int]]
BUILTINS: dict[str, Builtin] = {}
SPECIAL_BUILTINS = {
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
            BUILTINS[n] = func
        return func

    return deco


async def write_out(io: IO, text: str) -> None:
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


def echo_escapes(text: str) -> tuple[str, bool]:
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
        text, stop = echo_escapes(text)
        if stop:
            newline = False
    await write_out(io, text + ("\n" if newline else ""))
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
    raise FunctionReturn(status & 0xFF)


@builtin("break", "continue")
async def _b_break(sh: Shell, argv: list[str], io: IO) -> int:
    levels = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 1
    raise LoopBreak(max(levels, 1), argv[0] == "continue")


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
    await write_out(io, sh.cwd + "\n")
    return 0


@builtin("export", "readonly")
async def _b_export(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if a != "-p"]
    if not args:
        for k in sorted(sh.exported):
            if k in sh.vars:
                await write_out(io, f"export {k}={quote(sh.vars[k])}\n")
        return 0
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq:
            sh.set(name, value)
        if argv[0] == "export":
            sh.exported.add(name)
    return 0


def quote(v: str) -> str:
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
            await write_out(io, f"{k}={quote(sh.vars[k])}\n")
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
    if sh.depth >= MAX_DEPTH:
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
    if sh.depth >= MAX_DEPTH:
        raise ShellError(f"{argv[0]}: recursion too deep")
    node = g.Parser(text).parse_all()
    saved = sh.params
    if len(argv) > 2:
        sh.params = argv[2:]
    sh.depth += 1
    try:
        return await sh.exec(node, io)
    except FunctionReturn as r:
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
            await write_out(io, f"trap -- {quote(cmd)} {sig}\n")
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
        await write_out(io, "0077\n" if sh.twin.personality.api < 21 else "0000\n")
    return 0
