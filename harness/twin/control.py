"""The twin's control socket: fault injection and the user's taps that adb cannot make.

One JSON object per line in, one per line out, on a Unix socket in the twin's state dir:
{"op": "accept_keys"} plays the user tapping "Allow" on the USB-debugging dialog;
"drop", "offline" (seconds), "reboot" (boot_s), "wifi" (on), "stall"/"unstall" (service
prefix), "registered" (on), "region" (region, timezone), "mayday_button" (on), "support" (reconnect_grace_s), "privacy_mask" (on),
"camera" (on), "mic" (samples), "text_screen" (name), "secure" (package, on), "media" (block, freeze_share), "status", "backend" (answer_s, answer_waits, handle_s, wrap_s,
clock_offset_s of the in-process support backend).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)
_READ_TIMEOUT_S = 30.0


class ControlServer:
    def __init__(self, twins: dict[str, Twin], path: Path, backend=None):
        self.twins = twins
        self.path = path
        self.backend = backend
        self.server: asyncio.base_events.Server | None = None

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
                except Exception as e:  # one bad request must not kill the control socket
                    reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (TimeoutError, ConnectionError):
            return
        finally:
            writer.close()

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "list":
            return {"ok": True, "twins": {s: t.port for s, t in self.twins.items()}}
        if op == "backend":
            if self.backend is None:
                return {"ok": False, "error": "this twin process uses an external backend"}
            cfg = self.backend.config
            for key in ("answer_s", "handle_s", "wrap_s", "clock_offset_s"):
                if key in req:
                    setattr(cfg, key, float(req[key]))
            if "answer_waits" in req:
                cfg.scripted_waits = [float(x) for x in req["answer_waits"]]
            if "agents" in req:
                self.backend.set_simulated_agents(int(req["agents"]))
            return {
                "ok": True,
                "agents": cfg.agents,
                "queued": len(self.backend.queue),
                "free_agents": len(self.backend.free_agents),
                "bots": sorted(self.backend.bots),
                "truth": str(self.backend.truth.path),
                "address": ["127.0.0.1", self.backend.port],
                "http": ["127.0.0.1", self.backend.http_port],
            }
        serial = req.get("serial") or (next(iter(self.twins)) if len(self.twins) == 1 else None)
        twin = self.twins.get(serial) if serial else None
        if twin is None:
            return {"ok": False, "error": f"unknown twin {serial!r}; known: {sorted(self.twins)}"}
        if op == "status":
            return {
                "ok": True,
                "serial": serial,
                "port": twin.port,
                "profile": twin.profile.name,
                "online": sum(1 for c in twin.connections if c.online),
                "wifi": twin.wifi.enabled,
                "network": vars(twin.network),
                "screen": twin.screen.state,
                "truth": str(twin.truth.path),
            }
        if op == "text_screen":  # the Text app's screen (harness.twin.textscreens)
            twin.screen.show_text_screen(str(req.get("name", "settings")))
            return {"ok": True, "screen": twin.screen.text_screen}
        if op == "secure":  # an app marks its window FLAG_SECURE: its share turns black
            pkg = str(req.get("package", ""))
            on = bool(req.get("on", True))
            (twin.screen.secure_packages.add if on else twin.screen.secure_packages.discard)(pkg)
            twin.truth.record("secure_window", package=pkg, on=on)
            twin.screen.changed(f"secure {pkg} {on}")
            return {"ok": True, "secure": sorted(twin.screen.secure_packages)}
        if op == "accept_keys":
            return {"ok": True, "accepted": await twin.accept_pending_keys()}
        if op == "drop":
            await twin.drop_transports()
            twin.truth.record("fault", kind="drop")
            return {"ok": True}
        if op == "offline":
            seconds = float(req.get("seconds", 5.0))
            twin.offline = True
            twin.truth.record("fault", kind="offline", seconds=seconds)
            await twin.drop_transports()

            async def back() -> None:
                await asyncio.sleep(seconds)
                twin.offline = False
                twin.truth.record("fault_end", kind="offline")
                await twin.register_with_adb_server()

            asyncio.get_running_loop().create_task(back())
            return {"ok": True}
        if op == "reboot":
            asyncio.get_running_loop().create_task(twin.reboot(float(req.get("boot_s", 1.0))))
            return {"ok": True}
        if op == "wifi":
            twin.set_wifi(bool(req.get("on", True)))
            return {"ok": True}
        if op == "stall":
            twin.services.stalled.add(str(req["service"]))
            twin.truth.record("fault", kind="stall", service=req["service"])
            return {"ok": True}
        if op == "unstall":
            twin.services.stalled.discard(str(req["service"]))
            return {"ok": True}
        if op == "media":
            if "block" in req:
                twin.screen.media_blocked = bool(req["block"])
            if "freeze_share" in req:
                twin.screen.share_frozen = bool(req["freeze_share"])
                twin.truth.record("share_freeze" if twin.screen.share_frozen else "share_unfreeze")
            return {"ok": True}
        if op == "support":
            if "reconnect_grace_s" in req:
                twin.reconnect_grace_s = float(req["reconnect_grace_s"])
            return {"ok": True}
        if op == "privacy_mask":
            twin.screen.mask_private = bool(req.get("on", True))
            twin.truth.record("fault", kind="privacy_mask", on=twin.screen.mask_private)
            return {"ok": True}
        if op == "camera":
            on = bool(req.get("on", True))
            twin.camera_clients = [(1, twin.screen.support_pkg)] if on else []
            twin.truth.record("fault", kind="camera_open", on=on)
            return {"ok": True}
        if op == "mic":
            session = twin.screen.session
            peer = session.peer if session is not None else None
            if peer is None or peer.mic is None:
                return {"ok": False, "error": "no media session: the microphone is not streaming"}
            import numpy as np

            peer.mic.pending.append(np.asarray(req["samples"], np.int16))
            return {"ok": True, "t": __import__("time").monotonic()}
        if op == "mayday_button":
            twin.screen.mayday_button = bool(req.get("on", True))
            twin.screen.changed(
                "mayday button " + ("shown" if twin.screen.mayday_button else "hidden")
            )
            return {"ok": True}
        if op == "region":
            twin.region = str(req.get("region", twin.region))
            twin.timezone = str(req.get("timezone", twin.timezone))
            twin.props["persist.sys.timezone"] = twin.timezone
            return {"ok": True, "region": twin.region, "timezone": twin.timezone}
        if op == "registered":
            on = bool(req.get("on", True))
            twin.accounts = [(twin.options.account, "com.amazon.account")] if on else []
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}


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
