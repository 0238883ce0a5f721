"""The twin's control socket: fault injection and the user's taps that adb cannot make.

One JSON object per line in, one per line out, on a Unix socket in the twin's state dir:
{"op": "accept_keys"} plays the user tapping "Allow" on the USB-debugging dialog (for the keys
waiting now: a later new key asks again), "refuse_keys" tapping "Cancel";
"drop", "offline" (seconds), "reboot" (boot_s), "wifi" (on), "stall"/"unstall" (service
prefix), "registered" (on), "region" (region, timezone), "mayday_button" (on), "support" (reconnect_grace_s), "privacy_mask" (on),
"camera" (on), "mic" (samples), "agent_video" (mode), "text_screen" (name), "secure" (package, on), "media" (block, freeze_share, share_hold_ms), "status", "backend" (answer_s, answer_waits, handle_s, wrap_s,
clock_offset_s of the in-process support backend; its reply carries the agents' "token" and
the count of "unauthorized" agent requests), "memory" (diagnostics of the twin process: RSS,
the C heap in use, live objects a session owns and asyncio tasks after a full collection;
tracemalloc "start" / "diff" / "stop" for the Python allocations grown between calls; "trim").
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.native import c_heap_in_use_kib, release_free_memory
from harness.profiles import REGIONS, valid_timezone

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)
_READ_TIMEOUT_S = 30.0
MAX_SHARE_HOLD_MS = 10_000.0  # op "media" share_hold_ms: a slower share, not a dead one


class ControlServer:
    def __init__(self, twins: dict[str, Twin], path: Path, backend=None):
        self.twins = twins
        self.path = path
        self.backend = backend
        self.server: asyncio.base_events.Server | None = None
        self.tracemalloc_snapshot = None  # the "memory" op's last snapshot, when tracing

    async def start(self) -> None:
        if self.path.exists():
            self.path.unlink()
        self.server = await asyncio.start_unix_server(self._client, str(self.path))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        try:
            self.path.unlink()
        except OSError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
                if not raw:
                    return
                try:
                    req = json.loads(raw)
                    reply = await self.handle(req)
                except Exception as e:  # noqa: BLE001 -- one bad request must not kill the control socket
                    reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (TimeoutError, ConnectionError):
            return
        finally:
            writer.close()

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """One request -> one reply: the op's handler from the table below."""
        op = req.get("op")
        process_handler = _PROCESS_OPS.get(op)
        if process_handler is not None:
            return process_handler(self, req)
        serial = req.get("serial") or (next(iter(self.twins)) if len(self.twins) == 1 else None)
        twin = self.twins.get(serial) if serial else None
        if twin is None:
            return {"ok": False, "error": f"unknown twin {serial!r}; known: {sorted(self.twins)}"}
        handler = _TWIN_OPS.get(op)
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        return await handler(twin, {**req, "serial": serial})


# --- ops of the whole twin process (no serial) ------------------------------------------------
Reply = dict[str, Any]


def _op_list(server: ControlServer, req: Reply) -> Reply:
    return {"ok": True, "twins": {s: t.port for s, t in server.twins.items()}}


def _op_backend(server: ControlServer, req: Reply) -> Reply:
    backend = server.backend
    if backend is None:
        return {"ok": False, "error": "this twin process uses an external backend"}
    cfg = backend.config
    for key in ("answer_s", "handle_s", "wrap_s", "clock_offset_s"):
        if key in req:
            setattr(cfg, key, float(req[key]))
    if "answer_waits" in req:
        cfg.scripted_waits = [float(x) for x in req["answer_waits"]]
    if "agents" in req:
        backend.set_simulated_agents(int(req["agents"]))
    return {
        "ok": True,
        "agents": cfg.agents,
        "queued": len(backend.queue),
        "free_agents": len(backend.free_agents),
        "bots": sorted(backend.bots),
        "truth": str(backend.truth.path),
        "address": ["127.0.0.1", backend.port],
        "http": ["127.0.0.1", backend.http_port],
        "token": backend.token,  # the agent credential of this run
        "unauthorized": backend.unauthorized,
    }


# objects whose count per twin process must return to its baseline after a session ends
HELD_TYPES = (
    "SupportSession",
    "MediaPeer",
    "RTCPeerConnection",
    "RTCDtlsTransport",
    "RTCIceTransport",
    "RTCSctpTransport",
    "RTCRtpSender",
    "RTCRtpReceiver",
    "Connection",  # aioice
    "VideoFrame",
    "AudioFrame",
    "CodecContext",
    "VideoCodecContext",
    "AudioCodecContext",
    "Vp8Encoder",
    "Vp8Decoder",
    "H264Encoder",
    "H264Decoder",
    "OpusEncoder",
    "OpusDecoder",
    "Task",
)
TRACEMALLOC_FRAMES = 1  # deeper tracebacks slow a live media session past adb timeouts
TRACEMALLOC_TOP = 15


def _op_memory(server: ControlServer, req: Reply) -> Reply:
    """Diagnostics of the process's memory: RSS, live objects of HELD_TYPES after a full
    collection, asyncio tasks; with "tracemalloc": "start" | "diff" | "stop", Python allocations
    grown since the last start/diff (top TRACEMALLOC_TOP by size, grouped by line)."""
    import gc
    import tracemalloc

    gc.collect()
    counts = dict.fromkeys(HELD_TYPES, 0)
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in counts:
            counts[name] += 1
    reply: Reply = {
        "ok": True,
        "rss_kib": _rss_kib(),
        "objects": counts,
        "tasks": len(asyncio.all_tasks()),
        "task_names": _task_names(),
        "gc_objects": len(gc.get_objects()),
    }
    reply["threads"] = threading.active_count()
    reply["c_heap_in_use_kib"] = c_heap_in_use_kib()
    if req.get("trim"):  # what RSS would be if the allocator returned every free page
        t0 = time.monotonic()
        reply["rss_trimmed_kib"] = release_free_memory() and _rss_kib()
        reply["trim_ms"] = (time.monotonic() - t0) * 1000
    mode = req.get("tracemalloc")
    if mode == "start":
        if not tracemalloc.is_tracing():
            tracemalloc.start(TRACEMALLOC_FRAMES)
        server.tracemalloc_snapshot = tracemalloc.take_snapshot()
    elif mode == "diff":
        before = server.tracemalloc_snapshot
        if before is None or not tracemalloc.is_tracing():
            return {"ok": False, "error": 'memory: call with "tracemalloc": "start" first'}
        now = tracemalloc.take_snapshot()
        stats = now.compare_to(before, "lineno")[:TRACEMALLOC_TOP]
        reply["top"] = [
            {"where": str(st.traceback[0]), "size_kib": st.size_diff / 1024, "count": st.count_diff}
            for st in stats
        ]
        reply["traced_kib"] = tracemalloc.get_traced_memory()[0] / 1024
        server.tracemalloc_snapshot = now
    elif mode == "stop":
        tracemalloc.stop()
        server.tracemalloc_snapshot = None
    elif mode is not None:
        return {"ok": False, "error": f"memory: tracemalloc {mode!r}: use start, diff or stop"}
    return reply


def _task_names() -> dict[str, int]:
    """Live asyncio tasks by coroutine name."""
    names: dict[str, int] = {}
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        names[name] = names.get(name, 0) + 1
    return names


def _rss_kib() -> int:
    """VmRSS of this process (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


_PROCESS_OPS: dict[str, Callable[[ControlServer, Reply], Reply]] = {
    "list": _op_list,
    "backend": _op_backend,
    "memory": _op_memory,
}


# --- ops of one twin ---------------------------------------------------------------------------
_TASKS: set[asyncio.Task] = set()  # background ops (offline, reboot) kept until they finish


def _background(coro: Awaitable[None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def _op_status(twin: Twin, req: Reply) -> Reply:
    return {
        "ok": True,
        "serial": req["serial"],
        "port": twin.port,
        "profile": twin.profile.name,
        "online": sum(1 for c in twin.connections if c.online),
        "wifi": twin.wifi.enabled,
        "network": vars(twin.network),
        "screen": twin.screen.state,
        "truth": str(twin.truth.path),
    }


async def _op_accept_keys(twin: Twin, req: Reply) -> Reply:
    return {"ok": True, "accepted": await twin.accept_pending_keys()}


async def _op_refuse_keys(twin: Twin, req: Reply) -> Reply:
    """The user taps "Cancel" on the RSA dialog: every waiting host stays unauthorized."""
    refused = 0
    for conn in list(twin.connections):
        if conn.pending_key is not None and not conn.online:
            twin.truth.record("auth_key_refused", key=conn.pending_key.fingerprint)
            conn.pending_key = None
            refused += 1
    return {"ok": True, "refused": refused}


async def _op_drop(twin: Twin, req: Reply) -> Reply:
    await twin.drop_transports()
    twin.truth.record("fault", kind="drop")
    return {"ok": True}


async def _op_offline(twin: Twin, req: Reply) -> Reply:
    seconds = float(req.get("seconds", 5.0))
    twin.offline = True
    twin.truth.record("fault", kind="offline", seconds=seconds)
    await twin.drop_transports()

    async def back() -> None:
        await asyncio.sleep(seconds)
        twin.offline = False
        twin.truth.record("fault_end", kind="offline")
        await twin.register_with_adb_server()

    _background(back())
    return {"ok": True}


async def _op_reboot(twin: Twin, req: Reply) -> Reply:
    _background(twin.reboot(float(req.get("boot_s", 1.0))))
    return {"ok": True}


async def _op_wifi(twin: Twin, req: Reply) -> Reply:
    twin.set_wifi(bool(req.get("on", True)))
    return {"ok": True}


async def _op_stall(twin: Twin, req: Reply) -> Reply:
    twin.services.stalled.add(str(req["service"]))
    twin.truth.record("fault", kind="stall", service=req["service"])
    return {"ok": True}


async def _op_unstall(twin: Twin, req: Reply) -> Reply:
    twin.services.stalled.discard(str(req["service"]))
    return {"ok": True}


async def _op_media(twin: Twin, req: Reply) -> Reply:
    if "block" in req:
        twin.screen.media_blocked = bool(req["block"])
    if "freeze_share" in req:
        twin.screen.share_frozen = bool(req["freeze_share"])
        twin.truth.record("share_freeze" if twin.screen.share_frozen else "share_unfreeze")
    if "share_hold_ms" in req:
        hold_ms = float(req["share_hold_ms"])
        if not 0.0 <= hold_ms <= MAX_SHARE_HOLD_MS:
            return {
                "ok": False,
                "error": f"share_hold_ms {hold_ms:g}: use 0 to {MAX_SHARE_HOLD_MS:g}",
            }
        twin.screen.share_hold_s = hold_ms / 1000.0
        twin.truth.record("share_hold", ms=hold_ms)
    return {"ok": True}


async def _op_support(twin: Twin, req: Reply) -> Reply:
    if "reconnect_grace_s" in req:
        twin.reconnect_grace_s = float(req["reconnect_grace_s"])
    return {"ok": True}


async def _op_privacy_mask(twin: Twin, req: Reply) -> Reply:
    twin.screen.mask_private = bool(req.get("on", True))
    twin.truth.record("fault", kind="privacy_mask", on=twin.screen.mask_private)
    return {"ok": True}


async def _op_camera(twin: Twin, req: Reply) -> Reply:
    on = bool(req.get("on", True))
    twin.camera_clients = [(1, twin.screen.support_pkg)] if on else []
    twin.truth.record("fault", kind="camera_open", on=on)
    return {"ok": True}


async def _op_mic(twin: Twin, req: Reply) -> Reply:
    session = twin.screen.session
    peer = session.peer if session is not None else None
    if peer is None or peer.mic is None:
        return {"ok": False, "error": "no media session: the microphone is not streaming"}
    import numpy as np

    peer.mic.pending.append(np.asarray(req["samples"], np.int16))
    return {"ok": True, "t": time.monotonic()}


async def _op_mayday_button(twin: Twin, req: Reply) -> Reply:
    twin.screen.mayday_button = bool(req.get("on", True))
    twin.screen.changed("mayday button " + ("shown" if twin.screen.mayday_button else "hidden"))
    return {"ok": True}


async def _op_region(twin: Twin, req: Reply) -> Reply:
    region = str(req.get("region", twin.region))
    timezone = str(req.get("timezone", twin.timezone))
    if region not in REGIONS:
        return {"ok": False, "error": f"region: unknown {region!r}; known: {list(REGIONS)}"}
    if not valid_timezone(timezone):
        return {"ok": False, "error": f"timezone: not an IANA time zone: {timezone!r}"}
    twin.region, twin.timezone = region, timezone
    twin.props["persist.sys.timezone"] = twin.timezone
    return {"ok": True, "region": twin.region, "timezone": twin.timezone}


async def _op_registered(twin: Twin, req: Reply) -> Reply:
    on = bool(req.get("on", True))
    twin.accounts = [(twin.options.account, "com.amazon.account")] if on else []
    return {"ok": True}


async def _op_agent_video(twin: Twin, req: Reply) -> Reply:
    """The synthetic agent's video mode (harness.twin.support.AGENT_VIDEO_MODES)."""
    from harness.twin.support import AGENT_VIDEO_MODES

    mode = str(req.get("mode", "timecode"))
    if mode not in AGENT_VIDEO_MODES:
        return {
            "ok": False,
            "error": f"agent_video mode {mode!r}: use {', '.join(AGENT_VIDEO_MODES)}",
        }
    twin.screen.agent_video_mode = mode
    return {"ok": True, "mode": mode}


async def _op_text_screen(twin: Twin, req: Reply) -> Reply:
    """The Text app's screen (harness.twin.textscreens); the reply carries its truth."""
    truth = twin.screen.show_text_screen(str(req.get("name", "settings")))
    return {"ok": True, "screen": twin.screen.text_screen, "truth": truth}


async def _op_secure(twin: Twin, req: Reply) -> Reply:
    """An app marks its window FLAG_SECURE: its share turns black."""
    pkg = str(req.get("package", ""))
    on = bool(req.get("on", True))
    (twin.screen.secure_packages.add if on else twin.screen.secure_packages.discard)(pkg)
    twin.truth.record("secure_window", package=pkg, on=on)
    twin.screen.changed(f"secure {pkg} {on}")
    return {"ok": True, "secure": sorted(twin.screen.secure_packages)}


_TWIN_OPS: dict[str, Callable[[Twin, Reply], Awaitable[Reply]]] = {
    "status": _op_status,
    "accept_keys": _op_accept_keys,
    "refuse_keys": _op_refuse_keys,
    "drop": _op_drop,
    "offline": _op_offline,
    "reboot": _op_reboot,
    "wifi": _op_wifi,
    "stall": _op_stall,
    "unstall": _op_unstall,
    "media": _op_media,
    "support": _op_support,
    "privacy_mask": _op_privacy_mask,
    "camera": _op_camera,
    "mic": _op_mic,
    "mayday_button": _op_mayday_button,
    "region": _op_region,
    "registered": _op_registered,
    "agent_video": _op_agent_video,
    "text_screen": _op_text_screen,
    "secure": _op_secure,
}


def control_request(
    path: Path | str, req: dict[str, Any], timeout_s: float = 5.0
) -> dict[str, Any]:
    """Send one request to a twin's control socket (blocking, bounded)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf or b'{"ok": false, "error": "no reply"}')
