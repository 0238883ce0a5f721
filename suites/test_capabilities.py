"""Which of these tablets can take a support session, and what do they really have?"""

from __future__ import annotations

import dataclasses

import pytest

from harness.device.capabilities import compare, eligibility
from harness.report.html import facts_table


def _facts(caps) -> dict:
    return {
        "model": f"{caps.manufacturer} {caps.model}",
        "OS": f"Android {caps.os_version} (API {caps.api_level})",
        "display": f"{caps.display.width}x{caps.display.height} @ {caps.display.density} dpi"
        if caps.display
        else None,
        "microphone": caps.microphone,
        "front camera": caps.front_camera,
        "back camera": caps.back_camera,
        "Wi-Fi": (
            f"{'connected to ' + caps.wifi.ssid if caps.wifi.connected else 'not connected'}, "
            f"RSSI {caps.wifi.rssi_dbm} dBm, {caps.wifi.link_speed_mbps} Mbps"
        )
        if caps.wifi
        else None,
        "accounts": caps.account_names,
        "capture back ends": caps.capture_backends,
    }


def test_probed_capabilities_match_the_profile(device, profile, capabilities, extras):
    from pytest_html import extras as html_extras

    extras.append(
        html_extras.html(facts_table(f"{device.serial}: probed capabilities", _facts(capabilities)))
    )
    if profile is None:
        pytest.skip(
            f"{device.serial}: no device profile matches {capabilities.manufacturer} {capabilities.model}"
        )
    differences = compare(profile, capabilities)
    assert not differences, "; ".join(
        f"{d.field}: profile says {d.expected}, device has {d.probed}" for d in differences
    )


def test_eligible_for_live_support(device, profile, capabilities):
    verdict = eligibility(profile, capabilities)
    if not verdict.eligible:
        pytest.skip(
            f"{device.serial} ({profile.name if profile else capabilities.model}) is not eligible for live "
            f"support: {verdict.reason}"
        )
    assert verdict.reason == "eligible"


@pytest.mark.requires("microphone")
def test_microphone_declared_for_the_agent_to_hear_the_customer(capabilities):
    assert "android.hardware.microphone" in capabilities.features


@pytest.mark.requires("wifi")
def test_wifi_is_on_and_connected(capabilities):
    assert capabilities.wifi is not None, "dumpsys wifi was not probed"
    assert capabilities.wifi.enabled and capabilities.wifi.connected, dataclasses.asdict(
        capabilities.wifi
    )


def test_screenshot_is_clean_at_display_size(device, capabilities):
    img = device.screenshot()
    d = capabilities.display
    assert img.shape[:2] in ((d.height, d.width), (d.width, d.height))
