"""The twin's command set: importing this module registers every command in
harness.twin.registry, in the order that decides which of two same-named commands wins
(commands, then packages and logcat through android, then the userland: toybox's pwd, echo,
test, ... over the fallbacks before it). harness.twin.device imports it: a Twin has its commands.
"""

from __future__ import annotations

from harness.twin import android, commands, userland
from harness.twin.registry import COMMANDS

__all__ = ["COMMANDS", "android", "commands", "userland"]
