"""The browser agent's media plumbing: the fake camera clip and microphone WAV Chromium plays,
and the loopback sink the page hands its measurements to.

The clip (MJPEG: concatenated JPEGs, which Chromium's fake capture device plays at 30 fps) is
the reference bot's picture (harness.session.agent) with a harness.vision.timecode code per
frame, in the same place (feed_layout); the device loops it, so frame numbers repeat every CLIP_S
seconds: a frame number identifies a send only within that period (every measurement window here
is shorter). The code's time field holds the frame's time in the clip (ms), not a host time: the
host send time of each capture is what the page reports (PageSink /camera) and goes to
`session.sent`. Cached in clip_dir(): one clip (CLIP_S = 60 s, about 40 MB; other clips there
are removed when it is written) and the microphone's WAV.

The sink is an HTTP server on 127.0.0.1 (one thread per request). The page calls:
    GET  /clock                      -> {"t": host monotonic s}  (the ping exchange)
    POST /share?t=&rt=&w=&h=&n=      RGBA pixels of one share frame (t: presentation time, page ms)
    POST /camera?t=&w=&h=            RGBA pixels of the code block of one camera frame (t: capture time)
    POST /audio?t=&rate=             float32 mono samples of the tablet's microphone (t: page ms)
Bodies are raw bytes (Content-Type text/plain: a CORS-simple request, no preflight).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

log = logging.getLogger(__name__)

CLIP_SIZE = (640, 480)  # as AiortcAgentBot sends
CLIP_FPS = 30  # Chromium plays an MJPEG file at 30 fps
# loop period: longer than any glass-to-glass window plus its latency, and than a session's
# start plus a dual-view window (the lab monitor shows the clip's codes in its first pass only)
CLIP_S = 60.0
CLIP_FRAMES = int(round(CLIP_S * CLIP_FPS))
CLIP_PRUNE_AGE_S = 3600.0  # another clip in the cache is removed once unused this long
CLIP_JPEG_QUALITY = 85  # the code reads after the twin's decode; ~23 kB a frame
SENT_KEEP_S = CLIP_S - 3.0  # older send times are dropped: a frame number then means this loop's
WAV_RATE = 48000
SINK_MAX_BODY = 16 << 20  # one 1920x1200 RGBA frame is 9 MiB


def clip_dir() -> Path:
    """Where clips are cached (one per size and rate: they are deterministic)."""
    d = Path(tempfile.gettempdir()) / f"hil-browser-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def write_agent_clip(size: tuple[int, int] = CLIP_SIZE, seconds: float = CLIP_S) -> Path:
    """The timecoded agent camera clip (MJPEG at CLIP_FPS), written once and reused (atomically
    renamed); any other clip in clip_dir() is removed (the cache holds one).

    Returns:
        Its path. Frame k (1-based) carries frame_no k and t_ms = int((k - 1) * 1000 / fps).
    """
    import cv2

    from harness.session.agent import _agent_picture
    from harness.vision.timecode import feed_layout, stamp

    w, h = size
    fps = CLIP_FPS
    n = int(round(seconds * fps))
    path = clip_dir() / f"agent-{w}x{h}-{fps}fps-{n}-q{CLIP_JPEG_QUALITY}.mjpeg"
    if path.exists() and path.stat().st_size > 0:
        _prune_clips(path)
        return path
    base = cv2.cvtColor(_agent_picture(w, h), cv2.COLOR_RGB2BGR)
    layout = feed_layout(w, h)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        for k in range(1, n + 1):
            img = base.copy()
            stamp(img, k, int((k - 1) * 1000 / fps), layout)
            ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, CLIP_JPEG_QUALITY])
            f.write(jpg.tobytes())
    os.replace(tmp, path)
    _prune_clips(path)
    return path


def _prune_clips(keep: Path) -> None:
    """The cache holds one clip: any other (an earlier 207 MB Y4M, another size) is removed once
    an hour old (a run of another version may be about to hand it to its Chromium)."""
    now = time.time()
    for old in clip_dir().glob("agent-*"):
        if old == keep or old.suffix not in (".y4m", ".mjpeg"):
            continue
        try:
            if now - old.stat().st_mtime > CLIP_PRUNE_AGE_S:
                old.unlink()
        except OSError as e:  # gone meanwhile, or not ours: the cache stays usable
            log.info("browser clip cache: %s: %s", old, e)


def write_agent_wav(seconds: float = 4.0) -> Path:
    """The agent's microphone: the harness's chirp after a second of silence (16-bit mono WAV)."""
    import wave

    from harness.session.media import chirp

    path = clip_dir() / f"agent-voice-{WAV_RATE}-{seconds:g}s.wav"
    if path.exists() and path.stat().st_size > 0:
        return path
    pcm = np.zeros(int(seconds * WAV_RATE), np.int16)
    part = chirp(WAV_RATE)[: len(pcm) - WAV_RATE]
    pcm[WAV_RATE : WAV_RATE + len(part)] = part
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(WAV_RATE)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)
    return path


class PageSink:
    """The loopback server the page posts to; calls the handlers from its request threads.

    Args:
        on_share(t_page_ms, receive_ms, rgba HxWx4, rtp): one share frame (rtp: its RTP
            timestamp, or None).
        on_shown([[rtp, presentation page ms], ...]): share frames the page presented.
        on_camera(t_page_ms, rgba HxWx4): the code block of one camera frame.
        on_audio(t_page_ms, rate, float32 samples): one block of the tablet's microphone.
    """

    def __init__(
        self,
        on_share: Callable[[float, float | None, np.ndarray, int | None], None],
        on_camera: Callable[[float, np.ndarray], None],
        on_audio: Callable[[float, int, np.ndarray], None],
        on_shown: Callable[[list], None] | None = None,
    ):
        self.handlers = {"/share": on_share, "/camera": on_camera, "/audio": on_audio}
        if on_shown is not None:
            self.handlers["/shown"] = on_shown
        self.received = dict.fromkeys(self.handlers, 0)
        self.errors = 0
        self.server: ThreadingHTTPServer | None = None
        # the share's posts on a port of their own: a browser keeps at most 6 connections to one
        # host and port, and a backlog of share frames must not hold up the clock's pings
        self.share_server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def share_url(self) -> str:
        assert self.share_server is not None
        return f"http://127.0.0.1:{self.share_server.server_address[1]}"

    def start(self) -> PageSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args) -> None:  # no access log
                return

            def _reply(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                if body:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                if urlsplit(self.path).path == "/clock":
                    self._reply(200, json.dumps({"t": time.monotonic()}).encode())
                else:
                    self._reply(404)

            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if url.path not in sink.handlers or not 0 < length <= SINK_MAX_BODY:
                    self._reply(404 if url.path not in sink.handlers else 413)
                    return
                body = self.rfile.read(length)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                try:
                    sink._handle(url.path, q, body)
                    sink.received[url.path] += 1
                    self._reply(204)
                except Exception as e:  # noqa: BLE001 -- a bad post is counted, never fatal
                    sink.errors += 1
                    log.info("browser page sink %s: %s: %s", url.path, type(e).__name__, e)
                    self._reply(400)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.share_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        for server in (self.server, self.share_server):
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, name="browser-sink", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _handle(self, path: str, q: dict[str, str], body: bytes) -> None:
        if path == "/shown":
            self.handlers[path](json.loads(body))
            return
        t = float(q["t"])
        if path == "/audio":
            self.handlers[path](t, int(q["rate"]), np.frombuffer(body, np.float32).copy())
            return
        w, h = int(q["w"]), int(q["h"])
        rgba = np.frombuffer(body, np.uint8).reshape(h, w, 4)
        if path == "/share":
            rt, rtp = q.get("rt"), q.get("rtp")
            self.handlers[path](t, float(rt) if rt else None, rgba, int(rtp) if rtp else None)
        else:
            self.handlers[path](t, rgba)

    def stop(self) -> None:
        """Stop serving. Never raises."""
        for server in (self.server, self.share_server):
            if server is None:
                continue
            try:
                server.shutdown()
                server.server_close()
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.info("browser page sink: stop: %s", e)
        for thread in self._threads:
            thread.join(2.0)
        self.server = self.share_server = None
        self._threads = []


MONITOR_POST_TIMEOUT_S = 2.0  # one post to the lab camera
MONITOR_JPEG_QUALITY = 90


class MonitorFeed:
    """Puts the browser agent's camera on a lab camera's agent monitor (POST /agent_display in
    preview mode, then /agent_frames anchors; harness/twin/camera.py): the picture once, then the
    latest anchor (clip frame i captured at host time t) whenever a newer one is set, from one
    thread (posts coalesce: a slow monitor gets the newest anchor, never a queue).

    Failures are counted and logged, never raised (the monitor is a measurement aid).
    """

    def __init__(self, display_url: str, picture_bgr: np.ndarray, fps: float, loop_frames: int):
        url = urlsplit(display_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.base = display_url.rsplit("/", 1)[0]
        self.picture, self.fps, self.loop_frames = picture_bgr, fps, loop_frames
        self.posted = 0
        self.errors = 0
        self._latest: tuple[int, float] | None = None
        self._sent_i = -1
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> bool:
        import http.client

        conn = http.client.HTTPConnection(self.host, self.port, timeout=MONITOR_POST_TIMEOUT_S)
        try:
            conn.request("POST", path, body=body, headers=headers)
            ok = conn.getresponse().status == 204
        except OSError as e:
            ok = False
            log.info("lab monitor %s%s: %s", self.base, path, e)
        finally:
            conn.close()
        if not ok:
            self.errors += 1
        return ok

    def start(self) -> MonitorFeed:
        import cv2

        jpg = cv2.imencode(".jpg", self.picture, [cv2.IMWRITE_JPEG_QUALITY, MONITOR_JPEG_QUALITY])[
            1
        ]
        headers = {"X-FPS": f"{self.fps:g}", "X-Loop-Frames": str(self.loop_frames)}
        self._post("/agent_display", jpg.tobytes(), headers)
        self._thread = threading.Thread(target=self._run, name="browser-monitor", daemon=True)
        self._thread.start()
        return self

    def anchor(self, i: int, t: float) -> None:
        """Clip frame i (from 0, counted from the camera's start) was captured at host time t."""
        if self._latest is None or i > self._latest[0]:
            self._latest = (i, t)
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            got = self._latest
            if got is None or got[0] <= self._sent_i or self._stop.is_set():
                continue
            body = json.dumps({"i": got[0], "t": got[1]}).encode()
            if self._post("/agent_frames", body, {"Content-Type": "application/json"}):
                self.posted += 1
            self._sent_i = got[0]

    def stop(self) -> None:
        """Stop posting. Never raises."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(MONITOR_POST_TIMEOUT_S + 1.0)
