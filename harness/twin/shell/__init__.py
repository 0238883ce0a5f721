"""The twin's /system/bin/sh: Android's mksh, interpreted over the twin's file system and commands.

harness.twin.grammar parses; this package expands words and runs the tree:
- expansions: parameters (`$?`, `$$`, `$!`, `$#`, `$@`, `$*`, `$0`-`$9`, `${10}`, `${..}`
  forms, `set -u`), `~`, `$(...)`/backticks, `$((...))` (32-bit signed, `010` is ten, as
  mksh), field splitting on IFS, pathname globbing against the twin's file system;
- pipelines run concurrently through bounded pipes (flow control: a writer waits for its
  reader, `yes | head -1` ends with SIGPIPE status 141 for `yes`); every member of a pipeline
  runs in a subshell, the last one too (`echo x | read v` leaves v unset, as mksh 59c does);
- `&` runs a job as a task with a pid (`$!`) that `wait` collects; its stdin is /dev/null; a job
  still writing to the session holds it open, one redirected elsewhere lives on (a daemon);
- builtins with shell state live here (cd pwd export readonly unset local shift set exit
  return break continue read wait eval . source exec type whence command test [ echo true
  false : sh let getopts trap(EXIT) umask), plus `[[ ]]` and `(( ))`; other commands come
  from the `@command` registry (harness.twin.registry, filled by harness.twin.commandset);
- loops and commands yield to the event loop every few steps, so `while true; do :; done`
  never stops the twin; the service ends a job when the host closes its stream.
Messages follow mksh (`/system/bin/sh: x: not found`, 127; `script[3]: ...` inside scripts),
worded as mksh 59c on API 33+. Checked against Debian's mksh in tests/twin/test_shell_grammar.py.
Not modelled: signals other than the host hanging up, `exec` of file descriptors above 2,
job control (`fg`, `jobs`), aliases, arrays.

Modules: interpreter (the Shell: its state, entry points and /system/bin), execution (the
syntax tree, simple commands, the command search), expansion (words to fields, globbing),
redirection, jobs (`&`, pipelines, kill, wait), arith (`$((...))`), condition (test, [, [[ ]]),
builtins (their registry; control flow and variables), assignment (read, getopts, let), lookup
(type, whence, command, sh). The Shell is one class made of the executor's, expansion's,
redirection's and jobs' parts. What a command sees (Proc, Sources, Sinks) is harness.twin.proc.
"""

from __future__ import annotations

from harness.twin import grammar as g
from harness.twin.grammar import ShellSyntaxError
from harness.twin.proc import (
    IO,
    BrokenPipe,
    BufferSink,
    NullSink,
    Pipe,
    Proc,
    ShellError,
    ShellExit,
    Sink,
    Source,
    StreamSink,
    UsageError,
    V2Sink,
)
from harness.twin.shell.interpreter import Shell

__all__ = [
    "IO",
    "BrokenPipe",
    "BufferSink",
    "NullSink",
    "Pipe",
    "Proc",
    "Shell",
    "ShellError",
    "ShellExit",
    "ShellSyntaxError",
    "Sink",
    "Source",
    "StreamSink",
    "UsageError",
    "V2Sink",
    "parse",
]
parse = g.parse
