"""The twin's log: ring buffers as logd keeps them, and the `logcat` and `log` commands.

Formats follow AOSP liblog logprint.cpp (`brief`, `process`, `tag`, `raw`, `time`, `thread`,
`threadtime`, `long`); the default is `threadtime` from Android 7.0 (API 24), `brief` before
(the level of that switch is from memory of logcat's history, not verified here).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.twin.packages import PID_SYSTEM_SERVER, app_pid

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.proc import Proc

BUFFERS = ("main", "system", "radio", "events", "crash")
DEFAULT_BUFFERS = ("main", "system", "crash")
BUFFER_ENTRIES = 4096  # per ring buffer (logd keeps 256 KiB; a count is enough here)
PRIORITIES = "VDIWEFS"
FORMATS = ("brief", "process", "tag", "raw", "time", "thread", "threadtime", "long")
_FOLLOW_POLL_S = 0.05
_FOLLOW_MAX_S = 24 * 3600.0  # a follower ends with the stream; this only bounds the loop

PID_LAUNCHER = 1120


@dataclass(frozen=True)
class LogEntry:
    """One log record: wall time (s), pid, tid, priority letter, tag, message."""

    when: float
    pid: int
    tid: int
    prio: str
    tag: str
    msg: str
    buffer: str = "main"
    seq: int = 0


class LogStore:
    """logd for one twin: a ring buffer per buffer name, in arrival order."""

    def __init__(self, entries: int = BUFFER_ENTRIES):
        self.buffers: dict[str, deque[LogEntry]] = {b: deque(maxlen=entries) for b in BUFFERS}
        self._seq = 0
        self._lock = threading.Lock()  # the support app's media threads log too

    def write(
        self,
        tag: str,
        msg: str,
        prio: str = "I",
        pid: int = PID_SYSTEM_SERVER,
        tid: int | None = None,
        buffer: str = "main",
    ) -> LogEntry:
        """Append one record (each line of a multi-line message is its own record)."""
        entry = None
        for line in msg.split("\n") or [""]:
            self._seq += 1
            entry = LogEntry(
                time.time(),
                pid,
                tid if tid is not None else pid,
                prio,
                tag,
                line,
                buffer,
                self._seq,
            )
            self.buffers[buffer].append(entry)
        return entry  # type: ignore[return-value]

    def clear(self, buffers: tuple[str, ...] = BUFFERS) -> None:
        for b in buffers:
            self.buffers[b].clear()

    def entries(self, buffers: tuple[str, ...], after_seq: int = 0) -> list[LogEntry]:
        """Records of the given buffers, merged by sequence, newer than after_seq."""
        out = [e for b in buffers for e in self.buffers[b] if e.seq > after_seq]
        out.sort(key=lambda e: e.seq)
        return out

    @property
    def last_seq(self) -> int:
        return self._seq


def format_entry(e: LogEntry, fmt: str, api: int) -> str:
    """One record as `logcat -v fmt` prints it (no trailing newline)."""
    lt = time.localtime(e.when)
    stamp = time.strftime("%m-%d %H:%M:%S", lt) + f".{int(e.when * 1000) % 1000:03d}"
    if fmt == "threadtime":
        return f"{stamp} {e.pid:5d} {e.tid:5d} {e.prio} {e.tag:<8s}: {e.msg}"
    if fmt == "time":
        return f"{stamp} {e.prio}/{e.tag:<8s}({e.pid:5d}): {e.msg}"
    if fmt == "brief":
        return f"{e.prio}/{e.tag:<8s}({e.pid:5d}): {e.msg}"
    if fmt == "process":
        return f"{e.prio}({e.pid:5d}) {e.msg}  ({e.tag})"
    if fmt == "tag":
        return f"{e.prio}/{e.tag:<8s}: {e.msg}"
    if fmt == "thread":
        return f"{e.prio}({e.pid:5d}:{e.tid:5d}) {e.msg}"
    if fmt == "raw":
        return e.msg
    # long
    return f"[ {stamp} {e.pid:5d}:{e.tid:5d} {e.prio}/{e.tag} ]\n{e.msg}\n"


@dataclass
class _Filter:
    default: int  # min priority index for tags not named
    tags: dict[str, int]

    def accepts(self, e: LogEntry) -> bool:
        need = self.tags.get(e.tag, self.default)
        return PRIORITIES.index(e.prio) >= need if e.prio in PRIORITIES else True


def _parse_filter(specs: list[str], silent: bool) -> _Filter | str:
    """`TAG:PRIO` specs (`*:S`); an error message for a bad one."""
    flt = _Filter(default=PRIORITIES.index("S") if silent else 0, tags={})
    for spec in specs:
        tag, _, prio = spec.partition(":")
        prio = (prio or "V").upper()[:1]
        if prio not in PRIORITIES:
            return f"Invalid filter expression '{spec}'"
        if tag == "*":
            flt.default = PRIORITIES.index(prio)
        else:
            flt.tags[tag] = PRIORITIES.index(prio)
    return flt


@dataclass
class _Options:
    dump: bool = False
    clear: bool = False
    fmt: str = ""
    buffers: tuple[str, ...] = DEFAULT_BUFFERS
    tail: int = 0
    filter: _Filter | None = None


def _parse(argv: list[str], api: int) -> _Options | str:  # noqa: C901 -- logcat's options, one branch each, as Android's logcat
    opts = _Options(fmt="threadtime" if api >= 24 else "brief")
    buffers: list[str] = []
    specs: list[str] = []
    silent = False
    i = 0
    while i < len(argv):
        a = argv[i]

        def value(a: str = a) -> str | None:
            nonlocal i
            if "=" in a and a.startswith("--"):
                return a.split("=", 1)[1]
            if len(a) > 2 and not a.startswith("--"):
                return a[2:]
            i += 1
            return argv[i] if i < len(argv) else None

        if a == "-d":
            opts.dump = True
        elif a in ("-c", "--clear"):
            opts.clear = True
        elif a.startswith("-v") or a.startswith("--format"):
            v = value()
            for word in (v or "").split(","):
                if word in FORMATS:
                    opts.fmt = word
                elif word not in ("color", "usec", "UTC", "year", "zone", "printable", "uid"):
                    return f'Invalid parameter "{v}" to -v.'
        elif a.startswith("-b") or a.startswith("--buffer"):
            v = value() or ""
            for b in v.split(","):
                if b == "all":
                    buffers.extend(BUFFERS)
                elif b == "default":
                    buffers.extend(DEFAULT_BUFFERS)
                elif b in BUFFERS:
                    buffers.append(b)
                else:
                    return f"Unknown buffer '{b}'."  # API 17: "Unable to open log device"
        elif a.startswith("-t") or a.startswith("-T"):
            v = value()
            if v is None or not v.isdigit():
                return f"Invalid value for -t: {v}"
            opts.tail, opts.dump = int(v), opts.dump or a.startswith("-t")
        elif a == "-s":
            silent = True
        elif a.startswith("-"):
            return f"Unknown option '{a}'"
        else:
            specs.append(a)
        i += 1
    if buffers:
        opts.buffers = tuple(dict.fromkeys(buffers))
    flt = _parse_filter(specs, silent)
    if isinstance(flt, str):
        return flt
    opts.filter = flt
    return opts


async def run_log(p: Proc) -> int:
    """`log [-p PRIO] [-t TAG] message...` (toolbox/toybox log): writes to the main buffer."""
    prio, tag, args = "I", "log", p.argv[1:]
    while args and args[0].startswith("-") and len(args) > 1:
        if args[0] == "-p":
            prio = args[1].upper()[:1]
        elif args[0] == "-t":
            tag = args[1]
        else:
            break
        args = args[2:]
    if prio not in PRIORITIES[:-1]:
        await p.eprint(f"log: bad priority '{prio}'")
        return 1
    p.twin.log.write(tag, " ".join(args), prio=prio, pid=p.twin.alloc_pid(), buffer="main")
    return 0


async def run_logcat(p: Proc) -> int:
    """`logcat [options] [filterspecs]` against the twin's log store."""
    twin: Twin = p.twin
    api = twin.personality.api
    opts = _parse(p.argv[1:], api)
    if isinstance(opts, str):
        await p.eprint(f"logcat: {opts}" if api >= 24 else opts)
        return 1 if api >= 24 else 255
    store = twin.log
    if opts.clear:
        store.clear(opts.buffers)
        return 0
    chosen = [e for e in store.entries(opts.buffers) if opts.filter.accepts(e)]
    if opts.tail:
        chosen = chosen[-opts.tail :]
    for e in chosen:
        await p.print(format_entry(e, opts.fmt, api))
    if opts.dump:
        return 0
    seen = store.last_seq
    deadline = time.monotonic() + _FOLLOW_MAX_S
    while time.monotonic() < deadline:  # follow until the host closes the stream
        await asyncio.sleep(_FOLLOW_POLL_S)
        if store.last_seq == seen:
            continue
        for e in store.entries(opts.buffers, after_seq=seen):
            seen = e.seq
            if opts.filter.accepts(e):
                await p.print(format_entry(e, opts.fmt, api))
        seen = max(seen, store.last_seq)
    return 0


# what an idle device keeps logging (a real one writes several lines a second)
_CHATTER = (
    ("BatteryService", "I", "system", "Processing new values: level=87 scale=100 plugged=2"),
    ("ConnectivityService", "D", "system", "NetworkAgentInfo [WIFI () - 100] validation passed"),
    ("WifiHAL", "I", "main", "Get link layer stats"),
    (
        "ActivityManager",
        "I",
        "system",
        "Waited long enough for: ServiceRecord{a1f3 u0 com.android.systemui/.ImageWallpaper}",
    ),
    ("chatty", "I", "main", "uid=1000(system) Binder:612_3 identical 2 lines"),
)
CHATTER_PERIOD_S = (0.3, 1.5)  # between two background lines


async def chatter(twin: Twin) -> None:
    """Background lines while the twin runs (cancelled at stop), as a live device has."""
    rng = random.Random(twin.port)
    while True:
        await asyncio.sleep(rng.uniform(*CHATTER_PERIOD_S))
        tag, prio, buffer, msg = _CHATTER[rng.randrange(len(_CHATTER))]
        twin.log.write(
            tag,
            msg,
            prio=prio,
            pid=PID_SYSTEM_SERVER,
            tid=PID_SYSTEM_SERVER + rng.randrange(1, 60),
            buffer=buffer,
        )


def log_truth_event(twin: Twin, event: str, fields: dict) -> None:
    """The log line a device writes for what the twin just did (support session, faults),
    under the tag and pid of the process that would write it. Never raises."""
    try:
        line = _truth_line(twin, event, fields)
        if line is not None:
            tag, prio, pid, msg = line
            twin.log.write(tag, msg, prio=prio, pid=pid, buffer="main")
    except Exception as e:  # noqa: BLE001 -- logging must never break what is logged
        logging.getLogger(__name__).debug("logcat line not written: %s", e)


def _truth_line(twin: Twin, event: str, fields: dict) -> tuple[str, str, int, str] | None:
    support = twin.screen.support_pkg
    if event == "mayday_pressed":
        return (
            "SupportSession",
            "I",
            app_pid(twin, support),
            "Support requested from quick settings",
        )
    if event == "support_request_sent":
        return (
            "SupportSession",
            "I",
            app_pid(twin, support),
            "Session request sent; waiting for an agent",
        )
    if event == "agent_joined":
        return "SupportSession", "I", app_pid(twin, support), "Agent joined the session"
    if event == "support_session_ended":
        why = fields.get("why", "")
        return "SupportSession", "I", app_pid(twin, support), f"Session ended: {why}"
    if event == "session_timeout":
        return "SupportSession", "W", app_pid(twin, support), "No agent answered: request timed out"
    if event == "fault":
        kind = fields.get("kind", "")
        if kind in ("drop", "offline"):
            return "adbd", "W", PID_SYSTEM_SERVER - 8, f"remote usb: read terminated ({kind})"
        if kind == "stall":
            return (
                "adbd",
                "W",
                PID_SYSTEM_SERVER - 8,
                f"service {fields.get('service', '')} not answering",
            )
        if kind == "camera_open":
            return (
                "CameraService",
                "I",
                480,
                f"CameraService::connect call (camera ID 0) open={fields.get('on')}",
            )
        return "ActivityManager", "W", PID_SYSTEM_SERVER, f"Fault injected: {kind}"
    return None
