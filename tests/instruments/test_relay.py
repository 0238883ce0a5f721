"""The LCUS relay driver, its byte protocol, and `hil power`, against the simulated board."""

from __future__ import annotations

import time

import pytest

from harness.cli import main
from harness.errors import InstrumentError
from harness.instruments.power_relay import LcusRelay, PowerSwitch, lcus_frame, parse_status

SWITCH_WAIT_S = 0.2  # frame -> contacts -> listener, in the simulation


def _wait(cond, timeout_s: float = SWITCH_WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def test_frames_are_the_documented_bytes():
    assert lcus_frame(1, True) == bytes.fromhex("A0 01 01 A2")
    assert lcus_frame(1, False) == bytes.fromhex("A0 01 00 A1")
    assert lcus_frame(2, True) == bytes.fromhex("A0 02 01 A3")
    with pytest.raises(ValueError):
        lcus_frame(9, True)


def test_status_answers_parse():
    assert parse_status("CH1: ON\r\nCH2: OFF\r\n") == {1: True, 2: False}
    assert parse_status("garbage") == {}


def test_on_off_cycle_switch_the_relay_and_call_the_power_listener(make_relay_sim):
    calls: list[tuple[float, bool]] = []
    sim = make_relay_sim(on_power=lambda on: calls.append((time.monotonic(), on)))
    with LcusRelay(sim.path) as relay:
        assert isinstance(relay, PowerSwitch)
        assert relay.state() is None  # write-only use: unknown until commanded
        relay.on()
        assert _wait(lambda: sim.state(1))
        relay.cycle(off_s=0.1)
        assert _wait(lambda: len(calls) == 3)
        assert relay.state() is True
    assert [on for _, on in calls] == [True, False, True]
    switches = [e["t"] for e in sim.events("switch")]
    assert switches[2] - switches[1] >= 0.1 - 0.01  # the off time, less read scheduling
    assert sim.frames == [lcus_frame(1, True), lcus_frame(1, False), lcus_frame(1, True)]


def test_verified_switching_reads_the_board_back(make_relay_sim):
    sim = make_relay_sim(channels=4, initially_on=True)
    with LcusRelay(sim.path, channel=3, verify=True) as relay:
        assert relay.state() is True
        relay.off()
        assert sim.states == [True, True, False, True]
        assert relay.state() is False


def test_normally_closed_wiring_inverts_the_contacts(make_relay_sim):
    sim = make_relay_sim()
    with LcusRelay(sim.path, verify=True, normally_closed=True) as relay:
        assert relay.state() is True  # relay released: the NC contact powers the device
        relay.off()
        assert sim.state(1) is True  # energised: NC opens
        assert relay.state() is False


def test_verification_catches_a_board_that_ignores_frames(make_relay_sim):
    sim = make_relay_sim()
    sim._on_bytes = lambda data, t: (  # a board whose MCU answers queries but never switches
        sim._send(sim._status_text().encode(), t) if b"\xff" in data else None
    )
    with pytest.raises(InstrumentError, match=r"reads off after switching on: the board ignored"):
        LcusRelay(sim.path, verify=True).on()


def test_hil_power_commands(make_relay_sim, capsys):
    sim = make_relay_sim()
    assert main(["power", "on", "--port", sim.path, "--verify"]) == 0
    assert "channel 1: on" in capsys.readouterr().out
    assert sim.state(1)
    assert main(["power", "cycle", "--port", sim.path, "--off-s", "0.05"]) == 0
    assert main(["power", "off", "--port", sim.path]) == 0
    assert "off (commanded, not read back)" in capsys.readouterr().out
    assert _wait(lambda: len(sim.events("switch")) == 4)  # on, off, on, off
    assert not sim.state(1)
    assert main(["power", "on", "--port", "/dev/no-such-relay"]) == 2
    assert "relay on /dev/no-such-relay: cannot open" in capsys.readouterr().err
