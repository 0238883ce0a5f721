"""Dual view: one lab camera films the tablet and the agent's monitor; the latency is the
difference of the two codes in each picture, no clock sync. Against the twin's ground truth."""

from __future__ import annotations

import time

import pytest

from harness.device.adb import Device
from harness.device.frames import CameraSource
from harness.device.ui import Ui
from harness.errors import MeasurementError
from harness.session import SessionDriver
from harness.session.agent import AiortcAgentBot
from harness.twin.truth import times_after
from harness.vision.latency import dual_view_latency
from harness.vision.locator import read_all


@pytest.fixture
def filmed(adb_server, start_twin):
    tp = start_twin("android-emulator-api34", extra_args=("--camera",))
    info = tp.twins[0]
    backend = tp.client().backend(answer_s=0.5)
    bot = AiortcAgentBot(
        backend.address,
        device=info.serial,
        display_url=f"{info.camera}/agent_display",
        http=backend.http,
        token=backend.token,
    )
    bot.start()
    try:
        dev = Device(f"127.0.0.1:{info.port}", port=adb_server.port)
        drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
        drv.connect(timeout_s=20)
        bot.wait_connected(15)
        yield tp, bot, info
    finally:
        bot.stop()


def test_dual_view_latency_within_one_camera_frame_of_the_truth(filmed):
    """Camera frames showing the agent's monitor and the tablet; per agent frame the tablet
    showed, the latency from the two codes, checked against the twin's and the bot's truth."""
    tp, bot, info = filmed
    time.sleep(1.0)
    shots = []

    def on_frame(f) -> bool:
        shots.append((f.t_arrival, read_all(f.image, expect=2)))
        return len(shots) >= 300

    cam = CameraSource(f"{info.camera}/stream.mjpg")
    cam.run(on_frame, 45.0)
    assert cam.error is None, cam.error
    time.sleep(0.5)  # the last frames' truth lines are written just after they are shown
    result = dual_view_latency(shots, sender="right")
    sent = dict(bot.session.sent)
    shown = times_after(info.truth, "agent_frame_shown", sent)  # the newest pass
    assert result.captures >= 300 and len(result.samples) >= 60, (
        len(result.samples),
        result.captures,
    )
    camera_frame_s = 1 / 30
    checked = 0
    for s in result.samples:
        if (
            s.frame_no not in shown
        ):  # the twin could not read that frame's code itself (codec damage)
            continue
        true = shown[s.frame_no] - sent[s.frame_no]
        assert s.lower_s - camera_frame_s <= true <= s.upper_s + camera_frame_s, (s, true)
        checked += 1
    assert checked >= 0.95 * len(result.samples)


def test_wrong_camera_url_is_one_clear_error_within_its_bound():
    cam = CameraSource("http://127.0.0.1:9/stream.mjpg", open_timeout_s=2.0)
    t0 = time.monotonic()
    cam.run(lambda f: True, 5.0)
    assert isinstance(cam.error, MeasurementError) and "cannot open" in str(cam.error)
    assert time.monotonic() - t0 < 6.0


def test_a_stalled_camera_is_one_clear_error_within_its_bound():
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    held = []

    def accept_then_stall() -> None:
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=x\r\n\r\n"
        )
        held.append(conn)  # ... and never a frame

    t = threading.Thread(target=accept_then_stall, daemon=True)
    t.start()
    try:
        cam = CameraSource(
            f"http://127.0.0.1:{port}/stream.mjpg", open_timeout_s=2.0, read_timeout_s=2.0
        )
        t0 = time.monotonic()
        cam.run(lambda f: True, 10.0)
        assert isinstance(cam.error, MeasurementError)
        assert "cannot open" in str(cam.error) or "no frame within 2 s" in str(cam.error)
        assert time.monotonic() - t0 < 8.0
    finally:
        for c in held:
            c.close()
        srv.close()
