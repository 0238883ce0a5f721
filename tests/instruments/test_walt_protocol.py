"""The WALT driver against the simulated firmware: commands, answers, events, discovery."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from serial.tools import list_ports

from harness.errors import InstrumentError
from harness.instruments.walt import Walt, find_walt, parse_trigger


def test_open_resets_checks_the_version_and_syncs(make_walt_sim):
    sim = make_walt_sim(clock_start_us=3_000_000_000)
    with Walt.open(sim.path) as walt:
        assert walt.version == "6"
        assert walt.clock is not None and walt.clock.synced
        assert len(sim.events("zero")) == 1
        assert 0 <= walt.time_now() < 5_000_000  # zeroed, not the power-on clock
        assert walt.ping() < 0.1
    assert not walt.is_open


def test_commands_are_acknowledged_with_the_case_flipped(make_walt_sim):
    sim = make_walt_sim()
    with Walt.open(sim.path, sync=False) as walt:
        assert walt.command("P") == ""
        assert walt.command("V") == "6"
        walt.screen_auto(True)
        walt.screen_auto(False)
        readings = walt.sample_all()
        assert set(readings) == {"G", "PD_screen", "PD_laser"}
        assert 10 < readings["PD_screen"] < 30  # dark screen under the probe
        assert walt.read_shock() is None  # no shock yet (the firmware answers 0)


def test_unknown_command_is_a_clear_error_and_releases_the_port(make_walt_sim):
    sim = make_walt_sim()
    walt = Walt.open(sim.path, sync=False)
    with pytest.raises(InstrumentError, match=rf"{sim.path}.*does not know this command"):
        walt.command("X")
    assert not walt.is_open


def test_protocol_version_mismatch_is_refused(make_walt_sim):
    sim = make_walt_sim(version="5")
    with pytest.raises(InstrumentError, match=r"protocol version '5'.*speaks '6'"):
        Walt.open(sim.path)


def test_brightness_curve_streams_a_thousand_samples(make_walt_sim, screen):
    sim = make_walt_sim(brightness_source=screen.light)
    with Walt.open(sim.path) as walt:
        samples = walt.brightness_curve(lambda: screen.draw(True), lead_s=0.05)
    assert len(samples) == 1000
    times = [t for t, _ in samples]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert 0.4e6 < times[-1] - times[0] < 0.55e6
    assert samples[0][1] < 50 and samples[-1][1] > 600  # the flip is inside the curve


def test_trigger_lines_parse_as_the_firmware_prints_them():
    assert parse_trigger("G S 12902345 1 1") == ("S", 12902345, 1, 1)
    assert parse_trigger("G A -5 0 2") == ("A", -5, 0, 2)
    assert parse_trigger("G 12345") is None
    assert parse_trigger("1:345") is None


def test_screen_events_are_reported_with_walt_time(make_walt_sim, screen):
    sim = make_walt_sim(brightness_source=screen.light)
    with Walt.open(sim.path) as walt:
        walt.screen_auto(True)
        screen.draw(True)
        trig = walt.wait_trigger("S", timeout_s=1.0)
        assert trig is not None and trig.value == 1 and trig.count == 1
        truth = sim.events("trigger_S")[-1]
        assert abs(walt.to_host(trig.walt_us) - truth["t"]) < 1e-3
        assert walt.wait_trigger("S", timeout_s=0.1) is None  # bounded, nothing more


def _ports(*pids):
    return [
        SimpleNamespace(
            device=f"/dev/ttyACM{i}", vid=0x16C0, pid=pid, serial_number=None, description=""
        )
        for i, pid in enumerate(pids)
    ]


def test_discovery_by_usb_ids(monkeypatch):
    monkeypatch.setattr(list_ports, "comports", lambda: [])
    with pytest.raises(InstrumentError, match="no WALT found.*16c0:0483"):
        find_walt()
    monkeypatch.setattr(list_ports, "comports", lambda: _ports(0x0483))
    assert find_walt() == "/dev/ttyACM0"
    monkeypatch.setattr(
        list_ports,
        "comports",
        lambda: _ports(0x0483, 0x0478, 0x0489),  # 0x0478: HalfKay bootloader, not a WALT
    )
    with pytest.raises(InstrumentError, match="2 WALT candidates"):
        find_walt()
