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


@pytest.mark.parametrize(
    "data,key",
    [
        ({"delay_ms": float("nan")}, "delay_ms"),
        ({"loss_pct": float("nan")}, "loss_pct"),
        ({"jitter_ms": float("inf"), "delay_ms": 10}, "jitter_ms"),
        ({"rate_kbit": float("nan")}, "rate_kbit"),
        ({"up": {"loss_pct": float("-inf")}}, "x.up.loss_pct"),
    ],
)
def test_network_profiles_refuse_nan_and_inf_before_any_shaper(data, key):
    from harness.errors import ProfileError
    from harness.network.profiles import parse_network_profile

    body = {"description": "d", "source": "s", **data}
    with pytest.raises(ProfileError, match=rf"{key}: must be (a finite number|> 0)"):
        parse_network_profile("x", body)


@pytest.mark.parametrize("field", ["delay_ms", "jitter_ms", "loss_pct", "rate_kbit"])
def test_a_direction_built_in_code_refuses_nan(field):
    from harness.errors import ProfileError
    from harness.network.profiles import Direction

    with pytest.raises(ProfileError, match=field):
        Direction(**{field: float("nan")})
