"""Serial faults: each ends within its stated bound, in one clear InstrumentError naming the
port, with the port released. Bounds (docs/instruments.md):

- port vanishes mid-run: at the next read or write, at most VANISH_BOUND_S later;
- garbage, silence, wrong baud rate at open: DRAIN_MAX_S + CMD_TIMEOUT_S (1 s);
- silence mid-run: TRANSITION_TIMEOUT_S + CMD_TIMEOUT_S (1.5 s; 0.2 s slack for scheduling);
- relay with verify: STATUS_TIMEOUT_S + its drain (0.6 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from harness.errors import InstrumentError
from harness.instruments.power_relay import STATUS_TIMEOUT_S, LcusRelay
from harness.instruments.walt import CMD_TIMEOUT_S, DRAIN_MAX_S, Walt
from harness.instruments.walt_latency import TRANSITION_TIMEOUT_S, measure_screen_draw

OPEN_BOUND_S = DRAIN_MAX_S + CMD_TIMEOUT_S
VANISH_BOUND_S = 0.5
SILENT_MID_RUN_BOUND_S = TRANSITION_TIMEOUT_S + CMD_TIMEOUT_S + 0.2
RELAY_BOUND_S = STATUS_TIMEOUT_S + 0.1


def _after(delay_s: float, fn: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(delay_s), fn()), name="fault-injector")
    t.start()
    return t


def _raises_within(
    bound_s: float, fn: Callable[[], object], match: str, since: Callable[[], float] | None = None
) -> InstrumentError:
    t0 = time.monotonic()
    with pytest.raises(InstrumentError, match=match) as info:
        fn()
    t_fault = since() if since else t0
    elapsed = time.monotonic() - t_fault
    print(f"\n{info.value}\n  ended {elapsed:.3f} s after the fault (bound {bound_s:g} s)")
    assert elapsed < bound_s
    return info.value


# -- WALT ------------------------------------------------------------------------------------------


def test_walt_port_vanishes_mid_run(make_walt_sim, screen, assert_released):
    sim = make_walt_sim(brightness_source=screen.light)
    walt = Walt.open(sim.path)
    injector = _after(0.8, sim.vanish)
    try:
        err = _raises_within(
            VANISH_BOUND_S,
            lambda: measure_screen_draw(walt, screen.draw, n=50, calibrate=False, settle_s=0.05),
            match=rf"WALT on {sim.path}: the port vanished",
            since=lambda: sim.events("vanish")[0]["t"],
        )
    finally:
        injector.join()
        closed_by_driver = not walt.is_open
        walt.close()
    assert "unplugged" in str(err)
    assert closed_by_driver
    assert_released(sim)


def test_walt_board_answers_garbage(make_walt_sim, assert_released):
    sim = make_walt_sim()
    sim.set_mode("garbage")
    _raises_within(
        OPEN_BOUND_S, lambda: Walt.open(sim.path), match=rf"WALT on {sim.path}: garbled answer"
    )
    assert_released(sim)


def test_walt_board_answers_nothing(make_walt_sim, assert_released):
    sim = make_walt_sim()
    sim.set_mode("silent")
    _raises_within(
        OPEN_BOUND_S,
        lambda: Walt.open(sim.path),
        match=rf"WALT on {sim.path}: no answer to 'F' within 0.5 s",
    )
    assert_released(sim)


@pytest.mark.parametrize(("board_baud", "host_baud"), [(57600, 115200), (115200, 9600)])
def test_walt_wrong_baud_rate(make_walt_sim, board_baud: int, host_baud: int, assert_released):
    sim = make_walt_sim(baud=board_baud)  # a UART-bridged board (strict_baud)
    _raises_within(
        OPEN_BOUND_S,
        lambda: Walt.open(sim.path, baud=host_baud),
        match=rf"WALT on {sim.path}: garbled answer .*wrong baud rate\? "
        rf"\(port opened at {host_baud} baud",
    )
    assert sim.events("baud_mismatch")[0]["host_baud"] == host_baud
    assert_released(sim)


def test_walt_goes_silent_mid_run(make_walt_sim, screen, assert_released):
    sim = make_walt_sim(brightness_source=screen.light)
    walt = Walt.open(sim.path)
    injector = _after(0.8, lambda: sim.set_mode("silent"))
    try:
        _raises_within(
            SILENT_MID_RUN_BOUND_S,
            lambda: measure_screen_draw(walt, screen.draw, n=50, calibrate=False, settle_s=0.05),
            match=rf"WALT on {sim.path}: no answer to",
            since=lambda: sim.events("mode")[0]["t"],
        )
    finally:
        injector.join()
        closed_by_driver = not walt.is_open
        walt.close()
    assert closed_by_driver
    assert_released(sim)


def test_walt_missing_or_busy_port(make_walt_sim, assert_released):
    _raises_within(
        0.1, lambda: Walt.open("/dev/no-such-walt"), match="WALT on /dev/no-such-walt: cannot open"
    )
    sim = make_walt_sim()
    with Walt.open(sim.path, sync=False):
        _raises_within(
            0.1, lambda: Walt.open(sim.path), match=rf"WALT on {sim.path}: cannot open.*lock"
        )
    assert_released(sim)


# -- relay -------------------------------------------------------------------------------------


def test_relay_port_vanishes_between_commands(make_relay_sim, assert_released):
    """A write-only board is only noticed missing at the next command."""
    sim = make_relay_sim()
    relay = LcusRelay(sim.path)
    try:
        relay.on()
        sim.vanish()
        _raises_within(VANISH_BOUND_S, relay.off, match=rf"relay on {sim.path}: the port vanished")
        assert not relay.link.is_open
    finally:
        relay.close()
    assert_released(sim)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ({"mode": "silent"}, "no answer to the status query"),
        ({"mode": "garbage"}, "garbled answer to the status query"),
        ({"baud": 115200}, r"no answer to the status query .*wrong baud rate \(opened at 9600;"),
    ],
    ids=["silent", "garbage", "wrong-baud"],
)
def test_relay_faults_with_verification(make_relay_sim, setup: dict, match: str, assert_released):
    sim = make_relay_sim(baud=setup.get("baud", 9600))
    sim.set_mode(setup.get("mode", "ok"))
    _raises_within(
        RELAY_BOUND_S,
        lambda: LcusRelay(sim.path, verify=True),
        match=rf"relay on {sim.path}: {match}",
    )
    assert_released(sim)
