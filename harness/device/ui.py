"""The UI driver: one small API over two back ends chosen by probing.

- Uiautomator2Backend: the uiautomator2 on-device server (API 18+), via uiautomator2.connect.
- DumpBackend: `uiautomator dump` + `input` (every API level, and the only way on Fire OS 3).

find by text / resource-id / description, tap, swipe, wait for: every wait bounded.
"""

from __future__ import annotations

import logging
import shlex
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from harness.device.adb import Device
from harness.errors import AdbError, UiError

log = logging.getLogger(__name__)

WAIT_TIMEOUT_S = 10.0
_POLL_S = 0.2
_DUMP_PATH = "/data/local/tmp/hil-uidump.xml"
U2_MIN_API = 18
U2_CONNECT_TIMEOUT_S = 20.0
U2_OP_TIMEOUT_S = 10.0  # one tap, swipe or key press through the uiautomator2 server
U2_MAX_DEPTH = 50  # hierarchy depth of a dump (uiautomator2's default)
U2_STEPS_PER_S = 200  # uiautomator swipes move one step per 5 ms
U2_DEFAULT_STEPS = 55  # uiautomator2's SCROLL_STEPS, for a swipe without a duration
_EMPTY_HIERARCHY = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\r\n<hierarchy rotation=\"0\" />"
)


@dataclass(frozen=True)
class Selector:
    """What to look for: text, resource id, content description and/or an XPath over the dump.

    A resource id that starts with ":" (":id/message") matches that suffix in any package.
    """

    text: str | None = None
    resource_id: str | None = None
    description: str | None = None
    xpath: str | None = None

    def __post_init__(self) -> None:
        if not (self.text or self.resource_id or self.description or self.xpath):
            raise ValueError("a selector needs text, resource_id, description or xpath")

    def __str__(self) -> str:
        parts = [
            f"{k}={v!r}"
            for k, v in (
                ("text", self.text),
                ("resource_id", self.resource_id),
                ("description", self.description),
                ("xpath", self.xpath),
            )
            if v
        ]
        return ", ".join(parts)


@dataclass(frozen=True)
class Element:
    text: str
    resource_id: str
    description: str
    class_name: str
    package: str
    bounds: tuple[int, int, int, int]
    clickable: bool

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.bounds
        return (x1 + x2) / 2, (y1 + y2) / 2

    def matches(self, sel: Selector) -> bool:
        """Text, description and resource id equal (an id starting with ":" as a suffix);
        an XPath part is checked by select(), over the dump."""
        rid = sel.resource_id
        return (
            (sel.text is None or self.text == sel.text)
            and (
                rid is None
                or (
                    self.resource_id.endswith(rid)
                    if rid.startswith(":")
                    else self.resource_id == rid
                )
            )
            and (sel.description is None or self.description == sel.description)
        )


def _parse_root(xml: str) -> ET.Element:
    try:
        root = ET.fromstring(xml.strip())
    except ET.ParseError as e:
        raise UiError("?", f"UI dump is not XML: {e}") from None
    if root.tag != "hierarchy":
        raise UiError("?", f"UI dump root is <{root.tag}>, not <hierarchy>")
    return root


def select(xml: str, sel: Selector) -> list[Element]:
    """Elements of a dump matching a selector, in document order (XPath: ElementTree's subset,
    evaluated from the <hierarchy> root, e.g. ".//node[@resource-id='pkg:id/pane']")."""
    root = _parse_root(xml)
    nodes = list(root.iter("node"))
    elements = _elements(nodes)
    if sel.xpath:
        try:
            hits = {id(n) for n in root.iterfind(sel.xpath)}
        except (SyntaxError, KeyError, TypeError) as e:
            raise UiError("?", f"XPath {sel.xpath!r} cannot be evaluated: {e}") from None
        elements = [e for n, e in zip(nodes, elements, strict=True) if id(n) in hits]
    return [e for e in elements if e.matches(sel)]


def parse_hierarchy(xml: str) -> list[Element]:
    """Elements of a uiautomator hierarchy dump, in document order.

    Raises:
        UiError: not a hierarchy dump.
    """
    return _elements(list(_parse_root(xml).iter("node")))


def _elements(nodes: list[ET.Element]) -> list[Element]:
    out = []
    for node in nodes:
        b = node.get("bounds", "[0,0][0,0]").replace("][", ",").strip("[]").split(",")
        try:
            bounds = tuple(int(v) for v in b)
        except ValueError:
            bounds = (0, 0, 0, 0)
        out.append(
            Element(
                text=node.get("text", ""),
                resource_id=node.get("resource-id", ""),
                description=node.get("content-desc", ""),
                class_name=node.get("class", ""),
                package=node.get("package", ""),
                bounds=bounds,  # type: ignore[arg-type]
                clickable=node.get("clickable") == "true",
            )
        )
    return out


class DumpBackend:
    """`uiautomator dump` to a file, pulled with sync; `input tap/swipe` to act."""

    name = "uiautomator-dump"

    def __init__(self, device: Device):
        self.device = device

    def dump(self, timeout_s: float = WAIT_TIMEOUT_S) -> str:
        r = self.device.shell(f"uiautomator dump {_DUMP_PATH}", timeout_s=timeout_s)
        if r.returncode != 0 or "dumped to" not in r.stdout:
            raise UiError(
                self.device.serial,
                f"uiautomator dump failed (exit {r.returncode}): {r.output.strip()[:200]}",
            )
        return self.device.pull_bytes(_DUMP_PATH, timeout_s).decode("utf-8", "replace")

    def tap(self, x: float, y: float) -> None:
        self.device.shell(f"input tap {int(x)} {int(y)}", check=True)

    def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int) -> None:
        cmd = f"input swipe {int(x1)} {int(y1)} {int(x2)} {int(y2)}"
        if self.device.api_level >= 19:  # no duration argument before 4.4
            cmd += f" {int(duration_ms)}"
        self.device.shell(cmd, check=True)

    def press(self, key: str) -> None:
        # quoted: a key name from a test or a profile never reaches the shell as code
        self.device.shell(f"input keyevent {shlex.quote(str(key))}", check=True)


class Uiautomator2Backend:
    """uiautomator2's JSON-RPC server on the device (API 18+).

    Every call is bounded by its timeout_s and every failure (uiautomator2's own errors, HTTP,
    adb, sockets) is one UiError naming the device and the operation.
    """

    name = "uiautomator2"

    def __init__(self, device: Device, timeout_s: float = U2_CONNECT_TIMEOUT_S):
        import uiautomator2

        self.device = device
        try:
            # through our adb server (not adbutils' default one)
            self.u2 = uiautomator2.connect(device.client.device(device.serial))
            self.u2.settings["wait_timeout"] = min(timeout_s, WAIT_TIMEOUT_S)
            self.u2.info  # noqa: B018 - starts and pings the server; raises when it cannot
        except Exception as e:  # noqa: BLE001 -- uiautomator2 raises many kinds: one UiError
            raise UiError(device.serial, f"uiautomator2 server: {type(e).__name__}: {e}") from e

    def _rpc(self, what: str, method: str, params: list, timeout_s: float):
        """One JSON-RPC call, bounded by timeout_s. Raises UiError."""
        try:
            return self.u2.jsonrpc_call(method, params, timeout=timeout_s)
        except Exception as e:  # noqa: BLE001 -- uiautomator2 raises many kinds: one UiError
            raise UiError(
                self.device.serial, f"uiautomator2 {what}: {type(e).__name__}: {e}"
            ) from e

    def dump(self, timeout_s: float = WAIT_TIMEOUT_S) -> str:
        content = self._rpc("dump", "dumpWindowHierarchy", [False, U2_MAX_DEPTH], timeout_s)
        return content or _EMPTY_HIERARCHY

    def tap(self, x: float, y: float, timeout_s: float = U2_OP_TIMEOUT_S) -> None:
        self._rpc(f"tap {x:g},{y:g}", "click", [x, y], timeout_s)

    def swipe(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        duration_ms: int,
        timeout_s: float = U2_OP_TIMEOUT_S,
    ) -> None:
        steps = max(2, int(duration_ms / 1000.0 * U2_STEPS_PER_S) or U2_DEFAULT_STEPS)
        self._rpc("swipe", "swipe", [x1, y1, x2, y2, steps], timeout_s + duration_ms / 1000.0)

    def press(self, key: str, timeout_s: float = U2_OP_TIMEOUT_S) -> None:
        name = key.removeprefix("KEYCODE_").lower()
        self._rpc(f"press {name}", "pressKey", [name], timeout_s)


class Ui:
    """The harness's UI driver for one device."""

    def __init__(self, device: Device, backend: DumpBackend | Uiautomator2Backend):
        self.device = device
        self.backend = backend
        self.last_tap_window: tuple[float, float] = (0.0, 0.0)  # host times around the last tap
        self.last_dump = ""  # the last hierarchy dump (attached to reports when a selector misses)

    @classmethod
    def for_device(cls, device: Device, prefer_u2: bool = True) -> Ui:
        """Choose the back end by probing: uiautomator2 where its server starts, else dump."""
        if prefer_u2 and device.api_level >= U2_MIN_API:
            try:
                return cls(device, Uiautomator2Backend(device))
            except Exception as e:  # noqa: BLE001 -- any failure to start the server means: use the fallback
                log.info(
                    "%s: uiautomator2 unavailable (%s); using uiautomator dump", device.serial, e
                )
                device.retries.record(
                    "ui-backend-fallback", 1, f"uiautomator2: {type(e).__name__}: {e}"
                )
        return cls(device, DumpBackend(device))

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def dump(self) -> str:
        """The hierarchy XML now on screen (kept in last_dump, for error reports)."""
        self.last_dump = self.backend.dump()
        return self.last_dump

    def elements(self) -> list[Element]:
        return parse_hierarchy(self.dump())

    def select(self, sel: Selector) -> list[Element]:
        """Elements now on screen matching sel (one dump)."""
        return select(self.dump(), sel)

    def find(
        self,
        text: str | None = None,
        resource_id: str | None = None,
        description: str | None = None,
        xpath: str | None = None,
        *,
        selector: Selector | None = None,
    ) -> Element | None:
        sel = selector or Selector(text, resource_id, description, xpath)
        return next(iter(self.select(sel)), None)

    def wait_for(
        self,
        text: str | None = None,
        resource_id: str | None = None,
        description: str | None = None,
        timeout_s: float = WAIT_TIMEOUT_S,
        xpath: str | None = None,
        *,
        selector: Selector | None = None,
    ) -> Element:
        """Poll until an element matches. Raises UiError naming the selector and the wait."""
        sel = selector or Selector(text, resource_id, description, xpath)
        hit = self._poll(sel, timeout_s, gone=False)
        assert hit is not None  # _poll returns an element or raises
        return hit

    def wait_gone(
        self,
        text: str | None = None,
        resource_id: str | None = None,
        description: str | None = None,
        timeout_s: float = WAIT_TIMEOUT_S,
        xpath: str | None = None,
        *,
        selector: Selector | None = None,
    ) -> None:
        """Poll until no element matches. Raises UiError naming the selector and the wait."""
        sel = selector or Selector(text, resource_id, description, xpath)
        self._poll(sel, timeout_s, gone=True)

    def _poll(self, sel: Selector, timeout_s: float, gone: bool) -> Element | None:
        """One dump every _POLL_S until an element matches sel (returned) or, with gone, until
        none does (None). A failed dump or the deadline: UiError naming the selector."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                hit = next(iter(self.select(sel)), None)
            except AdbError as e:
                what = f"{sel} to go" if gone else str(sel)
                raise UiError(self.device.serial, f"waiting for {what}: {e}") from None
            if (hit is None) == gone:
                return hit
            if time.monotonic() >= deadline:
                if gone:
                    why = f"element with {sel} still shown after {timeout_s:g} s"
                else:
                    why = f"no element with {sel} within {timeout_s:g} s"
                raise UiError(self.device.serial, why)
            time.sleep(_POLL_S)

    def tap(self, target: Element | tuple[float, float]) -> float:
        """Tap an element's centre or a point; returns the host monotonic time just before it was
        sent. The device acted on it before `last_tap_window[1]` (when the call returned)."""
        x, y = target.center if isinstance(target, Element) else target
        t = time.monotonic()
        self.backend.tap(x, y)
        self.last_tap_window = (t, time.monotonic())
        return t

    def tap_on(
        self,
        text: str | None = None,
        resource_id: str | None = None,
        description: str | None = None,
        timeout_s: float = WAIT_TIMEOUT_S,
        xpath: str | None = None,
        *,
        selector: Selector | None = None,
    ) -> float:
        return self.tap(
            self.wait_for(text, resource_id, description, timeout_s, xpath, selector=selector)
        )

    def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int = 300) -> None:
        self.backend.swipe(x1, y1, x2, y2, duration_ms)

    def press(self, key: str) -> None:
        self.backend.press(key)
