"""A connected support session: a twin, the AgentBot, the session driver."""

from __future__ import annotations

import pytest

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.session import SessionDriver
from harness.session.agent import AiortcAgentBot


class Live:
    def __init__(self, tp, device, ui, driver, bot, connect):
        self.tp, self.device, self.ui, self.driver, self.bot, self.connect = tp, device, ui, driver, bot, connect


@pytest.fixture
def live(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    info = tp.control("backend", answer_s=0.5)
    bot = AiortcAgentBot(tuple(info["address"]), device=tp.twins[0].serial)
    bot.start()
    try:
        dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
        ui = Ui.for_device(dev, prefer_u2=False)
        drv = SessionDriver(dev, ui)
        result = drv.connect(timeout_s=20)
        bot.wait_connected(15)
        yield Live(tp, dev, ui, drv, bot, result)
    finally:
        bot.stop()
