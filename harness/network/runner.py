"""CommandRunner: runs shaping commands here, through a prefix (ssh, ip netns exec), or not at all.

The prefix is prepended as separate arguments: ["ssh", "gw"] makes `ssh gw tc qdisc ...`
(ssh joins them with spaces; the commands the shapers generate have no shell metacharacters),
["ip", "netns", "exec", "lab"] runs them inside a namespace. A dry-run runner runs nothing and
prints each command exactly as it would run it.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from harness.errors import NetworkShaperError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
_OUTPUT_LIMIT_CHARS = 4000


@dataclass(frozen=True)
class CommandResult:
    """One command that ran (or would have, for a dry run)."""

    cmd: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def text(self) -> str:
        return shlex.join(self.cmd)


class CommandRunner:
    """Runs commands with a timeout, optionally through a prefix, optionally as a dry run.

    Args:
        prefix: prepended to every command (e.g. ["ssh", "farm-gw"]).
        timeout_s: per command.
        dry_run: print instead of running; every command "succeeds".
        out: where a dry run prints (default stdout).
    """

    def __init__(
        self,
        prefix: Sequence[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        dry_run: bool = False,
        out: TextIO | None = None,
    ):
        self.prefix = tuple(prefix)
        self.timeout_s = timeout_s
        self.dry_run = dry_run
        self.out = out
        self.history: list[CommandResult] = []

    def run(self, cmd: Sequence[str], check: bool = True) -> CommandResult:
        """Run one command.

        Raises:
            NetworkShaperError: it could not start, timed out, or (check) exited non-zero.
        """
        full = (*self.prefix, *cmd)
        if self.dry_run:
            print(shlex.join(full), file=self.out or sys.stdout)
            result = CommandResult(full, 0)
            self.history.append(result)
            return result
        start = time.monotonic()
        try:
            proc = subprocess.run(
                full, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except FileNotFoundError:
            raise NetworkShaperError(f"`{shlex.join(full)}`: {full[0]} is not installed") from None
        except subprocess.TimeoutExpired:
            raise NetworkShaperError(
                f"`{shlex.join(full)}` timed out after {self.timeout_s:g} s"
            ) from None
        result = CommandResult(
            full,
            proc.returncode,
            proc.stdout[-_OUTPUT_LIMIT_CHARS:],
            proc.stderr[-_OUTPUT_LIMIT_CHARS:],
            time.monotonic() - start,
        )
        self.history.append(result)
        log.debug("%s -> %d %s", result.text, result.returncode, result.stderr.strip())
        if check and not result.ok:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise NetworkShaperError(
                f"`{result.text}` exited {result.returncode}"
                + (f": {detail[-1]}" if detail else "")
            )
        return result
