"""The twin's console refuses what no emulator accepts (NaN, inf) and keeps its session; its
auth token file is private (0600)."""

from __future__ import annotations

import os
import stat

import pytest

from harness.errors import NetworkShaperError
from harness.network.console import EmulatorConsole


@pytest.mark.parametrize(
    "command",
    [
        "network speed nan",
        "network speed inf",
        "network speed nan:100",
        "network speed 100:-inf",
        "network delay nan",
        "network delay inf",
        "network delay 0:nan",
    ],
)
def test_nan_and_inf_are_refused_and_network_status_keeps_working(twin_console, command):
    with EmulatorConsole(twin_console.port, token_file=twin_console.token_file) as console:
        console.command("network speed 100:200")
        with pytest.raises(NetworkShaperError, match=r"KO: bad (speed|delay) value"):
            console.command(command)
        status = "\n".join(console.command("network status"))
        assert "100000 bits/s" in status and "200000 bits/s" in status  # unchanged
        assert "nan" not in status.lower() and "inf" not in status.lower()


def test_the_console_token_file_is_created_0600(twin_console):
    assert stat.S_IMODE(os.stat(twin_console.token_file).st_mode) == 0o600
