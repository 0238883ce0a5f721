"""The browser agent against the aiortc bot, in the same run on this machine.

Run: .venv/bin/python benchmarks/browser_bench.py [--seconds S]
Needs the OS packages chromium chromium-driver (skipped with that line without them).

One twin (API 34, a 1280x800 screen; its peer sends the share at 15 fps, 640x400) in a live
session, first with the aiortc bot (`--agent twin`), then with the browser agent (`--agent
browser`: the twin's web console in headless Chromium). For each, over S seconds once the media
flows: the CPU of the agent's side per live session (aiortc: this process, which hosts the bot;
browser: Chromium's and chromedriver's processes plus this process, which hosts the page's sink
and decodes the camera codes), the twin's CPU, and the share frames the agent read per second
against the frames the twin sent (its ground truth) in the same window (the page reads every
decoded share frame, in a worker: MediaStreamTrackProcessor).
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
from harness.device.ui import Ui  # noqa: E402
from harness.farm import AdbServer, TwinProcess  # noqa: E402
from harness.session import SessionDriver  # noqa: E402
from harness.session.agent import AiortcAgentBot  # noqa: E402
from harness.session.agents.browser import BrowserAgent, find_browser  # noqa: E402
from harness.twin.truth import read_truth  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")
WARMUP_S = 2.0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _group_cpu_s(pgid: int) -> dict[int, float]:
    """CPU seconds of every process in a process group (Chromium and its helpers)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            out[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / _TICKS
    return out


_DECODED_JS = (
    "const done = arguments[arguments.length - 1];"
    "window.agentConsole.pc.getStats().then((st) => { let n = 0;"
    " st.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded; });"
    " done(n); }, (e) => done(-1));"
)


def _decoded(agent) -> int:
    """Share frames Chromium's receiver decoded so far (getStats), or 0 for the aiortc bot."""
    return agent.driver.execute_async_script(_DECODED_JS) if hasattr(agent, "driver") else 0


def _session(agent, tp, adb, seconds: float, group: int | None) -> dict:
    dev = Device(f"127.0.0.1:{tp.port}", port=adb.port)
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
    drv.connect(timeout_s=30)
    agent.wait_connected(20)
    time.sleep(WARMUP_S)
    truth = tp.twins[0].truth
    g0 = _group_cpu_s(group) if group else {}
    t0, twin0, self0 = time.monotonic(), _cpu_s(tp.pid), sum(os.times()[:2])
    n0 = agent.session.share_count
    page0 = agent.probe_state().get("share", 0) if hasattr(agent, "probe_state") else 0
    dec0 = _decoded(agent)
    time.sleep(seconds)
    t1 = time.monotonic()
    wall = t1 - t0
    read = agent.session.share_count - n0
    page = (agent.probe_state().get("share", 0) - page0) if hasattr(agent, "probe_state") else read
    decoded = _decoded(agent) - dec0
    g1 = _group_cpu_s(group) if group else {}
    browser = sum(v - g0.get(pid, 0.0) for pid, v in g1.items()) / wall
    row = {
        "agent_cpu": (sum(os.times()[:2]) - self0) / wall + browser,
        "browser_cpu": browser,
        "twin_cpu": (_cpu_s(tp.pid) - twin0) / wall,
        "read_fps": read / wall,
        "page_fps": page / wall,  # read in the page (the harness's count may lag by its backlog)
        "decoded_fps": decoded / wall,  # what Chromium's receiver decoded (getStats)
        "sent_fps": sum(1 for e in read_truth(truth, "share_frame_sent") if t0 <= e["t"] < t1)
        / wall,
    }
    try:
        drv.end(timeout_s=5)
    except Exception as e:  # noqa: BLE001 -- the figures are taken; ending is best effort
        print(f"  (ending the session: {e})")
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    if find_browser() is None:
        print("skipped: no Chromium: install the OS packages chromium chromium-driver")
        return 0
    rows = {}
    with tempfile.TemporaryDirectory() as tmp, AdbServer(home=Path(tmp) / "home") as adb:
        tp = TwinProcess("android-emulator-api34", adb=adb, state_dir=Path(tmp) / "twin")
        try:
            tp.start()
            info = tp.client().backend(answer_s=0.5)
            bot = AiortcAgentBot(
                info.address, device=tp.twins[0].serial, http=info.http, token=info.token
            )
            bot.start()
            try:
                rows["aiortc bot"] = _session(bot, tp, adb, args.seconds, None)
            finally:
                bot.stop()
            time.sleep(1.0)
            agent = BrowserAgent(info.http, info.token, tp.twins[0].serial, name="bench-browser")
            try:
                agent.start()
                group = agent.chromedriver.pid  # Chromium runs in chromedriver's process group
                rows["browser"] = _session(agent, tp, adb, args.seconds, group)
                rows["browser"]["clock_error_ms"] = agent.session.clock.error_s * 1000.0
                probe = agent.probe_state()
                rows["browser"]["dropped"] = probe.get("shareDropped", 0)
                rows["browser"]["reader"] = probe.get("shareReader", "")
                rows["browser"]["earlier"] = agent.session.share_earlier_presented / max(
                    agent.session.share_count, 1
                )
            finally:
                agent.stop()
        finally:
            tp.stop()
    print(
        f"one live session each, {args.seconds:g} s, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'agent':<12} {'agent CPU':>10} {'of it browser':>14} {'twin CPU':>9} {'share read':>11} {'sent':>6} {'read/sent':>10}"
    )
    for name, r in rows.items():
        print(
            f"{name:<12} {r['agent_cpu'] * 100:>9.0f}% {r['browser_cpu'] * 100:>13.0f}% "
            f"{r['twin_cpu'] * 100:>8.0f}% {r['read_fps']:>7.1f} fps {r['sent_fps']:>6.1f} "
            f"{r['read_fps'] / max(r['sent_fps'], 1e-9):>10.2f}"
        )
    if len(rows) == 2:
        ratio = rows["browser"]["agent_cpu"] / max(rows["aiortc bot"]["agent_cpu"], 1e-9)
        print(
            f"browser / aiortc bot CPU per live session: {ratio:.1f}x; page clock mapping error "
            f"{rows['browser']['clock_error_ms']:.2f} ms; share frames the probe dropped {rows['browser']['dropped']}; "
            f"share frames read: {rows['browser']['reader']}, {rows['browser']['page_fps']:.1f} fps in the page "
            f"of {rows['browser']['decoded_fps']:.1f} fps Chromium decoded; "
            f"{rows['browser']['earlier'] * 100:.0f}% stamped by an earlier presentation"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
