"""Running the syntax tree: lists, and-or lists, compound commands, simple commands, functions,
and the command search (special builtins, functions, builtins, the command registry, scripts).
"""

from __future__ import annotations

import asyncio
import fnmatch
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.fs import FsError
from harness.twin.proc import (
    IO,
    FunctionReturn,
    LoopBreak,
    Proc,
    ShellError,
    ShellExit,
    UsageError,
)
from harness.twin.registry import lookup
from harness.twin.shell.arith import Arith
from harness.twin.shell.builtins import BUILTINS, MAX_DEPTH, SPECIAL_BUILTINS, quote
from harness.twin.shell.condition import test_eval
from harness.twin.shell.expansion import glob_pattern

if TYPE_CHECKING:
    pass

_YIELD_EVERY = 16  # commands or loop turns between two yields to the event loop


class Execution:
    """The Shell's executor (a part of harness.twin.shell.interpreter.Shell)."""

    async def exec(self, node: g.Node, io: IO) -> int:
        status = await self._exec(node, io)
        self.status = status
        return status

    async def _exec(self, node: g.Node, io: IO) -> int:  # noqa: C901 -- one branch per node type of the shell's syntax tree
        if isinstance(node, g.ListNode):
            status = self.status
            for item, background in node.items:
                before = self.base_io
                if background:
                    await self._spawn(item, io)
                    status = 0
                else:
                    status = await self.exec(item, io)
                    if not isinstance(item, g.AndOr):
                        self._errexit(status, item)
                if self.base_io is not before and self.base_io is not None:
                    io = self.base_io  # `exec >log`: the rest of this list writes there too
            return status
        if isinstance(node, g.AndOr):
            # `set -e` ignores every failure but that of the last command, if it ran
            status = await self._cond(node.first, io)
            for k, (op, nxt) in enumerate(node.rest):
                if (op == "&&") != (status == 0):
                    continue
                if k == len(node.rest) - 1:
                    status = await self.exec(nxt, io)
                    self._errexit(status, nxt)
                else:
                    status = await self._cond(nxt, io)
            return status
        if isinstance(node, g.Pipeline):
            if node.negate:
                self._noerr += 1
            try:
                status = await self._pipeline(node.cmds, io)
            finally:
                if node.negate:
                    self._noerr -= 1
            return int(status == 0) if node.negate else status
        if isinstance(node, g.Simple):
            return await self._simple(node, io)
        if isinstance(node, g.DBracket):
            return await self._dbracket(node, io)
        if isinstance(node, g.ArithCmd):
            text = await self.expand_str(node.expr, io)
            return 0 if Arith(text, self).eval() else 1
        if isinstance(node, g.FuncDef):
            self.funcs[node.name] = node.body
            return 0
        # compound commands: redirections around the body
        redirected = await self._redirect(node.redirects, io)  # type: ignore[union-attr]
        if redirected is None:
            return 1
        return await self._compound(node, redirected)

    def _errexit(self, status: int, node: g.Node) -> None:
        if status != 0 and "e" in self.opts and self._noerr == 0:
            if not (isinstance(node, g.Pipeline) and node.negate):
                raise ShellExit(status)

    async def _compound(self, node: g.Node, io: IO) -> int:  # noqa: C901 -- one branch per compound command of the shell
        if isinstance(node, g.Subshell):
            child = self.fork()
            try:
                return await child.exec(node.body, io)
            except ShellExit as e:
                return e.status
            except (FunctionReturn, LoopBreak):
                return child.status
            except ShellError as e:  # a fatal error ends the subshell only
                await child.error(io, str(e))
                return 1
        if isinstance(node, g.Group):
            return await self.exec(node.body, io)
        if isinstance(node, g.If):
            for cond, body in node.clauses:
                if await self._cond(cond, io) == 0:
                    return await self.exec(body, io)
            if node.else_ is not None:
                return await self.exec(node.else_, io)
            return 0
        if isinstance(node, g.For):
            if node.words is None:
                values = list(self.params)
            else:
                values = [v for w in node.words for v in await self.expand(w, io)]
            status = 0
            for value in values:
                await self._tick()
                self.set(node.var, value)
                status, done = await self._loop_turn(node.body, io, status)
                if done:
                    break
            return status
        if isinstance(node, g.While):
            status = 0
            while True:
                await self._tick()
                ok = await self._cond(node.cond, io) == 0
                if ok == node.until:
                    break
                status, done = await self._loop_turn(node.body, io, status)
                if done:
                    break
            return status
        if isinstance(node, g.Case):
            subject = await self.expand_str(node.word, io)
            for pats, body in node.items:
                for pat in pats:
                    segs = await self._expand_segs(pat, io, split=False)
                    if fnmatch.fnmatchcase(subject, glob_pattern(segs[0] if segs else [])):
                        return await self.exec(body, io) if body is not None else 0
            return 0
        raise ShellError(f"cannot run {type(node).__name__}")

    async def _loop_turn(self, body: g.Node, io: IO, status: int) -> tuple[int, bool]:
        """One turn of a for/while/until body: (its status, whether the loop ends). `continue`
        and `break` keep the status of the turn before; `break N`/`continue N` go outward."""
        try:
            return await self.exec(body, io), False
        except LoopBreak as b:
            if b.levels > 1:
                raise LoopBreak(b.levels - 1, b.cont) from None
            return status, not b.cont

    async def _dbracket(self, node: g.DBracket, io: IO) -> int:
        args: list[str] = []
        patterns: dict[int, str] = {}
        for item in node.args:
            if isinstance(item, str):
                args.append({"&&": "-a", "||": "-o"}.get(item, item))
                continue
            segs = (await self._expand_segs(item, io, split=False))[0]
            patterns[len(args)] = glob_pattern(segs)
            args.append("".join(t for t, _ in segs))
        try:
            return 0 if await test_eval(self, args, patterns) else 1
        except ShellError as e:
            await self.error(io, f"[[: {e}")
            return 2

    async def _cond(self, node: g.Node, io: IO) -> int:
        self._noerr += 1
        try:
            return await self.exec(node, io)
        finally:
            self._noerr -= 1

    # --- simple commands ------------------------------------------------------------------
    async def _tick(self) -> None:
        """Yield to the event loop every few commands: endless loops never starve the twin."""
        self.root.ticks += 1
        if self.root.ticks % _YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _simple(self, cmd: g.Simple, io: IO) -> int:
        await self._tick()
        self.line = cmd.line
        self._subst_status: int | None = None
        argv: list[str] = []
        for w in cmd.words:
            argv.extend(await self.expand(w, io))
        assigns = []
        for name, w in cmd.assigns:
            assigns.append((name, await self.expand_str(w, io)))
            if not argv:  # `a=1 b=$a`: each assignment sees the ones before it
                self.set(name, assigns[-1][1])
        if "x" in self.opts:
            shown = [f"{n}={quote(v)}" for n, v in assigns] + [quote(a) for a in argv]
            tail = "" if argv else " "  # mksh leaves a space after a lone assignment
            await io.err.write(("+ " + " ".join(shown) + tail + "\n").encode())
        redirected = await self._redirect(cmd.redirects, io)
        if redirected is None:
            return 1
        io = redirected
        if not argv:
            for name, value in assigns:
                self.set(name, value)
            return self._subst_status if self._subst_status is not None else 0
        return await self.call(argv, io, assigns)

    async def call(self, argv: list[str], io: IO, assigns: list[tuple[str, str]] = ()) -> int:  # type: ignore[assignment]
        """Run argv: special builtin, function, builtin, registry command, or script file."""
        name = argv[0]
        if name in SPECIAL_BUILTINS:
            for n, v in assigns:
                self.set(n, v)
            return await BUILTINS[name](self, argv, io)
        if name in self.funcs:
            return await self._function(name, argv, io, assigns)
        builtin = BUILTINS.get(name)
        if builtin is not None:
            saved = {n: self.vars.get(n) for n, _ in assigns}
            saved_exported = set(self.exported)
            for n, v in assigns:
                self.set(n, v)
                self.exported.add(n)  # `F=2 sh -c ...`: the prefix reaches the child
            try:
                return await builtin(self, argv, io)
            finally:
                self.exported = saved_exported
                for n, old in saved.items():
                    if old is None:
                        self.vars.pop(n, None)
                    else:
                        self.vars[n] = old
        return await self._external(argv, io, assigns)

    async def _function(self, name: str, argv: list[str], io: IO, assigns) -> int:
        if self.depth >= MAX_DEPTH:
            raise ShellError(f"{name}: recursion too deep")
        saved_params = self.params
        self.params = argv[1:]
        self.locals.append({})
        for n, v in assigns:
            self.locals[-1].setdefault(n, self.vars.get(n))
            self.set(n, v)
        self.depth += 1
        try:
            return await self.exec(self.funcs[name], io)
        except FunctionReturn as r:
            return r.status
        finally:
            self.depth -= 1
            self.params = saved_params
            for n, old in self.locals.pop().items():
                if old is None:
                    self.vars.pop(n, None)
                else:
                    self.vars[n] = old

    def resolve(self, name: str):
        """The registry command that `name` runs, or None."""
        base = name
        if "/" in name:
            head, _, tail = name.rpartition("/")
            if head not in ("/system/bin", "/system/xbin", "/sbin", "/vendor/bin"):
                return None
            base = tail
        return lookup(base, self.twin.personality)

    async def _external(self, argv: list[str], io: IO, assigns) -> int:
        name = argv[0]
        func = self.resolve(name)
        if func is None and "/" in name:
            return await self._exec_file(argv, io, assigns)
        if func is None:
            await self.error(io, f"{name}: not found")
            return 127
        env = self.exported_env()  # what a process sees: exported variables and prefixes
        env.update(dict(assigns))
        base = name.rsplit("/", 1)[-1]
        proc = Proc(self, [base] + argv[1:], io.stdin, io.out, io.err, env)
        try:
            status = await func(proc)
        except FsError as e:
            await io.err.write(f"{base}: {e}\n".encode())
            status = 1
        except ShellError as e:  # a command's usage error is its own, not the shell's
            hint = f' (see "{base} --help")' if isinstance(e, UsageError) else ""
            await io.err.write(f"{base}: {e}{hint}\n".encode())
            status = 1
        return int(status or 0) & 0xFF

    async def _exec_file(self, argv: list[str], io: IO, assigns) -> int:
        path = self.twin.fs.norm(argv[0], self.cwd)
        node = self.twin.fs.lookup(path)
        if node is None:
            await self.error(io, f"{argv[0]}: not found")
            return 127
        if node.is_dir or not node.mode & 0o111:
            reason = "Is a directory" if node.is_dir else "Permission denied"
            await self.error(io, f"{argv[0]}: can't execute: {reason}")  # mksh 59c too
            return 126
        child = self.subprocess(assigns)
        text = bytes(node.data or b"").decode("utf-8", "replace")
        return await child.run_script(argv[0], text, argv[1:], io)
