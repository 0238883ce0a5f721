"""The session driver: open support, press the button, measure connect time with vision.

What the support feature looks like comes from an AppProfile (device_profiles/apps/*.yaml):
how support is opened, the selectors of every element in the device's locale, the waiting
states, the messages. Nothing here names a product.

Connect time runs from the host time just before the tap is sent to the first captured frame
whose agent pane shows the agent: in `timecode` mode, a valid timecode (our agent's video,
decoded with harness.vision.timecode: read right or not at all); in `onset` mode (any agent,
a human included), the onset of live video (harness.vision.onset). The true instant lies
between the previous frame's request and this frame's arrival: that interval is the
uncertainty (plus the onset detector's stated latency in onset mode). Queue wait runs from the
tap to the first frame whose pane has left the "in line" state.

Size: one driver of one flow (open, press, wait, end) over an app profile; its states share the loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from harness.device.adb import Device
from harness.device.frames import Frame, PollingSource
from harness.device.ui import Element, Selector, Ui, select
from harness.errors import SessionError, UiError
from harness.profiles.app import DEFAULT_APP, AppProfile, load_app_profile
from harness.vision.onset import OnsetDetector
from harness.vision.timecode import decode_fast, feed_layout

log = logging.getLogger(__name__)

# the default app profile's pane description, for callers written before app profiles
AGENT_VIDEO_DESC = "agent video"
CONNECT_MODES = ("timecode", "onset")
# onset mode: the fade-in assumed of an agent's picture the harness does not control (a camera
# that opens with a fade); the detector's stated latency is 0.4 of it (harness.vision.onset)
ONSET_FADE_IN_S = 1.0
CONNECT_TIMEOUT_S = 60.0
UI_TIMEOUT_S = 10.0
PANE_TIMEOUT_S = 10.0
UI_CHECK_PERIOD_S = 1.0
POLL_INTERVAL_S = 0.05
LOCALE_PROPS = ("persist.sys.locale", "ro.product.locale")


class SessionRefused(SessionError):
    """The device showed a message instead of a session (closed, unregistered, no Wi-Fi...).

    .message is the text on screen; .kind the app profile's name for it (unregistered,
    closed, ...) or None when the profile does not know the text."""

    def __init__(self, device: str, message: str, kind: str | None = None):
        self.message = message
        self.kind = kind
        super().__init__(
            f"[{device}] support refused with the message on screen: {message!r}"
            + (f" ({kind})" if kind else "")
        )


class SelectorNotFound(UiError):
    """An element of the app profile was not on screen: the profile does not fit the app.

    .selector names it, .dump holds the UI hierarchy that was searched (for the report)."""

    def __init__(self, device: str, app: str, selector: str, when: str, dump: str):
        self.selector = selector
        self.app = app
        self.dump = dump
        super().__init__(
            device, f"app profile {app!r}: selector {selector} not found {when} (UI dump attached)"
        )


def device_locale(device: Device, timeout_s: float = 5.0) -> str:
    """The device's UI locale ("de-DE"), from its getprops; "" when it reports none."""
    props = device.getprops(timeout_s=timeout_s)
    for key in LOCALE_PROPS:
        if props.get(key, "").strip():
            return props[key].strip()
    lang, country = props.get("persist.sys.language", ""), props.get("persist.sys.country", "")
    return f"{lang}-{country}" if lang and country else lang


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
    mode: str = "timecode"  # how the agent was recognised: timecode or onset
    detector_latency_s: float = 0.0  # onset mode: the detector's stated latency (in uncertainty_s)


@dataclass(frozen=True)
class Recovery:
    drop_s: float
    recovery_s: float
    uncertainty_s: float
    t_wifi_on: float
    frozen_frame: int


class SessionDriver:
    """Drives one device's support feature as its AppProfile describes it."""

    def __init__(
        self,
        device: Device,
        ui: Ui,
        poll_interval_s: float = POLL_INTERVAL_S,
        capture_method: str | None = None,
        app: AppProfile | None = None,
        locale: str | None = None,
        mode: str = "timecode",
        fade_in_s: float = ONSET_FADE_IN_S,
    ):
        """Args:
        app: the app profile (default: the default app profile).
        locale: the UI locale ("de-DE"); default: the device's (getprop), else the profile's.
        mode: how the agent is recognised: "timecode" (our agent) or "onset" (any agent).
        fade_in_s: onset mode: the longest fade-in expected of the agent's picture (the
            detector's stated latency, in every connect time's uncertainty, grows with it).
        """
        if mode not in CONNECT_MODES:
            raise ValueError(f"connect mode {mode!r}: use {', '.join(CONNECT_MODES)}")
        self.device = device
        self.ui = ui
        self.poll_interval_s = poll_interval_s
        self.capture_method = capture_method
        self.app = app or load_app_profile(DEFAULT_APP)
        self.mode = mode
        self.fade_in_s = fade_in_s
        self._locale = locale

    @property
    def locale(self) -> str:
        if self._locale is None:
            try:
                self._locale = device_locale(self.device) or self.app.default_locale
            except Exception as e:  # noqa: BLE001 -- a device without getprop answers: the profile's default
                log.info("%s: locale unknown (%s)", self.device.serial, e)
                self._locale = self.app.default_locale
        return self._locale

    # --- selectors
    def selector(self, name: str) -> Selector:
        """The app profile's selector `name` in this device's locale."""
        return Selector(**self.app.selector(name).resolve(self.locale))

    def _describe(self, name: str) -> str:
        return self.app.selector(name).describe(self.locale)

    def find(self, name: str, xml: str | None = None) -> Element | None:
        """The element `name` of the app profile now on screen (or in the dump xml), or None."""
        xml = self.ui.dump() if xml is None else xml
        return next(iter(select(xml, self.selector(name))), None)

    def wait_for(self, name: str, timeout_s: float = UI_TIMEOUT_S, when: str = "") -> Element:
        """Wait for the element `name`. Raises SelectorNotFound naming it, with the UI dump."""
        try:
            return self.ui.wait_for(selector=self.selector(name), timeout_s=timeout_s)
        except UiError:
            raise SelectorNotFound(
                self.device.serial,
                self.app.name,
                self._describe(name),
                when or f"within {timeout_s:g} s",
                self.ui.last_dump,
            ) from None

    def pane(self, timeout_s: float = UI_TIMEOUT_S) -> Element:
        """The agent video element of a running session."""
        return self.wait_for("agent_video", timeout_s)

    # --- steps
    def open_support(self, timeout_s: float = UI_TIMEOUT_S) -> Element:
        """Open the support feature as the profile says and return its button (bounded).

        quick_settings: swipe down from the top edge (two tries); launcher: HOME, tap the app's
        icon; intent: `am start` with the profile's action/component/extras.

        Raises:
            SelectorNotFound: the icon or the button never showed (names the selector).
        """
        how = self.app.open.method
        if how == "quick_settings":
            w, h = self._screen_size()
            for attempt in (1, 2):
                self.ui.swipe(w / 2, 1, w / 2, h * 0.6, 300)
                try:
                    return self.wait_for(
                        "support_button",
                        timeout_s / 2,
                        f"in quick settings within {timeout_s:g} s",
                    )
                except SelectorNotFound:
                    if attempt == 2:
                        raise
                    self.device.retries.record(
                        "open-quick-settings", attempt, "support button not shown"
                    )
        if how == "launcher":
            self.device.shell("input keyevent 3", check=True)  # HOME
            icon_sel = Selector(**self.app.open.icon.resolve(self.locale))
            try:
                icon = self.ui.wait_for(selector=icon_sel, timeout_s=timeout_s / 2)
            except UiError:
                raise SelectorNotFound(
                    self.device.serial,
                    self.app.name,
                    self.app.open.icon.describe(self.locale),
                    f"on the home screen within {timeout_s / 2:g} s",
                    self.ui.last_dump,
                ) from None
            self.ui.tap(icon)
            return self.wait_for(
                "support_button", timeout_s / 2, f"in the app within {timeout_s / 2:g} s"
            )
        if how == "intent":
            import shlex

            cmd = " ".join(shlex.quote(a) for a in self.app.open.am_start_args())
            self.device.shell(cmd, timeout_s=timeout_s, check=True)
            return self.wait_for(
                "support_button", timeout_s, f"after `{cmd}` within {timeout_s:g} s"
            )
        raise AssertionError(f"unknown open method {how!r}")

    def open_quick_settings(self, timeout_s: float = UI_TIMEOUT_S) -> Element:
        """Kept for callers written before app profiles: open_support()."""
        return self.open_support(timeout_s)

    def _screen_size(self) -> tuple[int, int]:
        root = self.ui.elements()[0]
        return root.bounds[2], root.bounds[3]

    def press_support(self, button: Element) -> tuple[float, float]:
        """Tap the button with `input tap` (a ~2 ms shell round trip on every API level, where a
        uiautomator2 click costs ~100 ms of HTTP over adb). Returns the host times just before
        the tap was sent and when the device had acted on it."""
        x, y = button.center
        t0 = time.monotonic()
        self.device.shell(f"input tap {int(x)} {int(y)}", check=True)
        return t0, time.monotonic()

    def message_of(self, xml: str) -> str | None:
        """The message shown in the dump xml (the profile's `message` element), if any."""
        hit = next((e for e in select(xml, self.selector("message")) if e.text), None)
        return hit.text if hit is not None else None

    def _refused(self, message: str) -> SessionRefused:
        return SessionRefused(
            self.device.serial, message, self.app.message_kind(message, self.locale)
        )

    def wait_for_pane(self, timeout_s: float = PANE_TIMEOUT_S) -> Element:
        """The session pane's video area, or SessionRefused with the message shown instead."""
        deadline = time.monotonic() + timeout_s
        sel = self.selector("agent_video")
        while True:
            xml = self.ui.dump()
            message = self.message_of(xml)
            if message is not None:
                raise self._refused(message)
            pane = next(iter(select(xml, sel)), None)
            if pane is not None:
                return pane
            if time.monotonic() >= deadline:
                raise SelectorNotFound(
                    self.device.serial,
                    self.app.name,
                    self._describe("agent_video"),
                    f"(and no message) within {timeout_s:g} s after the tap",
                    xml,
                )
            time.sleep(0.1)

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> ConnectResult:
        """Open support, press the button, measure until the agent's video is on screen.

        Raises:
            SessionRefused: a message instead of a session (the text is in .message).
            SelectorNotFound: the app profile does not fit what is on screen.
            SessionError: the agent did not appear within timeout_s, or capture failed.
        """
        self.reset()
        button = self.open_support()
        t_tap, t_acted = self.press_support(button)
        tap_s = t_acted - t_tap
        pane = self.wait_for_pane()
        return self.wait_for_agent(t_tap, pane, timeout_s, tap_s, self.fade_in_s)

    def wait_for_agent(  # noqa: C901 -- the connect loop: one branch per state the app can show
        self,
        t_tap: float,
        pane: Element,
        timeout_s: float = CONNECT_TIMEOUT_S,
        tap_s: float = 0.0,
        fade_in_s: float = 0.0,
    ) -> ConnectResult:
        """Poll frames until the pane shows the agent (timecode or onset, as self.mode says).

        Args:
            t_tap: host time just before the tap was sent.
            pane: the agent video element (its bounds locate the code).
            tap_s: how long the tap call took (the device acted within it): added to the
                uncertainty of both figures.
            fade_in_s: onset mode: the longest fade-in expected of the agent's picture (the
                detector's stated latency grows with it; 0 for a cut).
        """
        x1, y1, x2, y2 = pane.bounds
        layout = feed_layout(x2 - x1, y2 - y1)
        probe = (slice(y1 + (y2 - y1) // 2, y2 - 2), slice(x1 + (x2 - x1) // 2, x2 - 2))
        onset = OnsetDetector() if self.mode == "onset" else None
        latency_s = OnsetDetector.stated_latency_s(fade_in_s) if onset else 0.0
        queued = self.app.waiting_state("queued")
        text_states = bool(self.app.waiting) and all(w.colour_rgb is None for w in self.app.waiting)
        state: dict = {
            "prev_req": t_tap,
            "left_queue": None,
            "queue_unc": None,
            "hit": None,
            "last_ui": time.monotonic(),
            "prev_ui": t_tap,
            "message": None,
            "intervals": [],
            "requests": {},
        }

        def left_queue(t: float, unc: float) -> None:
            if state["left_queue"] is None:
                state["left_queue"], state["queue_unc"] = t, unc

        def check_ui() -> bool:
            t_req = time.monotonic()
            xml = self.ui.dump()
            t_done = time.monotonic()
            message = self.message_of(xml)
            if message is not None:
                state["message"] = message
                return True
            if text_states and queued is not None and state["left_queue"] is None:
                texts = [e.text for e in select(xml, Selector(xpath=".//node")) if e.text]
                if not queued.matches_text(texts, self.locale):
                    left_queue(t_done, t_done - state["prev_ui"])
            state["prev_ui"] = t_req
            return False

        def on_frame(f: Frame) -> bool:
            crop = f.image[y1:y2, x1:x2]
            state["requests"][f.index] = state["prev_req"]
            if onset is not None:
                found = onset.update(crop, f.t_arrival)
                ok = found
                frame_no = -1
            else:
                read = decode_fast(crop, layout)
                ok, frame_no = read.ok, read.frame_no
            if not text_states:
                colour = self._classify(f.image[probe])
                if ok or colour == "assigned":
                    left_queue(f.t_arrival, f.t_arrival - state["prev_req"])
            state["intervals"].append(f.t_arrival - state["prev_req"])
            if ok:
                left_queue(f.t_arrival, f.t_arrival - state["prev_req"])
                state["hit"] = (f, frame_no, f.t_arrival - state["prev_req"])
                return True
            state["prev_req"] = f.t_request
            if time.monotonic() - state["last_ui"] >= UI_CHECK_PERIOD_S:
                state["last_ui"] = time.monotonic()
                if check_ui():
                    return True
            if self.poll_interval_s:
                time.sleep(self.poll_interval_s)
            return False

        source = PollingSource(self.device, self.capture_method)
        frames_by_index: dict[int, Frame] = {}
        if onset is not None:  # the onset is the first candidate frame, found a few frames later

            def keep(f: Frame) -> bool:
                frames_by_index[f.index] = f
                for old in [i for i in frames_by_index if i < f.index - 2 * onset.confirm]:
                    del frames_by_index[old]
                return on_frame(f)

            callback = keep
        else:
            callback = on_frame
        remaining = timeout_s - (time.monotonic() - t_tap)
        source.run(callback, max(0.0, remaining))
        if state["message"] is not None:
            raise self._refused(state["message"])
        if source.error is not None:
            raise SessionError(
                f"[{self.device.serial}] frame capture ({source.method}) failed: {source.error}"
            )
        if state["hit"] is None:
            raise SessionError(
                f"[{self.device.serial}] the agent did not appear within {timeout_s:g} s of the tap "
                f"({source.frames} frames captured by {source.method}, mode {self.mode})"
            )
        frame, frame_no, unc = state["hit"]
        if onset is not None and onset.onset is not None:
            first = frames_by_index.get(onset.onset.index)
            if first is not None:  # index within this source: the frame of the first candidate
                frame = first
                unc = first.t_arrival - state["requests"].get(first.index, t_tap)
        return ConnectResult(
            t_tap=t_tap,
            connect_time_s=frame.t_arrival - t_tap,
            uncertainty_s=unc + tap_s + latency_s,
            queue_wait_s=(state["left_queue"] - t_tap) if state["left_queue"] else None,
            queue_uncertainty_s=(state["queue_unc"] + tap_s)
            if state["queue_unc"] is not None
            else None,
            agent_frame_no=frame_no,
            frame_index=frame.index,
            frames=source.frames,
            source=source.method,
            frame=frame.image,
            mean_interval_s=float(np.mean(state["intervals"])) if state["intervals"] else 0.0,
            mode=self.mode,
            detector_latency_s=latency_s,
        )

    def _classify(self, region: np.ndarray) -> str | None:
        """The waiting state whose pane colour the region shows (frames are BGR), or None."""
        if region.size == 0:
            return None
        mean = region.reshape(-1, 3).mean(axis=0)
        for w in self.app.waiting:
            if w.colour_rgb is None:
                continue
            bgr = np.array(w.colour_rgb[::-1], np.float64)
            if float(np.abs(mean - bgr).max()) <= w.tolerance:
                return w.name
        return None

    def wifi_recovery(self, drop_s: float, timeout_s: float = 20.0) -> Recovery:
        """Drop the Wi-Fi (`svc wifi disable`) for drop_s mid-session and measure how long after
        it comes back the agent's video moves again (another timecode in the pane than the frozen
        picture's: an agent's numbers may start again, as the reference agents' loops do).

        Raises:
            SessionRefused: the session ended with a message instead (the text is in .message).
            SessionError: the video never moved again within timeout_s.
        """
        pane = self.pane()
        x1, y1, x2, y2 = pane.bounds
        layout = feed_layout(x2 - x1, y2 - y1)
        last = {"frame_no": -1}

        def newest(f: Frame) -> bool:
            read = decode_fast(f.image[y1:y2, x1:x2], layout)
            if read.ok:
                last["frame_no"] = read.frame_no  # the last read: the frozen picture's
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
            if read.ok and read.frame_no != frozen:
                state["hit"] = (f.t_arrival, f.t_arrival - state["prev"])
                return True
            state["prev"] = f.t_request
            if time.monotonic() - state["last_ui"] >= UI_CHECK_PERIOD_S:
                state["last_ui"] = time.monotonic()
                state["message"] = self.message_of(self.ui.dump())
                return state["message"] is not None
            time.sleep(self.poll_interval_s)
            return False

        source = PollingSource(self.device, self.capture_method)
        source.run(moving, timeout_s)
        if state["message"] is not None:
            raise self._refused(state["message"])
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
        """Tap the end button and wait until the pane is gone (bounded)."""
        self.ui.tap(self.wait_for("end_button", timeout_s))
        self.ui.wait_gone(selector=self.selector("agent_video"), timeout_s=timeout_s)

    def reset(self) -> None:
        """A known start: no leftover message (tap its OK), no leftover session (end), home."""
        xml = self.ui.dump()
        if self.message_of(xml) is not None:
            ok = self.find("message_ok", xml)
            if ok is not None:
                self.ui.tap(ok)
                self.device.retries.record(
                    "reset-dismiss-message", 1, "a message was left on screen"
                )
        if self.find("end_button") is not None:
            self.end()
            self.device.retries.record("reset-end-session", 1, "a session was left open")
        self.device.shell("input keyevent 3", check=True)  # HOME

    def dismiss_message(self, timeout_s: float = UI_TIMEOUT_S) -> None:
        self.ui.tap(self.wait_for("message_ok", timeout_s))
