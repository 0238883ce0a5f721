"""The twin through the real adb server and adbutils: discovery, shell, sync, media, console."""

from __future__ import annotations

import os
import subprocess

import av
import cv2
import numpy as np
import pytest

from harness.farm import TwinProcess, free_port_block, port_free
from harness.profiles import load_profile, load_profiles
from harness.twin.truth import read_truth

EMULATOR_PORT = 5555


def _out(cp: subprocess.CompletedProcess) -> str:
    return cp.stdout.decode(errors="replace")


def test_twin_on_5555_is_discovered_as_emulator_5554_and_its_console_answers(
    adb_server, start_twin
):
    if not (port_free(EMULATOR_PORT) and port_free(EMULATOR_PORT - 1)):
        pytest.skip("ports 5554/5555 are taken on this machine")
    tp = start_twin("android-emulator-api34", port=EMULATOR_PORT)
    adb_server.wait_for("emulator-5554")
    listing = _out(adb_server.adb("devices", "-l"))
    line = next(ln for ln in listing.splitlines() if ln.startswith("emulator-5554"))
    assert "device" in line.split() and "model:sdk_gphone64_x86_64" in line

    token = adb_server.home / ".emulator_console_auth_token"
    assert token.is_file(), "the twin writes the console token like the emulator does"
    assert (
        _out(adb_server.adb("-s", "emulator-5554", "emu", "network", "delay", "gprs")).strip()
        == "OK"
    )
    status = _out(adb_server.adb("-s", "emulator-5554", "emu", "network", "status"))
    assert "minimum latency:  35 ms" in status and "maximum latency:  200 ms" in status
    assert (
        _out(adb_server.adb("-s", "emulator-5554", "emu", "avd", "name"))
        .strip()
        .startswith("android-emulator-api34")
    )

    # a wrong token: the emulator's KO line, and nothing changes
    good = token.read_text()
    token.write_text("not-the-token")
    try:
        out = _out(adb_server.adb("-s", "emulator-5554", "emu", "network", "delay", "edge"))
    finally:
        token.write_text(good)
    assert "KO: authentication token does not match ~/.emulator_console_auth_token" in out
    assert "minimum latency:  35 ms" in _out(
        adb_server.adb("-s", "emulator-5554", "emu", "network", "status")
    )
    settings = read_truth(tp.twins[0].truth, "console_network")
    assert [(e.get("min_delay_ms"), e.get("max_delay_ms")) for e in settings] == [(35, 200)]


def test_twin_on_another_port_after_adb_connect(adb_server, start_twin):
    tp = start_twin("android-tablet-api30")
    serial = f"127.0.0.1:{tp.port}"
    line = next(
        ln for ln in _out(adb_server.adb("devices", "-l")).splitlines() if ln.startswith(serial)
    )
    # adb devices -l shows '-' as '_' in banner values, as with real devices
    assert "model:SM_T500" in line and "product:gta4lwifixx" in line and "device:gta4lwifi" in line


def test_four_twins_at_once(adb_server, start_twin):
    tp = start_twin("android-emulator-api34", port=free_port_block(4), count=4)
    assert len(tp.twins) == 4
    states = adb_server.states()
    for twin in tp.twins:
        serial = f"127.0.0.1:{twin.port}"
        assert states.get(serial) == "device"
        d = adb_server.client().device(serial)
        assert d.shell(f"echo {twin.port}").strip() == str(twin.port)


@pytest.mark.parametrize("profile", sorted(load_profiles()))
def test_getprop_model_matches_profile(adb_server, start_twin, profile):
    tp = start_twin(profile)
    expected = load_profile(profile).model
    cp = adb_server.adb("-s", f"127.0.0.1:{tp.port}", "shell", "getprop", "ro.product.model")
    # Fire OS 3's adbd runs shell: under a PTY: the line ends in CRLF there, LF elsewhere
    ending = "\r\n" if load_profile(profile).api_level <= 20 else "\n"
    assert _out(cp) == expected + ending


def test_exit_codes_propagate_on_api34_not_on_api17(adb_server, start_twin):
    new = start_twin("android-emulator-api34")
    old = start_twin("fire-hdx-7-2013")
    for tp, propagates in ((new, True), (old, False)):
        s = f"127.0.0.1:{tp.port}"
        assert adb_server.adb("-s", s, "shell", "false").returncode == (1 if propagates else 0)
        assert adb_server.adb("-s", s, "shell", "exit 3").returncode == (3 if propagates else 0)
        nf = adb_server.adb("-s", s, "shell", "no_such_tool")
        assert nf.returncode == (127 if propagates else 0)
        assert b"/system/bin/sh: no_such_tool: not found" in nf.stdout + nf.stderr


@pytest.mark.parametrize(
    "profile,size", [("android-emulator-api34", 8 << 20), ("fire-hdx-7-2013", 1 << 20)]
)
def test_push_pull_byte_exact_with_cli_and_adbutils(
    adb_server, start_twin, tmp_path, profile, size
):
    tp = start_twin(profile)
    serial = f"127.0.0.1:{tp.port}"
    data = os.urandom(size)
    src = tmp_path / "random.bin"
    src.write_bytes(data)
    assert adb_server.adb("-s", serial, "push", str(src), "/sdcard/cli.bin").returncode == 0
    back = tmp_path / "back.bin"
    assert adb_server.adb("-s", serial, "pull", "/sdcard/cli.bin", str(back)).returncode == 0
    assert back.read_bytes() == data

    d = adb_server.client().device(serial)
    d.sync.push(src, "/data/local/tmp/lib.bin")
    assert d.sync.stat("/data/local/tmp/lib.bin").size == size
    assert d.sync.read_bytes("/data/local/tmp/lib.bin") == data
    assert "lib.bin" in d.sync.list("/data/local/tmp") or any(
        e.path == "lib.bin" for e in d.sync.list("/data/local/tmp")
    )


def test_screencap_png_decodes_at_profile_resolution(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    png = adb_server.adb("-s", f"127.0.0.1:{tp.port}", "exec-out", "screencap", "-p").stdout
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.shape[:2] == (800, 1280)


def test_api17_screencap_is_crlf_mangled_like_fire_os_3(adb_server, start_twin, tmp_path):
    tp = start_twin("fire-hdx-7-2013")
    serial = f"127.0.0.1:{tp.port}"
    assert adb_server.adb("-s", serial, "exec-out", "echo", "x").returncode != 0, (
        "API 17 has no exec:"
    )
    mangled = adb_server.adb("-s", serial, "shell", "screencap", "-p").stdout
    assert adb_server.adb("-s", serial, "shell", "screencap -p /sdcard/s.png").returncode == 0
    clean_path = tmp_path / "s.png"
    assert adb_server.adb("-s", serial, "pull", "/sdcard/s.png", str(clean_path)).returncode == 0
    clean = clean_path.read_bytes()
    img = cv2.imdecode(np.frombuffer(clean, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.shape[:2] == (1200, 1920)
    assert mangled != clean and mangled == clean.replace(b"\n", b"\r\n")
    assert cv2.imdecode(np.frombuffer(mangled, np.uint8), cv2.IMREAD_UNCHANGED) is None


def test_screenrecord_h264_stream_decodes_to_25_frames_in_2_s(adb_server, start_twin, tmp_path):
    tp = start_twin("android-emulator-api34")
    cp = adb_server.adb(
        "-s",
        f"127.0.0.1:{tp.port}",
        "exec-out",
        "screenrecord --output-format=h264 --time-limit 2 -",
        timeout_s=15,
    )
    stream = tmp_path / "rec.h264"
    stream.write_bytes(cp.stdout)
    with av.open(str(stream), format="h264") as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) >= 25
    assert (frames[0].width, frames[0].height) == (1280, 800)
    truth = read_truth(tp.twins[0].truth, "screenrecord_frame")
    assert len(truth) >= len(frames)


def test_screenrecord_absent_before_api19_and_stdout_before_api21(adb_server, start_twin):
    old = start_twin("fire-hdx-7-2013")
    kitkat = start_twin("fire-hdx-89-2014")
    out = _out(
        adb_server.adb(
            "-s", f"127.0.0.1:{old.port}", "shell", "screenrecord --time-limit 1 /sdcard/a.mp4"
        )
    )
    assert "screenrecord: not found" in out
    out = _out(
        adb_server.adb(
            "-s", f"127.0.0.1:{kitkat.port}", "shell", "screenrecord --output-format=h264 -"
        )
    )
    assert "Unknown format" in out


def test_api17_twin_rejects_unknown_key_until_accepted(adb_server, tmp_path):
    state = tmp_path / "hdx"
    tp = TwinProcess("fire-hdx-7-2013", adb=adb_server, accept_new_keys=False, state_dir=state)
    try:
        tp.start()
        serial = f"127.0.0.1:{tp.port}"
        assert adb_server.states()[serial] == "unauthorized"
        assert adb_server.adb("-s", serial, "shell", "echo hi").returncode != 0
        kinds = [e["event"] for e in read_truth(tp.twins[0].truth)]
        assert "auth_rejected_signature" in kinds and "auth_key_offered" in kinds
        assert tp.client().accept_keys() == 1
        adb_server.wait_for(serial, "device")
        assert _out(adb_server.adb("-s", serial, "shell", "echo hi")) == "hi\r\n"
    finally:
        tp.stop()
    # the key is remembered: the same tablet reconnects without asking
    again = TwinProcess(
        "fire-hdx-7-2013", adb=adb_server, accept_new_keys=False, state_dir=state, port=tp.port
    )
    try:
        again.start()
        assert adb_server.states()[f"127.0.0.1:{again.port}"] == "device"
        assert "auth_accepted" in [e["event"] for e in read_truth(again.twins[0].truth)]
    finally:
        again.stop()
