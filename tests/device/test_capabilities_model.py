"""Capabilities model: capabilities_from, profile matching, compare and eligibility.

Uses the real device_profiles/*.yaml and the recorded outputs in fixtures/shell/.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.device.capabilities import (
    BACKEND_FRAMEBUFFER,
    BACKEND_SCREENCAP,
    BACKEND_SCREENRECORD_H264,
    DUMPSYS_DISPLAY,
    DUMPSYS_WINDOW_DISPLAYS,
    GETPROP,
    KNOWN_COMMANDS,
    PM_LIST_FEATURES,
    WHICH_SCREENRECORD,
    WM_DENSITY,
    WM_SIZE,
    AmbiguousProfileError,
    Capabilities,
    Difference,
    api_level_of,
    capabilities_from,
    capture_backends,
    compare,
    eligibility,
    match_profile,
    probe_commands,
    screenrecord_present,
)
from harness.device.parsers import DisplayMetrics, ShellOutputError, parse_getprop
from harness.errors import ProfileError
from harness.profiles import load_profiles

SHELL = Path(__file__).resolve().parents[2] / "fixtures" / "shell"

# profile name -> {command: fixture "<dir>/<variant>"}; what the probe would collect.
DEVICES = {
    "fire-hdx-7-2013": {
        "getprop": "getprop/api17-fire-hdx-7-crlf",
        "pm list features": "pm-list-features/api17-fire-hdx-7-crlf",
        "wm size": "wm-size/api17-fire-hdx-7-not-found-crlf",
        "dumpsys display": "dumpsys-display/api17-fire-hdx-7-crlf",
        "dumpsys window displays": "dumpsys-window-displays/api17-fire-hdx-7-crlf",
        "dumpsys media.camera": "dumpsys-media.camera/api17-fire-hdx-7-idle",
        "dumpsys audio": "dumpsys-audio/api17-fire-hdx-7-crlf",
        "dumpsys wifi": "dumpsys-wifi/api17-fire-hdx-7-connected-crlf",
        "dumpsys account": "dumpsys-account/api17-fire-hdx-7-registered-crlf",
        "dumpsys battery": "dumpsys-battery/api17-fire-hdx-7-crlf",
    },
    "fire-hd-7-2013": {
        "getprop": "getprop/api17-fire-hd-7",
        "pm list features": "pm-list-features/api17-fire-hd-7",
        "dumpsys display": "dumpsys-display/api17-fire-hd-7",
        "dumpsys window displays": "dumpsys-window-displays/api17-fire-hd-7",
        "dumpsys media.camera": "dumpsys-media.camera/api17-fire-hd-7",
        "dumpsys audio": "dumpsys-audio/api17-fire-hdx-7",
        "dumpsys wifi": "dumpsys-wifi/api17-fire-hdx-7-connected",
        "dumpsys account": "dumpsys-account/api17-fire-hdx-7-registered",
        "dumpsys battery": "dumpsys-battery/api17-fire-hdx-7",
    },
    "fire-hdx-89-2014": {
        "getprop": "getprop/api19-fire-hdx-89-2014",
        "pm list features": "pm-list-features/api19-fire-hdx-89-2014",
        "wm size": "wm-size/api19-fire-hdx-89-2014",
        "wm density": "wm-density/api19-fire-hdx-89-2014",
        "dumpsys media.camera": "dumpsys-media.camera/api19-fire-hdx-89-2014-idle",
        "dumpsys audio": "dumpsys-audio/api19-fire-hdx-89-2014",
        "dumpsys wifi": "dumpsys-wifi/api19-fire-hdx-89-2014-connected",
        "dumpsys account": "dumpsys-account/api19-fire-hdx-89-2014-registered",
        "dumpsys battery": "dumpsys-battery/api19-fire-hdx-89-2014",
    },
    "android-tablet-api30": {
        "getprop": "getprop/api30-sm-t500",
        "pm list features": "pm-list-features/api30-sm-t500",
        "wm size": "wm-size/api30-sm-t500",
        "wm density": "wm-density/api30-sm-t500",
        "dumpsys media.camera": "dumpsys-media.camera/api30-sm-t500-idle",
        "dumpsys audio": "dumpsys-audio/api30-sm-t500-recording",
        "dumpsys wifi": "dumpsys-wifi/api30-sm-t500-connected",
        "dumpsys account": "dumpsys-account/api30-sm-t500-registered",
        "dumpsys battery": "dumpsys-battery/api30-sm-t500",
    },
    "android-emulator-api34": {
        "getprop": "getprop/api34-emulator",
        "pm list features": "pm-list-features/api34-emulator",
        "wm size": "wm-size/api34-emulator",
        "wm density": "wm-density/api34-emulator",
        "dumpsys media.camera": "dumpsys-media.camera/api34-emulator-idle",
        "dumpsys audio": "dumpsys-audio/api34-emulator-idle",
        "dumpsys wifi": "dumpsys-wifi/api34-emulator-connected",
        "dumpsys account": "dumpsys-account/api34-emulator-registered",
        "dumpsys battery": "dumpsys-battery/api34-emulator",
        "which screenrecord": None,  # filled in below: the path toybox `which` prints
    },
}


def read(ref: str) -> bytes:
    return (SHELL / f"{ref}.txt").read_bytes()


def outputs_of(device: str, **override: str | bytes | None) -> dict[str, str | bytes]:
    """The raw outputs of one device; override={key: fixture ref, raw bytes or None to drop}."""
    out: dict[str, str | bytes] = {}
    for key, ref in DEVICES[device].items():
        out[key] = b"/system/bin/screenrecord\n" if ref is None else read(ref)
    for key, value in override.items():
        key = key.replace("_", " ")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = read(value) if isinstance(value, str) else value
    return out


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


@pytest.fixture(scope="module")
def caps():
    return {name: capabilities_from(outputs_of(name)) for name in DEVICES}


# --- probe plan ----------------------------------------------------------------------------


def test_probe_commands_per_api_level():
    old, new = probe_commands(17), probe_commands(34)
    assert old[0] == new[0] == GETPROP
    assert DUMPSYS_DISPLAY in old and DUMPSYS_WINDOW_DISPLAYS in old and WM_SIZE not in old
    assert WM_SIZE in new and WM_DENSITY in new and DUMPSYS_DISPLAY not in new
    assert WHICH_SCREENRECORD in new and WHICH_SCREENRECORD not in old
    assert WM_SIZE in probe_commands(18)
    assert set(old) | set(new) <= set(KNOWN_COMMANDS)


def test_api_level_of():
    assert api_level_of(parse_getprop(read("getprop/api19-fire-hdx-89-2014"))) == 19
    with pytest.raises(ShellOutputError, match="ro.build.version.sdk"):
        api_level_of({"ro.build.version.sdk": "REL"})


# --- capabilities_from ---------------------------------------------------------------------


def test_capabilities_fire_hdx_7_old_crlf_device(caps):
    c = caps["fire-hdx-7-2013"]
    assert (c.api_level, c.os_version, c.model, c.manufacturer) == (17, "4.2.2", "KFTHWI", "Amazon")
    assert c.display == DisplayMetrics(1920, 1200, 320)  # from dumpsys display; wm ignored
    assert (c.microphone, c.front_camera, c.back_camera, c.wifi_hardware) == (
        True,
        True,
        False,
        True,
    )
    assert c.wifi.connected and c.wifi.ssid == "HomeNet"
    assert c.account_registered and c.account_names == ("qa.hdx7@example.com",)
    assert c.capture_backends == (BACKEND_FRAMEBUFFER, BACKEND_SCREENCAP)
    assert c.recordings is None  # API 17: unknown, not "nobody records"
    assert c.camera.clients == ()
    assert c.battery.level == 85
    assert c.gl_es_version == 0x20000
    assert c.serial == "D0FBA0A0335401EA"
    assert c.fingerprint.startswith("Amazon/thor/thor:4.2.2/")


def test_capabilities_fire_hd_7_has_no_microphone_and_no_camera(caps):
    c = caps["fire-hd-7-2013"]
    assert (c.model, c.microphone, c.front_camera, c.back_camera) == ("KFSOWI", False, False, False)
    assert c.camera.number_of_cameras == 0
    assert c.display == DisplayMetrics(1280, 800, 213)


def test_capabilities_new_devices(caps):
    t500, emu = caps["android-tablet-api30"], caps["android-emulator-api34"]
    assert t500.display == DisplayMetrics(2000, 1200, 240)
    assert [(r.source, r.package) for r in t500.recordings] == [("MIC", "com.example.recorder")]
    assert t500.capture_backends == (
        BACKEND_SCREENRECORD_H264,
        BACKEND_SCREENCAP,
        BACKEND_FRAMEBUFFER,
    )
    assert emu.recordings == ()
    assert emu.wifi.ssid == "AndroidWifi" and emu.wifi.frequency_mhz == 2447
    assert emu.capture_backends[0] == BACKEND_SCREENRECORD_H264
    assert "android.hardware.vulkan.level" in emu.features


def test_capabilities_are_frozen(caps):
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps["fire-hdx-7-2013"].microphone = False


def test_display_fallbacks():
    # API 17, only dumpsys window displays
    c = capabilities_from(outputs_of("fire-hdx-7-2013", dumpsys_display=None))
    assert c.display == DisplayMetrics(1920, 1200, 320)
    # API 17, no display output at all: unknown
    c = capabilities_from(
        outputs_of("fire-hdx-7-2013", dumpsys_display=None, dumpsys_window_displays=None)
    )
    assert c.display is None
    # API 18+, wm size without wm density: density from ro.sf.lcd_density
    c = capabilities_from(outputs_of("android-tablet-api30", wm_density=None))
    assert c.display == DisplayMetrics(2000, 1200, 240)
    # API 18+, wm size is the physical size even when overridden
    c = capabilities_from(
        outputs_of("android-emulator-api34", wm_size="wm-size/api34-emulator-override")
    )
    assert c.display == DisplayMetrics(1280, 800, 213)


def test_unprobed_facts_are_none():
    minimal = {
        GETPROP: read("getprop/api34-emulator"),
        PM_LIST_FEATURES: read("pm-list-features/api34-emulator"),
    }
    c = capabilities_from(minimal)
    assert (c.wifi, c.accounts, c.camera, c.recordings, c.battery, c.display) == (None,) * 6
    assert not c.account_registered
    assert c.microphone and c.front_camera and c.back_camera


def test_capabilities_from_rejects_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="unknown command keys.*'dumpsys wifi '"):
        capabilities_from({**outputs_of("android-emulator-api34"), "dumpsys wifi ": b""})
    with pytest.raises(ValueError, match="required command outputs missing.*getprop"):
        capabilities_from(outputs_of("android-emulator-api34", getprop=None))


def test_capabilities_from_reports_the_bad_output():
    swapped = outputs_of(
        "android-emulator-api34", dumpsys_wifi="dumpsys-account/api34-emulator-registered"
    )
    with pytest.raises(ShellOutputError, match=r"^`dumpsys wifi`: "):
        capabilities_from(swapped)


@pytest.mark.parametrize(
    "which, backends",
    [
        (
            b"/system/bin/screenrecord\n",
            (BACKEND_SCREENRECORD_H264, BACKEND_SCREENCAP, BACKEND_FRAMEBUFFER),
        ),
        (b"", (BACKEND_SCREENCAP, BACKEND_FRAMEBUFFER)),
        (
            b"/system/bin/sh: which: not found\n",
            (BACKEND_SCREENRECORD_H264, BACKEND_SCREENCAP, BACKEND_FRAMEBUFFER),
        ),
    ],
)
def test_screenrecord_probe_drives_backends(which, backends):
    c = capabilities_from(outputs_of("android-emulator-api34", which_screenrecord=which))
    assert c.capture_backends == backends


def test_capture_backends_is_a_function_of_api_level():
    assert capture_backends(17) == capture_backends(20) == (BACKEND_FRAMEBUFFER, BACKEND_SCREENCAP)
    assert capture_backends(21)[0] == BACKEND_SCREENRECORD_H264
    assert BACKEND_SCREENRECORD_H264 not in capture_backends(34, has_screenrecord=False)
    assert capture_backends(17, has_screenrecord=True) == capture_backends(17)
    assert screenrecord_present(None) is None


# --- match_profile -------------------------------------------------------------------------


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_each_recorded_device_matches_its_profile(device, profiles):
    props = parse_getprop(outputs_of(device)[GETPROP])
    assert match_profile(props, profiles).name == device
    assert match_profile(props, list(profiles.values())).name == device


def test_fixture_getprops_agree_with_profile_properties(profiles):
    """The twin answers the profile's properties: the recorded listings must agree."""
    for device in DEVICES:
        props = parse_getprop(outputs_of(device)[GETPROP])
        for key, value in profiles[device].properties:
            assert props.get(key) == value, (device, key)


def test_unknown_device_matches_nothing(profiles):
    props = parse_getprop(read("getprop/api30-sm-t500"))
    props["ro.product.model"] = "SM-X200"
    assert match_profile(props, profiles) is None


def test_ambiguous_match_names_both_profiles(profiles):
    hdx = profiles["fire-hdx-7-2013"]
    clone = dataclasses.replace(hdx, name="fire-hdx-7-clone", file="/tmp/fire-hdx-7-clone.yaml")
    props = parse_getprop(read("getprop/api17-fire-hdx-7"))
    with pytest.raises(AmbiguousProfileError) as info:
        match_profile(props, [*profiles.values(), clone])
    message = str(info.value)
    assert "'fire-hdx-7-2013'" in message and "'fire-hdx-7-clone'" in message
    assert isinstance(info.value, ProfileError)
    assert {p.name for p in info.value.profiles} == {"fire-hdx-7-2013", "fire-hdx-7-clone"}


# --- compare -------------------------------------------------------------------------------


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_recorded_devices_agree_with_their_profiles(device, profiles, caps):
    assert compare(profiles[device], caps[device]) == []


def test_compare_reports_each_difference(profiles, caps):
    diffs = compare(profiles["fire-hdx-7-2013"], caps["fire-hd-7-2013"])
    assert diffs == [
        Difference("hardware.microphone", True, False),
        Difference("hardware.front_camera", True, False),
        Difference("display.width", 1920, 1280),
        Difference("display.height", 1200, 800),
        Difference("display.density", 320, 213),
    ]
    assert str(diffs[0]) == "hardware.microphone: expected True, probed False"
    diffs = compare(profiles["fire-hdx-89-2014"], caps["android-emulator-api34"])
    assert Difference("api_level", 19, 34) in diffs


def test_compare_ignores_orientation_and_unprobed_display(profiles, caps):
    hdx = caps["fire-hdx-7-2013"]
    portrait = dataclasses.replace(hdx, display=DisplayMetrics(1200, 1920, 320))
    assert compare(profiles["fire-hdx-7-2013"], portrait) == []
    unknown = dataclasses.replace(hdx, display=None)
    assert compare(profiles["fire-hdx-7-2013"], unknown) == []


# --- eligibility ---------------------------------------------------------------------------


def test_fire_hd_7_is_ineligible_for_lack_of_a_microphone(profiles, caps):
    e = eligibility(profiles["fire-hd-7-2013"], caps["fire-hd-7-2013"])
    assert not e.eligible
    assert e.reasons[0] == "no microphone (android.hardware.microphone missing)"
    assert "live video support needs a microphone" in e.reason  # the profile's own reason
    assert e.reason == "; ".join(e.reasons)


@pytest.mark.parametrize(
    "device",
    ["fire-hdx-7-2013", "fire-hdx-89-2014", "android-tablet-api30", "android-emulator-api34"],
)
def test_eligible_with_account_and_wifi(device, profiles, caps):
    e = eligibility(profiles[device], caps[device])
    assert (e.eligible, e.reason, e.reasons) == (True, "eligible", ())


def test_unregistered_fire_hdx_is_ineligible(profiles):
    c = capabilities_from(
        outputs_of(
            "fire-hdx-7-2013", dumpsys_account="dumpsys-account/api17-fire-hdx-7-unregistered"
        )
    )
    e = eligibility(profiles["fire-hdx-7-2013"], c)
    assert (e.eligible, e.reason) == (False, "no registered account")


def test_wifi_reasons(profiles):
    profile = profiles["fire-hdx-7-2013"]
    off = capabilities_from(
        outputs_of("fire-hdx-7-2013", dumpsys_wifi="dumpsys-wifi/api17-fire-hdx-7-disabled")
    )
    assert eligibility(profile, off).reason == "Wi-Fi disabled"
    scanning = dataclasses.replace(
        off, wifi=dataclasses.replace(off.wifi, enabled=True, supplicant_state="SCANNING")
    )
    assert (
        eligibility(profile, scanning).reason == "Wi-Fi not connected (supplicant state SCANNING)"
    )


def test_unprobed_and_unknown_model_reasons(profiles, caps):
    c = dataclasses.replace(caps["android-emulator-api34"], wifi=None, accounts=None)
    e = eligibility(None, c)
    assert e.reasons == (
        "account state unknown (dumpsys account not probed)",
        "Wi-Fi state unknown (dumpsys wifi not probed)",
        "unknown model Google sdk_gphone64_x86_64 (no profile matches)",
    )


def test_account_types_filter(profiles, caps):
    hdx = caps["fire-hdx-7-2013"]
    assert eligibility(
        profiles["fire-hdx-7-2013"], hdx, account_types={"com.amazon.account"}
    ).eligible
    e = eligibility(
        profiles["android-tablet-api30"],
        caps["android-tablet-api30"],
        account_types={"com.amazon.account"},
    )
    assert e.reason == "no registered account of type com.amazon.account"


def test_capabilities_type_is_exported():
    assert dataclasses.is_dataclass(Capabilities)
    assert {f.name for f in dataclasses.fields(Capabilities)} >= {
        "api_level",
        "os_version",
        "model",
        "manufacturer",
        "display",
        "microphone",
        "front_camera",
        "back_camera",
        "wifi",
        "accounts",
        "capture_backends",
        "features",
    }
