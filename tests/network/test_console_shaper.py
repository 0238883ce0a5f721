"""EmulatorConsoleShaper: mapping, refusals, and for real against the device twin's console."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from harness.errors import NetworkShaperError
from harness.farm.process import Child
from harness.network import profiles as P
from harness.network.console import (
    ConsoleNetwork,
    EmulatorConsole,
    EmulatorConsoleShaper,
    console_network_for,
    console_port,
    parse_network_status,
)
from harness.network.profiles import network_profiles

CHILD_TIMEOUT_S = 30.0
# Not unshaped, so that "restored" cannot pass by resetting to defaults.
ORIGINAL = ConsoleNetwork(up_bps=5_760_000, down_bps=13_980_000, min_ms=35, max_ms=200)
_APPLY_AND_WAIT = """
import sys, time
from harness.network.console import EmulatorConsoleShaper
from harness.network.profiles import load_network_profile
shaper = EmulatorConsoleShaper(load_network_profile("edge"), int(sys.argv[1]),
                               token_file=sys.argv[2], state_dir=sys.argv[3], approximate=True)
with shaper:
    print("applied", flush=True)
    time.sleep(30)
"""

EMULATOR_STATUS = (
    "Current network status:\r\n"
    "  download speed:   13980000 bits/s (1706.5 KB/s)\r\n"
    "  upload speed:      5760000 bits/s (703.1 KB/s)\r\n"
    "  minimum latency:  35 ms\r\n"
    "  maximum latency:  200 ms\r\n"
)


def _expected(profile) -> ConsoleNetwork:
    """What `network status` must say, computed here from the profile's own figures."""
    p = profile.without(
        *[f for f in profile.features() if f not in (P.DELAY, P.JITTER, P.RATE, P.ASYMMETRIC_DELAY)]
    )
    delay = (p.up.delay_ms + p.down.delay_ms) / 2
    jitter = (p.up.jitter_ms + p.down.jitter_ms) / 2
    return ConsoleNetwork(
        up_bps=int((p.up.rate_kbit or 0) * 1000),
        down_bps=int((p.down.rate_kbit or 0) * 1000),
        min_ms=round(delay - jitter),
        max_ms=round(delay + jitter),
    )


def _set_original(twin) -> None:
    with EmulatorConsole(twin.port, token_file=twin.token_file) as c:
        c.command(f"network speed {ORIGINAL.up_bps / 1000:g}:{ORIGINAL.down_bps / 1000:g}")
        c.command(f"network delay {ORIGINAL.min_ms}:{ORIGINAL.max_ms}")


def _status(twin) -> ConsoleNetwork:
    with EmulatorConsole(twin.port, token_file=twin.token_file) as c:
        return parse_network_status("\n".join(c.command("network status")))


def test_parse_network_status_and_serials():
    assert parse_network_status(EMULATOR_STATUS) == ORIGINAL
    with pytest.raises(NetworkShaperError, match="no .maximum latency. line"):
        parse_network_status(EMULATOR_STATUS.replace("maximum", "max"))
    assert (
        console_port("emulator-5554") == 5554
        and console_port(5560) == 5560
        and console_port("5556") == 5556
    )
    with pytest.raises(NetworkShaperError, match="not an emulator serial"):
        console_port("192.168.1.5:5555")


def test_console_args():
    assert ORIGINAL.speed_arg() == "5760:13980" and ORIGINAL.delay_arg() == "35:200"
    assert ConsoleNetwork(0, 0, 0, 0).speed_arg() == "full"
    assert console_network_for(
        network_profiles()["very-bad-network"].without(P.LOSS)
    ) == ConsoleNetwork(1_000_000, 1_000_000, 500, 500)


@pytest.mark.parametrize(
    "name, missing",
    [
        ("lossy-5", "loss"),
        ("poor-wifi", "burst-loss"),
        ("congested", "queue-limit"),
        ("flapping", "outage-schedule"),
        ("offline", "offline"),
        ("edge", "asymmetric-delay"),
    ],
)
def test_refuses_what_the_console_cannot_express_before_connecting(name, missing):
    # Port 1: nothing listens there; a connection attempt would fail differently.
    with pytest.raises(
        NetworkShaperError, match=f"cannot express profile '{name}': .*{missing}"
    ) as e:
        EmulatorConsoleShaper(network_profiles()[name], 1)
    assert "approximate=True" in str(e.value)


def test_approximate_records_warnings():
    shaper = EmulatorConsoleShaper(network_profiles()["poor-wifi"], 1, approximate=True)
    assert any(w.startswith("burst-loss") and "left out" in w for w in shaper.report.approximations)
    assert set(shaper.report.expressed) == {P.DELAY, P.JITTER, P.RATE}
    edge = EmulatorConsoleShaper(network_profiles()["edge"], 1, approximate=True)
    assert edge.expected.min_ms == edge.expected.max_ms == 420
    assert any("mean delay" in w for w in edge.report.approximations)


# --- against the twin ----------------------------------------------------------------------


def test_network_status_reflects_each_profile_and_is_restored(twin_console, tmp_path):
    _set_original(twin_console)
    for name, profile in network_profiles().items():
        shaper = EmulatorConsoleShaper(
            profile,
            twin_console.port,
            token_file=twin_console.token_file,
            state_dir=tmp_path,
            approximate=True,
        )
        with shaper:
            assert _status(twin_console) == _expected(profile), name
            assert shaper.journal.exists()
        assert _status(twin_console) == ORIGINAL, name
        assert not shaper.journal.exists()
        assert shaper.report.errors == []
    truth = [
        line for line in twin_console.truth.read_text().splitlines() if '"console_network"' in line
    ]
    assert len(truth) >= 4 * len(
        network_profiles()
    )  # speed + delay, applied and restored, per profile


def test_wrong_token_is_a_clear_error(twin_console, tmp_path):
    bad = tmp_path / "bad_token"
    bad.write_text("not-the-token")
    shaper = EmulatorConsoleShaper(
        network_profiles()["3g"], twin_console.port, token_file=bad, state_dir=tmp_path
    )
    with pytest.raises(
        NetworkShaperError, match="refused: KO: authentication token does not match"
    ):
        shaper.apply()
    assert not shaper.applied


def test_apply_failure_restores_and_raises(twin_console, tmp_path):
    _set_original(twin_console)
    shaper = EmulatorConsoleShaper(
        network_profiles()["3g"],
        twin_console.port,
        token_file=twin_console.token_file,
        state_dir=tmp_path,
        timeout_s=2.0,
    )
    with pytest.raises(NetworkShaperError):
        with shaper:
            raise NetworkShaperError("the test fails mid-profile")
    assert _status(twin_console) == ORIGINAL


def _applier(twin_console, tmp_path, preexec_fn=None) -> Child:
    """A process that applies `edge` on the console and waits (_APPLY_AND_WAIT): its own
    process group, registered with the run's reaper."""
    return Child(
        "console profile applier",
        [
            sys.executable,
            "-c",
            _APPLY_AND_WAIT,
            str(twin_console.port),
            str(twin_console.token_file),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    ).spawn()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_process_killed_mid_profile_leaves_the_console_restored(
    twin_console, tmp_path, child_line, sig, default_signals
):
    _set_original(twin_console)
    applier = _applier(twin_console, tmp_path, default_signals)
    child = applier.proc
    try:
        child_line(child, "applied", CHILD_TIMEOUT_S)
        assert _status(twin_console).max_ms == 420  # edge is on
        child.send_signal(sig)
        child.wait(CHILD_TIMEOUT_S)
    finally:
        applier.stop(signal.SIGKILL, CHILD_TIMEOUT_S)
        applier.close_pipes()
    assert _status(twin_console) == ORIGINAL
    assert not list(tmp_path.glob("console-*.json"))


def test_after_sigkill_the_journal_lets_hil_net_clear_restore_the_original(
    twin_console, tmp_path, child_line
):
    _set_original(twin_console)
    applier = _applier(twin_console, tmp_path)
    child = applier.proc
    try:
        child_line(child, "applied", CHILD_TIMEOUT_S)
        child.kill()
        child.wait(CHILD_TIMEOUT_S)
    finally:
        applier.stop(signal.SIGKILL, CHILD_TIMEOUT_S)
        applier.close_pipes()
    assert _status(twin_console).max_ms == 420  # a SIGKILL leaves it applied...
    assert list(tmp_path.glob("console-*.json"))  # ...and the journal says what was there before
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "net",
            "clear",
            "--via",
            "console",
            "--serial",
            str(twin_console.port),
            "--token-file",
            str(twin_console.token_file),
        ],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "HIL_STATE_DIR": str(tmp_path)},
    )
    assert cp.returncode == 0, cp.stderr
    assert _status(twin_console) == ORIGINAL
    assert not list(tmp_path.glob("console-*.json"))


def test_next_apply_after_a_killed_run_restores_the_true_original(twin_console, tmp_path):
    _set_original(twin_console)
    first = EmulatorConsoleShaper(
        network_profiles()["3g"],
        twin_console.port,
        token_file=twin_console.token_file,
        state_dir=tmp_path,
    )
    first.apply()
    first.detach()  # as if the process died without clearing
    second = EmulatorConsoleShaper(
        network_profiles()["good-wifi"],
        twin_console.port,
        token_file=twin_console.token_file,
        state_dir=tmp_path,
    )
    with second:
        assert _status(twin_console).down_bps == 40_000_000
    assert _status(twin_console) == ORIGINAL


def test_cli_apply_and_clear_via_console(twin_console, tmp_path):
    _set_original(twin_console)
    env = {**os.environ, "HIL_STATE_DIR": str(tmp_path)}
    base = [sys.executable, "-m", "harness.cli", "net"]
    where = [
        "--via",
        "console",
        "--serial",
        str(twin_console.port),
        "--token-file",
        str(twin_console.token_file),
    ]
    cp = subprocess.run(
        [*base, "apply", "very-bad-network", *where],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert cp.returncode == 2 and "cannot express" in cp.stderr and "loss" in cp.stderr
    assert _status(twin_console) == ORIGINAL  # refused before anything was applied
    cp = subprocess.run(
        [*base, "apply", "very-bad-network", *where, "--approximate"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert cp.returncode == 0, cp.stderr
    assert "warning: loss" in cp.stderr
    assert _status(twin_console) == ConsoleNetwork(1_000_000, 1_000_000, 500, 500)
    cp = subprocess.run(
        [*base, "clear", *where], capture_output=True, text=True, timeout=30, env=env
    )
    assert cp.returncode == 0, cp.stderr
    assert _status(twin_console) == ORIGINAL
