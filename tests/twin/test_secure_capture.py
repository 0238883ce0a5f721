"""A FLAG_SECURE app's window is black in every capture of the twin, as on Android (screencap,
the framebuffer service, screenrecord), through the real adb server; the status bar stays, and
the app shows again once the flag is off."""

from __future__ import annotations

import av
import cv2
import numpy as np

from harness.twin.truth import read_truth

TEXT_APP = "com.mayday.hil.text"
STATUS_H = 40  # the twin's status bar on a 1280x800 screen: 2 grid units of 800 / 40
# screenrecord's H.264 black decodes to a uniform level up to 16 (video range: luma 16 is black)
RECORD_BLACK = 16


def _screencap(adb_server, serial: str) -> np.ndarray:
    cp = adb_server.adb("-s", serial, "exec-out", "screencap", "-p", timeout_s=15)
    img = cv2.imdecode(np.frombuffer(cp.stdout, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (800, 1280), cp.stderr
    return img


def _framebuffer(adb_server, serial: str) -> np.ndarray:
    import adbutils

    pil = adbutils.AdbClient(host="127.0.0.1", port=adb_server.port).device(serial).framebuffer()
    return cv2.cvtColor(np.asarray(pil.convert("RGB")), cv2.COLOR_RGB2BGR)


def _screenrecord(adb_server, serial: str, tmp_path) -> list[np.ndarray]:
    cp = adb_server.adb(
        "-s", serial, "exec-out", "screenrecord --output-format=h264 --time-limit 1 -", timeout_s=15
    )
    path = tmp_path / "rec.h264"
    path.write_bytes(cp.stdout)
    with av.open(str(path), format="h264") as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def _ink(img: np.ndarray) -> float:
    """Share of the app's area (below the status bar) that is dark text on the light page."""
    gray = cv2.cvtColor(img[STATUS_H:], cv2.COLOR_BGR2GRAY)
    return float((gray < 100).mean())


def test_a_secure_app_is_black_in_screencap_framebuffer_and_screenrecord(
    adb_server, start_twin, tmp_path
):
    tp = start_twin("android-emulator-api34")
    serial = f"127.0.0.1:{tp.port}"
    out = adb_server.adb("-s", serial, "shell", f"am start -n {TEXT_APP}/.MainActivity").stdout
    assert b"Error" not in out, out
    shown = _screencap(adb_server, serial)
    assert 0.005 < _ink(shown) < 0.2  # the text screen: light page, dark text
    assert int(cv2.cvtColor(shown[STATUS_H:], cv2.COLOR_BGR2GRAY).max()) > 200

    tp.control("secure", package=TEXT_APP, on=True)
    for name, img in (
        ("screencap", _screencap(adb_server, serial)),
        ("framebuffer", _framebuffer(adb_server, serial)),
    ):
        assert img.shape[:2] == (800, 1280), name
        assert int(img[STATUS_H:].max()) == 0, f"{name}: the secure window is not black"
        assert float(img[:STATUS_H].mean()) > 10, f"{name}: the status bar went black too"
    frames = _screenrecord(adb_server, serial, tmp_path)
    assert len(frames) >= 10
    for f in frames:
        gray = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
        app = gray[STATUS_H + 8 :]
        # no page leaks (the Text app's page is > 200): the encoder's black may block a few levels
        assert (
            float(np.percentile(app, 99.9)) <= RECORD_BLACK and int(app.max()) <= 2 * RECORD_BLACK
        )
        assert float(gray[: STATUS_H - 8].mean()) > 10
    assert [e["on"] for e in read_truth(tp.twins[0].truth, "secure_window")] == [True]

    tp.control("secure", package=TEXT_APP, on=False)
    again = _screencap(adb_server, serial)
    assert np.array_equal(again[STATUS_H:], shown[STATUS_H:])  # the same page, shown again
