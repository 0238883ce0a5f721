"""`browser`: the agent as a web agent console in headless Chromium (issue 12, docs/agents.md).

The adapter starts chromedriver (OS package chromium-driver) as a child of the run (own process
group, in the reaper's ledger; Chromium runs in that group, its PID recorded too), drives it with
Selenium 4 over WebDriver, and opens the console its page-object names (default: the twin
world's console, harness/session/agents/twin_console.yaml). Everything the agent does goes
through the page's own UI: pointer strokes and clicks on its canvas, its buttons.

Media: Chromium's fake capture device plays a timecoded clip (browser_media.write_agent_clip,
MJPEG, 60 s loop) as the camera and a WAV as the microphone; with a lab camera the captures
drive its agent monitor as the camera's preview (browser_media.MonitorFeed: dual view). An injected probe (browser_probe.js) reads the local
camera preview and the received share with requestVideoFrameCallback and posts what it reads to a
loopback sink (browser_media.PageSink): each camera frame's captureTime with its code block (the
harness decodes the frame number: `session.sent`), each share frame's presentationTime with its
pixels (`session.share`), the tablet's microphone in 20 ms blocks (`session.audio`).

Clocks: the page's clock is performance.now() (ms); both it and time.monotonic() run on
CLOCK_MONOTONIC, so one offset maps it: a ping exchange (the page fetches the sink's /clock,
CLOCK_PINGS times) keeps the sample with the smallest round trip; the host time was read within
that round trip, so the mapping's error is at most half of it (`clock.error_s`, typically
under 1 ms on loopback). It is measured at start and again once connected (the best is kept).

Network: the page reaches only 127.0.0.1 (the backend and the sink); no ICE server; Chromium's
mDNS host-name obfuscation is off (no multicast). Chromium 150 gathers the host's interface
addresses as candidates (it adds a loopback network only on a host without any other): the twin's
peer offers 127.0.0.1 only, so every candidate pair is a local address with 127.0.0.1, which the
kernel delivers on the loopback interface; nothing is sent on a wire (the test checks the
selected pair).

Size: one adapter (browser process, page-object, the probe's media, the UI actions) whose parts
share one WebDriver session, one sink and one clock mapping.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import numpy as np

from harness.errors import HarnessError, ProfileError, SessionError
from harness.session.agents.base import AgentContext

log = logging.getLogger(__name__)

BROWSER_START_TIMEOUT_S = 30.0  # chromedriver ready + a new Chromium session
COMMAND_TIMEOUT_S = 20.0  # any one WebDriver command (HTTP to chromedriver)
PAGE_LOAD_TIMEOUT_S = 15.0
JOIN_TIMEOUT_S = 15.0  # the console shows it joined the backend
ACTION_TIMEOUT_S = 5.0  # a UI action and its data-channel message
SCRIPT_TIMEOUT_S = 10.0  # an async hook (ping exchange, stats)
STOP_TIMEOUT_S = 10.0
CLOCK_PINGS = 20
SCHEDULE_SLIP_S = 0.05  # a camera capture this far behind its schedule: the schedule slipped
PROBE_MAX_IN_FLIGHT = 4  # posts to one sink path in flight before the probe drops frames (counted)
SHARE_BUFFER_FRAMES = 30  # decoded share frames waiting for the page's reader (2 s at 15 fps)
SHARE_QUEUE_FRAMES = 30  # share frames read, waiting for a post: beyond, one is dropped (counted)
AUDIO_BLOCK = 1920  # samples the probe gathers before it posts (40 ms at 48 kHz)
AUDIO_RATE = 48000  # unused by MediaStreamTrackProcessor (the track's own rate: 48 kHz)
CODE_READ_PX = 4  # pixels per timecode cell the probe reads from the camera preview
WINDOW_SIZE = (1700, 1100)
DEFAULT_SCREEN = "1280x800"
PAGE_OBJECT = Path(__file__).with_name("twin_console.yaml")
PROBE_JS = Path(__file__).with_name("browser_probe.js")
_KEEP_FRAMES = 900
_KEEP_RTP = 120  # share frames (8 s at 15 fps) a presentation can still be paired with
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,OptimizationHints",
    "--webrtc-ip-handling-policy=default_public_and_private_interfaces",
    "--allow-loopback-in-peer-connection",
    # the console at zoom 1 maps a CSS pixel to a tablet pixel (exact pointer events); drawn at
    # half scale, software compositing of the 1280x800 stage costs a quarter: the page then
    # presents 14 of 15 share frames a second on a loaded 2-core host instead of 7
    "--force-device-scale-factor=0.5",
)
# adapter options from the environment (the suites' --agent browser has no option of its own);
# AgentContext.options win
ENV_OPTIONS = {
    "page_object": os.environ.get("HIL_BROWSER_PAGE_OBJECT", ""),
    "codec": os.environ.get("HIL_BROWSER_CODEC", ""),
    "screen": os.environ.get("HIL_BROWSER_SCREEN", ""),
}
INSTALL_HINT = "install the OS packages chromium chromium-driver"
PAGE_OBJECT_KEYS = {
    "selectors": (
        "share_video",
        "camera_preview",
        "stroke_canvas",
        "mode_draw",
        "mode_tap",
        "clear_strokes",
        "request_control",
        "access_package",
        "request_access",
        "hang_up",
        "leave",
    ),
    "hooks": ("joined", "connected", "error", "sent", "replies", "to_viewport", "set_pen"),
}


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) executables, or None when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@dataclass(frozen=True)
class PageObject:
    """How to drive one web agent console: its URL template, CSS selectors and JS hooks."""

    name: str
    url: str
    selectors: dict[str, str]
    hooks: dict[str, str]
    file: str = ""

    @classmethod
    def load(cls, path: Path | str = PAGE_OBJECT) -> PageObject:
        """Read and validate a page-object YAML file.

        Raises:
            ProfileError: unreadable, or a key missing or not a string (names file and key).
        """
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ProfileError(str(path), "-", f"unreadable page-object: {e}") from None
        if not isinstance(data, dict):
            raise ProfileError(str(path), "-", "a page-object is a mapping")
        for key in ("name", "url"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ProfileError(str(path), key, "a non-empty string required")
        parts = {}
        for section, required in PAGE_OBJECT_KEYS.items():
            got = data.get(section)
            if not isinstance(got, dict):
                raise ProfileError(str(path), section, "a mapping required")
            for key in required:
                if not isinstance(got.get(key), str) or not got[key].strip():
                    raise ProfileError(str(path), f"{section}.{key}", "a non-empty string required")
            parts[section] = {str(k): str(v) for k, v in got.items()}
        return cls(data["name"], data["url"], parts["selectors"], parts["hooks"], str(path))


@dataclass
class ClockMapping:
    """Page clock (performance.now(), ms) -> host time.monotonic() (s): host = ms / 1000 + offset.

    error_s: half the smallest ping round trip: the host time was read inside it."""

    offset_s: float = 0.0
    error_s: float = float("inf")
    rtt_s: float = float("inf")
    pings: int = 0

    def host(self, page_ms: float) -> float:
        return page_ms / 1000.0 + self.offset_s

    def update(self, samples: list[list[float]]) -> None:
        """Keep the ping (p0 ms, p1 ms, host s) with the smallest round trip seen so far."""
        for p0, p1, h in samples:
            rtt = (p1 - p0) / 1000.0
            self.pings += 1
            if 0 <= rtt < self.rtt_s:
                self.rtt_s, self.error_s = rtt, rtt / 2.0
                self.offset_s = h - (p0 + p1) / 2000.0

    def to_dict(self) -> dict[str, float]:
        return {"offset_s": self.offset_s, "error_ms": self.error_s * 1000.0, "pings": self.pings}


@dataclass
class ReceivedFrame:
    image: np.ndarray  # BGR
    t_arrival: float  # host monotonic: the frame's presentation time in the page, mapped
    index: int
    t_receive: float | None = None  # when its last packet arrived (receiveTime, mapped)


@dataclass
class BrowserSession:
    """The media records of the browser agent's session (as harness.session.agent.BotSession)."""

    device: str
    sent: dict[int, float] = field(default_factory=dict)  # frame_no -> host capture time (s)
    share: deque = field(default_factory=lambda: deque(maxlen=_KEEP_FRAMES))
    share_count: int = 0
    share_earlier_presented: int = 0  # share frames stamped by their presentation (earlier)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)
    audio_rate: int = 0
    replies: list[tuple[float, dict]] = field(default_factory=list)
    camera_frames: int = 0  # camera preview frames read
    camera_unread: int = 0  # ... whose code did not read
    # the fake camera's capture schedule slipped (a capture later than a frame interval behind
    # it: the clip then plays behind host time): (host time, slip s)
    slips: list[tuple[float, float]] = field(default_factory=list)
    clock: ClockMapping = field(default_factory=ClockMapping)
    ended: bool = False


class BrowserAgent:
    """The agent in a web agent console in headless Chromium, driven through its UI."""

    name: ClassVar[str] = "browser"
    cooperative: ClassVar[bool] = True
    # the camera's captures drive the lab camera's agent monitor (AgentContext.display_url) as
    # its preview: dual-view glass-to-glass (browser_media.MonitorFeed)
    lab_monitor: ClassVar[bool] = True

    def __init__(
        self,
        http: tuple[str, int],
        token: str,
        device: str,
        name: str = "browser-agent",
        page_object: PageObject | None = None,
        codec: str = "",
        screen: str = DEFAULT_SCREEN,
        display_url: str | None = None,
    ):
        self.http, self.token, self.device, self.agent_name = http, token, device, name
        self.display_url = display_url
        self.monitor = None  # browser_media.MonitorFeed, with a display_url
        self._cam_lock = threading.Lock()  # the sink's request threads read camera frames
        self._share_lock = threading.Lock()
        self._by_rtp: dict[int, ReceivedFrame] = {}  # recent share frames by RTP timestamp
        self._presented: dict[int, float] = {}  # presentations (page ms) not yet paired
        self._cam_pass = 0  # passes of the clip the camera completed
        self._cam_last_k: int | None = None
        self._schedule_s: float | None = None  # capture schedule: host time of clip frame 0
        self.page = page_object or PageObject.load()
        self.codec = codec
        self.screen = screen
        self.session = BrowserSession(device)
        self.driver = None
        self.chromedriver = None  # harness.farm.process.Child
        self.chromium_pid: int | None = None
        self._chromium_started: int | None = None  # its start time (a reused PID is not it)
        self.profile: Path | None = None
        self.sink = None
        self._sent_seen = 0
        self._replies_seen = 0
        self._audio_carry = np.zeros(0, np.int16)
        self.broken = False  # a WebDriver step failed or hung: the browser is not asked again

    @classmethod
    def from_context(cls, ctx: AgentContext) -> BrowserAgent:
        """Raises HarnessError: no HTTP agent API or token, a media profile (the browser's media
        does not cross the impairment relay), or a bad page-object."""
        opts = {k: v for k, v in ENV_OPTIONS.items() if v} | dict(ctx.options)
        if ctx.http is None or not ctx.token:
            raise HarnessError(
                "--agent browser: needs the support backend's HTTP agent API and its token"
            )
        if ctx.media_profile is not None:
            raise HarnessError(
                "--agent browser: a media network profile is not supported (the browser's "
                "media does not cross the impairment relay); use --agent twin"
            )
        page = PageObject.load(opts["page_object"]) if "page_object" in opts else None
        return cls(
            tuple(ctx.http),
            ctx.token,
            ctx.device,
            name=ctx.name,
            page_object=page,
            codec=opts.get("codec", ""),
            screen=opts.get("screen", DEFAULT_SCREEN),
            display_url=ctx.display_url,
        )

    # --- lifecycle
    def start(self) -> None:
        """Start Chromium, open the console, join the backend (every step bounded).

        Raises:
            HarnessError: Chromium or chromedriver not installed (how to install them).
            SessionError: a step failed or hung (names it).
        """
        from harness.session.agents.browser_media import (
            CLIP_FPS,
            CLIP_FRAMES,
            CLIP_SIZE,
            MonitorFeed,
            PageSink,
            write_agent_clip,
            write_agent_wav,
        )

        found = find_browser()
        if found is None:
            raise HarnessError(f"--agent browser: no Chromium or chromedriver: {INSTALL_HINT}")
        chromium, chromedriver = found
        clip, wav = write_agent_clip(), write_agent_wav()
        self.sink = PageSink(
            self._on_share, self._on_camera, self._on_audio, self._on_shown
        ).start()
        if self.display_url:
            from harness.session.agent import _agent_picture

            picture = np.ascontiguousarray(_agent_picture(*CLIP_SIZE)[..., ::-1])
            self.monitor = MonitorFeed(self.display_url, picture, CLIP_FPS, CLIP_FRAMES).start()
        self._start_browser(chromium, chromedriver, clip, wav)
        self._step("page load", lambda: self.driver.get(self._url()))
        self._wait("joining the backend", "joined", JOIN_TIMEOUT_S)
        self.sync_clock()  # before the probe: every time it posts is mapped
        self._install_probe()

    def _url(self) -> str:
        host, port = self.http
        fields = {
            "http": f"http://{host}:{port}",
            "token": quote(self.token, safe=""),
            "name": quote(self.agent_name, safe=""),
            "device": quote(self.device or "", safe=""),
            "codec": quote(self.codec, safe=""),
            "screen": quote(self.screen, safe=""),
        }
        return self.page.url.format(**fields)

    def _start_browser(self, chromium: str, chromedriver: str, clip: Path, wav: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.remote.client_config import ClientConfig

        from harness.farm.process import Child, register, register_dir, start_time

        self.profile = Path(tempfile.mkdtemp(prefix="hil-browser-profile-"))
        register_dir(self.profile)
        self.chromedriver = Child(
            "chromedriver", [chromedriver, "--port=0"], stdout=subprocess.PIPE
        ).spawn()
        line = self.chromedriver.wait_ready(
            lambda s: "started successfully on port" in s, BROWSER_START_TIMEOUT_S
        )
        if line is None:
            raise SessionError(
                f"browser agent {self.agent_name}: browser start: chromedriver not ready within "
                f"{BROWSER_START_TIMEOUT_S:g} s (exit code {self.chromedriver.poll()})"
            )
        port = int(line.rstrip(".").rsplit(" ", 1)[-1])
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for arg in CHROMIUM_ARGS:
            opts.add_argument(arg)
        opts.add_argument(f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}")
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.add_argument(f"--use-file-for-fake-video-capture={clip}")
        opts.add_argument(f"--use-file-for-fake-audio-capture={wav}")
        url = f"http://127.0.0.1:{port}"
        config = ClientConfig(remote_server_addr=url, timeout=COMMAND_TIMEOUT_S)

        def session():
            return webdriver.Remote(command_executor=url, options=opts, client_config=config)

        self.driver = self._step("browser start", session)
        self.chromium_pid = _child_named(self.chromedriver.pid, "chromium")
        if self.chromium_pid is not None:
            self._chromium_started = start_time(self.chromium_pid)
            register(self.chromium_pid, group=False)
        self.driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        self.driver.set_script_timeout(SCRIPT_TIMEOUT_S)

    def _step(self, step: str, fn):
        """Run one browser step; any failure or hang is one SessionError naming the step."""
        try:
            return fn()
        except SessionError:
            raise
        except Exception as e:  # noqa: BLE001 -- WebDriver, urllib3, socket errors: one error naming the step
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            state = ""
            if self.chromedriver is not None and not self.chromedriver.alive():
                state = f" (chromedriver exited: {self.chromedriver.poll()})"
            elif self.chromium_pid is not None:
                from harness.farm.process import alive

                if not alive(self.chromium_pid, None):
                    state = " (Chromium exited)"
            self.broken = True  # stop() then kills it without asking it anything
            raise SessionError(
                f"browser agent {self.agent_name}: {step}: {type(e).__name__}: {why[:300]}{state}"
            ) from None

    def hook(self, name: str, *args, step: str | None = None):
        """Run one of the page-object's hooks (bounded by the WebDriver command timeout)."""
        return self._step(
            step or name, lambda: self.driver.execute_script(self.page.hooks[name], *args)
        )

    def _wait(self, step: str, hook: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.hook(hook, step=step):
                return
            err = self.hook("error", step=step)
            if err:
                raise SessionError(
                    f"browser agent {self.agent_name}: {step}: the console says: {err}"
                )
            time.sleep(0.1)
        raise SessionError(
            f"browser agent {self.agent_name}: {step}: not done within {timeout_s:g} s"
        )

    def _install_probe(self) -> None:
        from harness.session.agents.browser_media import CLIP_SIZE
        from harness.vision.timecode import BLOCK_CELLS, feed_layout

        w, h = CLIP_SIZE
        lay = feed_layout(w, h)
        size = BLOCK_CELLS * CODE_READ_PX
        cfg = {
            "sink": self.sink.url,
            "share_sink": self.sink.share_url,
            "share": self.page.selectors["share_video"],
            "camera": self.page.selectors["camera_preview"],
            "audio": self.page.selectors.get("remote_audio"),
            "audio_block": AUDIO_BLOCK,
            "audio_rate": AUDIO_RATE,
            "max_in_flight": PROBE_MAX_IN_FLIGHT,
            "share_buffer": SHARE_BUFFER_FRAMES,
            "share_queue": SHARE_QUEUE_FRAMES,
            "code": {
                "sx": lay.x / w,
                "sy": lay.y / h,
                "sw": lay.block_w / w,
                "sh": lay.block_h / h,
                "w": size,
                "h": size,
            },
        }
        self._step("probe install", lambda: self.driver.execute_script(PROBE_JS.read_text(), cfg))

    def probe_state(self) -> dict:
        """What the probe read and posted (share, camera, audio, dropped, errors)."""
        return self._step(
            "probe state",
            lambda: self.driver.execute_script(
                "return window.__hilProbe && window.__hilProbe.state"
            ),
        )

    def sync_clock(self, pings: int = CLOCK_PINGS) -> ClockMapping:
        """The ping exchange (page -> sink /clock); keeps the best sample. Returns the mapping."""
        js = (
            "const [sink, n] = arguments; const done = arguments[arguments.length - 1];"
            "(async () => { const out = []; for (let i = 0; i < n; i++) {"
            " const p0 = performance.now(); const r = await fetch(sink + '/clock', {cache: 'no-store'});"
            " const p1 = performance.now(); const j = await r.json(); out.push([p0, p1, j.t]); }"
            " return out; })().then(done, (e) => done({error: String(e)}));"
        )
        samples = self._step(
            "clock sync", lambda: self.driver.execute_async_script(js, self.sink.url, pings)
        )
        if not isinstance(samples, list):
            raise SessionError(f"browser agent {self.agent_name}: clock sync: {samples}")
        self.session.clock.update(samples)
        return self.session.clock

    # --- what the probe posts (sink threads)
    def _on_share(
        self, t_ms: float, receive_ms: float | None, rgba: np.ndarray, rtp: int | None = None
    ) -> None:
        """One share frame. A decoded frame read in the worker is stamped when the worker got it;
        if the page also presented it, the earlier of the two is kept (the frame was in the page
        by both instants: the worker can lag the compositor on a busy host)."""
        clock = self.session.clock
        bgr = np.ascontiguousarray(rgba[..., 2::-1])
        s = self.session
        with self._share_lock:
            shown = self._presented.pop(rtp, None) if rtp is not None else None
            t = min(t_ms, shown) if shown is not None else t_ms
            s.share_earlier_presented += t < t_ms
            frame = ReceivedFrame(
                bgr, clock.host(t), s.share_count, clock.host(receive_ms) if receive_ms else None
            )
            s.share.append(frame)
            s.share_count += 1
            if rtp is not None:
                self._by_rtp[rtp] = frame
                while len(self._by_rtp) > _KEEP_RTP:
                    self._by_rtp.pop(next(iter(self._by_rtp)))

    def _on_shown(self, pairs: list) -> None:
        """Share frames the page presented ([rtp, presentationTime ms]): an earlier presentation
        than the worker's stamp moves the frame's arrival to it."""
        clock = self.session.clock
        with self._share_lock:
            for rtp, t_ms in pairs:
                frame = self._by_rtp.get(int(rtp))
                if frame is None:
                    self._presented[int(rtp)] = float(t_ms)
                    while len(self._presented) > _KEEP_RTP:
                        self._presented.pop(next(iter(self._presented)))
                elif clock.host(float(t_ms)) < frame.t_arrival:
                    frame.t_arrival = clock.host(float(t_ms))
                    self.session.share_earlier_presented += 1

    def _on_camera(self, t_ms: float, rgba: np.ndarray) -> None:
        from harness.session.agents.browser_media import CLIP_FPS, SENT_KEEP_S
        from harness.vision.timecode import TimecodeLayout, decode_fast

        h, w = rgba.shape[:2]
        cell = w / 14.0
        read = decode_fast(
            np.ascontiguousarray(rgba[..., :3]), TimecodeLayout(w, h, 0.0, 0.0, cell, cell)
        )
        s = self.session
        s.camera_frames += 1
        if not read.ok:
            s.camera_unread += 1
            return
        t = s.clock.host(t_ms)
        s.sent[read.frame_no] = t
        self._schedule(read.frame_no, t)
        # the clip loops: a number whose capture this loop the preview skipped must not keep the
        # previous loop's time (it would read as a 15 s latency)
        if s.camera_frames % CLIP_FPS == 0:
            for k in [k for k, v in s.sent.items() if v < t - SENT_KEEP_S]:
                s.sent.pop(k, None)

    def _schedule(self, frame_no: int, t: float) -> None:
        """Follow the fake camera's capture schedule and anchor the lab monitor to it.

        Clip frame i (from 0 at the camera's start, counting passes) is due at schedule + i / fps;
        a capture is never early, so the schedule is the earliest seen, until a capture comes
        more than SCHEDULE_SLIP_S behind it (Chromium then restarts its schedule from that
        capture: the slip is recorded). The monitor gets each frame at its scheduled time."""
        from harness.session.agents.browser_media import CLIP_FPS, CLIP_FRAMES

        with self._cam_lock:
            k, last = frame_no - 1, self._cam_last_k
            if last is None or last - CLIP_FRAMES // 2 <= k <= last + CLIP_FRAMES // 2:
                i = self._cam_pass * CLIP_FRAMES + k
                self._cam_last_k = k if last is None else max(last, k)
            elif k < last:  # the clip looped
                self._cam_pass += 1
                self._cam_last_k = k
                i = self._cam_pass * CLIP_FRAMES + k
            else:  # a late post of the previous pass
                i = (self._cam_pass - 1) * CLIP_FRAMES + k
            due = t - i / CLIP_FPS
            if self._schedule_s is None or due < self._schedule_s:
                self._schedule_s = due
            elif due > self._schedule_s + SCHEDULE_SLIP_S:
                self.session.slips.append((t, due - self._schedule_s))
                self._schedule_s = due
            anchor = (i, self._schedule_s + i / CLIP_FPS)
        if self.monitor is not None:
            self.monitor.anchor(*anchor)

    def _on_audio(self, t_ms: float, rate: int, samples: np.ndarray) -> None:
        """Cut the page's blocks into 20 ms frames (as WebRTC delivers them to the aiortc bot),
        each timed by its last sample: the block's arrival less the samples after it."""
        s = self.session
        s.audio_rate = rate
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        buf = np.concatenate([self._audio_carry, pcm]) if self._audio_carry.size else pcm
        per = rate // 50
        t_end = s.clock.host(t_ms)
        whole = buf.size - buf.size % per
        for start in range(0, whole, per):
            s.audio.append((t_end - (buf.size - start - per) / rate, buf[start : start + per]))
        self._audio_carry = buf[whole:].copy()

    # --- the agent's actions, through the page's UI
    def wait_connected(self, timeout_s: float = 15.0) -> None:
        """Until the console shows the peer connected, share frames arrive and camera captures are
        timed (media both ways)."""
        self._wait("media connect", "connected", timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.session.share_count > 0 and self.session.sent:
                self.sync_clock()
                return
            time.sleep(0.1)
        raise SessionError(
            f"browser agent {self.agent_name}: media connect: connected but within {timeout_s:g} s "
            f"{self.session.share_count} share frames and {len(self.session.sent)} timed camera "
            f"frames reached the harness (probe: {self.probe_state()})"
        )

    def _click(self, key: str, step: str) -> None:
        from selenium.webdriver.common.by import By

        sel = self.page.selectors[key]
        self._step(step, lambda: self.driver.find_element(By.CSS_SELECTOR, sel).click())

    def _new_sent(self, kind: str, step: str, timeout_s: float = ACTION_TIMEOUT_S) -> dict:
        """The next data-channel message of this kind the console sent (after the last seen)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            items = self.hook("sent", self._sent_seen, step=step) or []
            for i, item in enumerate(items):
                if item["msg"].get("type") == kind:
                    self._sent_seen += i + 1
                    return item
            time.sleep(0.02)
        raise SessionError(
            f"browser agent {self.agent_name}: {step}: the console sent no {kind!r} message "
            f"within {timeout_s:g} s (is the session connected?)"
        )

    def _skip_sent(self, step: str) -> None:
        self._sent_seen += len(self.hook("sent", self._sent_seen, step=step) or [])

    def _pointer(self, points: list, step: str, draw: bool) -> None:
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        view = self.hook("to_viewport", [list(map(float, p)) for p in points], step=step)
        size = self._step(
            step, lambda: self.driver.execute_script("return [innerWidth, innerHeight]")
        )
        pts = [(int(round(x)), int(round(y))) for x, y in view]
        if not all(0 <= x < size[0] and 0 <= y < size[1] for x, y in pts):
            raise SessionError(
                f"browser agent {self.agent_name}: {step}: a point is outside the browser's "
                f"{size[0]}x{size[1]} viewport (console screen {self.screen})"
            )

        def act() -> None:
            actions = ActionBuilder(self.driver, duration=0)
            mouse = actions.pointer_action
            mouse.move_to_location(*pts[0])
            mouse.pointer_down()
            for x, y in pts[1:] if draw else ():
                mouse.move_to_location(x, y)
            mouse.pointer_up()
            actions.perform()

        self._step(step, act)

    def send_stroke(self, points, color=(255, 0, 0), width: int = 6, stroke_id=None) -> float:
        """Draw on the console's canvas; returns the host time the console sent the stroke."""
        self._skip_sent("stroke")
        hexcol = "#" + "".join(f"{int(c):02x}" for c in color)
        self.hook("set_pen", hexcol, int(width), stroke_id, step="stroke: pen")
        self._click("mode_draw", "stroke: draw mode")
        self._pointer(points, "stroke", draw=True)
        return self.session.clock.host(self._new_sent("stroke", "stroke")["t"])

    def clear_strokes(self) -> float:
        self._skip_sent("clear strokes")
        self._click("clear_strokes", "clear strokes")
        return self.session.clock.host(self._new_sent("clear_strokes", "clear strokes")["t"])

    def send_tap(self, x: float, y: float, timeout_s: float = 5.0) -> dict:
        """Click the share in tap mode; the device's reply with host t_sent / t_reply."""
        self._skip_sent("tap")
        self._click("mode_tap", "tap: tap mode")
        self._pointer([(x, y)], "tap", draw=False)
        sent = self._new_sent("tap", "tap")
        tap_id = sent["msg"].get("id")
        reply = self._reply(
            lambda m: m.get("id") == tap_id and "tap" in str(m.get("type")), timeout_s
        )
        if reply is None:
            raise SessionError(
                f"browser agent {self.agent_name}: no reply to remote tap {tap_id} within {timeout_s:g} s"
            )
        t, msg = reply
        return {**msg, "t_sent": self.session.clock.host(sent["t"]), "t_reply": t}

    def request_control(self) -> None:
        self._skip_sent("request control")
        self._click("request_control", "request control")
        self._new_sent("request_control", "request control")

    def request_access(self, package: str) -> None:
        from selenium.webdriver.common.by import By

        self._skip_sent("request access")
        sel = self.page.selectors["access_package"]

        def fill() -> None:
            box = self.driver.find_element(By.CSS_SELECTOR, sel)
            box.clear()
            box.send_keys(package)

        self._step("request access: package", fill)
        self._click("request_access", "request access")
        self._new_sent("request_access", "request access")

    def _refresh_replies(self) -> None:
        items = self.hook("replies", self._replies_seen, step="replies") or []
        self._replies_seen += len(items)
        for item in items:
            self.session.replies.append((self.session.clock.host(item["t"]), item["msg"]))

    def _reply(self, match, timeout_s: float) -> tuple[float, dict] | None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._refresh_replies()
            for t, msg in self.session.replies:
                if match(msg):
                    return t, msg
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def wait_reply(self, kind: str, timeout_s: float = 10.0) -> dict:
        found = self._reply(lambda m: m.get("type") == kind, timeout_s)
        if found is None:
            raise SessionError(
                f"browser agent {self.agent_name}: no {kind!r} from the device within {timeout_s:g} s"
            )
        return found[1]

    def media_info(self) -> dict:
        """The live peer's negotiated video codecs and selected candidate pair (from getStats)."""
        js = self.page.hooks.get("media_info")
        if not js:
            return {}
        return self._step("media info", lambda: self.driver.execute_async_script(js))

    def media_counters(self) -> Any:
        return None  # the browser's media does not cross the impairment relay

    def hang_up(self) -> None:
        self._click("hang_up", "hang up")
        self.session.ended = True

    def stop(self) -> None:
        """Leave the backend (the console's Leave button), quit Chromium, stop chromedriver by its
        process group, remove the profile. Never raises. After a failed or hung step the browser
        is not asked anything (the backend drops the agent once it stops polling)."""
        if self.driver is not None and not self.broken:
            try:
                self._click("leave", "leave")
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.info("browser agent %s: leave: %s", self.agent_name, e)
        if self.driver is not None and not self.broken:  # a hung browser is not waited for
            try:
                self.driver.quit()
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.info("browser agent %s: quit: %s", self.agent_name, e)
        self.driver = None
        if self.chromedriver is not None:
            self.chromedriver.stop(grace_s=3.0)  # its group: Chromium and its helpers too
            self.chromedriver = None
        if self.chromium_pid is not None:
            _kill_pid(self.chromium_pid, self._chromium_started)
        if self.sink is not None:
            self.sink.stop()
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None


def _child_named(ppid: int | None, name: str) -> int | None:
    """The PID of a direct child of ppid whose command name starts with `name`, or None."""
    if ppid is None:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        if fields and int(fields[1]) == ppid and comm.startswith(name):
            return int(stat.parent.name)
    return None


def _kill_pid(pid: int, started: int | None) -> None:
    """SIGKILL one process if it still runs (Chromium left behind by its driver). Never raises."""
    import signal

    from harness.farm.process import alive

    try:
        if alive(pid, started):
            os.kill(pid, signal.SIGKILL)
    except OSError as e:
        log.info("browser: pid %d: %s", pid, e)
