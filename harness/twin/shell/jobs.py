"""Jobs: `&` (a task with a pid that `wait` collects), pipelines run concurrently through bounded
pipes, and the builtins kill and wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.packages import kill_pid
from harness.twin.proc import (
    IO,
    SIGPIPE_STATUS,
    BrokenPipe,
    BytesSource,
    FunctionReturn,
    LoopBreak,
    Pipe,
    PipeSource,
    ShellError,
    ShellExit,
    Sink,
)
from harness.twin.shell.builtins import builtin

if TYPE_CHECKING:
    from harness.twin.shell.interpreter import Shell

_FIRST_PID = 5000


@dataclass
class SessionJobs:
    """What all shells of one session share: pids, jobs, the session's tasks."""

    next_pid: int = _FIRST_PID
    jobs: dict[int, asyncio.Task] = field(default_factory=dict)
    tasks: set[asyncio.Task] = field(default_factory=set)
    session: tuple[Sink, ...] = ()  # the stream's sinks: a job writing there holds the session
    holding: set[int] = field(default_factory=set)
    signalled: dict[int, int] = field(default_factory=dict)  # job pid -> 128 + the signal
    ticks: int = 0

    def pid(self) -> int:
        self.next_pid += 1
        return self.next_pid


class Jobs:
    """The Shell's jobs and pipelines (a part of harness.twin.shell.interpreter.Shell)."""

    async def _spawn(self, node: g.Node, io: IO) -> None:
        child = self.fork()
        pid = self.root.pid()
        child.pid = pid
        bg_io = IO(BytesSource(b""), io.out, io.err)
        redirects = getattr(node, "redirects", None)
        if redirects:  # opened before the job starts, so we know what it holds
            opened = await self._redirect(redirects, bg_io)
            if opened is None:
                self.last_bg = str(pid)
                return
            bg_io = opened
            node = dataclasses.replace(node, redirects=[])  # type: ignore[type-var]

        task = asyncio.ensure_future(self._run_child(child, node, bg_io))
        self.root.jobs[pid] = task
        if bg_io.out in self.root.session or bg_io.err in self.root.session:
            self.root.holding.add(pid)
        self.root.tasks.add(task)
        task.add_done_callback(self.root.tasks.discard)
        self.last_bg = str(pid)
        self.twin.truth.record("shell_job", pid=pid)

    async def wait_jobs(self, pids) -> int:
        status = 0
        for pid in list(pids):
            task = self.root.jobs.get(pid)
            if task is None:
                continue
            try:
                status = await task
            except asyncio.CancelledError:
                if asyncio.current_task() and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                status = self.root.signalled.pop(pid, 143)
            self.root.jobs.pop(pid, None)
        return status

    async def _pipeline(self, cmds: list[g.Node], io: IO) -> int:
        if len(cmds) == 1:
            return await self.exec(cmds[0], io)
        tasks: list[asyncio.Task] = []
        stdin = io.stdin
        pipes: list[Pipe] = []
        for cmd in cmds[:-1]:
            pipe = Pipe()
            pipes.append(pipe)
            child = self.fork()
            tasks.append(
                asyncio.ensure_future(self._pipe_member(child, cmd, IO(stdin, pipe.writer, io.err)))
            )
            tasks[-1].add_done_callback(lambda _t, p=pipe: p.close_write())
            stdin = pipe.reader
        try:
            status = await self._pipe_member(self.fork(), cmds[-1], IO(stdin, io.out, io.err))
        finally:
            for pipe in pipes:
                pipe.close_read()
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                for t in tasks:
                    t.cancel()
        return status

    async def _run_child(self, child: Shell, cmd: g.Node, io: IO) -> int:
        """A subshell's run (a background job or a pipeline member): its exit status, whatever
        ends it (exit, return/break, a closed pipe, a shell error printed to its stderr)."""
        try:
            return await child.exec(cmd, io)
        except ShellExit as e:
            return e.status
        except (FunctionReturn, LoopBreak):
            return child.status
        except BrokenPipe:
            return SIGPIPE_STATUS
        except ShellError as e:
            await child.error(io, str(e))
            return 1

    async def _pipe_member(self, child: Shell, cmd: g.Node, io: IO) -> int:
        try:
            return await self._run_child(child, cmd, io)
        finally:
            io.stdin.close() if isinstance(io.stdin, PipeSource) else None


_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15}


@builtin("kill")
async def _b_kill(sh: Shell, argv: list[str], io: IO) -> int:
    """mksh's kill: a job of this session (`$!`) gets the signal, which ends it (status 128 +
    the signal, as `wait` reports it); other pids are the device's processes
    (harness.twin.packages.kill_pid: what the shell user may kill)."""
    args = argv[1:]
    sig = _SIGNALS["TERM"]
    if args[:1] == ["-s"] and len(args) > 1:
        args = ["-" + args[1], *args[2:]]
    if args and args[0].startswith("-") and args[0] != "--":
        name = args[0][1:].upper().removeprefix("SIG")
        sig = int(name) if name.isdigit() else _SIGNALS.get(name, 0)
        if not sig:
            await sh.error(io, f"kill: {args[0][1:]}: unknown signal")
            return 1
        args = args[1:]
    elif args[:1] == ["--"]:
        args = args[1:]
    if not args:
        await sh.error(io, "kill: usage: kill [-s signame | -signum | -signame] pid ...")
        return 1
    status = 0
    for arg in args:
        pid = int(arg.lstrip("%")) if arg.lstrip("%").isdigit() else None
        if pid is None:
            await sh.error(io, f"kill: {arg}: arguments must be jobs or process IDs")
            status = 1
            continue
        task = sh.root.jobs.get(pid)
        if task is not None:
            if not task.done():
                sh.root.signalled[pid] = 128 + sig
                task.cancel()
            continue
        err = kill_pid(sh.twin, pid)
        if err is not None:
            await sh.error(io, f"kill: {arg}: {err}")
            status = 1
    return status


@builtin("wait")
async def _b_wait(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) == 1:
        await sh.wait_jobs(list(sh.root.jobs))
        return 0
    status = 0
    for arg in argv[1:]:
        pid = int(arg.lstrip("%")) if arg.lstrip("%").isdigit() else -1
        if pid not in sh.root.jobs:  # mksh: 127, silently
            status = 127
            continue
        status = await sh.wait_jobs([pid])
    return status
