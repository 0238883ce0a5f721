"""The Shell: one shell process's state (variables, functions, cwd, parameters, options), its
entry points (`sh -c`, scripts, the interactive prompt) and the twin's /system/bin.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.fs import FsError
from harness.twin.grammar import ShellSyntaxError
from harness.twin.proc import (
    IO,
    SIGPIPE_STATUS,
    BrokenPipe,
    BytesSource,
    FunctionReturn,
    LoopBreak,
    Pipe,
    ShellError,
    ShellExit,
    Sink,
    Source,
)
from harness.twin.registry import COMMANDS
from harness.twin.shell import assignment, lookup  # noqa: F401 -- they register builtins
from harness.twin.shell.execution import Execution
from harness.twin.shell.expansion import Expansion
from harness.twin.shell.jobs import Jobs, SessionJobs
from harness.twin.shell.redirection import Redirection

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.transport import Stream

log = logging.getLogger(__name__)

_MAX_LINE = 64 * 1024
_SH = "/system/bin/sh"
_PATH = "/sbin:/vendor/bin:/system/sbin:/system/bin:/system/xbin"


class Shell(Execution, Expansion, Redirection, Jobs):
    """One shell (a process): variables, functions, cwd, positional parameters, options."""

    def __init__(self, twin: Twin, parent: Shell | None = None):
        self.twin = twin
        if parent is None:
            self.root = SessionJobs()
            _install_system_bin(twin)
            self.vars: dict[str, str] = {
                "PATH": _PATH,
                "HOME": "/",
                "ANDROID_DATA": "/data",
                "ANDROID_ROOT": "/system",
                "EXTERNAL_STORAGE": "/sdcard",
                "IFS": " \t\n",
                "PS1": "$ ",
            }
            self.exported = set(self.vars) - {"IFS", "PS1"}
            self.funcs: dict[str, g.Node] = {}
            self.cwd = "/"
            self.params: list[str] = []
            self.arg0 = _SH
            self.opts: set[str] = set()
            self.status = 0
            self.last_bg = ""
            self.pid = self.root.pid()
        else:
            self.root = parent.root
            self.vars = dict(parent.vars)
            self.exported = set(parent.exported)
            self.funcs = dict(parent.funcs)
            self.cwd = parent.cwd
            self.params = list(parent.params)
            self.arg0 = parent.arg0
            self.opts = set(parent.opts)
            self.status = parent.status
            self.last_bg = parent.last_bg
            self.pid = parent.pid  # $$ stays the parent's in a subshell
        self.script: str | None = None  # a script's name for messages (`name[line]: ...`)
        self.traps: dict[str, str] = {}  # only EXIT is acted on (no signals reach the twin)
        self.base_io: IO | None = None  # set by `exec >file`
        self._optsub = 1  # getopts: the next letter inside a grouped `-abc`...
        self._optsub_for = 1  # ...of the argument at this OPTIND
        self.line = 1
        self.depth = 0
        self.locals: list[dict[str, str | None]] = []
        self._noerr = 0  # inside a condition: `set -e` does not apply
        self.background = self.root.tasks

    # compatibility: older code reads/writes shell.env
    @property
    def env(self) -> dict[str, str]:
        return self.vars

    def fork(self) -> Shell:
        return Shell(self.twin, self)

    # variables
    def get(self, name: str) -> str | None:  # noqa: C901 -- one branch per special parameter ($?, $#, $@, ...)
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(self.pid)
        if name == "!":
            return self.last_bg
        if name == "#":
            return str(len(self.params))
        if name == "@":
            return " ".join(self.params)
        if name == "*":
            return self.vars.get("IFS", " \t\n")[:1].join(self.params)
        if name == "0":
            return self.arg0
        if name == "-":
            return "".join(sorted(self.opts))
        if name.isdigit():
            k = int(name)
            return self.params[k - 1] if 0 < k <= len(self.params) else None
        if name == "LINENO":
            return str(self.line)
        if name == "PWD":
            return self.vars.get("PWD", self.cwd)
        if name == "RANDOM":
            return str(random.randrange(32768))
        return self.vars.get(name)

    def set(self, name: str, value: str) -> None:
        self.vars[name] = value

    def unset(self, name: str) -> None:
        self.vars.pop(name, None)
        self.exported.discard(name)

    def exported_env(self) -> dict[str, str]:
        return {k: v for k, v in self.vars.items() if k in self.exported}

    @property
    def new_msgs(self) -> bool:
        """mksh R59 wording (Android 13+, estimate)."""
        return self.twin.personality.api >= 33

    def prefix(self) -> str:
        if self.script is not None:
            return f"{self.script}[{self.line}]"
        return self.arg0 if self.arg0 != _SH else _SH

    async def error(self, io: IO, text: str) -> None:
        await io.err.write(f"{self.prefix()}: {text}\n".encode())

    # --- entry points ------------------------------------------------------------------
    async def run(
        self, line: str, out: Sink, err: Sink, stdin: bytes | Source = b"", record: bool = True
    ) -> int:
        """Run a command line (`adb shell CMD` runs `sh -c CMD`); returns the exit status."""
        if len(line) > _MAX_LINE:
            await err.write(f"{_SH}: line too long\n".encode())
            return 2
        if record:
            self.twin.truth.record("shell", cmd=line[:500])
        source = stdin if isinstance(stdin, Source) else BytesSource(stdin)
        io = IO(source, out, err)
        self.root.session = (out, err)
        try:
            status = await self.run_source(line, io)
            # adbd ends the session when the last holder of its stdout/stderr is gone: wait for
            # jobs still writing there; a job with both redirected elsewhere lives on detached
            await self.wait_jobs([p for p in self.root.jobs if p in self.root.holding])
            return status
        finally:
            for pid in self.root.holding:
                task = self.root.jobs.get(pid)
                if task is not None and not task.done():
                    task.cancel()

    async def run_source(self, src: str, io: IO) -> int:
        """Parse and run source one top-level command at a time (as mksh reads a script);
        then the EXIT trap, if one was set."""
        status = await self._run_source(src, io)
        trap = self.traps.pop("EXIT", None)
        if trap:
            await self._run_source(trap, io)
            self.status = status
        return status

    async def _run_source(self, src: str, io: IO) -> int:
        parser = g.Parser(src)
        try:
            while True:
                try:
                    node = parser.complete_command()
                except ShellSyntaxError as e:
                    self.line = e.line
                    await self.error(io, e.message(self.new_msgs))
                    self.status = 1
                    return 1
                if node is None:
                    return self.status
                await self.exec(node, self.base_io or io)
        except ShellExit as e:
            self.status = e.status
            return e.status
        except FunctionReturn as e:  # `return` outside a function ends a script like exit
            self.status = e.status
            return e.status
        except LoopBreak:
            return self.status
        except ShellError as e:
            await self.error(io, str(e))
            self.status = 1
            return 1
        except RecursionError:
            await self.error(io, "recursion too deep")
            self.status = 1
            return 1
        except BrokenPipe:
            self.status = SIGPIPE_STATUS
            return SIGPIPE_STATUS

    async def run_script(self, name: str, text: str, args: list[str], io: IO) -> int:
        """`sh FILE args` in this (fresh) shell."""
        self.script = name
        self.arg0 = name
        self.params = list(args)
        return await self.run_source(text, io)

    def subprocess(self, assigns=()) -> Shell:
        """A new sh process: exported variables only, no functions, a new pid."""
        child = Shell(self.twin, self)
        child.vars = self.exported_env()
        child.vars.setdefault("IFS", " \t\n")
        child.vars.update(dict(assigns))
        child.exported = set(self.exported) | {n for n, _ in assigns}
        child.funcs = {}
        child.opts = set()
        child.pid = self.root.pid()
        return child

    # --- interactive ----------------------------------------------------------------------
    async def interactive(self, stream: Stream, out: Sink, stdin: Source | None = None) -> None:
        """`adb shell` with no command: a prompt, one line at a time."""
        prompt = "shell@" + self.twin.props.get("ro.product.device", "android") + ":/ $ "
        await out.write(prompt.encode())
        if stdin is None:
            pipe = Pipe()

            async def pump() -> None:
                while data := await stream.read():
                    await pipe.writer.write(data)
                pipe.close_write()

            pump_task = asyncio.ensure_future(pump())
            stdin = pipe.reader
        else:
            pump_task = None
        try:
            while True:
                raw = await stdin.readline()
                if not raw:
                    return
                text = raw.decode("utf-8", "replace").replace("\r", "").strip()
                if text == "exit":
                    return
                if text:
                    self.twin.truth.record("shell", cmd=text[:500])
                    try:
                        await self.run_source(text, IO(stdin, out, out))
                    except ShellExit:
                        return
                await out.write(prompt.encode())
        finally:
            if pump_task is not None:
                pump_task.cancel()


# userland tools that are links to the multi-call binary (the rest are their own files)
_MULTICALL_NOT = {
    "sh",
    "mksh",
    "getprop",
    "setprop",
    "pm",
    "am",
    "wm",
    "input",
    "dumpsys",
    "screencap",
    "screenrecord",
    "uiautomator",
    "app_process",
    "monkey",
    "settings",
    "svc",
    "cmd",
    "logcat",
    "log",
    "ime",
    "toybox",
    "toolbox",
    "content",
}


def _install_system_bin(twin: Twin) -> None:
    """Once per twin: /system/bin holds the commands of its API level, so `ls /system/bin`,
    `[ -x /system/bin/screenrecord ]` and `ls -l /system/bin/ls` (-> toybox) answer as on a
    device. Running them still goes through the command registry."""
    fs = twin.fs
    if getattr(fs, "system_bin_installed", False):
        return
    fs.system_bin_installed = True  # type: ignore[attr-defined]
    pers = twin.personality
    multi = "toybox" if pers.has_toybox else "toolbox"
    sealed = getattr(fs, "sealed", False)
    fs.sealed = False  # part of the system image: written before /system is read-only to users
    try:
        for name in (multi, "sh"):
            if fs.lookup(f"/system/bin/{name}") is None:
                fs.write(f"/system/bin/{name}", b"\x7fELF", mode=0o755)
        if fs.lookup("/system/bin/mksh") is None:
            fs.symlink("sh", "/system/bin/mksh")
        for name, (_, when) in sorted(COMMANDS.items()):
            path = f"/system/bin/{name}"
            if not when(pers) or fs.lookup(path, follow=False) is not None:
                continue
            if name in _MULTICALL_NOT:
                fs.write(path, b"\x7fELF", mode=0o755)
            else:
                fs.symlink(multi, path)
    except FsError as e:  # a twin whose /system is arranged otherwise keeps it
        log.warning("twin /system/bin not filled: %s", e)
    finally:
        fs.sealed = sealed
