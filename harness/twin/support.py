"""The support app of the twin ("Mayday"): checks, a session with the backend, the agent's video.

Flow when the customer taps the Mayday tile: device support (microphone, profile) -> Wi-Fi ->
registered account -> request to the backend -> queued (position on screen) -> assigned
("Connecting you to ...") -> answered: the agent's video plays in the session pane at 30 fps,
each frame carrying a timecode (frame number, agent send time) from harness.vision.timecode.
Every step and every agent frame shown goes to the ground truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

import cv2
import numpy as np

from harness.vision.timecode import TimecodeLayout, feed_layout, stamp

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

_TASKS: set[asyncio.Task] = set()  # fire-and-forget tasks, referenced until they finish


def _keep(task: asyncio.Task) -> asyncio.Task:
    """Keep a reference to a background task (the loop holds only weak ones) until it is done."""
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


AGENT_FPS = 30.0
BACKEND_CONNECT_TIMEOUT_S = 3.0
MSG_UNSUPPORTED = "This device does not support live support"
MSG_NO_WIFI = "No Wi-Fi: Mayday needs a Wi-Fi connection"
MSG_UNREGISTERED = "Register this device first"
MSG_CLOSED = "Mayday is not available at this hour"
MSG_UNAVAILABLE = "Mayday is not available right now"
MSG_ENDED = "Your session has ended"
MSG_CONNECTION_LOST = "Connection lost: check your Wi-Fi and try again"
RECONNECT_GRACE_S = 10.0  # a Wi-Fi drop shorter than this resumes the session
WIFI_POLL_S = 0.01  # how often stalled signalling looks whether the Wi-Fi is back
# the synthetic agent's video: timecoded (our agent), or plain video of an agent the harness
# does not control (no timecode): a talking head, a still frame with slight noise, a fade-in
AGENT_VIDEO_MODES = ("timecode", "talking", "still", "fade")
FADE_IN_S = 0.6  # the fade mode's fade from the pane's placeholder to the picture
NOISE_SIGMA = 2.0  # grey levels of sensor-like noise on the plain modes


class SupportSession:
    """One press of the Mayday button, until it ends."""

    def __init__(self, twin: Twin):
        self.twin = twin
        self.state = "starting"  # starting, queued, assigned, video, ended
        self.position = 0
        self.agent = ""
        self.frame_no = 0
        self.agent_frame: np.ndarray | None = None  # RGB, pane size
        self.agent_frame_t_ms = 0
        self.shown_frame_no: int | None = None  # the agent frame's code now in the pane
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self._video_task: asyncio.Task | None = None
        self.layout: TimecodeLayout | None = None
        self.peer = None  # harness.twin.rtc.MediaPeer when the agent is a program
        self.resume_state = "video"
        self._grace: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:  # noqa: C901 -- the support app's session state machine
        twin, screen = self.twin, self.twin.screen
        host, port = twin.backend_address or (None, None)
        if port is None:
            screen.show_dialog(MSG_UNAVAILABLE)
            self._finish("no backend")
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), BACKEND_CONNECT_TIMEOUT_S
            )
        except (TimeoutError, OSError):
            screen.show_dialog(MSG_UNAVAILABLE)
            self._finish("backend unreachable")
            return
        self._writer = writer
        request = {
            "op": "request",
            "device": twin.serial_hint,
            "region": twin.region,
            "tz": twin.timezone,
            "registered": bool(twin.accounts),
        }
        await self._net("request")
        writer.write((json.dumps(request) + "\n").encode())
        await writer.drain()
        twin.truth.record("support_request_sent")
        try:
            while self.state != "ended":
                raw = await reader.readline()
                if not raw:
                    break
                msg = json.loads(raw)
                st = msg.get("state")
                await self._net(f"backend {st}")
                if self.state == "ended":  # gave up while the message waited for the Wi-Fi
                    return
                if st == "queued":
                    self.state, self.position = "queued", int(msg.get("position", 0))
                    screen.changed(f"queued {self.position}")
                elif st == "assigned":
                    self.state, self.agent = "assigned", msg.get("agent", "")
                    screen.changed("assigned")
                elif st == "answered" and msg.get("media"):
                    from harness.twin.rtc import MediaPeer

                    self.state = "assigned"
                    self.peer = MediaPeer(twin, self, self._signal)
                    await self.peer.start()
                elif st == "signal" and self.peer is not None:
                    await self.peer.on_signal(msg.get("data") or {})
                elif st == "ended":
                    screen.show_dialog(MSG_ENDED)
                    self._finish(f"ended by {msg.get('by', 'agent')}")
                    return
                elif st == "answered":
                    self.state = "video"
                    screen.changed("answered")
                    self._video_task = asyncio.get_running_loop().create_task(
                        self._play_agent_video()
                    )
                elif st == "refused":
                    reason = msg.get("reason")
                    screen.show_dialog(
                        {"closed": MSG_CLOSED, "unregistered": MSG_UNREGISTERED}.get(
                            reason, MSG_UNAVAILABLE
                        )
                    )
                    self._finish(f"refused: {reason}")
                    return
        except (ConnectionError, ValueError) as e:
            log.info("%s: backend connection: %s", twin.serial_hint, e)
        if self.state != "ended":
            screen.show_dialog(MSG_ENDED)
            self._finish("backend closed")

    async def _play_agent_video(self) -> None:
        """The agent's synthetic feed: AGENT_FPS timecoded frames composited into the pane."""
        screen = self.twin.screen
        x1, y1, x2, y2 = screen.pane_video_bounds()
        w, h = x2 - x1, y2 - y1
        base = _agent_picture(w, h)
        self.layout = feed_layout(w, h)
        mode = getattr(screen, "agent_video_mode", "timecode")
        rng = np.random.default_rng(self.twin.port)
        placeholder = np.empty_like(base)
        placeholder[:] = (28, 28, 30)  # the pane's background before the first frame
        t0 = time.monotonic()
        period = 1.0 / AGENT_FPS
        while self.state in ("video", "reconnecting"):
            if (
                self.state == "reconnecting"
            ):  # nothing arrives over a dead Wi-Fi: the picture freezes
                await asyncio.sleep(period)
                t0 = time.monotonic() - self.frame_no * period
                continue
            t_send = time.monotonic()
            self.frame_no += 1
            if mode == "timecode":
                frame = base.copy()
                stamp(frame, self.frame_no, int(t_send * 1000) % (1 << 32), self.layout)
            else:
                frame = _plain_frame(mode, base, placeholder, self.frame_no * period, rng)
            self.agent_frame, self.agent_frame_t_ms = frame, int(t_send * 1000)
            version = screen.changed("agent frame", record=False, rebuild=False)
            t_shown = time.monotonic()
            if self.frame_no == 1:
                self.twin.truth.record(
                    "agent_video_started", t=t_shown, frame_no=1, version=version
                )
            self.twin.truth.record(
                "agent_frame_shown", t=t_shown, frame_no=self.frame_no, t_send=t_send
            )
            await asyncio.sleep(max(0.0, t0 + self.frame_no * period - time.monotonic()))

    async def _net(self, what: str) -> None:
        """The emulator console's delay on one message of the app's signalling; while the Wi-Fi
        is off the message waits (signalling stalls) until it is back or the session ends."""
        stalled = False
        while not self.twin.wifi.enabled and self.state != "ended":
            if not stalled:
                stalled = True
                self.twin.truth.record("signalling_stalled", what=what)
            await asyncio.sleep(WIFI_POLL_S)
        delay = self.twin.network_delay_s(what)
        if delay:
            await asyncio.sleep(delay)

    def on_wifi(self, on: bool) -> None:
        """Wi-Fi dropped or came back: freeze and show "Reconnecting", resume, or give up."""
        if self.state == "ended":
            return
        if not on:
            if self.state in ("video", "assigned", "queued"):
                self.resume_state, self.state = self.state, "reconnecting"
                self.twin.truth.record("session_reconnecting")
                self.twin.screen.changed("reconnecting")
                grace = getattr(self.twin, "reconnect_grace_s", RECONNECT_GRACE_S)
                self._grace = asyncio.get_running_loop().call_later(grace, self._give_up)
        elif self.state == "reconnecting":
            if self._grace is not None:
                self._grace.cancel()
            self.state = self.resume_state
            self.twin.truth.record("session_recovered", state=self.state)
            self.twin.screen.changed("recovered")

    def _give_up(self) -> None:
        if self.state == "reconnecting":
            self.twin.screen.show_dialog(MSG_CONNECTION_LOST)
            self.end("wifi lost")

    async def _signal(self, data: dict) -> None:
        await self._net("signal")
        if self._writer is not None:
            self._writer.write((json.dumps({"op": "signal", "data": data}) + "\n").encode())
            await self._writer.drain()

    def end(self, why: str = "customer ended") -> None:
        if self.state == "ended":
            return
        if self._writer is not None:
            try:
                self._writer.write(b'{"op": "end"}\n')
            except (ConnectionError, RuntimeError):
                pass
        self._finish(why)

    def _finish(self, why: str) -> None:
        self.state = "ended"
        if self._grace is not None:
            self._grace.cancel()
        self.twin.truth.record("support_session_ended", why=why, frames=self.frame_no)
        if self._video_task is not None:
            self._video_task.cancel()
        if self.peer is not None:
            _keep(asyncio.get_running_loop().create_task(self.peer.close()))
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.debug("support session: closing the signalling writer: %s", e)
        self.twin.screen.session_ended(self)


def _plain_frame(
    mode: str, base: np.ndarray, placeholder: np.ndarray, t: float, rng: np.random.Generator
) -> np.ndarray:
    """One frame of an untimecoded agent, t seconds into its video (RGB)."""
    h, w = base.shape[:2]
    if mode == "still":
        img = base.astype(np.float32)
    else:  # a talking head: the mouth opens and closes, the head sways a little
        img = base.copy()
        r = max(4, min(w, h) // 6)
        cx = w // 2 + int(round(r * 0.08 * np.sin(2 * np.pi * 0.7 * t)))
        cy = int(h * 0.42)
        cv2.circle(img, (cx, cy), r, (224, 172, 140), -1, cv2.LINE_AA)
        for ex in (-r // 3, r // 3):
            cv2.circle(img, (cx + ex, cy - r // 4), max(1, r // 10), (40, 30, 30), -1)
        mouth = max(1, int(r * 0.18 * (0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t))))
        cv2.ellipse(img, (cx, cy + r // 2), (r // 3, mouth), 0, 0, 360, (120, 40, 50), -1)
        img = img.astype(np.float32)
        if mode == "fade":
            a = min(1.0, t / FADE_IN_S)
            img = placeholder.astype(np.float32) * (1 - a) + img * a
    img += rng.normal(0.0, NOISE_SIGMA, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _agent_picture(w: int, h: int) -> np.ndarray:
    """A plain synthetic agent: a figure on a soft background (RGB)."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (200, 214, 228)
    cx, cy, r = w // 2, int(h * 0.42), max(4, min(w, h) // 6)
    cv2.circle(img, (cx, cy), r, (224, 172, 140), -1, cv2.LINE_AA)
    cv2.ellipse(
        img, (cx, h), (int(r * 2.2), int(r * 1.8)), 0, 180, 360, (40, 70, 140), -1, cv2.LINE_AA
    )
    return img
