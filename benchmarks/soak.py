"""Soak: does anything grow per session? Memory and open files over many sessions.

Run: nice .venv/bin/python benchmarks/soak.py [--connect 200] [--media 20]

One twin (API 34) behind a private adb server. First `--connect` connect sessions (press
Mayday through the UI, wait for the simulated agent's video, End), then `--media` live media
sessions, each with a new reference AgentBot (aiortc, WebRTC on loopback: agent video down,
share and microphone up, held `--hold-s`), ended by the customer. RSS (VmRSS) and open file
descriptors of this process (the harness: Device, UI driver, session driver, the AgentBots)
and of the twin process are sampled after every session, this process after a full garbage
collection (frames held in reference cycles, e.g. a stopped AgentBot's received share, wait
for the cycle collector: without it RSS swings by hundreds of MiB that a collection returns).
Reported per phase and process:
first and last sample and the growth per session, the least-squares slope over the samples
after a warm-up (the first 10% of the phase), which ignores one-off allocations (imports,
caches, the first WebRTC stack), and the slope over the phase's second half (a plateau: ~0).
The peer in the same run is the size of the process at the phase's start: growth per session x
sessions is compared with it. Per phase, the twin's held objects (control op "memory": support
sessions, peer connections, frames, codec contexts, asyncio tasks, after a full collection in
the twin) at its start and end: what a session leaves behind, counted, not inferred from RSS;
and the twin's C heap in use (glibc mallinfo2): flat while RSS moves is fragmentation.
The harness's RSS is also sampled after glibc's malloc_trim (`--trim`, off by default: it
changes what it measures): what the allocator holds free versus what is kept. The row
`harness-c-heap` is the harness's C heap in use (glibc mallinfo2, in its RSS column): flat while
RSS grows is fragmentation, growing with it is native memory kept.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.device.adb import Device  # noqa: E402
from harness.device.ui import Ui  # noqa: E402
from harness.farm import AdbServer, TwinProcess  # noqa: E402
from harness.native import (  # noqa: E402
    arena_count,
    c_heap_in_use_kib,
    limit_malloc_arenas,
    release_free_memory,
)
from harness.session import SessionDriver  # noqa: E402
from harness.session.agent import AiortcAgentBot  # noqa: E402

CONNECT_TIMEOUT_S = 30.0
SESSION_END_TIMEOUT_S = 10.0
WARMUP_SHARE = 0.1
SETTLE_S = 0.5  # after a media session, before sampling: the twin closes its peer asynchronously


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _slope(ys: list[float]) -> float:
    """Least-squares growth per step of a series (0 for fewer than two points)."""
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(ys))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


class Sampler:
    """RSS and fds of named processes, one sample per session."""

    def __init__(self, pids: dict[str, int], trim: bool = False):
        self.pids = pids
        self.trim = trim
        self.samples: dict[str, list[tuple[int, int]]] = {name: [] for name in pids}
        if trim:
            self.samples["harness-trimmed"] = []
        if c_heap_in_use_kib() is not None:  # glibc: the row's "RSS" is the C heap in use
            self.samples["harness-c-heap"] = []

    def sample(self) -> None:
        gc.collect()  # what is kept, not garbage waiting for the cycle collector
        for name, pid in self.pids.items():
            self.samples[name].append((_rss_kib(pid), _fds(pid)))
        if "harness-c-heap" in self.samples:
            self.samples["harness-c-heap"].append((c_heap_in_use_kib() or 0, _fds(os.getpid())))
        if self.trim:
            release_free_memory()
            me = os.getpid()
            self.samples["harness-trimmed"].append((_rss_kib(me), _fds(me)))

    def report(self, phase: str, sessions: int) -> list[str]:
        lines = []
        for name, series in self.samples.items():
            warm = series[max(1, int(len(series) * WARMUP_SHARE)) :]
            late = series[len(series) // 2 :]
            rss = [s[0] for s in warm]
            fds = [s[1] for s in warm]
            third = max(1, len(series) // 3)
            thirds = [series[k * third : (k + 1) * third + 1] for k in range(3)]
            lines.append(
                f"{phase:8s} {name:16s} sessions {sessions:4d}  RSS {series[0][0] / 1024:7.1f} ->"
                f" {series[-1][0] / 1024:7.1f} MiB, growth {_slope(rss):+7.1f} KiB/session"
                f" (second half {_slope([s[0] for s in late]):+7.1f}; thirds "
                + " / ".join(f"{_slope([s[0] for s in t]):+.1f}" for t in thirds)
                + f")  |  fds {series[0][1]:4d} -> {series[-1][1]:4d}, growth"
                f" {_slope(fds):+6.3f} /session"
            )
        return lines


class HeapDiff:
    """The harness's Python allocations (tracemalloc) from a mark to the phase's end: what is
    still alive of what was allocated after the mark, by the lines that allocated it. Tracing
    starts at the mark (it slows Python several times over; the warm-up runs untraced). What RSS
    gains beyond it is native (C libraries, thread stacks, the allocator's free lists)."""

    def __init__(self, frames: int = 4):
        self.frames = frames
        self.first = None

    def mark(self) -> None:
        import tracemalloc

        gc.collect()
        tracemalloc.start(self.frames)
        self.first = tracemalloc.take_snapshot()

    def report(self, top: int = 12) -> list[str]:
        import tracemalloc

        gc.collect()
        last = tracemalloc.take_snapshot()
        skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = last.filter_traces(skip).compare_to(self.first.filter_traces(skip), "traceback")
        traced, peak = tracemalloc.get_traced_memory()
        lines = [
            f"tracemalloc: traced {traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f}), its own"
            f" bookkeeping {tracemalloc.get_tracemalloc_memory() / 2**20:.1f} MiB; growth since"
            f" the mark {sum(d.size_diff for d in diff) / 1024:+.0f} KiB in"
            f" {sum(d.count_diff for d in diff):+d} blocks; largest:"
        ]
        for d in diff[:top]:
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in d.traceback[:4])
            lines.append(f"  {d.size_diff / 1024:+8.1f} KiB {d.count_diff:+6d} blocks  {where}")
        return lines


def _held(tp: TwinProcess) -> dict[str, int]:
    """The twin's live objects a session owns (nonzero kinds) and its asyncio tasks."""
    m = tp.control("memory", timeout_s=60)
    held = {k: v for k, v in m["objects"].items() if v and k != "Task"}
    return {**held, "tasks": m["tasks"], "c_heap_in_use_mib": (m["c_heap_in_use_kib"] or 0) // 1024}


def _held_line(phase: str, before: dict[str, int], after: dict[str, int]) -> str:
    kinds = sorted((set(before) | set(after)) - {"c_heap_in_use_mib"})  # a size, not a count
    same = all(before.get(k, 0) == after.get(k, 0) for k in kinds)
    return f"{phase:8s} twin held objects {before} -> {after}" + (
        " (back to the start)" if same else " (GROWN)"
    )


def _connect_session(drv: SessionDriver) -> float:
    t0 = time.monotonic()
    drv.connect(timeout_s=CONNECT_TIMEOUT_S)
    drv.end(timeout_s=SESSION_END_TIMEOUT_S)
    return time.monotonic() - t0


def _media_session(tp: TwinProcess, drv: SessionDriver, info: dict, hold_s: float, i: int) -> int:
    bot = AiortcAgentBot(
        tuple(info["address"]),
        name=f"soak-bot-{i}",
        device=tp.twins[0].serial,
        http=tuple(info["http"]),
        token=info["token"],
    )
    bot.start()
    try:
        drv.connect(timeout_s=CONNECT_TIMEOUT_S)
        bot.wait_connected(15)
        time.sleep(hold_s)
        frames = bot.session.share_count
        drv.end(timeout_s=SESSION_END_TIMEOUT_S)
        return frames
    finally:
        bot.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", type=int, default=200, help="connect sessions (>= 1)")
    ap.add_argument("--media", type=int, default=20, help="live media sessions (>= 1)")
    ap.add_argument("--hold-s", type=float, default=2.0, help="each media session's length")
    ap.add_argument(
        "--trim", action="store_true", help="also sample the harness's RSS after malloc_trim"
    )
    ap.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the harness's Python allocations over the media phase (after its warm-up)",
    )
    ap.add_argument(
        "--default-arenas",
        action="store_true",
        help="leave glibc's arenas uncapped (the harness before session 6) instead of as the plugin runs",
    )
    args = ap.parse_args()
    if not args.default_arenas:
        limit_malloc_arenas()  # as the plugin does at pytest_configure (harness/native.py)
    if args.connect < 1 or args.media < 1 or not 0 < args.hold_s <= 60:
        ap.error("--connect and --media must be >= 1, --hold-s 0..60")
    heap = HeapDiff() if args.tracemalloc else None
    out: list[str] = [f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)"]
    with tempfile.TemporaryDirectory() as tmp, AdbServer(home=Path(tmp) / "home") as adb:
        tp = TwinProcess("android-emulator-api34", adb=adb, state_dir=Path(tmp) / "twin")
        try:
            tp.start()
            info = tp.control("backend", answer_s=0.1, agents=1, wrap_s=0.0)
            dev = Device(f"127.0.0.1:{tp.port}", port=adb.port)
            drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
            pids = {"harness": os.getpid(), "twin": tp.pid}

            held = _held(tp)
            sampler = Sampler(pids, args.trim)
            sampler.sample()
            t0 = time.monotonic()
            times = []
            for i in range(args.connect):
                times.append(_connect_session(drv))
                sampler.sample()
                if (i + 1) % 50 == 0:
                    print(f"connect {i + 1}/{args.connect}", file=sys.stderr, flush=True)
            wall = time.monotonic() - t0
            out += sampler.report("connect", args.connect)
            out.append(
                f"connect  {args.connect} sessions in {wall:.0f} s"
                f" (mean {sum(times) / len(times):.2f} s, max {max(times):.2f} s)"
            )
            out.append(_held_line("connect", held, held := _held(tp)))

            sampler = Sampler(pids, args.trim)
            sampler.sample()
            t0 = time.monotonic()
            shares = []
            for i in range(args.media):
                shares.append(_media_session(tp, drv, info, args.hold_s, i))
                time.sleep(SETTLE_S)  # what a finished session leaves, not one closing
                sampler.sample()
                if heap is not None and i == max(1, int(args.media * WARMUP_SHARE)) - 1:
                    heap.mark()
            wall = time.monotonic() - t0
            out += sampler.report("media", args.media)
            out.append(
                f"media    {args.media} sessions in {wall:.0f} s"
                f" (share frames per session: min {min(shares)}, max {max(shares)})"
            )
            time.sleep(1.0)  # the last peer closes asynchronously in the twin
            out.append(_held_line("media", held, _held(tp)))
            if heap is not None:
                out += heap.report()
        finally:
            tp.stop()
    out.append(
        f"load average at end: {os.getloadavg()[0]:.1f}; the harness's malloc arenas:"
        f" {arena_count()} ({'default' if args.default_arenas else 'capped as the plugin does'})"
    )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
