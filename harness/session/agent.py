"""The AgentBot: the harness playing the support agent.

AgentBot is the interface the suites use; AiortcAgentBot is the reference adapter. It joins the
twin world's support backend as an agent over loopback HTTP, presenting the run's agent token
(`token`: Authorization: Bearer; the backend answers 401 without it) (harness.twin.backend: POST /agents,
then a long poll of GET /agents/ID/events for the session, signal and ended events; its
signalling goes to POST /agents/ID/signal, a hang-up to /end, leaving is DELETE /agents/ID; every
request bounded by a timeout), the backend relaying the WebRTC signalling both ways. Without an
HTTP address it speaks the backend's JSON lines over one loopback TCP connection instead. It
answers each session with an aiortc peer connection (DTLS-SRTP): it sends timecoded video it
renders itself (frame number + time, harness.vision.timecode) and receives the screen
share and the microphone, timestamping every frame on arrival with the host's monotonic clock.
Its video is a loop of AGENT_LOOP_S encoded once per process (EncodedLoop: frame k of the loop
carries frame number k; the codes repeat after the loop) and sent packet by packet; when the
tablet asks for a keyframe (PLI/FIR: a lost packet), it encodes the same frames live until the
loop comes round to its keyframe.
Strokes, remote-control taps and access requests go over the data channel. ICE is pinned to
127.0.0.1 and no STUN server is configured: no traffic leaves loopback.

With a `media_profile`, every byte of the peer connection (ICE checks, DTLS, SRTP, the data
channel) crosses the harness's impairment relay (harness.network.ice): the agent's video gets
the profile's `down` direction on its way to the tablet, the share and the microphone its `up`.

Size: the AgentBot interface and its reference adapter (signalling, WebRTC media) in one place.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

import numpy as np

from harness.errors import SessionError
from harness.session.micaudio import MicAudio, tap_audio
from harness.vision.timecode import BLOCK_CELLS, code_block, feed_layout, stamp

log = logging.getLogger(__name__)

_TASKS: set[asyncio.Task] = set()  # fire-and-forget tasks, referenced until they finish


def _keep(task: asyncio.Task) -> asyncio.Task:
    """Keep a reference to a background task (the loop holds only weak ones) until it is done."""
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


AGENT_VIDEO_SIZE = (640, 480)
AGENT_FPS = 30.0
JOIN_TIMEOUT_S = 10.0
POLL_WAIT_S = 10.0  # the backend holds an events poll this long when nothing happens
HTTP_TIMEOUT_S = 5.0  # any HTTP request to the backend (a poll: POLL_WAIT_S more)
_POLL_RETRIES = 3  # consecutive failed polls before the bot gives up on the backend
_KEEP_FRAMES = 900
# the agent's video loop: its codes repeat after this long (as the browser agent's clip), so a
# latency window must be shorter; encoded once per process and size (~1.5 s of CPU, ~1 MB)
AGENT_LOOP_S = 60.0
AUDIO_KEEP_S = 60.0  # the microphone audio kept (the newest): 50 chunks/s, ~11 MB a minute
_VIDEO_CLOCK = 90000
_VIDEO_TIME_BASE = Fraction(1, _VIDEO_CLOCK)


class ReceivedFrame:
    """One share frame the agent received: BGR pixels, host arrival time, arrival index.

    Made from the decoder's frame, `image` is converted to BGR on first use (then kept): a
    frame nobody looks at costs no conversion, and a kept one half the memory until then."""

    __slots__ = ("_image", "_video", "t_arrival", "index", "pts")

    def __init__(
        self, image: np.ndarray | None, t_arrival: float, index: int, *, video=None
    ) -> None:
        if image is None and video is None:
            raise ValueError("ReceivedFrame: an image or a decoded video frame")
        self._image, self._video = image, video
        self.t_arrival, self.index = t_arrival, index
        # the RTP timestamp (90 kHz, random origin): the sender's capture clock, so differences
        # between frames are capture intervals (None for frames not decoded from RTP)
        self.pts: int | None = getattr(video, "pts", None)

    @property
    def image(self) -> np.ndarray:
        """The frame as BGR (H, W, 3) uint8."""
        if self._image is None:
            self._image = self._video.to_ndarray(format="bgr24")
            self._video = None
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) without converting the frame."""
        if self._image is not None:
            return self._image.shape[1], self._image.shape[0]
        return self._video.width, self._video.height

    def __repr__(self) -> str:
        w, h = self.size
        return f"ReceivedFrame({w}x{h}, t_arrival={self.t_arrival:.3f}, index={self.index})"


@dataclass
class BotSession:
    rid: int
    device: str
    t_assigned: float
    connected: asyncio.Event | None = None
    # frame_no -> host time (s) of its newest capture: the video's schedule, t0 + i / fps, what
    # the lab monitor shows (the codes repeat after AGENT_LOOP_S)
    sent: dict[int, float] = field(default_factory=dict)
    frames_sent: int = 0  # video frames sent this session
    live_frames: int = 0  # of them encoded live (after a keyframe request), not from the loop
    late_frames: int = 0  # of them sent more than a frame interval after their capture time
    share: deque = field(default_factory=lambda: deque(maxlen=_KEEP_FRAMES))
    share_count: int = 0
    # (arrival, samples) of the newest AUDIO_KEEP_S of microphone (20 ms chunks), decoded when read
    audio: MicAudio = field(default_factory=lambda: MicAudio(round(AUDIO_KEEP_S / 0.02)))
    replies: list[tuple[float, dict]] = field(default_factory=list)
    ended: bool = False

    @property
    def audio_rate(self) -> int:
        """The microphone's decoded sample rate (0 before any audio was read)."""
        return self.audio.rate


class AgentBot(Protocol):
    """What a suite needs from an agent, whatever the backend behind it."""

    def start(self) -> None: ...
    def wait_for_session(self, timeout_s: float) -> BotSession: ...
    def wait_connected(self, timeout_s: float) -> None: ...
    def send_stroke(
        self, points: list[tuple[float, float]], color=(255, 0, 0), width: int = 6
    ) -> float: ...
    def send_tap(self, x: float, y: float) -> dict: ...
    def request_control(self) -> None: ...
    def request_access(self, package: str) -> None: ...
    def hang_up(self) -> None: ...
    def stop(self) -> None: ...


def pin_ice_to_loopback() -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]


class AiortcAgentBot:
    """Reference AgentBot over aiortc, speaking to the twin world's backend."""

    def __init__(
        self,
        backend: tuple[str, int],
        name: str = "bot-1",
        video_size=AGENT_VIDEO_SIZE,
        fps: float = AGENT_FPS,
        device: str | None = None,
        display_url: str | None = None,
        media_profile=None,
        media_seed: int = 0,
        http: tuple[str, int] | None = None,
        token: str | None = None,
        loop_s: float = AGENT_LOOP_S,
    ):
        if not 0 < loop_s * fps < 1 << 24:
            raise SessionError(f"agent bot {name}: loop_s {loop_s!r} at {fps} fps: no frames")
        self.token = token  # the run's agent credential (control op "backend": "token")
        self.backend = backend  # the backend's JSON-lines address (used when http is None)
        self.http = http  # the backend's HTTP agent API (host, port): preferred when given
        self.agent_id: str | None = None  # the backend's ID of this agent (HTTP)
        self._poll_task: asyncio.Task | None = None
        self._leaving = False  # stop() began: the poll loop ends, a 404 from here on is expected
        self.media_profile = media_profile  # a NetworkProfile for the media path (None: direct)
        self.media_seed = media_seed
        self.media_relay = None  # the IceRelay of the current session, once signalled
        self.name = name
        self.device = device  # serve only this device's sessions (None: any)
        self.display_url = display_url  # a lab camera's /agent_display: the agent's monitor, filmed
        self.video_size = video_size
        self.fps = fps
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.session: BotSession | None = None
        self._session_ready = threading.Event()
        self._joined = threading.Event()
        self.pc = None
        self.channel = None
        self.error: Exception | None = None
        self._tap_id = 0
        self.layout = feed_layout(*video_size)
        self._base = _agent_picture(*video_size)
        self._frames = AgentFrames(self._base, self.layout)
        self.loop_s = loop_s  # the video loop's length (its codes repeat after it)
        self._encoded_loop()  # encoded here, once per process and size, not while signalling

    # --- lifecycle (sync API, an asyncio loop in a thread)
    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=f"agentbot-{self.name}", daemon=True
        )
        self._thread.start()
        self._call(self._join(), JOIN_TIMEOUT_S)

    def _call(self, coro, timeout_s: float):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except TimeoutError:
            fut.cancel()
            raise SessionError(f"agent bot {self.name}: no answer within {timeout_s:g} s") from None

    async def _join(self) -> None:
        if self.http is not None:
            await self._join_http()
            return
        host, port = self.backend
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), JOIN_TIMEOUT_S
            )
        except (TimeoutError, OSError) as e:
            raise SessionError(
                f"agent bot {self.name}: support backend {host}:{port} unreachable: {e}"
            ) from None
        self._writer = writer
        writer.write(
            (
                json.dumps(
                    {"op": "agent", "name": self.name, "device": self.device, "token": self.token}
                )
                + "\n"
            ).encode()
        )
        await writer.drain()
        first = json.loads(await asyncio.wait_for(reader.readline(), JOIN_TIMEOUT_S) or b"{}")
        if first.get("event") != "joined":
            raise SessionError(f"agent bot {self.name}: backend did not accept the agent: {first}")
        self._joined.set()
        _keep(asyncio.ensure_future(self._read(reader)))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                await self._on_event(json.loads(raw))
        except Exception as e:  # noqa: BLE001 -- kept for the caller
            self.error = e
            log.warning("agent bot %s: %s", self.name, e)

    async def _on_event(self, msg: dict) -> None:
        ev = msg.get("event")
        if ev == "session":
            self.session = BotSession(
                int(msg["rid"]), str(msg["device"]), time.monotonic(), asyncio.Event()
            )
            self._session_ready.set()
        elif ev == "signal" and self.session is not None:
            await self._on_signal(msg.get("data") or {})
        elif ev == "ended" and self.session is not None:
            self.session.ended = True
            await self._close_pc()

    async def _send(self, msg: dict) -> None:
        if self.http is None:
            self._writer.write((json.dumps(msg) + "\n").encode())
            await self._writer.drain()
            return
        op = msg.get("op")
        body = (
            {"rid": msg["rid"], "data": msg.get("data")} if op == "signal" else {"rid": msg["rid"]}
        )
        await self._http_request("POST", f"/agents/{self.agent_id}/{op}", body, expect=204)

    # --- the backend's HTTP agent API
    def _url(self, path: str) -> str:
        host, port = self.http
        return f"http://{host}:{port}{path}"

    async def _http_request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        expect: int = 200,
        timeout_s: float = HTTP_TIMEOUT_S,
    ):
        """One request (Connection: close), bounded by timeout_s; the JSON reply (None for 204).
        SessionError naming the URL on any failure or another status than `expect`."""
        url = self._url(path)
        try:
            return await asyncio.wait_for(
                self._http_exchange(method, path, body, expect), timeout_s
            )
        except TimeoutError:
            raise SessionError(
                f"agent bot {self.name}: {method} {url}: no answer within {timeout_s:g} s"
            ) from None
        except SessionError as e:
            raise SessionError(f"agent bot {self.name}: {method} {url}: {e}") from None
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            raise SessionError(
                f"agent bot {self.name}: {method} {url}: {type(e).__name__}: {e}"
            ) from None

    async def _http_exchange(self, method: str, path: str, body: dict | None, expect: int):
        host, port = self.http
        data = b"" if body is None else json.dumps(body).encode()
        reader, writer = await asyncio.open_connection(host, port)
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
            if self.token:
                head += f"Authorization: Bearer {self.token}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            writer.write((head + "\r\n").encode() + data)
            await writer.drain()
            status_line = (await reader.readline()).decode("latin-1").split(None, 2)
            if len(status_line) < 2 or not status_line[1].isdigit():
                raise SessionError(f"malformed response {status_line!r}")
            status = int(status_line[1])
            length = None
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                if key.strip().lower() == "content-length":
                    length = int(value.strip())
            payload = await (reader.readexactly(length) if length is not None else reader.read())
        finally:
            writer.close()
        reply = json.loads(payload) if payload else None
        if status != expect:
            why = reply.get("error") if isinstance(reply, dict) else payload[:200]
            raise SessionError(f"HTTP {status}: {why}")
        return reply

    async def _join_http(self) -> None:
        reply = await self._http_request(
            "POST", "/agents", {"name": self.name, "device": self.device}, timeout_s=JOIN_TIMEOUT_S
        )
        if not isinstance(reply, dict) or not reply.get("agent"):
            raise SessionError(
                f"agent bot {self.name}: POST {self._url('/agents')}: no agent ID in {reply!r}"
            )
        self.agent_id = str(reply["agent"])
        self._joined.set()
        self._poll_task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        """Long-poll the backend for this agent's events; handle them as the JSON-lines reader does."""
        path = f"/agents/{self.agent_id}/events?wait={POLL_WAIT_S:g}"
        failures = 0
        while not self._leaving:
            try:
                events = await self._http_request(
                    "GET", path, timeout_s=POLL_WAIT_S + HTTP_TIMEOUT_S
                )
                failures = 0
                for msg in events or []:
                    await self._on_event(msg)
            except asyncio.CancelledError:
                raise
            except SessionError as e:
                ended = self._leaving or (self.session is not None and self.session.ended)
                if ended and "HTTP 404" in str(e):  # gone with its session (a cancelled poll
                    log.info("%s (after the session's end)", e)  # that raced stop(): no error)
                    return
                failures += 1
                self.error = e
                log.warning("%s", e)
                if failures >= _POLL_RETRIES or "HTTP 404" in str(e):
                    return
                await asyncio.sleep(0.5)
            except Exception as e:  # noqa: BLE001 -- kept for the caller
                self.error = e
                log.warning("agent bot %s: %s", self.name, e)
                return

    async def _on_signal(self, data: dict) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        if data.get("type") != "offer":
            return
        pin_ice_to_loopback()
        session = self.session
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("datachannel")
        def on_channel(channel) -> None:
            self.channel = channel

            @channel.on("message")
            def on_message(message: str) -> None:
                session.replies.append((time.monotonic(), json.loads(message)))

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                from harness.session.jitter import complete_on_marker

                complete_on_marker(pc, track)  # each share frame the moment it is complete
                _keep(asyncio.ensure_future(self._receive_share(track, session)))
            elif not tap_audio(pc, track, session.audio):  # kept encoded, decoded when read
                _keep(asyncio.ensure_future(self._receive_audio(track, session)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                session.connected.set()

        offer = data["sdp"]
        if self.media_profile is not None:
            from harness.network.ice import IceRelay

            self.media_relay = IceRelay(self.media_profile, seed=self.media_seed, forward="down")
            offer = self.media_relay.rewrite_offer(offer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        video, audio = self._tracks(session)
        video_sender = pc.addTrack(video)  # reuses the offered transceivers: sendrecv both ways
        pc.addTrack(audio)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        sdp = pc.localDescription.sdp
        # media starts once ICE and DTLS have connected (round trips away): the encoder is set first
        if use_lean_encoder(video_sender, sdp):
            video.use_loop(video_sender)  # VP8: the loop's packets (it is encoded by then)
        audio.use_packets = (_first_video_codec(sdp, "audio") or "").lower() == "opus"
        if self.media_relay is not None:
            sdp = self.media_relay.rewrite_answer(sdp)
        await self._send(
            {"op": "signal", "rid": session.rid, "data": {"type": "answer", "sdp": sdp}}
        )

    def _tracks(self, session: BotSession):
        return _agent_video_class()(self, session), _silence_track()

    @property
    def loop_frames(self) -> int:
        """Frames in the agent's video loop (its codes run 1..loop_frames)."""
        return max(1, round(self.loop_s * self.fps))

    def _encoded_loop(self) -> EncodedLoop:
        return encoded_loop(tuple(self.video_size), self.fps, self.loop_frames)

    async def _show_on_monitor(self, rgb: np.ndarray, t_first: float) -> None:
        """Put the agent's picture on the agent's monitor filmed by the lab camera: POST
        /agent_display in preview mode (X-Loop-Frames: the loop's length), then the anchor
        {"i": 0, "t": t_first} (/agent_frames): frame i of the loop is sent at t_first + i / fps,
        so the monitor shows the code being sent at every instant (harness/twin/camera.py)."""
        from urllib.parse import urlsplit

        import cv2

        url = urlsplit(self.display_url)
        ok, jpg = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        anchor = json.dumps({"i": 0, "t": t_first}).encode()
        posts = [
            (
                "/agent_display",
                jpg.tobytes(),
                f"X-FPS: {self.fps}\r\nX-Loop-Frames: {self.loop_frames}",
            ),
            ("/agent_frames", anchor, "Content-Type: application/json"),
        ]
        for path, body, headers in posts:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(url.hostname, url.port), 2.0
                )
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                    f"Content-Length: {len(body)}\r\n{headers}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                await asyncio.wait_for(reader.read(256), 2.0)
                writer.close()
            except (TimeoutError, OSError) as e:
                log.info("agent monitor %s: %s", path, e)
                return

    async def _receive_share(self, track, session: BotSession) -> None:
        from aiortc.mediastreams import MediaStreamError

        while not session.ended:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            t = time.monotonic()
            session.share.append(ReceivedFrame(None, t, session.share_count, video=frame))
            session.share_count += 1

    async def _receive_audio(self, track, session: BotSession) -> None:
        from aiortc.mediastreams import MediaStreamError

        while not session.ended:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            session.audio.rate = frame.sample_rate
            session.audio.append((time.monotonic(), frame.to_ndarray().reshape(-1)))  # a new array

    async def _close_pc(self) -> None:
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), 5.0)
            except Exception as e:  # noqa: BLE001 -- cleanup never raises
                log.info("agent bot %s: close: %s", self.name, e)
            self.pc = None
        if self.media_relay is not None:
            self.media_relay.stop()  # never raises; its counters stay readable

    def media_counters(self):
        """What the relay did to this session's media (RelayCounters), or None without one."""
        return self.media_relay.counters() if self.media_relay is not None else None

    # --- the agent's actions (sync)
    def wait_for_session(self, timeout_s: float = 30.0) -> BotSession:
        if not self._session_ready.wait(timeout_s):
            raise SessionError(f"agent bot {self.name}: no session assigned within {timeout_s:g} s")
        return self.session

    def wait_connected(self, timeout_s: float = 15.0) -> None:
        session = self.wait_for_session(timeout_s)
        try:
            self._call(asyncio.wait_for(session.connected.wait(), timeout_s), timeout_s + 1)
        except (TimeoutError, SessionError):
            why = (
                f": {self.error}"
                if self.error is not None
                else " (peer unreachable or signalling lost)"
            )
            raise SessionError(
                f"agent bot {self.name}: media never connected within {timeout_s:g} s{why}"
            ) from None

    def _channel_send(self, msg: dict) -> float:
        async def send() -> float:
            if self.channel is None or self.channel.readyState != "open":
                raise SessionError(f"agent bot {self.name}: the control channel is not open")
            t = time.monotonic()
            self.channel.send(json.dumps(msg))
            return t

        return self._call(send(), 5.0)

    def send_stroke(
        self, points, color=(255, 0, 0), width: int = 6, stroke_id: int | None = None
    ) -> float:
        """Draw on the customer's screen; returns the host send time."""
        return self._channel_send(
            {
                "type": "stroke",
                "id": stroke_id,
                "points": [list(map(float, p)) for p in points],
                "color": list(color),
                "width": width,
            }
        )

    def send_tap(self, x: float, y: float, timeout_s: float = 5.0) -> dict:
        """A remote-control tap; returns the device's reply (tap_applied or tap_refused)."""
        self._tap_id += 1
        tap_id = self._tap_id
        t0 = self._channel_send({"type": "tap", "id": tap_id, "x": x, "y": y})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, reply in list(self.session.replies):
                if reply.get("id") == tap_id:
                    return {**reply, "t_sent": t0, "t_reply": t}
            time.sleep(0.01)
        raise SessionError(
            f"agent bot {self.name}: no reply to remote tap {tap_id} within {timeout_s:g} s"
        )

    def request_control(self) -> None:
        self._channel_send({"type": "request_control"})

    def request_access(self, package: str) -> None:
        self._channel_send({"type": "request_access", "package": package})

    def wait_reply(self, kind: str, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, reply in list(self.session.replies):
                if reply.get("type") == kind:
                    return reply
            time.sleep(0.02)
        raise SessionError(
            f"agent bot {self.name}: no {kind!r} from the device within {timeout_s:g} s"
        )

    def hang_up(self) -> None:
        if self.session is not None and not self.session.ended:
            self._call(self._send({"op": "end", "rid": self.session.rid}), 5.0)

    def stop(self) -> None:
        """Leave the backend and stop the loop. Never raises."""
        if self.loop is None:
            return
        try:

            async def shutdown() -> None:
                self._leaving = True
                await self._close_pc()
                if self._poll_task is not None:
                    self._poll_task.cancel()
                    await asyncio.wait(
                        [self._poll_task], timeout=2.0
                    )  # let it close its connection
                if self._writer is not None:
                    self._writer.close()
                if self.http is not None and self.agent_id is not None:
                    try:
                        await self._http_request(
                            "DELETE", f"/agents/{self.agent_id}", expect=204, timeout_s=3.0
                        )
                    except SessionError as e:
                        log.info("agent bot %s: leaving: %s", self.name, e)
                    self.agent_id = None
                # whatever else still runs on this loop ends here, not half-started when it stops
                rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in rest:
                    t.cancel()
                if rest:
                    await asyncio.wait(rest, timeout=2.0)

            self._call(shutdown(), 10.0)
        except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
            log.info("agent bot %s: stop: %s", self.name, e)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)
        if not self.loop.is_running():
            self.loop.close()  # its selector and self-pipe: no fd outlives the bot
        self.loop = None


def _first_video_codec(sdp: str, kind: str = "video") -> str | None:
    """The codec name (e.g. "VP8") of the first payload type of an SDP's m=video line (or
    m=`kind`): what an aiortc sender with that description sends."""
    pt = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts = line.split()
            pt = parts[3] if line.startswith(f"m={kind}") and len(parts) > 3 else None
        elif pt is not None and line.startswith(f"a=rtpmap:{pt} "):
            return line.split(" ", 1)[1].split("/", 1)[0]
    return None


_SENDER_ENCODER = "_RTCRtpSender__encoder"  # aiortc's sender makes its encoder when this is None
_SENDER_FORCE_KEYFRAME = "_RTCRtpSender__force_keyframe"  # set on PLI/FIR, read by its encode


def use_lean_encoder(sender, sdp: str) -> bool:
    """Give an aiortc video sender a LeanVp8Encoder when the local description `sdp` sends VP8
    and the sender has not made its encoder yet. False (logged) when it cannot: aiortc's own
    encoder then serves, at about three times the CPU."""
    codec = _first_video_codec(sdp)
    if codec is None or codec.upper() != "VP8":
        log.info("agent video: codec %s, aiortc's own encoder", codec)
        return False
    if getattr(sender, _SENDER_ENCODER, "absent") is not None:
        log.info("agent video: this aiortc's sender has no encoder slot; aiortc's own encoder")
        return False
    setattr(sender, _SENDER_ENCODER, lean_vp8_encoder())
    return True


def lean_vp8_encoder():
    """A new LeanVp8Encoder (aiortc's encoder interface: encode, pack, target_bitrate)."""
    return _lean_encoder_class()()


@functools.cache
def _lean_encoder_class() -> type:
    from aiortc.codecs.vpx import Vp8Encoder

    class LeanVp8Encoder(Vp8Encoder):
        """aiortc's VP8 encoder (same packetizer, keyframes on PLI/FIR, bitrate from REMB) with
        libvpx's cheapest real-time settings for the agent's picture, static but for its code:
        no temporal denoiser (noise-sensitivity 0: the picture is synthetic), the fastest motion
        search (cpu-used -16), unchanged macroblocks skipped (static-thresh). A 640x480 frame in
        ~0.9 ms of CPU against ~2.4 ms, a third of the bytes, every code read back
        (tests/session/test_agent_encoder.py)."""

        def encode(self, frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            import av
            from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            rate = self.target_bitrate
            if self.codec is not None and (
                frame.width != self.codec.width
                or frame.height != self.codec.height
                or abs(rate - self.codec.bit_rate) / self.codec.bit_rate > 0.1
            ):
                self.codec = None  # reopened at the new size or bitrate (REMB), as aiortc does
            if force_keyframe:
                frame.pict_type = av.video.frame.PictureType.I
            if self.codec is None:
                self.codec = lean_vp8_context(frame.width, frame.height, rate)
            data = b"".join(bytes(p) for p in self.codec.encode(frame))
            payloads = self._packetize(data, self.picture_id)
            timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
            self.picture_id = (self.picture_id + 1) % (1 << 15)
            return payloads, timestamp

    return LeanVp8Encoder


def lean_vp8_context(width: int, height: int, bitrate_bps: int):
    """A libvpx encoder context (PyAV) with aiortc's rate control (CBR at `bitrate_bps`, one
    token partition, no lag) and the cheap settings of LeanVp8Encoder."""
    import av

    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.bit_rate = bitrate_bps
    ctx.gop_size = 3000  # keyframes when the receiver asks (PLI/FIR), as aiortc's
    ctx.qmin, ctx.qmax = 2, 56
    ctx.thread_count = 1
    rate = str(bitrate_bps)
    ctx.options = {
        "bufsize": rate,
        "minrate": rate,
        "maxrate": rate,
        "deadline": "realtime",
        "lag-in-frames": "0",
        "overshoot-pct": "15",
        "undershoot-pct": "100",
        "partitions": "0",
        "cpu-used": "-16",
        "noise-sensitivity": "0",
        "static-thresh": "1000",
    }
    return ctx


@functools.cache
def _agent_video_class() -> type:  # noqa: C901 -- one class, defined once aiortc is imported
    from aiortc import VideoStreamTrack

    class AgentVideo(VideoStreamTrack):
        """The agent's camera: EncodedLoop's packets once `use_loop` has a VP8 sender, else
        (and from a keyframe request until the loop's next keyframe) the same frames as
        av.VideoFrames for the sender's encoder."""

        def __init__(self, bot: AiortcAgentBot, session: BotSession) -> None:
            super().__init__()
            self.bot, self.session = bot, session
            self.n = 0
            self.t0: float | None = None
            self.loop: EncodedLoop | None = None
            self.sender = None
            self.live = False

        def use_loop(self, sender) -> None:
            if not hasattr(sender, _SENDER_FORCE_KEYFRAME):
                log.info("agent video: this aiortc's sender hides keyframe requests; live")
                return
            self.loop, self.sender = self.bot._encoded_loop(), sender
            self.live = self.n > 0  # frames already went out live: until the loop's keyframe

        async def recv(self):
            bot = self.bot
            if self.t0 is None:
                self.t0 = time.monotonic()
            t_capture = self.t0 + self.n / bot.fps  # this frame's place in the schedule
            await asyncio.sleep(max(0.0, t_capture - time.monotonic()))
            self.n += 1
            k = (self.n - 1) % bot.loop_frames + 1  # the loop's frame: its code
            out = self._packet(k)
            self._count(k, t_capture, live=out is None)
            if out is None:
                out = bot._frames.video_frame(k, loop_t_ms(k, bot.fps))
            out.pts, out.time_base = int(self.n * _VIDEO_CLOCK / bot.fps), _VIDEO_TIME_BASE
            return out

        def _count(self, k: int, t_capture: float, live: bool) -> None:
            """Frame k goes out: its capture time (what the lab monitor shows) in `sent`; a send
            later than the next frame's capture is the bot's loop running late (counted)."""
            bot, session = self.bot, self.session
            session.sent[k] = t_capture
            session.frames_sent += 1
            session.live_frames += live
            session.late_frames += time.monotonic() - t_capture > 1.0 / bot.fps
            if bot.display_url and self.n == 1:
                _keep(asyncio.ensure_future(bot._show_on_monitor(bot._base, t_capture)))

        def _packet(self, k: int):
            """Frame k's packet from the loop, or None: encode it live."""
            if self.loop is None:
                return None
            asked = getattr(self.sender, _SENDER_FORCE_KEYFRAME, False)
            if k == 1:  # the loop's keyframe answers any request
                self.live = False
                setattr(self.sender, _SENDER_FORCE_KEYFRAME, False)
            elif asked and not self.live:
                self.live = True  # the sender's encoder makes the keyframe asked for
                log.info("agent video: keyframe asked for at frame %d; live to the loop's end", k)
            return None if self.live else self.loop.packet(k)

    return AgentVideo


def loop_t_ms(k: int, fps: float) -> int:
    """The time stamped in the code of the agent loop's frame k (1-based): ms into the loop."""
    return int((k - 1) * 1000 / fps)


class EncodedLoop:
    """The agent's timecoded video encoded once: frame k (1..len) is the picture with the code
    (k, loop_t_ms(k)), as LeanVp8Encoder makes it from a cold start at aiortc's starting bitrate
    (frame 1 a keyframe, the only one; the loop's last frame is followed by its first). Sent
    packet by packet (aiortc packetizes them), the agent's picture costs no encoding per frame.
    The same stream as encoding live from the first frame, byte for byte, so the tablet sees
    the same pictures (tests/session/test_agent_encoder.py)."""

    def __init__(self, frames: AgentFrames, fps: float, n_frames: int) -> None:
        from aiortc.codecs.vpx import DEFAULT_BITRATE

        w, h = frames.size
        ctx = lean_vp8_context(w, h, DEFAULT_BITRATE)
        packets: list[bytes] = []
        for k in range(1, n_frames + 1):
            frame = frames.video_frame(k, loop_t_ms(k, fps))
            frame.pts, frame.time_base = int(k * _VIDEO_CLOCK / fps), _VIDEO_TIME_BASE
            packets.append(b"".join(bytes(p) for p in ctx.encode(frame)))
        if not all(packets) or packets[0][0] & 1:  # VP8: frame type bit 0 is 0 on a keyframe
            raise SessionError(
                f"agent video loop {w}x{h}: libvpx held frames back or did not start on a keyframe"
            )
        self.packets = packets
        self.fps = fps
        self.size = (w, h)

    def __len__(self) -> int:
        return len(self.packets)

    def packet(self, k: int):
        """Frame k's encoded frame as an av.Packet (pts and time_base are the caller's)."""
        import av

        return av.Packet(self.packets[k - 1])

    @property
    def size_bytes(self) -> int:
        return sum(len(p) for p in self.packets)


@functools.lru_cache(maxsize=4)
def encoded_loop(size: tuple[int, int], fps: float, n_frames: int) -> EncodedLoop:
    """The agent's video loop at this size and rate (cached: encoded once per process)."""
    w, h = size
    t0 = time.process_time()
    loop = EncodedLoop(AgentFrames(_agent_picture(w, h), feed_layout(w, h)), fps, n_frames)
    log.info(
        "agent video loop %dx%d: %d frames, %d kB, encoded in %.1f s of CPU",
        w,
        h,
        n_frames,
        loop.size_bytes // 1000,
        time.process_time() - t0,
    )
    return loop


OPUS_RATE_HZ = 48000
# the agent's silent microphone in 60 ms Opus packets (RFC 7587 allows up to 120 ms; aiortc's
# own encoder sends 20 ms): a third of the packets to make, protect and send, the same stream
OPUS_FRAME_S = 0.06


@functools.cache
def opus_silence() -> bytes:
    """One Opus packet of OPUS_FRAME_S of stereo silence (libopus as aiortc's encoder sets it up),
    taken once the encoder has settled: every packet of a silent microphone."""
    import av

    ctx = av.CodecContext.create("libopus", "w")
    ctx.bit_rate, ctx.format, ctx.layout, ctx.sample_rate = 96000, "s16", "stereo", OPUS_RATE_HZ
    ctx.options = {"application": "voip", "frame_duration": f"{OPUS_FRAME_S * 1000:g}"}
    n = int(OPUS_RATE_HZ * OPUS_FRAME_S)
    packets: list[bytes] = []
    for i in range(10):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        for p in frame.planes:
            p.update(bytes(p.buffer_size))
        frame.sample_rate, frame.pts = OPUS_RATE_HZ, i * n
        packets += [bytes(p) for p in ctx.encode(frame)]
    return packets[-1]


def _silence_track():
    """The agent's microphone: silence. Once Opus is negotiated (`use_packets`), each
    OPUS_FRAME_S is the same pre-encoded Opus packet (aiortc only packetizes it: no samples
    made, no encoder run); before that, or with another codec, aiortc's own silent track."""
    from fractions import Fraction

    import av
    from aiortc import AudioStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class Silence(AudioStreamTrack):
        use_packets = False

        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.t0: float | None = None

        async def recv(self):
            if not self.use_packets:
                return await super().recv()
            if self.readyState != "live":
                raise MediaStreamError
            if self.t0 is None:
                self.t0 = time.monotonic()
            else:
                await asyncio.sleep(max(0.0, self.t0 + self.n * OPUS_FRAME_S - time.monotonic()))
            packet = av.Packet(opus_silence())
            packet.pts = int(self.n * OPUS_FRAME_S * OPUS_RATE_HZ)
            packet.time_base = Fraction(1, OPUS_RATE_HZ)
            self.n += 1
            return packet

    return Silence()


class AgentFrames:
    """The agent's timecoded frames, made in the encoder's own format (yuv420p planes, as one
    (H * 3/2, W) array): the picture is converted once, and each frame is a copy of it with the
    code written into the luma plane (grey v as 16 + 219 v / 255, BT.601 video range, what the
    converter makes of it) and neutral chroma under it. The same frame as stamping the RGB
    picture and converting it, to a level of chroma at the code's edge (tests/session), at a
    seventieth of the cost (0.13 ms against 9 ms a 640x480 frame).

    `video_frame` gives the same pixels as av.VideoFrames from a pool of FRAME_POOL frames
    filled with the picture once: per frame only the code's block is rewritten (no full-size
    copy, no conversion to a new frame)."""

    FRAME_POOL = 4  # frames in turn: aiortc's sender encodes each before it asks for the next

    def __init__(self, rgb: np.ndarray, layout) -> None:
        """Args: rgb: the picture (H, W, 3), even sizes; layout: where the code goes."""
        from av import VideoFrame

        h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            raise SessionError(f"agent video {w}x{h}: yuv420p needs even sizes")
        self.size = (w, h)
        self.layout = layout
        base = VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        self._yuv = base.reformat(format="yuv420p").to_ndarray()
        self._luma = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
        x, y, bw, bh = layout.bbox
        x2, y2 = x + bw, y + bh
        self._box = (slice(y, y2), slice(x, x2))
        # chroma samples each cover 2x2 pixels: those that the code covers (rounded outward)
        self._cbox = (slice(y // 2, (y2 + 1) // 2), slice(x // 2, (x2 + 1) // 2))
        self._pool: list = []  # (VideoFrame, its code's luma as (14, cell, 14, cell)): on first use
        self._turn = 0
        cell = layout.cell_w
        if cell != layout.cell_h or cell != int(cell) or (bw, bh) != (BLOCK_CELLS * cell,) * 2:
            raise SessionError(
                f"agent video {w}x{h}: the code's layout {layout} is not on whole pixels"
            )
        self._cell = int(cell)

    def frame(self, frame_no: int, t_ms: int) -> np.ndarray:
        """A new yuv420p array holding the picture with the code (frame_no, t_ms)."""
        w, h = self.size
        out = self._yuv.copy()
        luma = out[:h]
        stamp(luma, frame_no, t_ms, self.layout)  # grey levels 0..255 into the luma plane
        luma[self._box] = self._luma[luma[self._box]]
        for plane in (out[h : h + h // 4], out[h + h // 4 :]):
            plane.reshape(h // 2, w // 2)[self._cbox] = 128
        return out

    def video_frame(self, frame_no: int, t_ms: int):
        """The picture with the code (frame_no, t_ms) as a yuv420p av.VideoFrame, the same pixels
        as `frame`. It is one of FRAME_POOL frames used in turn: valid until FRAME_POOL - 1 more
        calls (pts, time_base and pict_type are the caller's to set; pict_type is reset here)."""
        from av.video.frame import PictureType

        if not self._pool:
            self._fill_pool()
        video, cells = self._pool[self._turn]
        self._turn = (self._turn + 1) % len(self._pool)
        # stamp's pixels: each of the 14 x 14 cells' level, as video-range luma, cell x cell times
        cells[...] = self._luma[code_block(frame_no, t_ms)][:, None, :, None]
        video.pict_type = PictureType.NONE  # an encoder's forced keyframe is not inherited
        return video

    def _fill_pool(self) -> None:
        from av import VideoFrame

        w, h = self.size
        first = self.frame(0, 0)  # the picture with neutral chroma under the code
        n, cell = BLOCK_CELLS, self._cell
        for _ in range(self.FRAME_POOL):
            video = VideoFrame.from_ndarray(first, format="yuv420p")
            plane = video.planes[0]
            luma = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w]
            self._pool.append((video, luma[self._box].reshape(n, cell, n, cell)))


def _agent_picture(w: int, h: int) -> np.ndarray:
    """The bot's camera picture (RGB): a figure on a soft background, with texture for codecs."""
    import cv2

    img = np.empty((h, w, 3), np.uint8)
    img[:] = (200, 214, 228)
    rng = np.random.default_rng(7)
    img += rng.integers(0, 12, img.shape, dtype=np.uint8)
    cx, cy, r = w // 2, int(h * 0.42), max(4, min(w, h) // 6)
    cv2.circle(img, (cx, cy), r, (224, 172, 140), -1, cv2.LINE_AA)
    cv2.ellipse(
        img, (cx, h), (int(r * 2.2), int(r * 1.8)), 0, 180, 360, (40, 70, 140), -1, cv2.LINE_AA
    )
    return img
