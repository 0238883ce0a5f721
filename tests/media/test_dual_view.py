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
from harness.twin.truth import read_truth
from harness.vision.latency import dual_view_latency
from harness.vision.locator import read_all


@pytest.fixture
def filmed(adb_server, start_twin):
    tp = start_twin("android-emulator-api34", extra_args=("--camera",))
    info = tp.twins[0]
    backend = tuple(tp.control("backend", answer_s=0.5)["address"])
    bot = AiortcAgentBot(backend, device=info.serial, display_url=f"{info.camera}/agent_display")
    bot.start()
    try:
        dev = Device(f"127.0.0.1:{info.port}", port=adb_server.port)
        drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
        drv.connect(timeout_s=20)
        bot.wait_connected(15)
        yield tp, bot, info
    finally:
        bot.stop()


def test_the_lab_camera_films_both_displays_and_dual_view_reads_them(filmed):
    """The camera stream (read with cv2.VideoCapture) shows the tablet and the agent's monitor,
    and dual view gets a latency sample per agent frame the tablet showed. (Its accuracy is not
    proven here yet: the simulated monitor lags its codes by a varying amount under load.)"""
    tp, bot, info = filmed
    time.sleep(1.0)
    shots = []

    def on_frame(f) -> bool:
        shots.append((f.t_arrival, read_all(f.image, expect=2)))
        return len(shots) >= 60

    cam = CameraSource(f"{info.camera}/stream.mjpg")
    cam.run(on_frame, 20.0)
    assert cam.error is None, cam.error
    assert sum(1 for _, reads in shots if sum(r.ok for r in reads) == 2) >= 30
    result = dual_view_latency(shots, sender="right")
    assert len(result.samples) >= 5
    frames = read_truth(info.truth, "camera_frame")
    assert len(frames) >= 60 and any(f["agent_display_frame"] for f in frames)


def test_wrong_camera_url_is_one_clear_error_within_its_bound():
    cam = CameraSource("http://127.0.0.1:9/stream.mjpg", open_timeout_s=2.0)
    t0 = time.monotonic()
    cam.run(lambda f: True, 5.0)
    assert isinstance(cam.error, MeasurementError) and "cannot open" in str(cam.error)
    assert time.monotonic() - t0 < 6.0
