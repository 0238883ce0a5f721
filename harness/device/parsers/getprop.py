"""`getprop` (no argument): the full property listing.

Format (all API levels): one `[key]: [value]` line per property, sorted by key. Values may be
empty (`[dhcp.wlan0.dns2]: []`) and may contain spaces and brackets; a value holding a newline
continues on the next lines until one ends in `]`.
"""

from __future__ import annotations

import re

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "getprop"
_PROP = re.compile(r"^\[([^\[\]]+)\]: \[(.*)\]$")
_PROP_OPEN = re.compile(r"^\[([^\[\]]+)\]: \[(.*)$")


def parse_getprop(text: str | bytes) -> dict[str, str]:
    """Parse the full `getprop` listing into a dict.

    Blank lines and a few junk lines (a prompt, an exit marker) are ignored.

    Raises:
        ShellOutputError: no property line at all, or more junk than properties.
    """
    check_shell_failure(COMMAND, text)
    props: dict[str, str] = {}
    junk = 0
    pending: tuple[str, list[str]] | None = None
    for line in lines_of(text):
        if pending is not None:
            key, parts = pending
            if line.endswith("]"):
                parts.append(line[:-1])
                props[key] = "\n".join(parts)
                pending = None
            else:
                parts.append(line)
            continue
        if not line.strip():
            continue
        m = _PROP.match(line)
        if m:
            props[m.group(1)] = m.group(2)
            continue
        m = _PROP_OPEN.match(line)
        if m:
            pending = (m.group(1), [m.group(2)])
            continue
        junk += 1
    if pending is not None:
        junk += 1 + len(pending[1])
    if not props:
        raise ShellOutputError(COMMAND, "no `[key]: [value]` property line", text)
    if junk > len(props):
        raise ShellOutputError(
            COMMAND, f"{junk} lines are not `[key]: [value]` against {len(props)} that are", text
        )
    return props
