"""The twin's support app as a WebRTC media peer (aiortc, DTLS-SRTP), loopback only.

It sends the tablet's screen as the share (scaled to SHARE_WIDTH like a phone-class encoder
would, with private apps masked until the customer consents) and receives the agent's video,
composited into the session pane when it arrives: every frame shown is read back with the
pure timecode codec and written to the ground truth with its host time. A data channel
"control" carries the agent's strokes, remote-control taps and access requests.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from harness.native import release_free_memory
from harness.vision.timecode import TimecodeLayout, decode_fast, feed_layout

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.support import SupportSession

log = logging.getLogger(__name__)

SHARE_WIDTH = 640
SHARE_FPS = 15.0
_VIDEO_CLOCK = 90000
ICE_TIMEOUT_S = 10.0
PC_CLOSE_TIMEOUT_S = 5.0
WIFI_POLL_S = 0.01  # how often held media looks whether the Wi-Fi is back
MAX_HELD_FRAMES = 150  # a share hold's queue: 10 s at SHARE_FPS (the op allows at most 10 s)


def pin_ice_to_loopback() -> None:
    """Make aioice gather 127.0.0.1 only: no STUN server, no other interface is ever contacted."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]


def rtc_configuration():
    from aiortc import RTCConfiguration

    return RTCConfiguration(iceServers=[])


SHARE_KBIT_PER_FRAME = 60.0  # a 640x400 VP8 delta frame of a screen at decent quality


def share_fps_for(up_kbps: float) -> float:
    """The share's frame rate under the console's upload speed (0 = unlimited): like a real
    sender's rate adaptation, it drops frames to fit the link (about 60 kbit per frame)."""
    if up_kbps <= 0:
        return SHARE_FPS
    return max(1.0, min(SHARE_FPS, up_kbps / SHARE_KBIT_PER_FRAME))


class ShareTrack:
    """The screen share: the framebuffer, scaled, privacy-masked, paced at SHARE_FPS (fewer
    under the console's upload speed), sent the console's delay after it was captured, and a
    share hold (control op "media" share_hold_ms, logged as each frame's hold_ms) later."""

    def __new__(cls, twin: Twin):  # noqa: C901 -- one branch per codec and media kind aiortc negotiates
        from aiortc import VideoStreamTrack

        class _Share(VideoStreamTrack):
            def __init__(self) -> None:
                super().__init__()
                self.twin = twin
                self.sent = 0
                self._next = 0.0
                self._in_flight: list[
                    tuple[float, object]
                ] = []  # (capture time, frame) on the uplink
                self._held: list[tuple[float, object]] = []  # (time it may leave, frame)
                self._hold_task: asyncio.Task | None = None

            async def _hold_capture(self) -> None:
                """While a share hold is set (control op "media" share_hold_ms): capture at the
                share's rate, each frame leaving its hold after it was captured. Apart from
                recv, so that the encoder's pace (slow on a loaded host) neither delays the
                captures nor adds to the hold."""
                nxt = time.monotonic()
                while self.readyState == "live" and self.twin.screen.share_hold_s > 0:
                    if not self.twin.wifi.enabled:
                        await asyncio.sleep(WIFI_POLL_S)
                        nxt = time.monotonic()
                        continue
                    if time.monotonic() >= self.twin.screen.next_redraw(nxt):
                        hold_s = self.twin.screen.share_hold_s
                        frame = self._capture(hold_s)
                        self._held.append((time.monotonic() + hold_s, frame))
                        del self._held[:-MAX_HELD_FRAMES]
                        fps = share_fps_for(self.twin.network.up_kbps)
                        nxt = max(nxt + 1.0 / fps, time.monotonic())
                    due = self.twin.screen.next_redraw(nxt)
                    await asyncio.sleep(max(0.001, due - time.monotonic()))

            async def _recv_held(self):
                """The newest held frame past its hold (and the console's delay); the older
                ones the encoder had no time for are dropped (logged), as a sender does."""
                if self._hold_task is None or self._hold_task.done():
                    self._hold_task = asyncio.ensure_future(self._hold_capture())
                delay = self.twin.network.max_delay_ms / 1000.0
                now = time.monotonic()
                ready = sum(1 for t, _ in self._held if now - t >= delay)
                if not ready:
                    wake = self._held[0][0] + delay if self._held else now + WIFI_POLL_S
                    await asyncio.sleep(max(0.001, wake - now))
                    return None
                if ready > 1:
                    self.twin.truth.record(
                        "share_frames_dropped", count=ready - 1, why="held, encoder busy"
                    )
                frame = self._held[ready - 1][1]
                del self._held[:ready]
                return frame

            async def recv(self):
                net = self.twin.network
                now = time.monotonic()
                self._next = max(self._next, now - 1.0) if self._next else now
                while True:  # capture at the adapted rate; hand over what has crossed the uplink
                    if not self.twin.wifi.enabled:  # nothing leaves over a dead Wi-Fi
                        if self._in_flight or self._held:
                            self.twin.truth.record(
                                "share_frames_lost",
                                count=len(self._in_flight) + len(self._held),
                                why="wifi off",
                            )
                            self._in_flight.clear()
                            self._held.clear()
                        await asyncio.sleep(WIFI_POLL_S)
                        self._next = time.monotonic()  # capture again as soon as it is back
                        continue
                    if self.twin.screen.share_hold_s > 0 or self._held:
                        frame = await self._recv_held()
                        if frame is not None:
                            return frame
                        self._next = time.monotonic()
                        continue
                    # on the nominal schedule, each capture at the screen's next redraw
                    if time.monotonic() >= self.twin.screen.next_redraw(self._next):
                        self._in_flight.append((time.monotonic(), self._capture()))
                        self._next += 1.0 / share_fps_for(net.up_kbps)
                    delay = net.max_delay_ms / 1000.0
                    if self._in_flight and time.monotonic() - self._in_flight[0][0] >= delay:
                        _, frame = self._in_flight.pop(0)
                        return frame
                    wake = self.twin.screen.next_redraw(self._next)
                    if self._in_flight:
                        wake = min(wake, self._in_flight[0][0] + delay)
                    await asyncio.sleep(max(0.001, wake - time.monotonic()))

            def _capture(self, hold_s: float = 0.0):
                from av import VideoFrame

                screen = self.twin.screen
                if screen.share_frozen and getattr(self, "_last", None) is not None:
                    frame = VideoFrame.from_ndarray(
                        self._last, format="rgb24"
                    )  # the same picture, a new frame
                    frame.pts = int((time.monotonic() - self.twin.boot_time) * _VIDEO_CLOCK)
                    frame.time_base = fractions.Fraction(1, _VIDEO_CLOCK)
                    self.twin.truth.record(
                        "share_frame_sent",
                        index=self.sent,
                        repeated=True,
                        fps=share_fps_for(self.twin.network.up_kbps),
                        **({"hold_ms": round(hold_s * 1000.0, 3)} if hold_s else {}),
                    )
                    self.sent += 1
                    return frame
                rgba = screen.frame()
                version = screen.version
                masked = screen.private_app_showing()
                secure = screen.secure_showing()  # FLAG_SECURE: captured black, as on Android
                h, w = rgba.shape[:2]
                sw = SHARE_WIDTH
                sh = int(round(h * sw / w / 2)) * 2
                rgb = cv2.resize(
                    cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB), (sw, sh), interpolation=cv2.INTER_AREA
                )
                if secure:
                    rgb[:] = 0
                elif masked:
                    rgb[:] = (30, 30, 30)
                    cv2.putText(
                        rgb,
                        "Private content hidden",
                        (sw // 8, sh // 2),
                        cv2.FONT_HERSHEY_SIMPLEX,
                        sw / 900,
                        (220, 220, 220),
                        2,
                        cv2.LINE_AA,
                    )
                frame = VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = int((time.monotonic() - self.twin.boot_time) * _VIDEO_CLOCK)
                frame.time_base = fractions.Fraction(1, _VIDEO_CLOCK)
                self.twin.truth.record(
                    "share_frame_sent",
                    index=self.sent,
                    screen_version=version,
                    masked=masked,
                    secure=secure,
                    private=screen.private_package() or "",
                    fps=share_fps_for(self.twin.network.up_kbps),
                    **({"hold_ms": round(hold_s * 1000.0, 3)} if hold_s else {}),
                )
                self.sent += 1
                self._last = rgb
                return frame

        return _Share()


class MicTrack:
    """The tablet microphone: silence, plus whatever the lab speaker plays (control op "mic")."""

    def __new__(cls, twin: Twin):
        from aiortc import AudioStreamTrack

        class _Mic(AudioStreamTrack):
            def __init__(self) -> None:
                super().__init__()
                self.twin = twin
                self.pending: list[np.ndarray] = []  # sounds queued by the lab speaker
                self._cursor = 0
                self.held = 0  # 20 ms frames not sent: the Wi-Fi was off

            def _advance(self, samples: int) -> None:
                if self.pending:
                    self._cursor += samples
                    if self._cursor >= len(self.pending[0]):
                        self.pending.pop(0)
                        self._cursor = 0

            async def recv(self):
                from av import AudioFrame

                while True:
                    frame = await super().recv()  # paced 20 ms silence, s16 mono 8 kHz
                    if self.twin.wifi.enabled:
                        break
                    self._advance(frame.samples)  # the room still hears it; nothing is sent
                    self.held += 1
                samples = frame.samples
                pcm = np.zeros(samples, np.int16)
                if self.pending:
                    sound = self.pending[0]
                    if self._cursor == 0:
                        self.twin.truth.record(
                            "mic_sound_started", samples=len(sound), rate=frame.sample_rate
                        )
                    part = sound[self._cursor : self._cursor + samples]
                    pcm[: len(part)] = part
                    self._cursor += samples
                    if self._cursor >= len(sound):
                        self.pending.pop(0)
                        self._cursor = 0
                out = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
                out.sample_rate, out.pts, out.time_base = (
                    frame.sample_rate,
                    frame.pts,
                    frame.time_base,
                )
                return out

        return _Mic()


class MediaPeer:
    """One WebRTC peer connection of a support session (device side, the offerer)."""

    def __init__(self, twin: Twin, session: SupportSession, send_signal):
        self.twin = twin
        self.session = session
        self.send_signal = send_signal
        self.pc = None
        self.channel = None
        self.mic = None
        self.share = None
        self._tasks: list[asyncio.Task] = []
        self.layout: TimecodeLayout | None = None
        self.frames_shown = 0
        self.frames_lost = 0  # agent frames that met a dead Wi-Fi
        self.frames_dropped_late = 0  # decoded agent frames replaced by a newer one before shown

    async def start(self) -> None:
        from aiortc import RTCPeerConnection

        pin_ice_to_loopback()
        pc = self.pc = RTCPeerConnection(rtc_configuration())
        self.share = ShareTrack(self.twin)
        self.mic = MicTrack(self.twin)
        pc.addTransceiver(self.share, direction="sendrecv")
        pc.addTransceiver(self.mic, direction="sendrecv")
        self.channel = pc.createDataChannel("control")
        self.channel.on("message", self._on_message)

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                self._tasks.append(asyncio.ensure_future(self._show_agent_video(track)))
            else:
                self._tasks.append(asyncio.ensure_future(self._play_agent_audio(track)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            self.twin.truth.record("rtc_state", state=pc.connectionState)
            if pc.connectionState in ("failed", "closed") and self.session.state != "ended":
                self.session.end(f"media {pc.connectionState}")

        if self.twin.screen.media_blocked:  # fault: the media path is blocked (no offer leaves)
            self.twin.truth.record("rtc_blocked")
            return
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        await self.send_signal({"type": "offer", "sdp": pc.localDescription.sdp})
        self.twin.truth.record("rtc_offer_sent")

    async def on_signal(self, data: dict[str, Any]) -> None:
        from aiortc import RTCSessionDescription

        if data.get("type") == "answer" and self.pc is not None:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=data["sdp"], type="answer")
            )
            self.twin.truth.record("rtc_answer_received")

    async def _show_agent_video(self, track) -> None:
        """Composite each received agent frame into the pane as soon as it is decoded (later by
        the emulator console's downlink delay, when one is set: the frame is in flight)."""
        from aiortc.mediastreams import MediaStreamError

        screen = self.twin.screen
        session = self.session
        x1, y1, x2, y2 = screen.pane_video_bounds()
        w, h = x2 - x1, y2 - y1
        loop = asyncio.get_running_loop()
        while session.state != "ended":
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not self.twin.wifi.enabled:  # nothing arrives over a dead Wi-Fi
                self.frames_lost += 1
                continue
            frame = self._newest(track, frame)
            rgb = frame.to_ndarray(format="rgb24")
            read = decode_fast(
                rgb, feed_layout(rgb.shape[1], rgb.shape[0])
            )  # at full size: what it carries
            if rgb.shape[1] != w or rgb.shape[0] != h:
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            delay = self.twin.network.max_delay_ms / 1000.0
            if delay > 0:
                loop.call_later(delay, self._display, rgb, read)
            else:
                self._display(rgb, read)

    def _newest(self, track, frame):
        """The newest decoded frame: as Android's renderer, a frame decoded while another waited
        to be shown replaces it (the older is dropped late, counted), so a starved twin shows the
        agent's current picture instead of falling seconds behind. aiortc's remote track keeps
        decoded frames in `_queue`; without one, `frame` as it is."""
        queue = getattr(track, "_queue", None)
        while queue is not None and not queue.empty():
            newer = queue.get_nowait()
            if newer is None:  # the stream's end: left for the next recv() to see
                queue.put_nowait(None)
                break
            self.frames_dropped_late += 1
            frame = newer
        return frame

    def _display(self, rgb: np.ndarray, read) -> None:
        session, screen = self.session, self.twin.screen
        if session.state in ("ended", "reconnecting") or not self.twin.wifi.enabled:
            return  # nothing crosses a dead Wi-Fi
        if session.state != "video":
            session.state = "video"
            screen.changed("agent video")
        session.agent_frame = rgb
        session.shown_frame_no = read.frame_no if read.ok else None
        version = screen.changed("agent frame", record=False, rebuild=False)
        t_shown = time.monotonic()
        self.frames_shown += 1
        if self.frames_shown == 1:
            self.twin.truth.record(
                "agent_video_started",
                t=t_shown,
                frame_no=read.frame_no if read.ok else None,
                version=version,
            )
        self.twin.truth.record(
            "agent_frame_shown",
            t=t_shown,
            frame_no=read.frame_no if read.ok else None,
            # the code's own time: the sender's stamp (the reference agents' loops: ms into the loop)
            t_send_ms=read.t_ms if read.ok else None,
        )

    async def _play_agent_audio(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        while self.session.state != "ended":
            try:
                await track.recv()
            except MediaStreamError:
                return

    def _on_message(self, message: str) -> None:
        if not self.twin.wifi.enabled:  # strokes and taps do not cross a dead Wi-Fi
            return
        try:
            msg = json.loads(message)
        except ValueError:
            return
        self.twin.screen.agent_command(msg, reply=self.reply)

    def reply(self, msg: dict[str, Any]) -> None:
        if (
            self.channel is not None
            and self.channel.readyState == "open"
            and self.twin.wifi.enabled
        ):
            self.channel.send(json.dumps(msg))

    async def close(self) -> None:
        """Stop the tasks, close the connection, hand the freed native memory back. Never raises."""
        if self.frames_shown or self.frames_lost or self.frames_dropped_late:
            try:
                self.twin.truth.record(
                    "agent_video_frames",
                    shown=self.frames_shown,
                    lost_wifi_off=self.frames_lost,
                    dropped_late=self.frames_dropped_late,
                )
            except Exception as e:  # noqa: BLE001 -- cleanup never raises
                log.info("recording the agent video counts: %s", e)
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), PC_CLOSE_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 -- cleanup never raises
                log.info("closing peer: %s", e)
        self.pc = self.channel = self.mic = self.share = None  # the session may outlive us
        try:
            await asyncio.get_running_loop().run_in_executor(None, release_free_memory)
        except Exception as e:  # noqa: BLE001 -- cleanup never raises
            log.info("releasing free memory: %s", e)
