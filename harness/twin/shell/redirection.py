"""Redirections: `<`, `>`, `>>`, `<>`, `<&`, `>&`, here-documents; /dev/null, /dev/zero, /dev/*random."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from harness.twin import grammar as g
from harness.twin.fs import FsError
from harness.twin.proc import (
    IO,
    READ_CHUNK,
    BytesSource,
    FileSink,
    NullSink,
    Sink,
    Source,
    ZeroSource,
)

if TYPE_CHECKING:
    pass


class Redirection:
    """The Shell's redirections (a part of harness.twin.shell.interpreter.Shell)."""

    async def _redirect(self, redirects: list[g.Redirect], io: IO) -> IO | None:  # noqa: C901 -- one branch per redirection operator
        """Apply redirections; None after printing the error when a file cannot be opened."""
        if not redirects:
            return io
        fds: dict[int, Source | Sink] = {0: io.stdin, 1: io.out, 2: io.err}
        for r in redirects:
            if r.op in ("<<", "<<-"):
                body = await self.expand_str(r.heredoc, io) if r.heredoc else ""
                fds[r.fd] = BytesSource(body.encode())
                continue
            target = await self.expand_str(r.target, io)
            if r.op in (">&", "<&"):
                if target == "-":
                    fds[r.fd] = NullSink() if r.fd else BytesSource(b"")
                elif target.isdigit() and int(target) in fds:
                    fds[r.fd] = fds[int(target)]
                elif target.isdigit():
                    await self.error(
                        io,
                        f"{target}: bad file descriptor"
                        if not self.new_msgs
                        else f"{target}: illegal file descriptor name",
                    )
                    return None
                else:
                    try:
                        fds[r.fd] = self._open_out(target, False)
                    except FsError as e:
                        await self._open_error(io, target, e.reason, True)
                        return None
                continue
            try:
                if r.op == "<":
                    fds[r.fd] = self.open_in(target)
                elif r.op == "<>":
                    fds[r.fd] = self.open_in(target)
                else:
                    fds[r.fd] = self._open_out(target, r.op == ">>")
            except FsError as e:
                await self._open_error(io, target, e.reason, r.op != "<")
                return None
        stdin, out, err = fds[0], fds[1], fds[2]
        if not isinstance(stdin, Source):
            stdin = BytesSource(b"")
        if not isinstance(out, Sink):
            out = NullSink()
        if not isinstance(err, Sink):
            err = NullSink()
        return IO(stdin, out, err)

    async def _open_error(self, io: IO, target: str, reason: str, create: bool) -> None:
        if self.new_msgs:
            await self.error(io, f"{target}: {'create' if create else 'open'}: {reason}")
        else:
            await self.error(io, f"can't {'create' if create else 'open'} {target}: {reason}")

    def open_in(self, name: str) -> Source:
        """A file as stdin (the twin's /dev/null, /dev/zero included)."""
        path = self.twin.fs.norm(name, self.cwd)
        if path == "/dev/zero":
            return ZeroSource()
        if path in ("/dev/null", "/dev/random", "/dev/urandom"):
            if path == "/dev/null":
                return BytesSource(b"")
            return BytesSource(os.urandom(READ_CHUNK))
        return BytesSource(self.twin.fs.read(path))

    def _open_out(self, name: str, append: bool) -> Sink:
        path = self.twin.fs.norm(name, self.cwd)
        if path in ("/dev/null", "/dev/zero"):
            return NullSink()
        return FileSink(self, name, append)
