"""Shell-output parsers against recorded-style outputs in fixtures/shell/ (old and new APIs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.device.parsers import (
    Account,
    AudioRecording,
    CameraClient,
    ShellOutputError,
    lines_of,
    parse_dumpsys_account,
    parse_dumpsys_audio,
    parse_dumpsys_battery,
    parse_dumpsys_camera,
    parse_dumpsys_display,
    parse_dumpsys_wifi,
    parse_dumpsys_window_displays,
    parse_getprop,
    parse_pm_list_features,
    parse_wm_density,
    parse_wm_size,
)
from harness.errors import HarnessError

SHELL = Path(__file__).resolve().parents[2] / "fixtures" / "shell"

# fixture directory (command with spaces as dashes) -> (command, parser)
PARSERS = {
    "getprop": ("getprop", parse_getprop),
    "pm-list-features": ("pm list features", parse_pm_list_features),
    "dumpsys-media.camera": ("dumpsys media.camera", parse_dumpsys_camera),
    "dumpsys-audio": ("dumpsys audio", parse_dumpsys_audio),
    "dumpsys-wifi": ("dumpsys wifi", parse_dumpsys_wifi),
    "dumpsys-account": ("dumpsys account", parse_dumpsys_account),
    "wm-size": ("wm size", parse_wm_size),
    "wm-density": ("wm density", parse_wm_density),
    "dumpsys-display": ("dumpsys display", parse_dumpsys_display),
    "dumpsys-window-displays": ("dumpsys window displays", parse_dumpsys_window_displays),
    "dumpsys-battery": ("dumpsys battery", parse_dumpsys_battery),
}


def fx(command_dir: str, name: str) -> bytes:
    return (SHELL / command_dir / f"{name}.txt").read_bytes()


def all_fixtures() -> list[Path]:
    return sorted(SHELL.glob("*/*.txt"))


# --- fixtures themselves -------------------------------------------------------------------


def test_every_fixture_directory_has_a_parser():
    dirs = {p.name for p in SHELL.iterdir() if p.is_dir()}
    assert dirs == set(PARSERS)


def test_crlf_fixtures_are_really_crlf_and_others_are_lf():
    for path in all_fixtures():
        data = path.read_bytes()
        if path.stem.endswith("-crlf"):
            assert data.count(b"\r\n") == data.count(b"\n") > 0, path
        else:
            assert b"\r" not in data, path


def test_every_api17_command_has_a_crlf_variant():
    for command_dir in PARSERS:
        if command_dir == "wm-density":  # no `wm` before API 18: wm-size/ records the failure
            continue
        names = [p.stem for p in (SHELL / command_dir).glob("api17-*.txt")]
        assert any(n.endswith("-crlf") for n in names), command_dir


def test_lines_of_drops_cr_and_nul():
    assert lines_of(b"a\r\nb\r\r\nc\x00") == ["a", "b", "c"]


# --- getprop ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, model, sdk, release",
    [
        ("api17-fire-hdx-7", "KFTHWI", "17", "4.2.2"),
        ("api17-fire-hdx-7-crlf", "KFTHWI", "17", "4.2.2"),
        ("api17-fire-hd-7", "KFSOWI", "17", "4.2.2"),
        ("api19-fire-hdx-89-2014", "KFSAWI", "19", "4.4.3"),
        ("api30-sm-t500", "SM-T500", "30", "11"),
        ("api34-emulator", "sdk_gphone64_x86_64", "34", "14"),
    ],
)
def test_getprop(name, model, sdk, release):
    props = parse_getprop(fx("getprop", name))
    assert props["ro.product.model"] == model
    assert props["ro.build.version.sdk"] == sdk
    assert props["ro.build.version.release"] == release


def test_getprop_old_values_empty_and_with_spaces():
    props = parse_getprop(fx("getprop", "api17-fire-hdx-7"))
    assert props["dhcp.wlan0.dns2"] == ""
    assert props["ro.build.description"] == (
        "thor-user 4.2.2 JDQ39 13.3.2.8_user_328001020 release-keys"
    )
    assert parse_getprop(fx("getprop", "api17-fire-hdx-7-crlf")) == props


def test_getprop_brackets_multiline_values_and_trailing_junk():
    text = "[a.b]: [x [y] z]\r\n[c.d]: [first line\r\nsecond line]\r\n[e.f]: []\r\n\r\nX4EXIT:0\r\n"
    assert parse_getprop(text) == {"a.b": "x [y] z", "c.d": "first line\nsecond line", "e.f": ""}


# --- pm list features ----------------------------------------------------------------------


def test_features_api17_fire_hdx_7():
    f = parse_pm_list_features(fx("pm-list-features", "api17-fire-hdx-7"))
    assert f.gl_es_version == 0x20000
    assert "android.hardware.microphone" in f
    assert "android.hardware.camera.front" in f
    assert "android.hardware.camera" not in f  # front camera only
    assert f.versions == ()
    assert parse_pm_list_features(fx("pm-list-features", "api17-fire-hdx-7-crlf")) == f


def test_features_api17_fire_hd_7_has_no_microphone_or_camera():
    f = parse_pm_list_features(fx("pm-list-features", "api17-fire-hd-7"))
    assert "android.hardware.microphone" not in f
    assert not any(name.startswith("android.hardware.camera") for name in f.names)
    assert "android.hardware.wifi" in f


@pytest.mark.parametrize(
    "name, gles, versioned",
    [
        ("api19-fire-hdx-89-2014", 0x30000, {}),
        ("api30-sm-t500", 0x30002, {"android.hardware.vulkan.level": 1}),
        ("api34-emulator", 0x30000, {"android.hardware.hardware_keystore": 300}),
    ],
)
def test_features_newer(name, gles, versioned):
    f = parse_pm_list_features(fx("pm-list-features", name))
    assert f.gl_es_version == gles
    for feature in ("android.hardware.microphone", "android.hardware.camera.front"):
        assert feature in f
    for feature, version in versioned.items():
        assert feature in f and f.version(feature) == version
    assert f.version("android.hardware.microphone") is None


# --- dumpsys media.camera ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, number, facings, clients, fmt",
    [
        ("api17-fire-hdx-7-idle", 1, ("FRONT",), (), "legacy"),
        ("api17-fire-hdx-7-open", 1, ("FRONT",), (CameraClient("0", None, 2871),), "legacy"),
        ("api17-fire-hdx-7-open-crlf", 1, ("FRONT",), (CameraClient("0", None, 2871),), "legacy"),
        ("api17-fire-hd-7", 0, (), (), "legacy"),
        ("api19-fire-hdx-89-2014-idle", 2, ("BACK", "FRONT"), (), "legacy"),
        (
            "api19-fire-hdx-89-2014-open",
            2,
            ("BACK", "FRONT"),
            (CameraClient("1", None, None, 10061),),
            "legacy",
        ),
        ("api30-sm-t500-idle", 2, ("BACK", "FRONT"), (), "modern"),
        (
            "api30-sm-t500-open",
            2,
            ("BACK", "FRONT"),
            (CameraClient("1", "com.sec.android.app.camera", 7254),),
            "modern",
        ),
        ("api34-emulator-idle", 2, ("BACK", "FRONT"), (), "modern"),
        (
            "api34-emulator-open",
            2,
            ("BACK", "FRONT"),
            (CameraClient("1", "com.example.support", 4388),),
            "modern",
        ),
    ],
)
def test_camera(name, number, facings, clients, fmt):
    state = parse_dumpsys_camera(fx("dumpsys-media.camera", name))
    assert state.number_of_cameras == number
    assert state.facings == facings
    assert state.clients == clients
    assert state.format == fmt


def test_camera_event_log_packages_are_not_open_clients():
    # api30 idle lists CONNECT/DISCONNECT of com.sec.android.app.camera in its event log
    assert b"com.sec.android.app.camera" in fx("dumpsys-media.camera", "api30-sm-t500-idle")
    assert parse_dumpsys_camera(fx("dumpsys-media.camera", "api30-sm-t500-idle")).clients == ()


def test_camera_legacy_hal2_client_names_its_package():
    text = (
        "Number of camera devices: 1\n\nCamera 0 static information:\n  Facing: BACK\n"
        "  Device is open. Client instance dump:\n"
        "Client2[0] (0x4201a2b0) Client: com.example.cam PID: 3120, dump:\n  State: PREVIEW\n"
    )
    assert parse_dumpsys_camera(text).clients == (CameraClient("0", "com.example.cam", 3120),)


def test_camera_unterminated_client_list_is_an_error():
    text = (
        "Number of camera devices: 1\nActive Camera Clients:\n[\n(Camera ID: 0, Cost: 100, PID: 1"
    )
    with pytest.raises(ShellOutputError, match="no closing"):
        parse_dumpsys_camera(text)


# --- dumpsys audio -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["api17-fire-hdx-7", "api17-fire-hdx-7-crlf", "api19-fire-hdx-89-2014"]
)
def test_audio_old_releases_are_unknown_not_silent(name):
    assert parse_dumpsys_audio(fx("dumpsys-audio", name)) is None


def test_audio_api30_only_active_recorders():
    recs = parse_dumpsys_audio(fx("dumpsys-audio", "api30-sm-t500-recording"))
    assert recs == (AudioRecording("MIC", "com.example.recorder", False, 2617, 10253),)


def test_audio_api34_idle_ignores_the_event_history():
    assert b"rec start" in fx("dumpsys-audio", "api34-emulator-idle")
    assert parse_dumpsys_audio(fx("dumpsys-audio", "api34-emulator-idle")) == ()


def test_audio_api34_recording():
    recs = parse_dumpsys_audio(fx("dumpsys-audio", "api34-emulator-recording"))
    assert [(r.source, r.package, r.silenced) for r in recs] == [
        ("VOICE_COMMUNICATION", "com.example.support", False),
        ("MIC", "com.example.recorder", True),
    ]


def test_audio_api26_format_without_riid_or_silenced():
    text = (
        "Audio routes:\n  mMainType=0x0\n\nRecordActivityMonitor dump time: 9:01:02 AM\n"
        "  session:113 -- source:CAMCORDER -- uid:10061 -- patch:14 -- pack:com.example.cam"
        " -- format client=2ch 48000Hz PCM_16BIT, dev=2ch 48000Hz PCM_16BIT\n"
    )
    assert parse_dumpsys_audio(text) == (
        AudioRecording("CAMCORDER", "com.example.cam", None, 113, 10061),
    )


# --- dumpsys wifi --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, ssid, rssi, link, freq",
    [
        ("api17-fire-hdx-7-connected", "HomeNet", -55, 65, None),
        ("api17-fire-hdx-7-connected-crlf", "HomeNet", -55, 65, None),
        ("api19-fire-hdx-89-2014-connected", "HomeNet", -52, 150, None),
        ("api30-sm-t500-connected", "HomeNet", -55, 433, 5180),
        ("api34-emulator-connected", "AndroidWifi", -50, 54, 2447),
    ],
)
def test_wifi_connected(name, ssid, rssi, link, freq):
    w = parse_dumpsys_wifi(fx("dumpsys-wifi", name))
    assert (w.enabled, w.connected, w.supplicant_state) == (True, True, "COMPLETED")
    assert (w.ssid, w.rssi_dbm, w.link_speed_mbps, w.frequency_mhz) == (ssid, rssi, link, freq)
    assert w.bssid is not None


@pytest.mark.parametrize("name", ["api17-fire-hdx-7-disabled", "api34-emulator-disabled"])
def test_wifi_disabled(name):
    w = parse_dumpsys_wifi(fx("dumpsys-wifi", name))
    assert not w.enabled and not w.connected
    assert (w.ssid, w.bssid, w.rssi_dbm, w.link_speed_mbps) == (None, None, None, None)


def test_wifi_enabled_but_scanning_is_not_connected():
    text = (
        "Wi-Fi is enabled\nmWifiInfo SSID: <unknown ssid>, BSSID: <none>, MAC: 02:00:00:00:00:00,"
        " Supplicant state: SCANNING, RSSI: -127, Link speed: -1Mbps, Frequency: -1MHz\n"
    )
    w = parse_dumpsys_wifi(text)
    assert w.enabled and not w.connected
    assert (w.supplicant_state, w.rssi_dbm, w.frequency_mhz) == ("SCANNING", None, None)


# --- dumpsys account -----------------------------------------------------------------------


def test_account_registered_old():
    expected = (Account("qa.hdx7@example.com", "com.amazon.account", 0),)
    assert parse_dumpsys_account(fx("dumpsys-account", "api17-fire-hdx-7-registered")) == expected
    crlf = fx("dumpsys-account", "api17-fire-hdx-7-registered-crlf")
    assert parse_dumpsys_account(crlf) == expected


@pytest.mark.parametrize("name", ["api17-fire-hdx-7-unregistered", "api34-emulator-unregistered"])
def test_account_unregistered(name):
    assert parse_dumpsys_account(fx("dumpsys-account", name)) == ()


def test_account_several_users_and_types():
    accounts = parse_dumpsys_account(fx("dumpsys-account", "api19-fire-hdx-89-2014-registered"))
    assert [(a.name, a.user_id) for a in accounts] == [
        ("qa.hdx89@example.com", 0),
        ("Kid profile", 10),
    ]
    t500 = parse_dumpsys_account(fx("dumpsys-account", "api30-sm-t500-registered"))
    assert [a.type for a in t500] == ["com.google", "com.osp.app.signin"]
    emu = parse_dumpsys_account(fx("dumpsys-account", "api34-emulator-registered"))
    assert emu == (Account("qa.emulator@gmail.com", "com.google", 0),)


def test_account_count_mismatch_is_an_error():
    text = "User UserInfo{0:Owner:13}:\n  Accounts: 2\n    Account {name=a@b.com, type=x}\n\n"
    with pytest.raises(ShellOutputError, match="Accounts: 2"):
        parse_dumpsys_account(text)


# --- display -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, size, override",
    [
        ("api19-fire-hdx-89-2014", (2560, 1600), None),
        ("api30-sm-t500", (2000, 1200), None),
        ("api34-emulator", (1280, 800), None),
        ("api34-emulator-override", (1280, 800), (1024, 640)),
    ],
)
def test_wm_size(name, size, override):
    s = parse_wm_size(fx("wm-size", name))
    assert ((s.width, s.height), s.override) == (size, override)


@pytest.mark.parametrize("name", ["api17-fire-hdx-7-not-found", "api17-fire-hdx-7-not-found-crlf"])
def test_wm_size_api17_has_no_wm(name):
    with pytest.raises(ShellOutputError, match=r"`wm size`: the device has no `wm` command"):
        parse_wm_size(fx("wm-size", name))


@pytest.mark.parametrize(
    "name, density, override",
    [
        ("api19-fire-hdx-89-2014", 320, None),
        ("api30-sm-t500", 240, None),
        ("api34-emulator", 213, None),
        ("api34-emulator-override", 213, 180),
    ],
)
def test_wm_density(name, density, override):
    d = parse_wm_density(fx("wm-density", name))
    assert (d.density, d.override) == (density, override)


@pytest.mark.parametrize(
    "parse, command_dir",
    [
        (parse_dumpsys_display, "dumpsys-display"),
        (parse_dumpsys_window_displays, "dumpsys-window-displays"),
    ],
)
@pytest.mark.parametrize(
    "name, metrics",
    [
        ("api17-fire-hdx-7", (1920, 1200, 320)),
        ("api17-fire-hdx-7-crlf", (1920, 1200, 320)),
        ("api17-fire-hd-7", (1280, 800, 213)),
    ],
)
def test_api17_display_fallbacks(parse, command_dir, name, metrics):
    m = parse(fx(command_dir, name))
    assert (m.width, m.height, m.density) == metrics


def test_dumpsys_display_modern_device_info_and_viewport_fallback():
    modern = (
        "DISPLAY MANAGER (dumpsys display)\n"
        '  DisplayDeviceInfo{"HDMI Screen": uniqueId="local:1", 1920 x 1080, density 160}\n'
        '  DisplayDeviceInfo{"Built-in Screen": uniqueId="local:0", 1080 x 2340, modeId 1, '
        "density 440, 403.411 x 399.737 dpi, FLAG_DEFAULT_DISPLAY, FLAG_ROTATES_WITH_CONTENT}\n"
    )
    m = parse_dumpsys_display(modern)
    assert (m.width, m.height, m.density) == (1080, 2340, 440)
    viewport_only = (
        "DISPLAY MANAGER (dumpsys display)\n  mDefaultViewport=DisplayViewport{valid=true, "
        "displayId=0, orientation=0, deviceWidth=800, deviceHeight=1280}\n"
    )
    m = parse_dumpsys_display(viewport_only)
    assert (m.width, m.height, m.density) == (800, 1280, None)


# --- dumpsys battery -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, level, plugged, status",
    [
        ("api17-fire-hdx-7", 85, "usb", "charging"),
        ("api17-fire-hdx-7-crlf", 85, "usb", "charging"),
        ("api19-fire-hdx-89-2014", 100, "ac", "full"),
        ("api30-sm-t500", 76, "usb", "charging"),
        ("api34-emulator", 100, "ac", "charging"),
        ("api34-emulator-unplugged", 15, None, "discharging"),
    ],
)
def test_battery(name, level, plugged, status):
    b = parse_dumpsys_battery(fx("dumpsys-battery", name))
    assert b.level == level and b.percent == float(level)
    assert b.status_name == status
    assert {"ac": b.ac_powered, "usb": b.usb_powered} == {
        "ac": plugged == "ac",
        "usb": plugged == "usb",
    }
    assert b.powered == (plugged is not None)
    assert b.updates_stopped == name.endswith("unplugged")


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("command_dir", sorted(PARSERS))
def test_other_commands_output_is_rejected_with_the_command_named(command_dir):
    command, parse = PARSERS[command_dir]
    accepted = []
    for path in all_fixtures():
        if path.parent.name == command_dir:
            continue
        try:
            parse(path.read_bytes())
        except ShellOutputError as e:
            assert e.command == command
            assert str(e).startswith(f"`{command}`: ")
        else:
            accepted.append(f"{path.parent.name}/{path.name}")
    assert accepted == []


@pytest.mark.parametrize("command_dir", sorted(PARSERS))
@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty output"),
        ("\r\n  \r\n", "empty output"),
        ("Can't find service: x\n", "is not running"),
        ("Permission Denial: can't dump X from pid=1, uid=2000\n", "may not dump"),
        ("/system/bin/sh: foo: inaccessible or not found\n", "has no `foo` command"),
        ("Error: Could not access the Package Manager.  Is the system running?\n", "error"),
        ("\x89PNG\r\n\x1a\n\x00\x00garbage", None),
    ],
)
def test_errors_and_garbage(command_dir, text, problem):
    command, parse = PARSERS[command_dir]
    with pytest.raises(ShellOutputError, match=problem) as info:
        parse(text)
    assert info.value.command == command


def test_shell_output_error_is_a_value_error_and_a_harness_error():
    with pytest.raises(ShellOutputError) as info:
        parse_dumpsys_wifi(fx("dumpsys-battery", "api30-sm-t500"))
    assert isinstance(info.value, ValueError) and isinstance(info.value, HarnessError)
    assert "Wi-Fi is" in info.value.problem
    assert info.value.excerpt == "Current Battery Service state:"
