"""The uiautomator2 on-device server (API 18+): `app_process` starts it; HTTP + JSON-RPC
over `tcp:9008`, one request per stream, as uiautomator2 3.7.1 speaks it
(shared/reference/adb-wire-facts.md section 5)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import cv2

from harness.twin.proc import Proc
from harness.twin.screen import UiNode
from harness.twin.uidump import hierarchy_xml, window_tree

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.transport import Stream

log = logging.getLogger(__name__)

U2_JAR = "/data/local/tmp/u2.jar"
U2_MAIN = "com.wetest.uia2.Main"
_MAX_HEADER_BYTES = 64 * 1024
_MAX_WAIT_MS = 60_000
_POLL_S = 0.05
_SERVER_LIFETIME_S = 24 * 3600.0
_KEYS = {
    "home": 3,
    "back": 4,
    "menu": 82,
    "power": 26,
    "enter": 66,
    "wakeup": 224,
    "volume_up": 24,
    "volume_down": 25,
    "recent": 187,
}
_SKIP = {"mask", "childOrSibling", "childOrSiblingSelector"}


async def app_process(p: Proc) -> int:
    """`CLASSPATH=/data/local/tmp/u2.jar app_process / com.wetest.uia2.Main -p 9008`."""
    twin = p.twin
    args = p.argv[1:]
    main = next((a for a in args if "." in a and not a.startswith("/")), "")
    classpath = p.env.get("CLASSPATH", "")
    if main != U2_MAIN or not classpath or twin.fs.lookup(classpath) is None:
        await p.eprint(f"Error: Could not find class '{main}'")
        return 1
    if not twin.personality.has_u2:
        await p.eprint("java.lang.NoClassDefFoundError: android.app.UiAutomation")
        return 1
    port = int(args[args.index("-p") + 1]) if "-p" in args else 9008
    services = twin.services
    if port in services.tcp_handlers:
        await p.eprint("java.lang.IllegalStateException: UiAutomationService already registered!")
        return 1
    server = U2Server(twin)
    services.tcp_handlers[port] = server.handle
    twin.truth.record("u2_server_start", port=port)
    try:
        await p.print("[server] INFO: [UiAutomator2Server] Starting Server")
        await asyncio.sleep(_SERVER_LIFETIME_S)
    finally:
        services.tcp_handlers.pop(port, None)
        twin.truth.record("u2_server_stop", port=port)
    return 0


STEP_MS = 5  # UiDevice.swipe: each step is throttled to 5 ms
LONG_PRESS_S = 0.5  # ViewConfiguration long-press timeout: a drag holds first
_GESTURE_MAX_S = 60.0


async def _hold(seconds: float) -> None:
    """A gesture takes its time (bounded)."""
    await asyncio.sleep(min(max(seconds, 0.0), _GESTURE_MAX_S))


class U2Server:
    def __init__(self, twin: Twin):
        self.twin = twin
        self.rotation = 0  # setOrientation
        self.rotation_frozen = False
        self.traversed_text: str | None = None
        self.toast: tuple[str, float] | None = None
        self.clipboard: str | None = None
        self._touch: tuple[float, float, float] | None = None  # injectInputEvent DOWN

    async def handle(self, stream: Stream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.read()
            if not chunk:
                return
            head += chunk
            if len(head) > _MAX_HEADER_BYTES:
                await self._respond(stream, 431, b"header too large")
                return
        header, _, body = head.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        try:
            method, path, _ = lines[0].split(" ", 2)
        except ValueError:
            await self._respond(stream, 400, b"bad request line")
            return
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip() or 0)
        while len(body) < length:
            chunk = await stream.read()
            if not chunk:
                return
            body += chunk
        if method == "GET" and path == "/ping":
            await self._respond(stream, 200, b"pong", "text/plain")
        elif method == "POST" and path.startswith("/jsonrpc/0"):
            reply = await self.jsonrpc(body[:length])
            await self._respond(stream, 200, json.dumps(reply).encode(), "application/json")
        else:
            await self._respond(stream, 404, b"not found")

    async def _respond(
        self, stream: Stream, status: int, body: bytes, ctype: str = "text/plain"
    ) -> None:
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            431: "Request Header Fields Too Large",
        }[status]
        head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        await stream.write(head.encode() + body)

    async def jsonrpc(self, raw: bytes) -> dict[str, Any]:
        try:
            req = json.loads(raw)
            method, params, rid = req["method"], req.get("params") or [], req.get("id", 1)
        except (ValueError, KeyError, TypeError) as e:
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32700, "message": f"Parse error: {e}"},
            }
        self.twin.truth.record("u2_rpc", method=method)
        func = getattr(self, f"rpc_{method}", None)
        if func is None:
            return {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": -32601, "message": "Method not found", "data": method},
            }
        try:
            result = await func(*params) if asyncio.iscoroutinefunction(func) else func(*params)
        except _NotFound as e:
            return {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {
                    "code": -32002,
                    "message": "androidx.test.uiautomator.UiObjectNotFoundException",
                    "data": str(e),
                },
            }
        except (TypeError, ValueError) as e:
            return {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": -32602, "message": "Invalid params", "data": str(e)},
            }
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # --- selectors
    def _matches(self, node: UiNode, sel: dict[str, Any]) -> bool:
        checks = {
            "text": lambda v: node.text == v,
            "textContains": lambda v: v in node.text,
            "textStartsWith": lambda v: node.text.startswith(v),
            "description": lambda v: node.desc == v,
            "descriptionContains": lambda v: v in node.desc,
            "resourceId": lambda v: node.rid == v,
            "className": lambda v: node.cls == v,
            "packageName": lambda v: node.pkg == v,
            "clickable": lambda v: node.clickable == v,
            "enabled": lambda v: node.enabled == v,
        }
        for key, value in sel.items():
            if key in _SKIP or key in ("instance", "index"):
                continue
            check = checks.get(key)
            if check is None or not check(value):
                return False
        return True

    def _find(self, sel: dict[str, Any]) -> list[UiNode]:
        return [n for n in window_tree(self.twin.screen.root()).walk() if self._matches(n, sel)]

    def _one(self, sel: dict[str, Any]) -> UiNode:
        found = self._find(sel)
        instance = int(sel.get("instance", 0) or 0)
        if len(found) <= instance:
            raise _NotFound(
                f"UiSelector[{', '.join(f'{k}={v}' for k, v in sel.items() if k not in _SKIP)}]"
            )
        return found[instance]

    # --- methods
    def rpc_deviceInfo(self) -> dict[str, Any]:
        d = self.twin.profile.display
        return {
            "currentPackageName": self.twin.screen.focus_package,
            "displayWidth": d.width,
            "displayHeight": d.height,
            "displayRotation": self.rotation,
            "displaySizeDpX": round(d.width * 160 / d.density),
            "displaySizeDpY": round(d.height * 160 / d.density),
            "productName": self.twin.props["ro.product.name"],
            "naturalOrientation": d.width < d.height,
            "screenOn": self.twin.screen.screen_on,
            "sdkInt": self.twin.personality.api,
        }

    def rpc_dumpWindowHierarchy(self, compressed: bool = False, max_depth: int = 50, *rest) -> str:
        return hierarchy_xml(self.twin.screen.root())

    def rpc_exist(self, sel: dict) -> bool:
        return bool(self._find(sel))

    def rpc_count(self, sel: dict) -> int:
        return len(self._find(sel))

    async def rpc_waitForExists(self, sel: dict, timeout_ms: int = 0) -> bool:
        deadline = time.monotonic() + min(int(timeout_ms), _MAX_WAIT_MS) / 1000.0
        while not self._find(sel):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True

    async def rpc_waitUntilGone(self, sel: dict, timeout_ms: int = 0) -> bool:
        deadline = time.monotonic() + min(int(timeout_ms), _MAX_WAIT_MS) / 1000.0
        while self._find(sel):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True

    def rpc_objInfo(self, sel: dict) -> dict[str, Any]:
        n = self._one(sel)
        x1, y1, x2, y2 = n.bounds
        bounds = {"left": x1, "top": y1, "right": x2, "bottom": y2}
        return {
            "bounds": bounds,
            "visibleBounds": bounds,
            "className": n.cls,
            "text": n.text,
            "resourceName": n.rid or None,
            "contentDescription": n.desc or None,
            "packageName": n.pkg,
            "clickable": n.clickable,
            "enabled": n.enabled,
            "checkable": False,
            "checked": False,
            "focusable": n.clickable,
            "focused": False,
            "longClickable": False,
            "scrollable": False,
            "selected": False,
            "childCount": len(n.children),
        }

    def rpc_getText(self, sel: dict) -> str:
        return self._one(sel).text

    async def rpc_click(self, x: float, y: float, duration_ms: int | None = None) -> bool:
        if duration_ms:  # long click: UiDevice holds the touch down this long
            await _hold(duration_ms / 1000.0)
        self.twin.screen.tap(float(x), float(y))
        return True

    async def rpc_swipe(self, fx: float, fy: float, tx: float, ty: float, steps: int = 10) -> bool:
        ms = int(steps) * STEP_MS
        self.twin.screen.swipe(float(fx), float(fy), float(tx), float(ty), ms)
        await _hold(ms / 1000.0)  # "each step execution is throttled to 5 ms per step"
        return True

    async def rpc_swipePoints(self, points: list, steps: int = 10) -> bool:
        xy = [(float(points[i]), float(points[i + 1])) for i in range(0, len(points) - 1, 2)]
        if len(xy) < 2:
            raise ValueError("swipePoints needs at least two points")
        for (x1, y1), (x2, y2) in zip(xy, xy[1:], strict=False):
            self.twin.screen.swipe(x1, y1, x2, y2, int(steps) * STEP_MS)
            await _hold(int(steps) * STEP_MS / 1000.0)
        return True

    async def rpc_drag(self, sx: float, sy: float, ex: float, ey: float, steps: int = 10) -> bool:
        await _hold(LONG_PRESS_S)
        return await self.rpc_swipe(sx, sy, ex, ey, steps)

    async def rpc_dragTo(self, sel: dict, *args: Any) -> bool:
        x1, y1, x2, y2 = self._one(sel).bounds
        if len(args) == 3:
            tx, ty, steps = float(args[0]), float(args[1]), int(args[2])
        else:
            bx1, by1, bx2, by2 = self._one(args[0]).bounds
            tx, ty, steps = (bx1 + bx2) / 2, (by1 + by2) / 2, int(args[1])
        return await self.rpc_drag((x1 + x2) / 2, (y1 + y2) / 2, tx, ty, steps)

    async def rpc_longClick(self, sel: dict, duration_ms: int = 500) -> bool:
        x1, y1, x2, y2 = self._one(sel).bounds
        return await self.rpc_click((x1 + x2) / 2, (y1 + y2) / 2, int(duration_ms) or 500)

    def rpc_injectInputEvent(self, action: int, x: float, y: float, meta: int = 0) -> bool:
        """MotionEvent ACTION_DOWN 0 / UP 1 / MOVE 2: a down-up in place is a tap, with
        movement a swipe lasting as long as the finger was down."""
        now = time.monotonic()
        if action == 0:
            self._touch = (float(x), float(y), now)
        elif action == 1 and self._touch is not None:
            x0, y0, t0 = self._touch
            self._touch = None
            if abs(x - x0) < 8 and abs(y - y0) < 8:
                self.twin.screen.tap(float(x), float(y))
            else:
                self.twin.screen.swipe(x0, y0, float(x), float(y), int((now - t0) * 1000))
        elif action not in (1, 2):
            raise ValueError(f"unsupported action {action}")
        return True

    def rpc_setOrientation(self, orientation: str) -> None:
        names = {"n": 0, "natural": 0, "l": 1, "left": 1, "u": 2, "upsidedown": 2, "r": 3}
        names["right"] = 3
        if str(orientation).lower() not in names:
            raise ValueError(f"Invalid orientation: {orientation}")
        self.rotation = names[str(orientation).lower()]
        self.twin.truth.record("u2_orientation", rotation=self.rotation)

    def rpc_freezeRotation(self, freeze: bool = True) -> None:
        self.rotation_frozen = bool(freeze)

    def rpc_getLastTraversedText(self) -> str | None:
        return self.traversed_text

    def rpc_clearLastTraversedText(self) -> None:
        self.traversed_text = None

    def rpc_makeToast(self, text: str, duration_ms: int = 1000) -> bool:
        self.toast = (str(text), time.monotonic())
        return True

    def rpc_getLastToast(self, cache_ms: int = 5000) -> str | None:
        if self.toast is None or time.monotonic() - self.toast[1] > int(cache_ms) / 1000.0:
            return None
        return self.toast[0]

    def rpc_clearLastToast(self) -> None:
        self.toast = None

    def rpc_setClipboard(self, label: str | None, text: str) -> None:
        self.clipboard = str(text)

    def rpc_getClipboard(self) -> str | None:
        return self.clipboard

    def rpc_setText(self, sel: dict, text: str) -> bool:
        node = self._one(sel)
        node.text = str(text)
        self.traversed_text = node.text
        self.twin.truth.record("text", text=node.text)
        return True

    def rpc_clearTextField(self, sel: dict) -> None:
        self._one(sel).text = ""

    def rpc_objInfoOfAllInstances(self, sel: dict) -> list[dict]:
        return [self.rpc_objInfo({**sel, "instance": i}) for i in range(len(self._find(sel)))]

    def rpc_sleep(self) -> None:
        self.twin.screen.key(223)

    def rpc_pressKey(self, key: str) -> bool:
        code = _KEYS.get(str(key).lower())
        if code is None:
            raise ValueError(f"unknown key {key!r}")
        self.twin.screen.key(code)
        return True

    def rpc_pressKeyCode(self, code: int, meta: int = 0) -> bool:
        self.twin.screen.key(int(code))
        return True

    def rpc_wakeUp(self) -> None:
        self.twin.screen.key(224)

    def rpc_openQuickSettings(self) -> bool:
        opener = getattr(self.twin.screen, "open_quick_settings", None)
        if opener is not None:
            opener()
        return True

    rpc_openNotification = rpc_openQuickSettings

    def rpc_takeScreenshot(self, scale: float = 1, quality: int = 80) -> str:
        rgba = self.twin.screen.frame()
        bgr = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR)
        if scale != 1:
            bgr = cv2.resize(
                bgr, None, fx=float(scale), fy=float(scale), interpolation=cv2.INTER_AREA
            )
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        return base64.b64encode(buf.tobytes()).decode("ascii")


class _NotFound(Exception):
    pass
