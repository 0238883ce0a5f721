"""The twin's screen: a UI model (nodes with bounds, text, ids) rendered into a framebuffer.

The model answers input events and `uiautomator dump`; every change of what is shown is
recorded in the ground truth with its host time and the new frame version.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from harness.twin.device import Twin

_FONT = cv2.FONT_HERSHEY_SIMPLEX
BG_HOME = (32, 44, 64)
BG_APP = (245, 245, 245)
STATUS_BAR = (20, 20, 20)


@dataclass
class UiNode:
    cls: str = "android.widget.FrameLayout"
    text: str = ""
    rid: str = ""
    desc: str = ""
    bounds: tuple[int, int, int, int] = (0, 0, 0, 0)
    pkg: str = ""
    clickable: bool = False
    enabled: bool = True
    children: list[UiNode] = field(default_factory=list)
    on_tap: Callable[[], None] | None = None
    fill: tuple[int, int, int] | None = None
    text_color: tuple[int, int, int] = (255, 255, 255)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def contains(self, x: float, y: float) -> bool:
        x1, y1, x2, y2 = self.bounds
        return x1 <= x < x2 and y1 <= y < y2


@dataclass(frozen=True)
class App:
    package: str
    label: str
    private: bool = False


class Screen:
    """Home screen and app pages of one twin; later issues add quick settings and sessions."""

    def __init__(self, twin: Twin):
        self.twin = twin
        d = twin.profile.display
        self.width, self.height = d.width, d.height
        self.unit = max(1, min(self.width, self.height) // 40)  # layout grid step in px
        self.status_h = self.unit * 2
        fire = "Fire" in twin.profile.os_name
        self.launcher = "com.amazon.kindle.otter" if fire else "com.android.launcher3"
        self.apps = [
            App("com.amazon.email" if fire else "com.android.email", "Email", private=True),
            App("com.amazon.photos" if fire else "com.google.android.apps.photos", "Photos", private=True),
            App("com.android.settings", "Settings"),
        ]
        self.state = "home"
        self.focus_package = self.launcher
        self.version = 0
        self.screen_on = True
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._frame_version = -1
        self._root: UiNode | None = None

    # --- state changes
    def changed(self, why: str) -> None:
        """Mark the screen dirty and record when the change happened (ground truth)."""
        with self._lock:
            self.version += 1
            self._root = None
        self.twin.truth.record("screen_changed", version=self.version, state=self.state, why=why)

    def go_home(self) -> None:
        self.state, self.focus_package = "home", self.launcher
        self.changed("home")

    def open_package(self, pkg: str) -> None:
        app = next((a for a in self.apps if a.package == pkg), None)
        self.state = f"app:{pkg}" if app else "home"
        self.focus_package = pkg if app else self.launcher
        self.changed(f"open {pkg}")

    def stop_package(self, pkg: str) -> None:
        if self.focus_package == pkg:
            self.go_home()

    def stop(self) -> None:
        """Release resources (nothing runs in the background yet)."""

    # --- model
    def root(self) -> UiNode:
        with self._lock:
            if self._root is None:
                self._root = self._build()
            return self._root

    def _build(self) -> UiNode:
        w, h, u = self.width, self.height, self.unit
        root = UiNode(bounds=(0, 0, w, h), pkg=self.focus_package)
        status = UiNode(
            cls="android.widget.FrameLayout", rid="com.android.systemui:id/status_bar", bounds=(0, 0, w, self.status_h),
            pkg="com.android.systemui", fill=STATUS_BAR,
        )
        status.children.append(
            UiNode(cls="android.widget.TextView", rid="com.android.systemui:id/clock", text=time.strftime("%H:%M"),
                   bounds=(w - 6 * u, 0, w - u, self.status_h), pkg="com.android.systemui")
        )
        if self.state == "home":
            content = UiNode(rid=f"{self.launcher}:id/workspace", bounds=(0, self.status_h, w, h), pkg=self.launcher, fill=BG_HOME)
            size = 6 * u
            for i, app in enumerate(self.apps):
                x1 = 3 * u + i * (size + 3 * u)
                y1 = self.status_h + 4 * u
                content.children.append(
                    UiNode(
                        cls="android.widget.TextView", text=app.label, desc=app.label,
                        rid=f"{self.launcher}:id/app_icon", bounds=(x1, y1, x1 + size, y1 + size + 2 * u),
                        pkg=self.launcher, clickable=True, fill=(70, 110, 170),
                        on_tap=lambda pkg=app.package: self.open_package(pkg),
                    )
                )
        else:
            pkg = self.state.split(":", 1)[1]
            app = next(a for a in self.apps if a.package == pkg)
            content = UiNode(rid=f"{pkg}:id/content", bounds=(0, self.status_h, w, h), pkg=pkg, fill=BG_APP)
            content.children.append(
                UiNode(cls="android.widget.TextView", text=app.label, rid=f"{pkg}:id/title",
                       bounds=(2 * u, self.status_h + u, w - 2 * u, self.status_h + 4 * u), pkg=pkg,
                       fill=(60, 60, 60))
            )
            body = "Inbox: 3 private messages" if app.label == "Email" else ("12 private photos" if app.private else "Device options")
            content.children.append(
                UiNode(cls="android.widget.TextView", text=body, rid=f"{pkg}:id/body",
                       bounds=(2 * u, self.status_h + 5 * u, w - 2 * u, self.status_h + 8 * u), pkg=pkg,
                       text_color=(30, 30, 30))
            )
        root.children = [content, status]
        return root

    # --- input
    def tap(self, x: float, y: float) -> UiNode | None:
        """Tap at (x, y): the topmost clickable node under the point takes it."""
        hit = None
        for node in self.root().walk():
            if node.clickable and node.contains(x, y):
                hit = node
        self.twin.truth.record("tap", x=x, y=y, node=hit.text or hit.rid if hit else None)
        if hit is not None and hit.on_tap is not None and hit.enabled:
            hit.on_tap()
        return hit

    def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int) -> None:
        self.twin.truth.record("swipe", x1=x1, y1=y1, x2=x2, y2=y2, duration_ms=duration_ms)

    def key(self, code: int) -> None:
        self.twin.truth.record("key", code=code)
        if code == 3:  # HOME
            self.go_home()
        elif code == 4 and self.state != "home":  # BACK
            self.go_home()
        elif code == 26:  # POWER
            self.screen_on = not self.screen_on
            self.changed("power")
        elif code == 224:  # WAKEUP
            if not self.screen_on:
                self.screen_on = True
                self.changed("wakeup")

    # --- pixels
    def frame(self) -> np.ndarray:
        """The current framebuffer, RGBA uint8 (height, width, 4). Cached per version."""
        with self._lock:
            if self._frame is not None and self._frame_version == self.version:
                return self._frame
        root = self.root()
        img = np.zeros((self.height, self.width, 3), np.uint8)
        if self.screen_on:
            for node in root.walk():
                self._draw(img, node)
        rgba = cv2.cvtColor(img, cv2.COLOR_RGB2RGBA)
        with self._lock:
            self._frame, self._frame_version = rgba, self.version
        return rgba

    @property
    def frame_no(self) -> int:
        return self.version

    def _draw(self, img: np.ndarray, node: UiNode) -> None:
        x1, y1, x2, y2 = node.bounds
        if node.fill is not None:
            cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), node.fill, thickness=-1)
        if node.text:
            scale = max(0.4, (y2 - y1) / 60.0) if node.fill is None or node.clickable is False else self.unit / 25.0
            scale = min(scale, self.unit / 18.0)
            thickness = max(1, int(scale * 2))
            (tw, th), _ = cv2.getTextSize(node.text, _FONT, scale, thickness)
            tx = x1 + max(0, ((x2 - x1) - tw) // 2) if node.clickable else x1 + self.unit // 2
            ty = y2 - max(2, (y2 - y1 - th) // 2)
            cv2.putText(img, node.text, (tx, ty), _FONT, scale, node.text_color, thickness, cv2.LINE_AA)
