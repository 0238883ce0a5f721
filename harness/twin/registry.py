"""The command registry: what each name on the twin's PATH runs, and from which API level.

Command modules register with `@command(name, when=...)`; harness.twin.commandset imports every
one of them (its order decides which of two same-named commands wins); the shell looks names up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from harness.twin.personality import Personality

if TYPE_CHECKING:
    from harness.twin.proc import Proc

CommandFunc = Callable[["Proc"], Awaitable[int]]
COMMANDS: dict[str, tuple[CommandFunc, Callable[[Personality], bool]]] = {}


def command(*names: str, when: Callable[[Personality], bool] = lambda p: True):
    """Register the decorated coroutine as the command(s) `names`, present where `when` holds."""

    def deco(func: CommandFunc) -> CommandFunc:
        for name in names:
            COMMANDS[name] = (func, when)
        return func

    return deco


def lookup(name: str, pers: Personality) -> CommandFunc | None:
    """The command `name` runs on a device of this personality, or None."""
    entry = COMMANDS.get(name)
    if entry is None or not entry[1](pers):
        return None
    return entry[0]
