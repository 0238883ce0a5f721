"""An STF-compatible device farm in front of device twins (DeviceFarmer STF REST API v1).

The endpoints, JSON field names, status codes and descriptions follow DeviceFarmer STF's
API v1 (lib/units/api/swagger/api_v1.yaml and its controllers):

    GET    /api/v1/devices                               {success, description, devices: [...]}
    GET    /api/v1/devices/{serial}                      {success, description, device}
    GET    /api/v1/user                                  {success, user}
    GET    /api/v1/user/devices                          the caller's devices
    POST   /api/v1/user/devices  {serial, timeout(ms)}   claim (403 when not free)
    GET    /api/v1/user/devices/{serial}                 403 when not the caller's
    DELETE /api/v1/user/devices/{serial}                 release
    POST   /api/v1/user/devices/{serial}/remoteConnect   {remoteConnectUrl: "host:port"}
    DELETE /api/v1/user/devices/{serial}/remoteConnect

Every call needs `Authorization: Bearer TOKEN` (401 otherwise); each token is one user. As in
STF, a device's `using` is true only for its owner's requests and `owner` names whoever holds
it. A lease ends after its timeout (ms) or the farm's default. Outside /api/v1, the twin world
adds `GET /_twin/state` (ground truth: leases, remote connects, faults) and `POST /_twin/faults`
(a device leaves or returns, remote adb offline after connect, API slow, API down).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harness.errors import ProfileError
from harness.profiles import DeviceProfile
from harness.twin.stf.proxy import RemotePort

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 900.0
MAX_BODY_BYTES = 65536
PROVIDER = "twin-provider-1"


@dataclass
class FarmDevice:
    """One device of the farm: a twin's adb port and what STF knows about it."""

    serial: str
    twin_port: int
    profile: DeviceProfile
    provider: str = PROVIDER
    present: bool = True
    ready: bool = True
    owner: dict[str, str] | None = None
    leased_at: float | None = None  # wall clock
    expires_mono: float | None = None
    timeout_ms: int | None = None
    remote: RemotePort | None = None
    offline_after_connect_s: float | None = None  # None: the farm's default
    created_at: float = field(default_factory=time.time)

    def to_json(self, user_email: str) -> dict[str, Any]:
        p = self.profile
        props = p.props
        iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.created_at))
        return {
            "serial": self.serial,
            "present": self.present,
            "ready": self.ready,
            "status": 3 if self.present else 1,  # STF: 3 = online (device), 1 = offline
            "using": bool(self.owner and self.owner["email"] == user_email),
            "owner": dict(self.owner) if self.owner else None,
            "usage": "automation" if self.owner else None,
            "model": p.model,
            "manufacturer": props.get("ro.product.manufacturer", ""),
            "marketName": p.description,
            "name": props.get("ro.product.device", ""),
            "product": props.get("ro.product.name", ""),
            "platform": "Android",
            "sdk": str(p.api_level),
            "version": props.get("ro.build.version.release", ""),
            "abi": props.get("ro.product.cpu.abi", "armeabi-v7a"),
            "display": {
                "id": 0,
                "width": p.display.width,
                "height": p.display.height,
                "density": p.display.density / 160,
                "rotation": 0,
            },
            "provider": {"name": self.provider, "channel": f"{self.provider}-channel"},
            "channel": f"channel-{self.serial}",
            "remoteConnect": self.remote is not None,
            "remoteConnectUrl": self.remote.url if self.remote else None,
            "createdAt": iso,
            "presenceChangedAt": iso,
            "reverseForwards": [],
        }


class StfFarm:
    """The farm's state (devices, users, faults) behind one lock; the HTTP server in front."""

    def __init__(
        self,
        devices: list[FarmDevice],
        tokens: list[str],
        truth_path: Path | None = None,
        default_lease_s: float = DEFAULT_LEASE_S,
        offline_after_connect_s: float = 0.0,
    ):
        if not tokens or not all(tokens):
            raise ProfileError("--token", "-", "an STF farm needs access tokens, none empty")
        self.devices = {d.serial: d for d in devices}
        self.users = {
            t: {
                "email": f"user{i + 1}@twin-stf.local",
                "name": f"user{i + 1}",
                "group": f"group-user{i + 1}",
                "privilege": "user",
            }
            for i, t in enumerate(tokens)
        }
        self.default_lease_s = default_lease_s
        self.offline_after_connect_s = offline_after_connect_s
        self.api_delay_s = 0.0
        self.api_down_until = 0.0
        self.lock = threading.RLock()
        self.events: list[dict[str, Any]] = []
        self._truth = truth_path.open("a", buffering=1) if truth_path else None
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- ground truth
    def record(self, event: str, **kw: Any) -> None:
        row = {"t": time.monotonic(), "wall": time.time(), "event": event, **kw}
        self.events.append(row)
        if self._truth is not None:
            try:
                self._truth.write(json.dumps(row) + "\n")
            except (OSError, ValueError):
                pass

    # --- leases
    def _end_lease(self, dev: FarmDevice, why: str) -> None:
        if dev.remote is not None:
            dev.remote.close()
            dev.remote = None
            self.record("remote_disconnect", serial=dev.serial, why=why)
        if dev.owner is not None:
            self.record("release", serial=dev.serial, owner=dev.owner["email"], why=why)
        dev.owner = None
        dev.leased_at = dev.expires_mono = dev.timeout_ms = None

    def expire(self) -> list[str]:
        """End every lease past its time; the serials taken back."""
        now = time.monotonic()
        out = []
        with self.lock:
            for dev in self.devices.values():
                if (
                    dev.owner is not None
                    and dev.expires_mono is not None
                    and now >= dev.expires_mono
                ):
                    self._end_lease(dev, "expired")
                    out.append(dev.serial)
        return out

    def handle(  # noqa: C901 -- one branch per route of STF's API v1
        self, method: str, path: str, query: dict[str, list[str]], body: Any, token: str | None
    ) -> tuple[int, dict[str, Any]]:
        """One API call -> (HTTP status, JSON body)."""
        user = self.users.get(token or "")
        if user is None:
            return 401, {
                "success": False,
                "description": "Bad Credentials"
                if token is not None
                else "Requires Authentication",
            }
        if path.startswith("/_twin/"):
            return self._twin_api(method, path, body)
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return 404, {"success": False, "description": "Not Found"}
        parts = parts[2:]
        fields = (query.get("fields") or [""])[0]
        with self.lock:
            if parts == ["devices"] and method == "GET":
                return 200, {
                    "success": True,
                    "description": "Devices Information",
                    "devices": [
                        self._pick(d.to_json(user["email"]), fields) for d in self.devices.values()
                    ],
                }
            if len(parts) == 2 and parts[0] == "devices" and method == "GET":
                dev = self.devices.get(parts[1])
                if dev is None:
                    return 404, {"success": False, "description": "Device not found"}
                return 200, {
                    "success": True,
                    "description": "Device Information",
                    "device": self._pick(dev.to_json(user["email"]), fields),
                }
            if parts == ["user"] and method == "GET":
                return 200, {"success": True, "user": dict(user)}
            if parts == ["user", "devices"] and method == "GET":
                mine = [
                    d
                    for d in self.devices.values()
                    if d.owner and d.owner["email"] == user["email"]
                ]
                return 200, {
                    "success": True,
                    "description": "Controlled devices information",
                    "devices": [self._pick(d.to_json(user["email"]), fields) for d in mine],
                }
            if parts == ["user", "devices"] and method == "POST":
                return self._claim(user, body)
            if len(parts) >= 3 and parts[:2] == ["user", "devices"]:
                dev = self.devices.get(parts[2])
                if dev is None:
                    return 404, {"success": False, "description": "Device not found"}
                owned = (
                    dev.owner is not None and dev.owner["email"] == user["email"] and dev.present
                )
                if len(parts) == 3 and method == "GET":
                    if not owned:
                        return 403, {"success": False, "description": "Device is not owned by you"}
                    return 200, {
                        "success": True,
                        "description": "Controlled device information",
                        "device": self._pick(dev.to_json(user["email"]), fields),
                    }
                if len(parts) == 3 and method == "DELETE":
                    if not owned:
                        return 403, {
                            "success": False,
                            "description": "You cannot release this device. Not owned by you",
                        }
                    self._end_lease(dev, "released")
                    return 200, {"success": True, "description": "Device successfully removed"}
                if len(parts) == 4 and parts[3] == "remoteConnect" and method in ("POST", "DELETE"):
                    if not owned:
                        return 403, {
                            "success": False,
                            "description": "Device is not owned by you or is not available",
                        }
                    if method == "POST":
                        if dev.remote is None:
                            offline = (
                                dev.offline_after_connect_s
                                if dev.offline_after_connect_s is not None
                                else self.offline_after_connect_s
                            )
                            dev.remote = RemotePort(dev.twin_port, offline_s=offline)
                            self.record(
                                "remote_connect",
                                serial=dev.serial,
                                url=dev.remote.url,
                                offline_s=offline,
                            )
                        return 200, {
                            "success": True,
                            "description": "Remote connection is enabled",
                            "remoteConnectUrl": dev.remote.url,
                        }
                    if dev.remote is not None:
                        dev.remote.close()
                        dev.remote = None
                        self.record("remote_disconnect", serial=dev.serial, why="requested")
                    return 200, {
                        "success": True,
                        "description": "Device remote disconnected successfully",
                    }
        return 404, {"success": False, "description": "Not Found"}

    def _claim(self, user: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("serial"), str):
            return 400, {"success": False, "description": "Bad Request: body needs a serial"}
        timeout = body.get("timeout")
        if timeout is not None and (
            not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0
        ):
            return 400, {
                "success": False,
                "description": "Bad Request: timeout is a positive integer (ms)",
            }
        dev = self.devices.get(body["serial"])
        if dev is None:
            return 404, {"success": False, "description": "Device not found"}
        if not (dev.present and dev.ready and dev.owner is None):
            self.record("claim_refused", serial=dev.serial, by=user["email"])
            return 403, {"success": False, "description": "Device is being used or not available"}
        dev.owner = {"email": user["email"], "name": user["name"], "group": user["group"]}
        dev.leased_at = time.time()
        dev.timeout_ms = timeout
        lease_s = timeout / 1000.0 if timeout else self.default_lease_s
        dev.expires_mono = time.monotonic() + lease_s
        self.record("claim", serial=dev.serial, owner=user["email"], lease_s=lease_s)
        return 200, {"success": True, "description": "Device successfully added"}

    @staticmethod
    def _pick(obj: dict[str, Any], fields: str) -> dict[str, Any]:
        if not fields:
            return obj
        wanted = [f.strip() for f in fields.split(",") if f.strip()]
        return {k: obj[k] for k in wanted if k in obj}

    # --- the twin world's side door: ground truth and faults
    def _twin_api(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if path == "/_twin/state" and method == "GET":
                return 200, {
                    "success": True,
                    "devices": {
                        s: {
                            "twin_port": d.twin_port,
                            "present": d.present,
                            "owner": d.owner["email"] if d.owner else None,
                            "remote": d.remote.url if d.remote else None,
                            "remote_connections": d.remote.connections if d.remote else 0,
                        }
                        for s, d in self.devices.items()
                    },
                    "events": list(self.events),
                }
            if path == "/_twin/faults" and method == "POST":
                return self.fault(body if isinstance(body, dict) else {})
        return 404, {"success": False, "description": "Not Found"}

    def fault(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Inject a fault: {"op": leave|return|offline_after_connect|api_slow|api_down, ...}."""
        op = req.get("op")
        seconds = float(req.get("seconds") or 0.0)
        with self.lock:
            serial = req.get("serial")
            dev = self.devices.get(serial) if serial else None
            if op in ("leave", "return") or (op == "offline_after_connect" and serial):
                if dev is None:
                    return 404, {"success": False, "description": f"no device {serial!r}"}
            if op == "leave":
                self._end_lease(dev, "left the farm")
                dev.present = dev.ready = False
            elif op == "return":
                dev.present = dev.ready = True
            elif op == "offline_after_connect":
                if dev is not None:
                    dev.offline_after_connect_s = seconds
                else:
                    self.offline_after_connect_s = seconds
            elif op == "api_slow":
                self.api_delay_s = seconds
            elif op == "api_down":
                self.api_down_until = time.monotonic() + seconds
            else:
                return 400, {
                    "success": False,
                    "description": f"unknown fault {op!r}; use leave, return, offline_after_connect, api_slow, api_down",
                }
            self.record("fault", op=op, serial=serial, seconds=seconds)
        return 200, {"success": True, "description": f"fault {op} injected"}

    # --- the HTTP server
    def start(self, port: int = 0) -> int:
        """Serve on 127.0.0.1:port (0: a free one) in a thread; the port."""
        farm = self

        class Handler(_Handler):
            pass

        Handler.farm = farm
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self.server.server_address[1]

    def stop(self) -> None:
        """Stop serving, close every remote port. Never raises."""
        if self.server is not None:
            try:
                self.server.shutdown()
                self.server.server_close()
            except Exception as e:  # noqa: BLE001 -- cleanup never raises
                log.warning("stf farm: stopping the server: %s", e)
        with self.lock:
            for dev in self.devices.values():
                if dev.remote is not None:
                    dev.remote.close()
                    dev.remote = None
        if self._truth is not None:
            try:
                self._truth.close()
            except OSError:
                pass
            self._truth = None


class _Handler(BaseHTTPRequestHandler):
    farm: StfFarm
    protocol_version = "HTTP/1.1"
    server_version = "twin-stf/1.0"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("stf api: " + fmt, *args)

    def _serve(self, method: str) -> None:
        farm = self.farm
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY_BYTES)) if length else b""
        if url.path.startswith("/api/"):
            if farm.api_delay_s > 0:
                time.sleep(farm.api_delay_s)
            if time.monotonic() < farm.api_down_until:
                self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
                return
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._json(400, {"success": False, "description": "Bad Request: body is not JSON"})
                return
        auth = self.headers.get("Authorization") or ""
        token = None
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme != "Bearer":
                self._json(
                    401,
                    {
                        "success": False,
                        "description": 'Authorization header should be in "Bearer $AUTH_TOKEN" format',
                    },
                )
                return
            token = value.strip() or ""
        status, reply = farm.handle(method, url.path, parse_qs(url.query), body, token)
        self._json(status, reply)

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _send(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError) as e:  # the client gave up (a timeout)
            log.info("stf farm: client %s left before the answer: %s", self.client_address, e)

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")
