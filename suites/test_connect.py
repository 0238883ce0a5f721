"""Press the support button: does an agent appear within 15 s (9 s on average)? And the messages
when not. The product is the app profile's (--app); the agent is recognised by its timecode, or
with `--agent none` (a human) by the onset of live video: the figures say which mode was used."""

from __future__ import annotations

import pytest

from harness.report.extras import KIND_DETECTION, attach_frame, attach_plots
from harness.session import SessionRefused

SESSIONS_PER_DEVICE = 3
HOLD_S = 2.0
CONNECT_TIMEOUT_S = 60.0  # a press until the agent's video (the budget's max is 15 s)
REFUSAL_TIMEOUT_S = 15.0  # a press until the refusal message
BUSY_CUSTOMERS = 8  # the busiest day: customers pressing within one second...
BUSY_AGENTS = 2  # ...and the agents on duty (the twin backend's default)
BUSY_TWIN = "android-emulator-api34"
BUSY_ANSWER_S = 1.0  # the backend's time from assignment to the agent's video
BACKEND_TRUTH_TOLERANCE_S = 0.05  # screen-read wait vs the backend's, past its uncertainty


@pytest.mark.requires("eligible")
@pytest.mark.budget("connect_time_s")
def test_connect_time_within_budget(session_driver, measure, budget, extras, hil_device):
    drv = session_driver
    connect = measure(
        "connect_time_s",
        "s",
        source="host clock, polled frames",
        mode=drv.mode,
        app=drv.app.name,
        locale=drv.locale,
    )
    queue = measure("queue_wait_s", "s")
    first = None
    for i in range(SESSIONS_PER_DEVICE):
        r = drv.connect(timeout_s=CONNECT_TIMEOUT_S)
        connect.add(
            r.connect_time_s,
            uncertainty=r.uncertainty_s,
            session=i,
            frames=r.frames,
            source=r.source,
            mode=r.mode,
            detector_latency_s=r.detector_latency_s,
        )
        if r.queue_wait_s is not None:
            queue.add(r.queue_wait_s, uncertainty=r.queue_uncertainty_s or 0.0, session=i)
        first = first or r
        drv.end()
    attach_frame(
        extras,
        first.frame,
        f"{hil_device.serial}: frame where the agent was detected by {first.mode} "
        f"(frame {first.frame_index}, {first.connect_time_s:.3f} s +/- {first.uncertainty_s:.3f} s)",
        KIND_DETECTION,
    )
    attach_plots(extras, connect, budget, f"connect time, {hil_device.serial}")
    measure.check(queue)
    measure.check(connect)


@pytest.mark.requires("microphone")
def test_unregistered_device_is_told_to_register(session_driver, hil_device):
    if not hil_device.twin_control:
        pytest.skip("needs a twin: a real tablet cannot be unregistered by the harness")
    from harness.farm.control import TwinControl

    twin = TwinControl(hil_device.twin_control, hil_device.serial)
    twin.registered(False)
    try:
        drv = session_driver
        with pytest.raises(SessionRefused) as err:
            drv.connect(timeout_s=REFUSAL_TIMEOUT_S)
        assert err.value.kind == "unregistered", err.value.message
        assert err.value.message == drv.app.message("unregistered", drv.locale)
        drv.dismiss_message()
    finally:
        twin.registered(True)


def test_ineligible_device_shows_the_unsupported_message(
    device, session_driver, profile, capabilities
):
    from harness.device.capabilities import eligibility

    if eligibility(profile, capabilities).eligible:
        pytest.skip(f"{device.serial} is eligible for live support")
    drv = session_driver
    with pytest.raises(SessionRefused) as err:
        drv.connect(timeout_s=REFUSAL_TIMEOUT_S)
    assert err.value.kind == "unsupported", err.value.message
    assert err.value.message == drv.app.message("unsupported", drv.locale)
    drv.dismiss_message()


def test_busiest_day_queue_waits(hil_state, hil_device, measure, budget, extras, tmp_path):
    """Eight customers press within one second; two agents. The wait distribution, from the screens."""
    twins = [d for d in hil_state.devices if d.twin_control]
    if not twins:
        pytest.skip("the busiest-day load needs twins (it starts its own eight)")
    if hil_device != twins[0]:
        pytest.skip(f"the busiest-day load runs once per run, with {twins[0].serial}")
    from harness.farm import AdbServer, TwinProcess, free_port_block
    from harness.session.load import busiest_day
    from harness.twin.truth import read_truth

    with AdbServer(home=tmp_path / "adb") as adb:
        tp = TwinProcess(
            BUSY_TWIN,
            adb=adb,
            port=free_port_block(BUSY_CUSTOMERS),
            count=BUSY_CUSTOMERS,
            state_dir=tmp_path / "twins",
        )
        try:
            tp.start()
            tp.control("backend", answer_s=BUSY_ANSWER_S)
            results = busiest_day(
                [f"127.0.0.1:{t.port}" for t in tp.twins], adb.port, hold_s=HOLD_S
            )
            backend = read_truth(tp.twins[0].backend_truth)
        finally:
            tp.stop()
    load = f"{BUSY_CUSTOMERS} customers, {BUSY_AGENTS} agents"
    waits = measure("queue_wait_s", "s", load=load)
    connects = measure("connect_time_s", "s", load=load)
    truth = {e["device"]: e["queue_wait_s"] for e in backend if e["event"] == "session_assigned"}
    for serial, r in sorted(results.items()):
        waits.add(
            r.queue_wait_s,
            uncertainty=r.queue_uncertainty_s,
            device=serial,
            backend_truth=truth[serial],
        )
        connects.add(r.connect_time_s, uncertainty=r.uncertainty_s, device=serial)
    attach_plots(extras, waits, budget, "busiest day: queue wait")
    attach_plots(extras, connects, budget, "busiest day: connect time")
    assert len(waits.samples) == BUSY_CUSTOMERS
    for s in waits.samples:
        assert (
            abs(s.value - s.meta["backend_truth"]) <= s.uncertainty + BACKEND_TRUTH_TOLERANCE_S
        ), s
    measure.check(waits)
