"""Registers the twin's device commands that live in their own modules (logcat, packages and
processes) and the few the shell helper's userland may not provide yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.twin import packages  # registers pm, am, ps, ...
from harness.twin.logcat import run_log, run_logcat
from harness.twin.registry import COMMANDS, command, lookup

if TYPE_CHECKING:
    from harness.twin.proc import Proc

if "pwd" not in COMMANDS:  # the shell's own pwd wins when it has one

    @command("pwd")
    async def _pwd(p: Proc) -> int:
        await p.print(p.shell.cwd)
        return 0


@command("logcat")
async def _logcat(p: Proc) -> int:
    return await run_logcat(p)


@command("log")
async def _log(p: Proc) -> int:
    return await run_log(p)


if "exec" not in COMMANDS:  # `adb logcat` runs `export ANDROID_LOG_TAGS=...; exec logcat`

    @command("exec")
    async def _exec(p: Proc) -> int:
        if len(p.argv) < 2:
            return 0
        func = lookup(p.argv[1], p.twin.personality)
        if func is None:
            await p.eprint(f"/system/bin/sh: {p.argv[1]}: not found")
            return 127
        p.argv = p.argv[1:]
        return await func(p)


if "kill" not in COMMANDS:  # the shell's kill (jobs, signals) wins when it has one

    @command("kill")
    async def _kill(p: Proc) -> int:
        return await packages.kill(p)
