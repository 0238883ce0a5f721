"""Poor Wi-Fi: how connect time degrades per network profile, and what a Wi-Fi drop does."""

from __future__ import annotations

import pytest

from harness.session import SessionDriver, SessionRefused

PROFILES = ["good-wifi", "poor-wifi", "3g", "edge", "very-bad-network"]


@pytest.mark.requires("eligible")
@pytest.mark.budget("connect_time_s")
@pytest.mark.parametrize("profile_name", PROFILES)
def test_connect_time_per_network_profile(device, ui, measure, hil_state, hil_device, profile_name):
    with hil_state.shape(hil_device, profile_name) as shaper:
        drv = SessionDriver(device, ui)
        m = measure("connect_time_s", "s", network=profile_name, approximations=shaper.report.approximations)
        r = drv.connect(timeout_s=60)
        m.add(r.connect_time_s, uncertainty=r.uncertainty_s, network=profile_name)
        drv.end()
    verdict = measure.check(m, raise_on_fail=False)
    if not verdict.passed:  # degradation is data here: the matrix shows it, the budget applies to good Wi-Fi
        assert profile_name != "good-wifi", verdict.message


@pytest.mark.requires("eligible", "wifi")
def test_wifi_drop_mid_session_recovers_or_ends_cleanly(device, ui, measure, hil_device):
    drv = SessionDriver(device, ui)
    drv.connect(timeout_s=60)
    recovery = measure("wifi_recovery_s", "s", drop_s=3.0)
    try:
        rec = drv.wifi_recovery(drop_s=3.0)
    except SessionRefused as e:  # a clean end with a message on screen is an acceptable outcome
        assert "Wi-Fi" in e.message
        drv.dismiss_message()
        return
    recovery.add(rec.recovery_s, uncertainty=rec.uncertainty_s, frozen_frame=rec.frozen_frame)
    drv.end()
