"""Bad input: one clear error, before anything is applied (issue 7).

An unknown profile, a negative delay, loss over 100%, a shaper asked for what it cannot do:
each ends in one error naming what is wrong, and no command ran, no console was connected to,
no shell command was sent, no socket was bound.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import pytest
import yaml

from harness.errors import NetworkShaperError, ProfileError
from harness.network.console import EmulatorConsoleShaper
from harness.network.impairment import RelayShaper
from harness.network.netem import NetemShaper
from harness.network.profiles import load_network_profile, network_profiles
from harness.network.runner import CommandRunner
from harness.network.wifi import WifiShaper

CLI = [sys.executable, "-m", "harness.cli", "net"]


class NoShell:
    def __init__(self):
        self.calls = []

    def shell(self, cmd: str, timeout: float) -> str:
        self.calls.append(cmd)
        return ""


@pytest.fixture
def listening_console():
    """A TCP port that listens (so a connection would succeed) but never accepts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.setblocking(False)
    yield sock
    sock.close()


def _no_connection_came(sock) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize(
    "shaper, name, missing",
    [
        ("console", "very-bad-network", "loss"),
        ("console", "offline", "offline"),
        ("netem", "flapping", "outage-schedule"),
        ("wifi", "3g", "delay"),
        ("relay-tcp", "poor-wifi", "burst-loss"),
    ],
)
def test_a_shaper_asked_for_what_it_cannot_do(shaper, name, missing, listening_console):
    prof = network_profiles()[name]
    runner = CommandRunner(dry_run=True, out=io.StringIO())
    device = NoShell()
    build = {
        "console": lambda: EmulatorConsoleShaper(prof, listening_console.getsockname()[1]),
        "netem": lambda: NetemShaper(prof, "eth1", runner=runner),
        "wifi": lambda: WifiShaper(prof, device),
        "relay-tcp": lambda: RelayShaper(prof, ("127.0.0.1", 9), protocol="tcp"),
    }[shaper]
    with pytest.raises(NetworkShaperError) as e:
        build()
    assert f"cannot express profile {name!r}" in str(e.value) and missing in str(e.value)
    assert runner.history == [] and device.calls == [] and _no_connection_came(listening_console)


@pytest.mark.parametrize(
    "body, key",
    [
        ({"delay_ms": -5}, "delay_ms"),
        ({"loss_pct": 120}, "loss_pct"),
        ({"up": {"duplicate_pct": 101}}, "up.duplicate_pct"),
    ],
)
def test_bad_profiles_fail_on_load_with_file_and_key(tmp_path, body, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"description": "d", "source": "s", **body}))
    with pytest.raises(ProfileError) as e:
        load_network_profile(path)
    assert e.value.file == str(path) and e.value.key == key


def test_cli_unknown_profile_is_one_error_and_nothing_runs():
    cp = subprocess.run(
        [*CLI, "apply", "no-such-profile", "--via", "netem", "--dev", "eth1", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cp.returncode == 2
    assert cp.stdout == ""
    assert cp.stderr.count("\n") == 1 and "unknown network profile 'no-such-profile'" in cp.stderr


@pytest.mark.parametrize(
    "body, words",
    [
        ({"delay_ms": -1}, "delay_ms: must be >= 0"),
        ({"loss_pct": 101}, "loss_pct: must be <= 100"),
    ],
)
def test_cli_relay_with_a_bad_profile_starts_nothing(tmp_path, body, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"description": "d", "source": "s", **body}))
    cp = subprocess.run(
        [
            *CLI,
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--profile",
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cp.returncode == 2
    assert cp.stdout == ""  # never said it was listening
    assert str(path) in cp.stderr and words in cp.stderr


def test_cli_shaper_limits_are_one_error():
    cp = subprocess.run(
        [*CLI, "apply", "flapping", "--via", "netem", "--dev", "eth1", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cp.returncode == 2 and cp.stdout == ""
    assert "netem shaper on eth1 cannot express profile 'flapping': outage-schedule" in cp.stderr
    cp = subprocess.run(
        [
            *CLI,
            "apply",
            "flapping",
            "--via",
            "netem",
            "--dev",
            "eth1",
            "--dry-run",
            "--approximate",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cp.returncode == 0 and "# approximated: outage-schedule" in cp.stdout
