"""Shared helpers for the shell-output parsers: line splitting and the parse error.

Old adbd (API <= 20) runs `shell:` under a PTY, which turns every LF into CRLF; some output
also ends in junk (a shell prompt, an exit-code marker, NULs). Every parser goes through
`lines_of`, so CR and NUL never reach a regular expression.
"""

from __future__ import annotations

import re

from harness.errors import HarnessError

_EXCERPT_CHARS = 80
_NOT_FOUND = re.compile(r"^(?:/system/bin/sh: )?(?:\S+: )?(\S+): (?:inaccessible or )?not found$")


class ShellOutputError(HarnessError, ValueError):
    """A command's output is not what that command prints (wrong command, error, garbage).

    Attributes:
        command: the shell command whose output was being parsed, e.g. "dumpsys wifi".
        problem: what was unexpected, in plain English.
        excerpt: the start of the offending text (for the report).
    """

    def __init__(self, command: str, problem: str, text: str | bytes = ""):
        self.command = command
        self.problem = problem
        self.excerpt = excerpt_of(text)
        msg = f"`{command}`: {problem}"
        if self.excerpt:
            msg += f" (output began: {self.excerpt!r})"
        super().__init__(msg)


def to_str(text: str | bytes) -> str:
    """Decode bytes as UTF-8 (invalid bytes replaced); pass str through."""
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise TypeError(f"expected str or bytes, got {type(text).__name__}")
    return text


def lines_of(text: str | bytes) -> list[str]:
    """Split output into lines without line terminators, CRLF/CR/NUL tolerant.

    A PTY (API <= 20) turns LF into CRLF, and a program that already wrote CRLF comes out as
    CR CR LF: all trailing CRs are dropped. NULs are dropped.
    """
    s = to_str(text).replace("\x00", "")
    return [line.rstrip("\r") for line in s.split("\n")]


def excerpt_of(text: str | bytes) -> str:
    """The first non-blank line of the text, shortened for an error message."""
    for line in lines_of(text):
        if line.strip():
            line = line.strip()
            return line if len(line) <= _EXCERPT_CHARS else line[: _EXCERPT_CHARS - 3] + "..."
    return ""


def check_shell_failure(command: str, text: str | bytes) -> None:
    """Raise a clear ShellOutputError when the output is empty or a shell/service error.

    Recognised: empty output, `<cmd>: not found` (mksh and toybox wording), dumpsys's
    `Can't find service: X`, `Permission Denial: ...` and pm's `Error: ...`.

    Raises:
        ShellOutputError: the output is one of the above.
    """
    first = excerpt_of(text)
    if not first:
        raise ShellOutputError(command, "empty output")
    m = _NOT_FOUND.match(first)
    if m:
        raise ShellOutputError(
            command, f"the device has no `{m.group(1)}` command (shell says not found)", text
        )
    if first.startswith("Can't find service:"):
        service = first.split(":", 1)[1].strip()
        raise ShellOutputError(command, f"service {service!r} is not running on the device", text)
    if first.startswith("Permission Denial"):
        raise ShellOutputError(command, "the shell user may not dump this service", text)
    if first.startswith("Error:") or first.startswith("Exception occurred"):
        raise ShellOutputError(command, "the command reported an error", text)
