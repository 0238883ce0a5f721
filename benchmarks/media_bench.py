"""Media pipeline of one live session on this machine: does it keep up in real time?

Run: .venv/bin/python benchmarks/media_bench.py [--seconds S]

One twin (API 34) in a live session with the reference AgentBot (agent video 30 fps down, the
share 15 fps up, WebRTC on loopback). Reported: the analysis rate of each frame source (polled
raw screencap with the agent pane decoded; the share frames the bot receives, decoded; polled
PNG screencap on an API 17 twin), the real-time ratio (frames analysed / frames produced), and
the CPU share of the twin process and of the harness process (which hosts the AgentBot).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.device.adb import Device  # noqa: E402
from harness.device.frames import PollingSource  # noqa: E402
from harness.device.ui import Ui  # noqa: E402
from harness.farm import AdbServer, TwinProcess  # noqa: E402
from harness.session import SessionDriver  # noqa: E402
from harness.session.agent import AiortcAgentBot  # noqa: E402
from harness.session.driver import AGENT_VIDEO_DESC  # noqa: E402
from harness.session.media import agent_to_tablet, timecode_layout  # noqa: E402
from harness.vision.timecode import decode_fast  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, AdbServer(home=Path(tmp) / "home") as adb:
        tp = TwinProcess("android-emulator-api34", adb=adb, state_dir=Path(tmp) / "twin")
        old = TwinProcess("fire-hdx-7-2013", adb=adb, state_dir=Path(tmp) / "old")
        bot = None
        try:
            tp.start()
            info = tp.client().backend(answer_s=0.5)
            bot = AiortcAgentBot(
                info.address, device=tp.twins[0].serial, http=info.http, token=info.token
            )
            bot.start()
            dev = Device(f"127.0.0.1:{tp.port}", port=adb.port)
            ui = Ui.for_device(dev, prefer_u2=False)
            drv = SessionDriver(dev, ui)
            drv.connect(timeout_s=30)
            bot.wait_connected(15)
            pane = ui.wait_for(description=AGENT_VIDEO_DESC)
            time.sleep(1.0)

            # idle session: what media alone costs
            t0, twin0, self0 = time.monotonic(), _cpu_s(tp.pid), sum(os.times()[:2])
            sent0, share0 = len(bot.session.sent), bot.session.share_count
            time.sleep(args.seconds)
            wall = time.monotonic() - t0
            twin_cpu = (_cpu_s(tp.pid) - twin0) / wall
            self_cpu = (sum(os.times()[:2]) - self0) / wall
            agent_fps = (len(bot.session.sent) - sent0) / wall
            share_fps = (bot.session.share_count - share0) / wall

            # polled raw screencap, agent pane decoded (glass-to-glass analysis)
            t0, twin0, self0 = time.monotonic(), _cpu_s(tp.pid), sum(os.times()[:2])
            result = agent_to_tablet(dev, pane, bot.session.sent, duration_s=args.seconds)
            wall = time.monotonic() - t0
            rows.append(
                (
                    "screencap (raw, exec:), pane decoded",
                    result.captures / wall,
                    agent_fps,
                    (_cpu_s(tp.pid) - twin0) / wall,
                    (sum(os.times()[:2]) - self0) / wall,
                )
            )

            # share frames at the bot, decoded
            frames = list(bot.session.share)[-int(share_fps * args.seconds) :]
            layout = timecode_layout(1280, 800)
            t0 = time.perf_counter()
            for f in frames:
                decode_fast(f.image, layout)
            per = (time.perf_counter() - t0) / max(1, len(frames))
            rows.append(
                (
                    "share frames at the AgentBot, decoded",
                    1.0 / per if per else 0.0,
                    share_fps,
                    None,
                    None,
                )
            )
            drv.end()

            # API 17: PNG through a file and sync
            old.start()
            odev = Device(f"127.0.0.1:{old.port}", port=adb.port)
            n = {"frames": 0}

            def count(_f) -> bool:
                n["frames"] += 1
                return False

            t0 = time.monotonic()
            PollingSource(odev).run(count, args.seconds / 2)
            rows.append(
                (
                    "screencap-png (API 17: file + sync pull)",
                    n["frames"] / (time.monotonic() - t0),
                    None,
                    None,
                    None,
                )
            )
        finally:
            if bot is not None:
                bot.stop()
            tp.stop()
            old.stop()
    print(f"media pipeline, one live session ({args.seconds:g} s windows)")
    print(
        f"  idle session: agent video {agent_fps:.1f} fps sent, share {share_fps:.1f} fps received;"
        f" CPU twin {twin_cpu * 100:.0f}%, harness+AgentBot {self_cpu * 100:.0f}% of one core"
    )
    print(
        f"  {'frame source':<42} {'analysed/s':>10} {'produced/s':>10} {'twin CPU':>9} {'harness CPU':>11}"
    )
    for name, rate, produced, tcpu, hcpu in rows:
        prod = f"{produced:.1f}" if produced else "-"
        tc = f"{tcpu * 100:.0f}%" if tcpu is not None else "-"
        hc = f"{hcpu * 100:.0f}%" if hcpu is not None else "-"
        print(f"  {name:<42} {rate:>10.1f} {prod:>10} {tc:>9} {hc:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
