"""The session driver: press the support button and measure connect time with vision.

Connect time runs from the host time just before the tap is sent to the first captured frame
whose agent pane carries a valid timecode (the agent's video, decoded with
harness.vision.timecode: a frame is read right or not at all). The true instant lies between
the previous frame's request and this frame's arrival: that interval is the uncertainty.
Queue wait runs from the tap to the first frame whose pane has left the "in line" state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from harness.device.adb import Device
from harness.device.frames import Frame, PollingSource
from harness.device.ui import Element, Ui
from harness.errors import SessionError, UiError
from harness.vision.timecode import decode_fast, feed_layout

log = logging.getLogger(__name__)

MAYDAY_DESC = "Mayday live support"
AGENT_VIDEO_DESC = "agent video"
END_DESC = "End session"
CONNECT_TIMEOUT_S = 60.0
UI_TIMEOUT_S = 10.0
PANE_TIMEOUT_S = 10.0
UI_CHECK_PERIOD_S = 1.0
POLL_INTERVAL_S = 0.05
# pane colours while waiting (BGR), as the support app shows them
QUEUED_BGR = (0, 176, 255)
ASSIGNED_BGR = (90, 170, 0)
_COLOUR_TOL = 40.0


class SessionRefused(SessionError):
    """The device showed a message instead of a session (closed, unregistered, no Wi-Fi...)."""

    def __init__(self, device: str, message: str):
        self.message = message
        super().__init__(f"[{device}] support refused with the message on screen: {message!r}")


@dataclass
class ConnectResult:
    t_tap: float
    connect_time_s: float
    uncertainty_s: float
    queue_wait_s: float | None
    queue_uncertainty_s: float | None
    agent_frame_no: int
    frame_index: int
    frames: int
    source: str
    frame: np.ndarray | None = field(default=None, repr=False)
    mean_interval_s: float = 0.0


@dataclass(frozen=True)
class Recovery:
    drop_s: float
    recovery_s: float
    uncertainty_s: float
    t_wifi_on: float
    frozen_frame: int


class SessionDriver:
    def __init__(
        self,
        device: Device,
        ui: Ui,
        poll_interval_s: float = POLL_INTERVAL_S,
        capture_method: str | None = None,
    ):
        self.device = device
        self.ui = ui
        self.poll_interval_s = poll_interval_s
        self.capture_method = capture_method

    # --- steps
    def open_quick_settings(self, timeout_s: float = UI_TIMEOUT_S) -> Element:
        """Swipe down from the top edge until the Mayday button shows (two tries, bounded)."""
        w, h = self._screen_size()
        for attempt in (1, 2):
            self.ui.swipe(w / 2, 1, w / 2, h * 0.6, 300)
            try:
                return self.ui.wait_for(description=MAYDAY_DESC, timeout_s=timeout_s / 2)
            except UiError:
                if attempt == 2:
                    raise UiError(
                        self.device.serial,
                        f"no Mayday button in quick settings within {timeout_s:g} s",
                    ) from None
                self.device.retries.record(
                    "open-quick-settings", attempt, "Mayday button not shown"
                )
        raise AssertionError("unreachable")

    def _screen_size(self) -> tuple[int, int]:
        root = self.ui.elements()[0]
        return root.bounds[2], root.bounds[3]

    def press_mayday(self, button: Element) -> tuple[float, float]:
        """Tap the button with `input tap` (a ~2 ms shell round trip on every API level, where a
        uiautomator2 click costs ~100 ms of HTTP over adb). Returns the host times just before
        the tap was sent and when the device had acted on it."""
        x, y = button.center
        t0 = time.monotonic()
        self.device.shell(f"input tap {int(x)} {int(y)}", check=True)
        return t0, time.monotonic()

    def wait_for_pane(self, timeout_s: float = PANE_TIMEOUT_S) -> Element:
        """The session pane's video area, or SessionRefused with the message shown instead."""
        deadline = time.monotonic() + timeout_s
        while True:
            elements = self.ui.elements()
            message = _message_of(elements)
            if message is not None:
                raise SessionRefused(self.device.serial, message)
            pane = next((e for e in elements if e.description == AGENT_VIDEO_DESC), None)
            if pane is not None:
                return pane
            if time.monotonic() >= deadline:
                raise SessionError(
                    f"[{self.device.serial}] no session pane and no message within {timeout_s:g} s after the tap"
                )
            time.sleep(0.1)

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> ConnectResult:
        """Open quick settings, press Mayday, measure until the agent's video is on screen.

        Raises:
            SessionRefused: a message instead of a session (the text is in .message).
            SessionError: the agent did not appear within timeout_s, or capture failed.
        """
        self.reset()
        button = self.open_quick_settings()
        t_tap, t_acted = self.press_mayday(button)
        tap_s = t_acted - t_tap
        pane = self.wait_for_pane()
        return self.wait_for_agent(t_tap, pane, timeout_s, tap_s)

    def wait_for_agent(
        self, t_tap: float, pane: Element, timeout_s: float = CONNECT_TIMEOUT_S, tap_s: float = 0.0
    ) -> ConnectResult:
        """Poll frames until the pane shows the agent's timecoded video.

        Args:
            t_tap: host time just before the tap was sent.
            pane: the agent video element (its bounds locate the code).
            tap_s: how long the tap call took (the device acted within it): added to the
                uncertainty of both figures.
        """
        x1, y1, x2, y2 = pane.bounds
        layout = feed_layout(x2 - x1, y2 - y1)
        probe = (slice(y1 + (y2 - y1) // 2, y2 - 2), slice(x1 + (x2 - x1) // 2, x2 - 2))
        state: dict = {
            "prev_req": t_tap,
            "left_queue": None,
            "queue_unc": None,
            "hit": None,
            "last_ui": time.monotonic(),
            "message": None,
            "intervals": [],
        }

        def on_frame(f: Frame) -> bool:
            crop = f.image[y1:y2, x1:x2]
            read = decode_fast(crop, layout)
            colour = _classify(f.image[probe])
            if state["left_queue"] is None and (read.ok or colour == "assigned"):
                state["left_queue"] = f.t_arrival
                state["queue_unc"] = f.t_arrival - state["prev_req"]
            state["intervals"].append(f.t_arrival - state["prev_req"])
            if read.ok:
                state["hit"] = (f, read, f.t_arrival - state["prev_req"])
                return True
            state["prev_req"] = f.t_request
            if time.monotonic() - state["last_ui"] >= UI_CHECK_PERIOD_S:
                state["last_ui"] = time.monotonic()
                message = _message_of(self.ui.elements())
                if message is not None:
                    state["message"] = message
                    return True
            if self.poll_interval_s:
                time.sleep(self.poll_interval_s)
            return False

        source = PollingSource(self.device, self.capture_method)
        remaining = timeout_s - (time.monotonic() - t_tap)
        source.run(on_frame, max(0.0, remaining))
        if state["message"] is not None:
            raise SessionRefused(self.device.serial, state["message"])
        if source.error is not None:
            raise SessionError(
                f"[{self.device.serial}] frame capture ({source.method}) failed: {source.error}"
            )
        if state["hit"] is None:
            raise SessionError(
                f"[{self.device.serial}] the agent did not appear within {timeout_s:g} s of the tap "
                f"({source.frames} frames captured by {source.method})"
            )
        frame, read, unc = state["hit"]
        return ConnectResult(
            t_tap=t_tap,
            connect_time_s=frame.t_arrival - t_tap,
            uncertainty_s=unc + tap_s,
            queue_wait_s=(state["left_queue"] - t_tap) if state["left_queue"] else None,
            queue_uncertainty_s=(state["queue_unc"] + tap_s)
            if state["queue_unc"] is not None
            else None,
            agent_frame_no=read.frame_no,
            frame_index=frame.index,
            frames=source.frames,
            source=source.method,
            frame=frame.image,
            mean_interval_s=float(np.mean(state["intervals"])) if state["intervals"] else 0.0,
        )

    def wifi_recovery(self, drop_s: float, timeout_s: float = 20.0) -> Recovery:
        """Drop the Wi-Fi (`svc wifi disable`) for drop_s mid-session and measure how long after
        it comes back the agent's video moves again (a newer timecode in the pane).

        Raises:
            SessionRefused: the session ended with a message instead (the text is in .message).
            SessionError: the video never moved again within timeout_s.
        """
        pane = self.ui.wait_for(description=AGENT_VIDEO_DESC, timeout_s=UI_TIMEOUT_S)
        x1, y1, x2, y2 = pane.bounds
        layout = feed_layout(x2 - x1, y2 - y1)
        last = {"frame_no": -1}

        def newest(f: Frame) -> bool:
            read = decode_fast(f.image[y1:y2, x1:x2], layout)
            if read.ok:
                last["frame_no"] = max(last["frame_no"], read.frame_no)
            return False

        self.device.shell("svc wifi disable", check=True)
        t_off = time.monotonic()
        PollingSource(self.device, self.capture_method).run(
            newest, drop_s
        )  # the frozen picture's last code
        t_on = time.monotonic()
        self.device.shell("svc wifi enable", check=True)
        t_acted = time.monotonic()
        frozen = last["frame_no"]
        state: dict = {"prev": t_on, "hit": None, "message": None, "last_ui": t_on}

        def moving(f: Frame) -> bool:
            read = decode_fast(f.image[y1:y2, x1:x2], layout)
            if read.ok and read.frame_no > frozen:
                state["hit"] = (f.t_arrival, f.t_arrival - state["prev"])
                return True
            state["prev"] = f.t_request
            if time.monotonic() - state["last_ui"] >= UI_CHECK_PERIOD_S:
                state["last_ui"] = time.monotonic()
                state["message"] = _message_of(self.ui.elements())
                return state["message"] is not None
            time.sleep(self.poll_interval_s)
            return False

        source = PollingSource(self.device, self.capture_method)
        source.run(moving, timeout_s)
        if state["message"] is not None:
            raise SessionRefused(self.device.serial, state["message"])
        if state["hit"] is None:
            raise SessionError(
                f"[{self.device.serial}] the agent's video did not move within {timeout_s:g} s "
                f"of the Wi-Fi coming back (frozen at frame {frozen})"
                + (f"; capture failed: {source.error}" if source.error else "")
            )
        t_hit, unc = state["hit"]
        return Recovery(
            drop_s=t_on - t_off,
            recovery_s=t_hit - t_on,
            uncertainty_s=unc + (t_acted - t_on),
            t_wifi_on=t_on,
            frozen_frame=frozen,
        )

    def end(self, timeout_s: float = UI_TIMEOUT_S) -> None:
        """Tap End and wait until the pane is gone (bounded)."""
        self.ui.tap_on(description=END_DESC, timeout_s=timeout_s)
        self.ui.wait_gone(description=AGENT_VIDEO_DESC, timeout_s=timeout_s)

    def reset(self) -> None:
        """A known start: no leftover message (tap its OK), no leftover session (End), home."""
        elements = self.ui.elements()
        if _message_of(elements) is not None:
            ok = next((e for e in elements if e.text == "OK"), None)
            if ok is not None:
                self.ui.tap(ok)
                self.device.retries.record(
                    "reset-dismiss-message", 1, "a message was left on screen"
                )
        if any(e.description == END_DESC for e in self.ui.elements()):
            self.end()
            self.device.retries.record("reset-end-session", 1, "a session was left open")
        self.device.shell("input keyevent 3", check=True)  # HOME

    def dismiss_message(self, timeout_s: float = UI_TIMEOUT_S) -> None:
        self.ui.tap_on(text="OK", timeout_s=timeout_s)


def _message_of(elements: list[Element]) -> str | None:
    return next(
        (e.text for e in elements if e.resource_id.endswith(":id/message") and e.text), None
    )


def _classify(region: np.ndarray) -> str | None:
    if region.size == 0:
        return None
    mean = region.reshape(-1, 3).mean(axis=0)
    for name, ref in (("queued", QUEUED_BGR), ("assigned", ASSIGNED_BGR)):
        if float(np.abs(mean - np.array(ref)).max()) <= _COLOUR_TOL:
            return name
    return None
