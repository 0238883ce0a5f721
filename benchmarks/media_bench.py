"""What one live session costs this machine, and does its analysis keep up in real time?

Run: .venv/bin/python benchmarks/media_bench.py [--seconds S] [--no-api17]   (about 1 min at S=10)

One twin (API 34) in a live session with the reference AgentBot (agent video 30 fps down, the
share 15 fps up, audio both ways, WebRTC on loopback; since session 8 the agent video is its
pre-encoded loop and the microphone is decoded only when read, which no window here does).
Three windows of S seconds:
- idle: the session alone (the bot sends and receives, nothing is analysed);
- analysing: the Timecode app in front; the screen polled at 30 captures/s (raw screencap,
  since session 6 only the rows down to the agent pane's bottom read after the first capture,
  since session 7 down to the bottom of the code in it)
  with the agent pane's code read in each (agent_to_tablet, glass-to-glass), then the share
  frames of the same window scored as share_run scores them (latency per code, SSIM/PSNR
  against the screen; since session 7 OpenCV without its thread pool, each code read once,
  only the references shown made, SSIM from a sample of its windows away from the budget's
  floor; since session 8 the codes share_reads read given to the fidelity too, the
  reference's half of SSIM made once per window, the references' luma from the code alone,
  a few of them held at a time): CPU per second of session, i.e. every thread's over the window plus
  the share analysis' own (main thread, cv2's workers) divided by the window. (Until session 5
  every thread was counted until the analysis ended: the session's own CPU during the
  analysis' extra seconds inflated the figure, by a few points quiet and by tens under load;
  that figure is printed too.)
- capacity: the same polling back to back, for the rate the pipeline sustains.
CPU is read from /proc (user + system) for this process (harness + AgentBot, one Python
process as in a test run), the twin and the adb server. Peers of the same run: the twin's own
CPU (it encodes the share and decodes the agent video: the far end of the same session), and
a plain aiortc loopback in a child process (two peer connections, aiortc's own 640x480 30 fps
test pattern and silence, nothing stamped, nothing analysed).

Real-time ratios: screencap R1 = captures analysed per second polling back to back / 30 (the
polling rate the suites need); share R2 = share frames analysed per second of analysis time /
share frames received per second. Both >= 1.0: the analysis keeps up.

The last line is for comparing runs:
per-session: harness+agent idle X% analysing Y% of one core; real-time ratio screencap R1 share R2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.device.adb import Device  # noqa: E402
from harness.device.frames import PollingSource  # noqa: E402
from harness.device.ui import Ui  # noqa: E402
from harness.farm import AdbServer, TwinProcess  # noqa: E402
from harness.session import SessionDriver  # noqa: E402
from harness.session.agent import AGENT_VIDEO_SIZE, AiortcAgentBot  # noqa: E402
from harness.session.driver import AGENT_VIDEO_DESC  # noqa: E402
from harness.session.media import (  # noqa: E402
    TIMECODE_APP,
    agent_to_tablet,
    pane_side,
    share_fidelity,
    share_latency,
    share_reads,
    share_reference,
)

_TICKS = os.sysconf("SC_CLK_TCK")
SCREENCAP_RATE_HZ = 30.0  # the polling rate the glass-to-glass suites need
SETTLE_S = 1.0
LOOPBACK_TIMEOUT_S = 60.0


def _cpu_s(pid: int | str | None) -> float | None:
    """User + system CPU seconds of a process so far (None: gone or unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _threads() -> dict[str, float]:
    """CPU seconds so far of each thread of this process, by Python thread name."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(task.name, f"native-{task.name}")
        if name.startswith("asyncio_"):
            name = "asyncio executor (encoders)"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return out


class Meter:
    """CPU of this process (and its threads), the twin and the adb server over one window."""

    def __init__(self, twin_pid: int | None, adb_pid: int | None) -> None:
        self.pids = {"harness": "self", "twin": twin_pid, "adb": adb_pid}
        self.t0 = time.monotonic()
        self.start = {k: _cpu_s(p) for k, p in self.pids.items()}
        self.threads0 = _threads()

    def stop(self, wall_s: float | None = None) -> dict[str, float | None]:
        """Cores used per second of `wall_s` (default: since the start) by each process."""
        wall = wall_s if wall_s is not None else time.monotonic() - self.t0
        out: dict[str, float | None] = {}
        for k, p in self.pids.items():
            now, then = _cpu_s(p), self.start[k]
            out[k] = (now - then) / wall if now is not None and then is not None else None
        threads = _threads()
        self.threads = sorted(
            ((v - self.threads0.get(k, 0.0)) / wall, k) for k, v in threads.items()
        )[::-1]
        return out


_LOOPBACK = r"""
import asyncio, os, sys, time
sys.path.insert(0, sys.argv[2])
from aiortc import RTCPeerConnection, RTCConfiguration, VideoStreamTrack
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack
from harness.session.agent import pin_ice_to_loopback

async def main(seconds):
    pin_ice_to_loopback()
    a, b = RTCPeerConnection(RTCConfiguration([])), RTCPeerConnection(RTCConfiguration([]))
    sink = MediaBlackhole()
    b.on("track", lambda t: sink.addTrack(t))
    a.addTrack(VideoStreamTrack()); a.addTrack(AudioStreamTrack())
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await sink.start()
    await asyncio.sleep(2.0)
    c0, t0 = sum(os.times()[:2]), time.monotonic()
    await asyncio.sleep(seconds)
    print((sum(os.times()[:2]) - c0) / (time.monotonic() - t0))
    await sink.stop(); await a.close(); await b.close()

asyncio.run(main(float(sys.argv[1])))
"""


def aiortc_loopback_cpu(seconds: float) -> float | None:
    """Cores used by a plain aiortc loopback session (sender and receiver in one process)."""
    root = str(Path(__file__).resolve().parents[1])
    try:
        out = subprocess.run(
            [sys.executable, "-c", _LOOPBACK, str(seconds), root],
            capture_output=True,
            text=True,
            timeout=LOOPBACK_TIMEOUT_S,
        )
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as e:
        print(f"  (aiortc loopback peer failed: {e})", file=sys.stderr)
        return None


def share_cpu_of(threads: list[tuple[float, str]], name: str) -> float:
    """The share analysis' CPU (per second of session) of thread `name`: the main thread's and
    cv2's workers' (the session's own threads are counted within the window)."""
    if name != "MainThread" and not name.startswith("native"):
        return 0.0
    return next((v for v, k in threads if k == name), 0.0)


def _pct(v: float | None) -> str:
    return f"{v * 100:.0f}%" if v is not None else "-"


def main() -> int:  # noqa: C901, PLR0915 -- one linear script
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each window")
    ap.add_argument("--no-api17", action="store_true", help="skip the API 17 PNG row")
    ap.add_argument(
        "--agent-video",
        default="x".join(map(str, AGENT_VIDEO_SIZE)),
        help="the AgentBot's camera size WxH (default %(default)s)",
    )
    ap.add_argument(
        "--cv2-threads",
        type=int,
        default=None,
        help="cv2.setNumThreads(N) in this process first (default: cv2's own, one per core);"
        " the analysis itself runs without a pool (harness.vision.workers)",
    )
    args = ap.parse_args()
    if args.cv2_threads is not None:
        import cv2

        cv2.setNumThreads(args.cv2_threads)
    try:
        video_size = tuple(int(v) for v in args.agent_video.lower().split("x"))
        assert len(video_size) == 2 and min(video_size) > 0
    except (ValueError, AssertionError):
        ap.error(f"--agent-video: expected WxH, got {args.agent_video!r}")
    S = args.seconds
    rows: list[tuple[str, str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, AdbServer(home=Path(tmp) / "home") as adb:
        adb_pid = adb.child.pid if adb.child is not None else None
        tp = TwinProcess("android-emulator-api34", adb=adb, state_dir=Path(tmp) / "twin")
        old = TwinProcess("fire-hdx-7-2013", adb=adb, state_dir=Path(tmp) / "old")
        bot = None
        try:
            tp.start()
            info = tp.client().backend(answer_s=0.5)
            bot = AiortcAgentBot(
                info.address,
                device=tp.twins[0].serial,
                http=info.http,
                token=info.token,
                video_size=video_size,
            )
            bot.start()
            dev = Device(f"127.0.0.1:{tp.port}", port=adb.port)
            ui = Ui.for_device(dev, prefer_u2=False)
            drv = SessionDriver(dev, ui)
            drv.connect(timeout_s=30)
            bot.wait_connected(15)
            pane = ui.wait_for(description=AGENT_VIDEO_DESC)
            time.sleep(SETTLE_S)

            # the Timecode app in front (its code changes 30 times a second: the share is
            # never static), the screen as the share's reference
            ui.tap_on(text="Timecode")
            ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title")
            time.sleep(SETTLE_S)
            screen = dev.screenshot()
            h, w = screen.shape[:2]
            side = pane_side(pane, w)
            # 1. idle: the live session alone, nothing analysed
            m = Meter(tp.pid, adb_pid)
            sent0, share0 = bot.session.frames_sent, bot.session.share_count
            time.sleep(S)
            wall = time.monotonic() - m.t0
            idle = m.stop()
            idle_threads = m.threads
            agent_fps = (bot.session.frames_sent - sent0) / wall
            share_fps = (bot.session.share_count - share0) / wall

            # 2. analysing: the screen polled at 30/s, then the share of the window scored
            m = Meter(tp.pid, adb_pid)
            g2g = agent_to_tablet(
                dev, pane, bot.session.sent, duration_s=S, rate_hz=SCREENCAP_RATE_HZ
            )
            t_end = time.monotonic()
            window = t_end - m.t0
            polled = m.stop(window)  # the session and the polling, over the window
            polled_threads = m.threads
            frames = [f for f in list(bot.session.share) if m.t0 <= f.t_arrival < t_end]
            ma = Meter(tp.pid, adb_pid)  # the share analysis (after the window): its threads
            t_a = time.perf_counter()
            reads = share_reads(frames, (w, h))  # as share_run scores them
            lat = share_latency(frames, (w, h), reads)
            codes = sorted({r.frame_no for r in reads if r.ok})
            refs = share_reference(screen, frames[0].size, range(codes[0], codes[-1] + 1))
            fid = share_fidelity(refs, frames, side, reads)
            share_analysis_s = time.perf_counter() - t_a
            old_busy = m.stop(window)  # the old accounting: the session's own CPU while the
            # share was analysed after the window counted too (inflated by a slow analysis)
            ma.stop(window)
            # the analysis' CPU: the main thread's and cv2's workers', not the session's threads
            # (the bot's loop, encoders, decoders: counted at their rate within the window)
            share_cpu = sum(v for v, k in ma.threads if k == "MainThread" or k.startswith("native"))
            share_main = next((v for v, k in ma.threads if k == "MainThread"), 0.0)
            share_ms = share_cpu * window / len(frames) * 1000 if frames else 0.0
            share_workers_ms = (
                (share_cpu - share_main) * window / len(frames) * 1000 if frames else 0.0
            )
            poll_main = next((v for v, k in polled_threads if k == "MainThread"), 0.0)
            poll_ms = poll_main * window / g2g.captures * 1000 if g2g.captures else 0.0
            busy = dict(polled)
            busy["harness"] = polled["harness"] + share_cpu  # per second of session
            names = {k for _, k in polled_threads} | {k for _, k in ma.threads}
            rate = {k: v for v, k in polled_threads}
            busy_threads = sorted(
                ((rate.get(k, 0.0) + share_cpu_of(ma.threads, k), k) for k in names), reverse=True
            )
            paced_rate = g2g.captures / window
            share_rate = len(frames) / share_analysis_s if share_analysis_s > 0 else 0.0
            ssim = [f.ssim for f in fid.frames if f.ssim is not None]
            rows.append(
                (
                    "screencap (raw, rows to code) at 30/s, decoded",
                    f"{paced_rate:.1f}",
                    f"{SCREENCAP_RATE_HZ:.0f} polled",
                    _pct(busy["twin"]),
                    _pct(busy["adb"]),
                    f"{len(g2g.samples)} samples",
                )
            )
            rows.append(
                (
                    "share frames: latency per code + SSIM",
                    f"{share_rate:.1f}",
                    f"{len(frames) / window:.1f} received",
                    "-",
                    "-",
                    f"{lat.codes} codes, SSIM p50 {sorted(ssim)[len(ssim) // 2]:.3f}"
                    if ssim
                    else "no SSIM",
                )
            )

            # 3. capacity: polling back to back
            m = Meter(tp.pid, adb_pid)
            cap = agent_to_tablet(dev, pane, bot.session.sent, duration_s=S / 2)
            wall = time.monotonic() - m.t0
            full = m.stop()
            capacity = cap.captures / wall
            main_s = next((v for v, k in m.threads if k == "MainThread"), 0.0) * wall
            per_frame_ms = main_s / cap.captures * 1000 if cap.captures else 0.0
            rows.append(
                (
                    "screencap (raw, rows to code) back to back",
                    f"{capacity:.1f}",
                    "-",
                    _pct(full["twin"]),
                    _pct(full["adb"]),
                    f"harness {_pct(full['harness'])}; its polling thread {per_frame_ms:.1f} ms"
                    f" CPU a frame ({1000 / per_frame_ms if per_frame_ms else 0:.0f}/s a core)",
                )
            )
            drv.end()

            # API 17: PNG through a file and sync (informative)
            if not args.no_api17:
                old.start()
                odev = Device(f"127.0.0.1:{old.port}", port=adb.port)
                n = {"frames": 0}

                def count(_f) -> bool:
                    n["frames"] += 1
                    return False

                t0 = time.monotonic()
                PollingSource(odev).run(count, S / 2)
                rows.append(
                    (
                        "screencap-png (API 17: file + sync pull)",
                        f"{n['frames'] / (time.monotonic() - t0):.1f}",
                        "-",
                        "-",
                        "-",
                        "",
                    )
                )
        finally:
            if bot is not None:
                bot.stop()
            tp.stop()
            old.stop()
    loop_cpu = aiortc_loopback_cpu(S)
    load = os.getloadavg()
    r1 = capacity / SCREENCAP_RATE_HZ
    r2 = share_rate / share_fps if share_fps else 0.0
    print(f"media pipeline, one live session ({S:g} s windows), load average {load[0]:.1f}")
    print(
        f"  session: agent video {video_size[0]}x{video_size[1]} {agent_fps:.1f} fps sent,"
        f" share {share_fps:.1f} fps received"
    )
    print(
        f"  CPU, share of one core: harness+AgentBot idle {_pct(idle['harness'])}, analysing"
        f" {_pct(busy['harness'])}; twin idle {_pct(idle['twin'])}, analysing"
        f" {_pct(busy['twin'])}; adb server idle {_pct(idle['adb'])}, analysing"
        f" {_pct(busy['adb'])}"
    )
    print(
        f"  analysing = the session and the polling over the window, plus the share analysis'"
        f" CPU (main thread, cv2 workers) per second of session; by the old accounting (every"
        f" thread until the analysis ended, over the window) {_pct(old_busy['harness'])}"
        f" (share analysis {share_analysis_s:.1f} s after a {window:.1f} s window)"
    )
    print(
        f"  analysis CPU: share {share_ms:.2f} ms a frame (of it cv2's workers"
        f" {share_workers_ms:.2f}); polling at 30/s: main thread {poll_ms:.2f} ms a capture"
    )
    print(f"  peer: plain aiortc loopback (640x480 30 fps + audio, both ends) {_pct(loop_cpu)}")
    for label, threads in (("idle", idle_threads), ("analysing", busy_threads)):
        top = ", ".join(f"{k} {v * 100:.1f}%" for v, k in threads[:5] if v >= 0.005)
        print(f"  harness threads {label}: {top}")
    print(
        f"  {'frame source':<46} {'analysed/s':>10} {'produced/s':>13} {'twin CPU':>9}"
        f" {'adb CPU':>8}  notes"
    )
    for name, rate, produced, tcpu, acpu, note in rows:
        print(f"  {name:<46} {rate:>10} {produced:>13} {tcpu:>9} {acpu:>8}  {note}")
    print(
        f"per-session: harness+agent idle {idle['harness'] * 100:.0f}% analysing"
        f" {busy['harness'] * 100:.0f}% of one core; real-time ratio screencap {r1:.2f}"
        f" share {r2:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
