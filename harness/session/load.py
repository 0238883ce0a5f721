"""Many customers at once: the busiest-day load, each press timed by its own session driver."""

from __future__ import annotations

import threading
import time

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.errors import SessionError
from harness.session.driver import ConnectResult, SessionDriver

LOAD_JOIN_TIMEOUT_S = 180.0


def busiest_day(
    serials: list[str],
    adb_port: int,
    *,
    stagger_s: float = 0.1,
    hold_s: float = 2.0,
    poll_interval_s: float = 0.2,
    timeout_s: float = 60.0,
) -> dict[str, ConnectResult]:
    """Customers on `serials` press the support button `stagger_s` apart (after all have support open),
    each keeps the agent `hold_s`, then ends. Returns each device's connect result (queue wait
    included).

    Raises:
        The first customer's error (SessionError, UiError...); every thread is joined (bounded).
    """
    results: dict[str, ConnectResult] = {}
    errors: list[Exception] = []

    def customer(serial: str, delay: float) -> None:
        try:
            dev = Device(serial, port=adb_port)
            drv = SessionDriver(
                dev, Ui.for_device(dev, prefer_u2=False), poll_interval_s=poll_interval_s
            )
            button = drv.open_support()
            time.sleep(delay)
            t_tap, t_acted = drv.press_support(button)
            results[serial] = drv.wait_for_agent(
                t_tap, drv.wait_for_pane(), timeout_s, t_acted - t_tap
            )
            time.sleep(hold_s)
            drv.end()
        except Exception as e:  # noqa: BLE001 -- re-raised by the caller's thread
            errors.append(e)

    threads = [
        threading.Thread(target=customer, args=(s, i * stagger_s), daemon=True)
        for i, s in enumerate(serials)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + LOAD_JOIN_TIMEOUT_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise SessionError(
            f"busiest-day load: customers still running after {LOAD_JOIN_TIMEOUT_S:g} s"
        )
    return results
