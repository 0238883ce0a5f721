"""Boot timing through the simulated relay and tablet: boot_to_adb_s, boot_completed_s."""

from __future__ import annotations

import pytest

from harness.errors import InstrumentError, MeasurementError
from harness.instruments.boot import BOOT_COMPLETED_S, BOOT_TO_ADB_S, measure_boot, time_boot
from harness.instruments.power_relay import LcusRelay
from harness.twin.instruments import TabletPower

POLL_S = 0.02
ACTUATION_SLACK_S = 0.03  # serial + relay actuation + listener thread, in the simulation


def test_boot_figures_match_the_tablet_within_their_uncertainty(make_relay_sim):
    tablet = TabletPower(adb_after_s=0.3, boot_completed_after_s=0.6)
    sim = make_relay_sim(on_power=tablet.on_power, initially_on=True)
    with LcusRelay(sim.path) as relay:
        to_adb, done = measure_boot(
            relay, tablet.is_on_adb, tablet.boot_completed, cycles=2, off_s=0.1, poll_s=POLL_S
        )
    assert (to_adb.name, to_adb.unit, done.name, done.unit) == (
        BOOT_TO_ADB_S,
        "s",
        BOOT_COMPLETED_S,
        "s",
    )
    ons = [e["t"] for e in tablet.truth if e["event"] == "power_on"]
    assert len(ons) == 2
    for a, c, t_on in zip(to_adb.samples, done.samples, ons, strict=True):
        lag = t_on - a.t  # command -> power really applied
        assert 0 <= lag < ACTUATION_SLACK_S
        assert abs(a.value - (lag + 0.3)) <= a.uncertainty + 1e-3
        assert abs(c.value - (lag + 0.6)) <= c.uncertainty + 1e-3
        # the interval is one poll wide on an idle machine; a loaded one stretches a poll (not an error)
        assert a.uncertainty <= 0.5 and c.value > a.value


def test_a_tablet_that_stays_on_adb_is_an_instrument_error(make_relay_sim):
    tablet = TabletPower(adb_after_s=0.1, boot_completed_after_s=0.2)
    sim = make_relay_sim()  # not wired to the tablet
    with LcusRelay(sim.path) as relay:
        with pytest.raises(InstrumentError, match="still on adb 0.2 s after power off"):
            time_boot(
                relay, tablet.is_on_adb, tablet.boot_completed, offline_timeout_s=0.2, poll_s=POLL_S
            )


def test_a_tablet_that_never_boots_is_a_measurement_error(make_relay_sim):
    tablet = TabletPower(adb_after_s=5.0, boot_completed_after_s=6.0)
    sim = make_relay_sim(on_power=tablet.on_power, initially_on=True)
    with LcusRelay(sim.path) as relay:
        with pytest.raises(MeasurementError, match="boot_to_adb_s: not on adb within 0.3 s"):
            time_boot(
                relay,
                tablet.is_on_adb,
                tablet.boot_completed,
                off_s=0.0,
                adb_timeout_s=0.3,
                poll_s=POLL_S,
            )


def test_probes_that_raise_count_as_not_yet(make_relay_sim):
    tablet = TabletPower(adb_after_s=0.1, boot_completed_after_s=0.2)
    sim = make_relay_sim(on_power=tablet.on_power, initially_on=True)

    def flaky_on_adb() -> bool:
        if not tablet.is_on_adb():
            raise ConnectionError("device offline")  # what an adb client does meanwhile
        return True

    with LcusRelay(sim.path) as relay:
        b = time_boot(relay, flaky_on_adb, tablet.boot_completed, off_s=0.05, poll_s=POLL_S)
    assert b.to_adb_s < b.to_completed_s


def test_boot_completed_must_come_last():
    with pytest.raises(ValueError):
        TabletPower(adb_after_s=1.0, boot_completed_after_s=0.5)
