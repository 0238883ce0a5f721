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
                    screen.show_dialog(MSG_CLOSED if reason == "closed" else MSG_UNREGISTERED)
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
        t0 = time.monotonic()
        period = 1.0 / AGENT_FPS
        while self.state in ("video", "reconnecting"):
            if (
                self.state == "reconnecting"
            ):  # nothing arrives over a dead Wi-Fi: the picture freezes
                await asyncio.sleep(period)
                t0 = time.monotonic() - self.frame_no * period
                continue
            frame = base.copy()
            t_send = time.monotonic()
            self.frame_no += 1
            stamp(frame, self.frame_no, int(t_send * 1000) % (1 << 32), self.layout)
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
        """The emulator console's delay on one message of the app's signalling."""
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
