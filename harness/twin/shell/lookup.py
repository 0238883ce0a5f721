"""What a name runs: type, whence, command (-v, -V), and sh/mksh (a new shell process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.fs import FsError
from harness.twin.proc import (
    IO,
)
from harness.twin.shell.builtins import BUILTINS, SPECIAL_BUILTINS, builtin, write_out

if TYPE_CHECKING:
    from harness.twin.shell.interpreter import Shell


def _kind(sh: Shell, name: str) -> str | None:
    if name in _RESERVED_WORDS:
        return "reserved"
    if name in sh.funcs:
        return "function"
    if name in SPECIAL_BUILTINS:
        return "special"
    if name in BUILTINS:
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
            await write_out(io, f"{name} not found\n")
            status = 1
        elif kind == "reserved":
            await write_out(io, f"{name} is a reserved word\n")
        elif kind == "function":
            await write_out(io, f"{name} is a function\n")
        elif kind == "special":
            await write_out(io, f"{name} is a special shell builtin\n")
        elif kind == "builtin":
            await write_out(io, f"{name} is a shell builtin\n")
        elif kind == "file":
            await write_out(io, f"{name} is {name}\n")
        else:
            await write_out(io, f"{name} is {_where(name)}\n")
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
                    await write_out(io, f"{name} not found\n")
            elif verbose:
                await _b_type(sh, ["type", name], io)
            else:
                await write_out(
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
    if args[0] in BUILTINS:
        return await BUILTINS[args[0]](sh, args, io)
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
