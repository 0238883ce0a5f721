"""The lab camera: an MJPEG stream over HTTP that films the tablet's screen and the agent's
display side by side, as a real IP camera on the bench would (read it with cv2.VideoCapture).

- GET /stream.mjpg: multipart/x-mixed-replace JPEG frames at CAMERA_FPS.
- POST /agent_display: the agent's monitor: a JPEG of the agent's picture and its frame rate
  (header X-FPS), sent once by the AgentBot. The monitor shows the agent's live preview: at
  every instant, that picture with the code of that instant (frame number, host time), as the
  agent's own screen shows what is being sent now (an ideal, lag-free monitor).
  With header X-Loop-Frames: N (an agent whose camera plays a looping timecoded clip, as the
  browser agent's fake capture device does and the AgentBot's encoded loop) the monitor is the camera's preview instead: it
  shows the clip frame the camera is capturing, from the anchors below, with the clip's own code
  (frame i + 1, t_ms = int(i * 1000 / fps), i counted from 0 from the camera's start); past the
  clip's first pass (i >= N) its codes repeat, so the monitor shows the picture without a code.
- POST /agent_frames: a JSON anchor {"i": i, "t": host monotonic s}: the camera captured clip
  frame i at t. The monitor's clip clock runs from it at the clip's rate; it never goes back (a
  capture schedule that slipped holds it until the camera catches up). Each anchor is written to
  the ground truth (agent_monitor_anchor: when it took effect, i, t).
The picture has each display under a slight perspective, lens blur, sensor noise and an
exposure window: a display that changed during the exposure is caught blended (the codes'
mid-refresh case). Every camera frame is written to the ground truth with what each display
showed at its mid-exposure instant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

CAMERA_FPS = 30.0
CAMERA_SIZE = (1280, 720)
EXPOSURE_S = 0.008
NOISE_SIGMA = 2.5
_BOUNDARY = b"hilframe"
_MAX_BODY = 4 << 20
_MAX_ANCHOR = 256  # bytes: one /agent_frames anchor


class LabCamera:
    def __init__(
        self,
        twin: Twin,
        fps: float = CAMERA_FPS,
        size: tuple[int, int] = CAMERA_SIZE,
        seed: int = 1,
    ):
        self.twin = twin
        self.fps = fps
        self.size = size
        rng = np.random.default_rng(seed)
        # sensor noise: a small bank of precomputed fields, cycled (drawing it per frame costs more than the rest)
        self._noise = [
            rng.normal(0, NOISE_SIGMA, (size[1], size[0], 3)).astype(np.int16) for _ in range(4)
        ]
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self.agent_picture: np.ndarray | None = None  # BGR, the agent's picture without its code
        self.agent_fps = 30.0
        self._agent_t0 = 0.0
        self.agent_frame_no: int | None = None
        self.agent_loop_frames: int | None = None  # preview mode: the clip's frames per pass
        self._anchor: tuple[int, float] | None = None  # (clip frame i, host time it was captured)
        self._preview_hold = float("-inf")  # the preview's clip clock (s) when last re-anchored
        self.agent_display_t_ms: int | None = None
        self._prev_tablet: tuple[np.ndarray, float, int] | None = None
        self._tablet: tuple[np.ndarray, float, int] | None = None
        self.index = 0
        w, h = size
        half = w // 2
        # where each display lands: a slight keystone, as seen by a camera above the bench
        self._h_tablet = self._homography(
            twin.profile.display.width,
            twin.profile.display.height,
            [(20, 70), (half - 15, 90), (half - 25, h - 80), (35, h - 60)],
        )
        self._h_agent = None
        self._agent_quad = [
            (half + 25, 150),
            (w - 20, 135),
            (w - 30, h - 140),
            (half + 35, h - 150),
        ]

    @staticmethod
    def _homography(src_w: int, src_h: int, quad) -> np.ndarray:
        src = np.float32([(0, 0), (src_w, 0), (src_w, src_h), (0, src_h)])
        return cv2.getPerspectiveTransform(src, np.float32(quad))

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    # --- scene
    def _tablet_now(self) -> tuple[np.ndarray, float, int]:
        screen = self.twin.screen
        version = screen.version
        if self._tablet is None or self._tablet[2] != version:
            img = cv2.cvtColor(screen.frame(display=True), cv2.COLOR_RGBA2BGR)  # the glass
            self._prev_tablet = self._tablet
            self._tablet = (img, time.monotonic(), version)
        return self._tablet

    def compose(self) -> tuple[np.ndarray, dict]:
        """One camera frame at mid-exposure `now`."""
        w, h = self.size
        t = time.monotonic()
        tablet, t_changed, version = self._tablet_now()
        pic = np.full((h, w, 3), 40, np.uint8)
        pic = cv2.warpPerspective(
            tablet, self._h_tablet, (w, h), dst=pic, borderMode=cv2.BORDER_TRANSPARENT
        )
        frac = (t - t_changed) / EXPOSURE_S
        if 0 <= frac < 1 and self._prev_tablet is not None:  # it changed during the exposure
            prev = cv2.warpPerspective(
                self._prev_tablet[0],
                self._h_tablet,
                (w, h),
                dst=np.full((h, w, 3), 40, np.uint8),
                borderMode=cv2.BORDER_TRANSPARENT,
            )
            pic = cv2.addWeighted(pic, frac, prev, 1 - frac, 0)
        if self.agent_picture is not None and self.agent_loop_frames is not None:
            pic = self._compose_preview(pic, t)
        elif self.agent_picture is not None:
            ah, aw = self.agent_picture.shape[:2]
            if self._h_agent is None or self._h_agent[1] != (aw, ah):
                self._h_agent = (self._homography(aw, ah, self._agent_quad), (aw, ah))
            period = 1.0 / self.agent_fps
            n = int((t - self._agent_t0) / period) + 1
            agent = cv2.warpPerspective(
                self._monitor(n, t),
                self._h_agent[0],
                (w, h),
                dst=pic.copy(),
                borderMode=cv2.BORDER_TRANSPARENT,
            )
            t_flip = self._agent_t0 + (n - 1) * period
            frac = (t - t_flip) / EXPOSURE_S
            if 0 <= frac < 1 and n > 1:  # the monitor refreshed during the exposure: caught blended
                prev = cv2.warpPerspective(
                    self._monitor(n - 1, t_flip - 1e-3),
                    self._h_agent[0],
                    (w, h),
                    dst=pic.copy(),
                    borderMode=cv2.BORDER_TRANSPARENT,
                )
                agent = cv2.addWeighted(agent, frac, prev, 1 - frac, 0)
            self.agent_frame_no = n
            pic = agent
        pic = cv2.GaussianBlur(pic, (3, 3), 0.8)
        pic = np.clip(
            pic.astype(np.int16) + self._noise[self.index % len(self._noise)], 0, 255
        ).astype(np.uint8)
        session = self.twin.screen.session
        facts = {
            "index": self.index,
            "t": t,
            "tablet_version": version,
            "agent_display_frame": self.agent_frame_no,
            "agent_display_t_ms": self.agent_display_t_ms,
            "tablet_agent_frame": getattr(session, "shown_frame_no", None) if session else None,
        }
        self.index += 1
        return pic, facts

    def _preview_code(self, t: float) -> tuple[int, float] | None:
        """Preview mode: (clip frame i shown at instant t, when it came on), or None (no code)."""
        if self._anchor is None:
            return None
        i_a, t_a = self._anchor
        period = 1.0 / self.agent_fps
        clock = max(t - t_a + i_a * period, self._preview_hold)  # clip time (s), never back
        i = int(np.floor(clock / period + 1e-9))
        if i < 0 or i >= self.agent_loop_frames:
            return None
        return i, t - (clock - i * period)

    def _compose_preview(self, pic: np.ndarray, t: float) -> np.ndarray:
        """The agent's monitor as the camera's preview: the clip frame captured now, its code."""
        from harness.vision.timecode import feed_layout, stamp

        shown = self._preview_code(t)
        img = self.agent_picture.copy()
        ah, aw = img.shape[:2]
        if self._h_agent is None or self._h_agent[1] != (aw, ah):
            self._h_agent = (self._homography(aw, ah, self._agent_quad), (aw, ah))

        def warp(i: int | None) -> np.ndarray:
            face = img.copy()
            if i is not None:
                stamp(face, i + 1, int(i * 1000 / self.agent_fps), feed_layout(aw, ah))
            return cv2.warpPerspective(
                face,
                self._h_agent[0],
                (pic.shape[1], pic.shape[0]),
                dst=pic.copy(),
                borderMode=cv2.BORDER_TRANSPARENT,
            )

        i = shown[0] if shown else None
        out = warp(i)
        if shown is not None and i > 0:
            frac = (t - shown[1]) / EXPOSURE_S
            if 0 <= frac < 1:  # the preview refreshed during the exposure: caught blended
                out = cv2.addWeighted(out, frac, warp(i - 1), 1 - frac, 0)
        self.agent_frame_no = None if i is None else i + 1
        self.agent_display_t_ms = None if i is None else int(i * 1000 / self.agent_fps)
        return out

    def _monitor(self, n: int, t: float) -> np.ndarray:
        """The agent's monitor at instant t: the picture with frame n's code, stamped with t."""
        from harness.vision.timecode import feed_layout, stamp

        img = self.agent_picture.copy()
        h, w = img.shape[:2]
        stamp(img, n, int(t * 1000) % (1 << 32), feed_layout(w, h))
        return img

    # --- HTTP
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            if method == "POST" and path == "/agent_display":
                length = int(headers.get("content-length", "0"))
                if not 0 < length <= _MAX_BODY:
                    writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
                    return
                body = await asyncio.wait_for(reader.readexactly(length), 10.0)
                img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
                if img is None:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    return
                self.agent_picture = img
                self.agent_fps = float(headers.get("x-fps", self.agent_fps))
                self._agent_t0 = time.monotonic()
                loop = headers.get("x-loop-frames")
                self.agent_loop_frames = int(loop) if loop else None
                self._anchor, self._preview_hold = None, float("-inf")
                self.twin.truth.record(
                    "agent_monitor_on", fps=self.agent_fps, loop_frames=self.agent_loop_frames
                )
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            elif method == "POST" and path == "/agent_frames":
                length = int(headers.get("content-length", "0"))
                if not 0 < length <= _MAX_ANCHOR:
                    writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
                    return
                got = json.loads(await asyncio.wait_for(reader.readexactly(length), 10.0))
                i, t_cap = int(got["i"]), float(got["t"])
                if self._anchor is None or i >= self._anchor[0]:
                    now = time.monotonic()
                    if self._anchor is not None:  # the clock it showed until now is kept
                        i_a, t_a = self._anchor
                        self._preview_hold = max(
                            self._preview_hold, now - t_a + i_a / self.agent_fps
                        )
                    self._anchor = (i, t_cap)
                    self.twin.truth.record("agent_monitor_anchor", t=now, i=i, t_capture=t_cap)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            elif method == "GET" and path.startswith("/stream.mjpg"):
                await self._stream(writer)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            TimeoutError,
            ValueError,
            KeyError,
            TypeError,
        ):
            pass
        finally:
            writer.close()

    def _shoot(self) -> tuple[np.ndarray, dict]:
        pic, facts = self.compose()
        ok, jpg = cv2.imencode(".jpg", pic, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return jpg, facts

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary="
            + _BOUNDARY
            + b"\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        period = 1.0 / self.fps
        t0 = time.monotonic()
        n = 0
        loop = asyncio.get_running_loop()
        while True:
            # off the event loop: the camera is its own hardware, it must not slow the tablet down
            jpg, facts = await loop.run_in_executor(None, self._shoot)
            self.twin.truth.record("camera_frame", **facts)
            part = (
                b"--"
                + _BOUNDARY
                + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(jpg)).encode()
                + b"\r\n\r\n"
                + jpg.tobytes()
                + b"\r\n"
            )
            writer.write(part)
            await writer.drain()
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * period - time.monotonic()))
