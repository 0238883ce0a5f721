"""The twin's screen: a UI model (nodes with bounds, text, ids) rendered into a framebuffer.

The model answers input events and `uiautomator dump`; every change of what is shown is
recorded in the ground truth with its host time and the new frame version.

Size: one UI model (screens, session pane, dialogs, overlays) sharing one state.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from harness.profiles.app import AppProfile, load_app_profile
from harness.vision.timecode import TimecodeLayout, stamp

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


TIMECODE_APP = "com.mayday.hil.timecode"
TIMECODE_FPS = 30.0
# a screen recorder's frames come from the compositor, one refresh (60 Hz) after the app drew:
# the twin's share captures the Timecode app that long after each of its redraws
COMPOSE_S = 1 / 60
_TICK_EPS = 1e-6  # in ticks: a time on a tick counts as that tick
WALT_APP = "com.mayday.hil.walt"
TEXT_APP = "com.mayday.hil.text"  # known text to read (harness.twin.textscreens)
VSYNC_S = 1 / 60.0
COMPOSITOR_FRAMES = 1  # a drawn frame reaches the glass one vsync after the one it was drawn for


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
            App(
                "com.amazon.photos" if fire else "com.google.android.apps.photos",
                "Photos",
                private=True,
            ),
            App("com.android.settings", "Settings"),
            App(TIMECODE_APP, "Timecode"),
            App(WALT_APP, "WALT"),
            App(TEXT_APP, "Text"),
        ]
        self.text_screen = "settings"  # which text screen the Text app shows (control op)
        self.secure_packages: set[str] = set()  # apps whose window is FLAG_SECURE (control op)
        self.walt_white = False  # the WALT screen test app: black or white, flipped on request
        self.luma_signal = None  # a StepSignal the simulated photodiode reads (harness.twin.lab)
        self.tc_frame_no = (
            0  # the Timecode app: a 30 fps code over a test pattern (for share tests)
        )
        self.tc_t_ms = 0
        # the contract with harness.session.media.timecode_layout: centred, cells of 1/32 of the short side
        self.tc_layout = TimecodeLayout.for_size(
            self.width, self.height, anchor="center", cell_px=min(self.width, self.height) // 32
        )
        self._tc_task = None
        self._tc_clock: float | None = None  # t0 of the Timecode app's redraw grid
        # the support app plays an app profile (device_profiles/apps): its texts, ids, layout
        self.app: AppProfile = load_app_profile(twin.options.app or twin.profile.app)
        self.locale = twin.props.get("persist.sys.locale") or twin.props.get(
            "ro.product.locale", "en-US"
        )
        pkgs = self.app.packages
        self.support_pkg = pkgs[1] if fire and len(pkgs) > 1 else pkgs[0]
        twin.packages.setdefault(self.support_pkg, f"/data/app/{self.support_pkg}-1/base.apk")
        if self.app.open.method != "quick_settings":  # the support app on the home screen
            self.apps.insert(0, App(self.support_pkg, self.app.twin.app_label))
        self.state = "home"
        self.focus_package = self.launcher
        self.qs_open = False
        self.mayday_button = True  # fault injection: a build without the tile
        self.mask_private = True  # fault injection: False plants a privacy leak in the share
        self.agent_video_mode = "timecode"  # the synthetic agent: support.AGENT_VIDEO_MODES
        self.share_frozen = False  # fault injection: the share repeats its last frame
        self.media_blocked = False  # fault injection: the media peer never offers
        self.share_hold_s = 0.0  # fault injection: each share frame held this long before sending
        self.consented: set[str] = set()  # private apps the customer let the agent see
        self.remote_control_allowed = False
        self.strokes: list[dict] = []  # the agent's annotations, in screen pixels
        self.dialog: str | None = None
        self.dialog_buttons: list[tuple[str, object]] = []
        self.session = None  # harness.twin.support.SupportSession while one runs
        self.version = 0
        self.screen_on = True
        self._lock = threading.Lock()
        self._frame: tuple[int, np.ndarray] | None = None  # (version, RGBA) as captured
        self._secure_frame: tuple[int, np.ndarray] | None = None  # a secure app's, captured
        self._root: UiNode | None = None
        self._base: tuple[UiNode, np.ndarray] | None = None

    # --- state changes
    def changed(self, why: str, record: bool = True, rebuild: bool = True) -> int:
        """Mark the screen dirty and record when the change happened (ground truth)."""
        with self._lock:
            self.version += 1
            if rebuild:
                self._root = None
            version = self.version
        if record:
            self.twin.truth.record("screen_changed", version=version, state=self.state, why=why)
        return version

    def go_home(self) -> None:
        self.state, self.focus_package = "home", self.launcher
        self.changed("home")

    def open_package(self, pkg: str) -> None:
        app = next((a for a in self.apps if a.package == pkg), None)
        self.state = f"app:{pkg}" if app else "home"
        self.focus_package = pkg if app else self.launcher
        self.changed(f"open {pkg}")
        if pkg == TEXT_APP:
            self.show_text_screen(self.text_screen)
        if pkg == TIMECODE_APP and (self._tc_task is None or self._tc_task.done()):
            import asyncio

            self._tc_task = asyncio.get_running_loop().create_task(self._tick_timecode())

    def show_text_screen(self, name: str) -> dict:
        """Which text screen the Text app shows; logged as `text_shown` (text, boxes) when shown.
        Returns its truth fields (textscreens.truth_fields), shown or not.

        Raises:
            ValueError: unknown screen name.
        """
        from harness.twin import textscreens

        if name not in textscreens.SCREEN_NAMES:
            raise ValueError(f"unknown text screen {name!r}; known: {textscreens.SCREEN_NAMES}")
        self.text_screen = name
        _img, lines = textscreens.render(name, self.width, self.height)
        fields = textscreens.truth_fields(name, self.width, self.height, lines)
        if self.state == f"app:{TEXT_APP}":
            version = self.changed(f"text screen {name}")
            self.twin.truth.record("text_shown", version=version, **fields)
        return fields

    def secure_showing(self) -> bool:
        """True while the app in front marked its window FLAG_SECURE: captures of it are black."""
        return self.screen_on and self.focus_package in self.secure_packages

    def walt_draw(self, white: bool) -> float:
        """The WALT app repaints: at the next vsync plus the compositor's frame, the pixels change.

        Returns the host time they will change (also written to the ground truth then)."""
        import asyncio
        import math

        t_req = time.monotonic()
        phase = t_req - self.twin.boot_time
        t_present = (
            self.twin.boot_time + (math.floor(phase / VSYNC_S) + 1 + COMPOSITOR_FRAMES) * VSYNC_S
        )
        if self.luma_signal is not None:
            self.luma_signal.set(t_present, 1.0 if white else 0.0)

        def commit() -> None:
            self.walt_white = white
            self.changed("walt draw", record=False)
            self.twin.truth.record("pixels_changed", t=t_present, white=white, t_request=t_req)

        asyncio.get_running_loop().call_later(max(0.0, t_present - time.monotonic()), commit)
        return t_present

    def probe_luminance(self) -> float:
        """Mean luminance (0..1) of the photodiode's spot: the centre of the screen."""
        h, w = self.height, self.width
        spot = self.frame(display=True)[
            h // 2 - h // 20 : h // 2 + h // 20, w // 2 - w // 20 : w // 2 + w // 20, :3
        ]
        return float(spot.mean()) / 255.0

    async def _tick_timecode(self) -> None:
        """While the Timecode app is in front: a new code every 1/30 s, each shown recorded."""
        import asyncio

        t0 = time.monotonic()
        n0 = self.tc_frame_no
        self._tc_clock = t0
        while self.state == f"app:{TIMECODE_APP}":
            self.tc_frame_no += 1
            t = time.monotonic()
            self.tc_t_ms = int(t * 1000)
            self.changed("timecode", record=False, rebuild=False)
            self.twin.truth.record("timecode_shown", t=t, frame_no=self.tc_frame_no)
            await asyncio.sleep(
                max(0.0, t0 + (self.tc_frame_no - n0) / TIMECODE_FPS - time.monotonic())
            )

    def next_redraw(self, t: float) -> float:
        """When a screen recorder gets the first picture drawn at or after t: the Timecode
        app's next redraw (its 1/TIMECODE_FPS s grid) plus one composition (COMPOSE_S). So the
        share's captures keep a fixed phase to what they capture, as a device's do (its capture
        follows the compositor), rather than a phase drawn afresh each session: with that, the
        share latency moved by up to a redraw interval (33 ms) from session to session. Any
        other screen: t."""
        t0 = self._tc_clock
        if t0 is None or self.state != f"app:{TIMECODE_APP}":
            return t
        k = math.ceil((t - COMPOSE_S - t0) * TIMECODE_FPS - _TICK_EPS)
        return t0 + k / TIMECODE_FPS + COMPOSE_S

    def stop_package(self, pkg: str) -> None:
        if self.focus_package == pkg:
            self.go_home()

    def stop(self) -> None:
        """Stop the Timecode app's ticker, if it runs. Never raises."""
        if self._tc_task is not None and not self._tc_task.done():
            self._tc_task.cancel()

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
            cls="android.widget.FrameLayout",
            rid="com.android.systemui:id/status_bar",
            bounds=(0, 0, w, self.status_h),
            pkg="com.android.systemui",
            fill=STATUS_BAR,
        )
        status.children.append(
            UiNode(
                cls="android.widget.TextView",
                rid="com.android.systemui:id/clock",
                text=time.strftime("%H:%M"),
                bounds=(w - 6 * u, 0, w - u, self.status_h),
                pkg="com.android.systemui",
            )
        )
        if self.state == "home":
            content = UiNode(
                rid=f"{self.launcher}:id/workspace",
                bounds=(0, self.status_h, w, h),
                pkg=self.launcher,
                fill=BG_HOME,
            )
            size = 6 * u
            for i, app in enumerate(self.apps):
                x1 = 3 * u + i * (size + 3 * u)
                y1 = self.status_h + 4 * u
                content.children.append(
                    UiNode(
                        cls="android.widget.TextView",
                        text=app.label,
                        desc=app.label,
                        rid=f"{self.launcher}:id/app_icon",
                        bounds=(x1, y1, x1 + size, y1 + size + 2 * u),
                        pkg=self.launcher,
                        clickable=True,
                        fill=(70, 110, 170),
                        on_tap=lambda pkg=app.package: self.open_package(pkg),
                    )
                )
        else:
            pkg = self.state.split(":", 1)[1]
            app = next(a for a in self.apps if a.package == pkg)
            content = UiNode(
                rid=f"{pkg}:id/content", bounds=(0, self.status_h, w, h), pkg=pkg, fill=BG_APP
            )
            content.children.append(
                UiNode(
                    cls="android.widget.TextView",
                    text=app.label,
                    rid=f"{pkg}:id/title",
                    bounds=(2 * u, self.status_h + u, w - 2 * u, self.status_h + 4 * u),
                    pkg=pkg,
                    fill=(60, 60, 60),
                )
            )
            body = (
                "Inbox: 3 private messages"
                if app.label == "Email"
                else ("12 private photos" if app.private else "Device options")
            )
            if pkg == self.support_pkg and self.mayday_button:
                bx, by = self.app.twin.button_at
                bw, bh = 14 * u, 4 * u
                cx, cy = int(w * bx), int(h * by)
                content.children.append(
                    UiNode(
                        cls="android.widget.Button",
                        **self.ui_attrs("support_button"),
                        bounds=(cx - bw // 2, cy - bh // 2, cx + bw // 2, cy + bh // 2),
                        pkg=pkg,
                        clickable=True,
                        fill=(0, 110, 200),
                        on_tap=self.press_mayday,
                    )
                )
                body = "How can we help?"
            content.children.append(
                UiNode(
                    cls="android.widget.TextView",
                    text=body,
                    rid=f"{pkg}:id/body",
                    bounds=(2 * u, self.status_h + 5 * u, w - 2 * u, self.status_h + 8 * u),
                    pkg=pkg,
                    text_color=(30, 30, 30),
                )
            )
        root.children = [content, status]
        if self.session is not None:
            root.children.append(self._session_pane())
        if self.qs_open:
            root.children.append(self._quick_settings())
        if self.dialog is not None:
            root.children.append(self._dialog())
        return root

    # --- the app profile's look
    def ui_attrs(self, name: str, default_rid: str = "") -> dict[str, str]:
        """text / desc / rid of the app profile's element `name` in the device's locale (an
        XPath selector's [@attr='value'] predicates included), for the node that plays it."""
        import re

        parts = self.app.selector(name).resolve(self.locale)
        out = {
            "text": parts.get("text", ""),
            "desc": parts.get("description", ""),
            "rid": parts.get("resource_id", "") or default_rid,
        }
        for attr, value in re.findall(
            r"@([\w-]+)\s*=\s*['\"]([^'\"]*)['\"]", parts.get("xpath", "")
        ):
            key = {"resource-id": "rid", "content-desc": "desc", "text": "text"}.get(attr)
            if key:
                out[key] = value
        if out["rid"].startswith(":"):
            out["rid"] = self.support_pkg + out["rid"]
        return out

    def status_text(self, state: str, **values) -> str:
        table = dict(self.app.twin.status)
        template = table[state].get(self.locale) if state in table else state
        return template.format(**values)

    def message_text(self, message: str) -> str:
        """The app profile's wording (in the device's locale) of a support message."""
        from harness.twin import support

        kinds = {
            support.MSG_UNSUPPORTED: "unsupported",
            support.MSG_NO_WIFI: "no_wifi",
            support.MSG_UNREGISTERED: "unregistered",
            support.MSG_CLOSED: "closed",
            support.MSG_UNAVAILABLE: "unavailable",
            support.MSG_ENDED: "ended",
            support.MSG_CONNECTION_LOST: "connection_lost",
        }
        kind = kinds.get(message)
        if kind is not None and kind in dict(self.app.messages):
            return self.app.message(kind, self.locale)
        return message

    def consent_text(self, kind: str, default: str, **values) -> str:
        """A consent question as the app profile words it (messages.consent_control,
        messages.consent_access with {app}), else the default wording."""
        if kind in dict(self.app.messages):
            return self.app.message(kind, self.locale).format(**values)
        return default

    def button_text(self, label: str) -> str:
        name = {"OK": "message_ok", "Allow": "consent_allow", "Deny": "consent_deny"}.get(label)
        if name and self.app.has_selector(name):
            return self.ui_attrs(name)["text"] or label
        return label

    # --- support UI
    def _quick_settings(self) -> UiNode:
        w, _h, u = self.width, self.height, self.unit
        panel = UiNode(
            rid="com.android.systemui:id/quick_settings_panel",
            bounds=(0, 0, w, 12 * u),
            pkg="com.android.systemui",
            fill=(48, 48, 52),
        )
        tiles = [
            (
                "Wi-Fi" if self.twin.wifi.enabled else "Wi-Fi off",
                "com.android.systemui:id/wifi_tile",
                None,
            ),
            ("Mayday", "", self.press_mayday),
            (
                "Settings",
                "com.android.systemui:id/settings_tile",
                lambda: self.open_package("com.android.settings"),
            ),
        ]
        size = 8 * u
        if not self.mayday_button or self.app.open.method != "quick_settings":
            tiles = [t for t in tiles if t[0] != "Mayday"]
        for i, (label, rid, action) in enumerate(tiles):
            x1 = 3 * u + i * (size + 2 * u)
            is_mayday = label == "Mayday"
            attrs = {"text": label, "rid": rid, "desc": label}
            if is_mayday:
                tile = self.app.twin.tile_label
                attrs = {"text": tile.get(self.locale) if tile else "", "desc": ""}
                attrs.update({k: v for k, v in self.ui_attrs("support_button").items() if v})
                attrs.setdefault("rid", f"{self.support_pkg}:id/support_tile")
                if not attrs.get("rid"):
                    attrs["rid"] = f"{self.support_pkg}:id/support_tile"
            panel.children.append(
                UiNode(
                    cls="android.widget.Button",
                    text=attrs["text"],
                    rid=attrs["rid"],
                    desc=attrs["desc"],
                    bounds=(x1, self.status_h + u, x1 + size, self.status_h + u + size - 2 * u),
                    pkg=self.support_pkg if is_mayday else "com.android.systemui",
                    clickable=True,
                    fill=(255, 153, 0) if is_mayday else (90, 90, 96),
                    text_color=(20, 20, 20) if is_mayday else (255, 255, 255),
                    on_tap=action,
                )
            )
        return panel

    def pane_bounds(self) -> tuple[int, int, int, int]:
        """The session pane: a floating window at the right (or left, as the app profile says),
        over whatever the customer uses."""
        w, _h, u = self.width, self.height, self.unit
        pw = (w * 3) // 10
        ph = (pw * 3) // 4 + 6 * u
        x1, y1 = (u if self.app.twin.pane == "left" else w - pw - u), self.status_h + u
        return x1, y1, x1 + pw, y1 + ph

    def pane_video_bounds(self) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = self.pane_bounds()
        vw = x2 - x1
        vw -= vw % 2
        vh = (vw * 3) // 4
        vh -= vh % 2
        return x1, y1, x1 + vw, y1 + vh

    def _session_pane(self) -> UiNode:
        s = self.session
        pkg, u = self.support_pkg, self.unit
        x1, y1, x2, y2 = self.pane_bounds()
        vx1, vy1, vx2, vy2 = self.pane_video_bounds()
        pane = UiNode(
            rid=f"{pkg}:id/session_pane", bounds=(x1, y1, x2, y2), pkg=pkg, fill=(28, 28, 30)
        )
        look = self.app.twin
        status_key = (
            s.state if s.state in ("queued", "assigned", "video", "reconnecting") else "starting"
        )
        status = self.status_text(status_key, position=s.position, agent=s.agent)
        colours = {w.name: w.colour_rgb for w in self.app.waiting if w.colour_rgb}
        if not look.colours:
            banner = None if s.state in ("video", "reconnecting") else (46, 50, 58)
        elif s.state in ("queued", "assigned"):
            banner = colours.get(s.state, (110, 110, 120))
        elif s.state in ("video", "reconnecting"):
            banner = None
        else:
            banner = (110, 110, 120)
        pane.children.append(
            UiNode(
                cls="android.view.SurfaceView",
                **self.ui_attrs("agent_video", default_rid=f"{pkg}:id/agent_video"),
                bounds=(vx1, vy1, vx2, vy2),
                pkg=pkg,
                fill=banner,
            )
        )
        pane.children.append(
            UiNode(
                cls="android.widget.TextView",
                rid=self.ui_attrs("waiting_message", default_rid=f"{pkg}:id/status")["rid"]
                if self.app.has_selector("waiting_message")
                else f"{pkg}:id/status",
                text=status,
                bounds=(x1 + u, vy2 + u // 2, x2 - 7 * u, y2 - u // 2),
                pkg=pkg,
            )
        )
        pane.children.append(
            UiNode(
                cls="android.widget.Button",
                **self.ui_attrs("end_button", default_rid=f"{pkg}:id/end_button"),
                bounds=(x2 - 6 * u, vy2 + u // 2, x2 - u, y2 - u // 2),
                pkg=pkg,
                clickable=True,
                fill=(200, 40, 40),
                on_tap=self.end_session,
            )
        )
        return pane

    def _dialog(self) -> UiNode:
        w, h, u = self.width, self.height, self.unit
        x1, y1, x2, y2 = w // 4, h // 3, (w * 3) // 4, h // 3 + 10 * u
        pkg = self.support_pkg
        box = UiNode(rid=f"{pkg}:id/dialog", bounds=(x1, y1, x2, y2), pkg=pkg, fill=(250, 250, 250))
        box.children.append(
            UiNode(
                cls="android.widget.TextView",
                rid=self.ui_attrs("message", default_rid=f"{pkg}:id/message")["rid"],
                text=self.dialog,
                bounds=(x1 + u, y1 + u, x2 - u, y1 + 5 * u),
                pkg=pkg,
                text_color=(20, 20, 20),
            )
        )
        buttons = self.dialog_buttons or [("OK", self.dismiss_dialog)]
        for i, (label, action) in enumerate(reversed(buttons)):
            bx2 = x2 - u - i * 8 * u
            box.children.append(
                UiNode(
                    cls="android.widget.Button",
                    rid=f"{pkg}:id/{label.lower()}_button",
                    text=self.button_text(label),
                    bounds=(bx2 - 7 * u, y2 - 4 * u, bx2, y2 - u),
                    pkg=pkg,
                    clickable=True,
                    fill=(0, 120, 200),
                    on_tap=action,
                )
            )
        return box

    def open_quick_settings(self) -> None:
        if not self.qs_open:
            self.qs_open = True
            self.changed("quick settings open")

    def close_quick_settings(self) -> None:
        if self.qs_open:
            self.qs_open = False
            self.changed("quick settings closed")

    def show_dialog(self, message: str, buttons: list[tuple[str, object]] | None = None) -> None:
        message = self.message_text(message)
        self.dialog = message
        self.dialog_buttons = buttons or []
        self.twin.truth.record("support_message", message=message)
        self.changed("dialog")

    def dismiss_dialog(self) -> None:
        self.dialog = None
        self.dialog_buttons = []
        self.changed("dialog dismissed")

    # --- privacy, annotations, remote control (the agent's side of a session)
    def private_package(self) -> str | None:
        """The private app in front (Email, Photos), if any."""
        if self.state.startswith("app:"):
            pkg = self.state.split(":", 1)[1]
            if any(a.package == pkg and a.private for a in self.apps):
                return pkg
        return None

    def private_app_showing(self) -> bool:
        """True when the share must be masked: a private app without the customer's consent."""
        pkg = self.private_package()
        return bool(pkg) and pkg not in self.consented and self.mask_private

    def agent_command(self, msg: dict, reply) -> None:
        kind = msg.get("type")
        truth = self.twin.truth
        if kind == "stroke":
            pts = [(float(x), float(y)) for x, y in msg.get("points", [])]
            stroke = {
                "id": msg.get("id"),
                "points": pts,
                "color": tuple(msg.get("color", (255, 0, 0))),
                "width": int(msg.get("width", max(2, self.unit // 4))),
            }
            self.strokes.append(stroke)
            self.changed("stroke", record=False, rebuild=False)
            truth.record(
                "stroke_drawn",
                id=stroke["id"],
                points=pts,
                color=stroke["color"],
                width=stroke["width"],
            )
        elif kind == "clear_strokes":
            self.strokes.clear()
            self.changed("strokes cleared", record=False, rebuild=False)
        elif kind == "tap":
            x, y = float(msg["x"]), float(msg["y"])
            if self.remote_control_allowed:
                truth.record("remote_tap_applied", id=msg.get("id"), x=x, y=y)
                self.tap(x, y)
                reply({"type": "tap_applied", "id": msg.get("id")})
            else:
                truth.record("remote_tap_refused", id=msg.get("id"), x=x, y=y)
                reply({"type": "tap_refused", "id": msg.get("id"), "reason": "no permission"})
        elif kind == "request_control":

            def allow() -> None:
                self.remote_control_allowed = True
                truth.record("consent", what="remote_control", granted=True)
                reply({"type": "control_granted"})
                self.dismiss_dialog()

            def deny() -> None:
                truth.record("consent", what="remote_control", granted=False)
                reply({"type": "control_denied"})
                self.dismiss_dialog()

            self.show_dialog(
                self.consent_text("consent_control", "Allow the agent to control your tablet?"),
                [("Deny", deny), ("Allow", allow)],
            )
        elif kind == "request_access":
            pkg = str(msg.get("package", ""))
            label = next((a.label for a in self.apps if a.package == pkg), pkg)

            def allow_app() -> None:
                self.consented.add(pkg)
                truth.record("consent", what=pkg, granted=True)
                reply({"type": "access_granted", "package": pkg})
                self.dismiss_dialog()

            def deny_app() -> None:
                truth.record("consent", what=pkg, granted=False)
                reply({"type": "access_denied", "package": pkg})
                self.dismiss_dialog()

            self.show_dialog(
                self.consent_text("consent_access", f"Allow the agent to see {label}?", app=label),
                [("Deny", deny_app), ("Allow", allow_app)],
            )

    def press_mayday(self) -> None:
        """The Mayday tile: the device-side checks, then a session with the backend."""
        from harness.twin import support

        twin = self.twin
        self.qs_open = False
        twin.truth.record("mayday_pressed")
        if self.session is not None and self.session.state != "ended":
            self.changed("mayday pressed again")
            return
        if not (twin.profile.eligible and twin.profile.hardware.microphone):
            self.show_dialog(support.MSG_UNSUPPORTED)
        elif not twin.wifi.enabled:
            self.show_dialog(support.MSG_NO_WIFI)
        elif not twin.accounts:
            self.show_dialog(support.MSG_UNREGISTERED)
        else:
            self.session = support.SupportSession(twin)
            twin.recording_clients = [("MIC", self.support_pkg)]
            self.changed("session pane")
            self.session.start()

    def end_session(self) -> None:
        if self.session is not None:
            self.session.end()

    def session_ended(self, session) -> None:
        if self.session is session:
            self.session = None
            self.twin.recording_clients = []
            self.strokes.clear()
            self.consented.clear()
            self.remote_control_allowed = False
            self.changed("session ended")

    # --- input
    def tap(self, x: float, y: float) -> UiNode | None:
        """Tap at (x, y): the topmost clickable node under the point takes it."""
        hit = None
        root = self.root()
        modal = root.children[-1] if (self.dialog is not None or self.qs_open) else root
        for node in modal.walk():
            if node.clickable and node.contains(x, y):
                hit = node
        if hit is None and self.qs_open and not modal.contains(x, y):
            self.close_quick_settings()
        self.twin.truth.record("tap", x=x, y=y, node=hit.text or hit.rid if hit else None)
        if hit is not None and hit.on_tap is not None and hit.enabled:
            hit.on_tap()
        return hit

    def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int) -> None:
        self.twin.truth.record("swipe", x1=x1, y1=y1, x2=x2, y2=y2, duration_ms=duration_ms)
        if y1 <= self.status_h * 1.5 and y2 - y1 >= self.height * 0.15:
            self.open_quick_settings()  # swipe down from the top edge
        elif self.qs_open and y1 - y2 >= self.height * 0.15:
            self.close_quick_settings()

    def key(self, code: int) -> None:
        self.twin.truth.record("key", code=code)
        if code == 3:  # HOME
            self.qs_open = False
            self.go_home()
        elif code == 4 and (self.qs_open or self.dialog is not None):  # BACK closes overlays first
            self.qs_open, self.dialog = False, None
            self.changed("back")
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
    def frame(self, *, display: bool = False) -> np.ndarray:
        """The current framebuffer as a capture gets it (screencap, screenrecord, the framebuffer
        service, a screenshot, the share), RGBA uint8 (height, width, 4); cached per version.

        A capture of a FLAG_SECURE app shows its window black, as Android composes captures:
        the status bar and the windows of other apps over it (the session pane, the agent's
        strokes, a dialog) stay. `display=True`: what the glass shows (a camera, a photodiode).
        """
        secure = not display and self.secure_showing()
        with self._lock:
            cached = self._secure_frame if secure else self._frame
            if cached is not None and cached[0] == self.version:
                return cached[1]
        root = self.root()
        with self._lock:
            version = self.version
        img = self._base_image(root)
        if secure:  # the app's window black; the windows over it drawn again
            img = img.copy()
            x1, y1, x2, y2 = root.children[0].bounds
            img[y1:y2, x1:x2] = 0
            for node in root.children[1:]:
                for n in node.walk():
                    self._draw(img, n)
        elif self.state == f"app:{TIMECODE_APP}" and self.tc_frame_no and self.screen_on:
            img = img.copy()
            stamp(img, self.tc_frame_no, self.tc_t_ms % (1 << 32), self.tc_layout)
        session = self.session
        if (
            self.screen_on
            and session is not None
            and session.agent_frame is not None
            and session.state in ("video", "reconnecting")
        ):
            img = img.copy()
            x1, y1, x2, y2 = self.pane_video_bounds()
            img[y1:y2, x1:x2] = session.agent_frame
        if self.screen_on and self.strokes:
            img = img.copy() if img is self._base[1] else img
            for stroke in list(self.strokes):
                pts = np.array(stroke["points"], np.float64).round().astype(np.int32)
                if len(pts):
                    cv2.polylines(
                        img,
                        [pts.reshape(-1, 1, 2)],
                        False,
                        stroke["color"],
                        stroke["width"],
                        cv2.LINE_AA,
                    )
        rgba = cv2.cvtColor(img, cv2.COLOR_RGB2RGBA)
        with self._lock:
            if secure:
                self._secure_frame = (version, rgba)
            else:
                self._frame = (version, rgba)
        return rgba

    def _base_image(self, root: UiNode) -> np.ndarray:
        """The UI drawn from the node tree, cached while the tree is the same object."""
        if self._base is not None and self._base[0] is root:
            return self._base[1]
        img = np.zeros((self.height, self.width, 3), np.uint8)
        if self.screen_on:
            for node in root.walk():
                self._draw(img, node)
            if self.state == f"app:{TIMECODE_APP}":
                self._test_pattern(img)
            if self.state == f"app:{TEXT_APP}":  # the text screen below the status bar
                from harness.twin import textscreens

                text_img, _ = textscreens.render(self.text_screen, self.width, self.height)
                img[self.status_h :] = text_img[self.status_h :]
            if self.state == f"app:{WALT_APP}":  # full-screen black or white below the status bar
                img[self.status_h :] = 255 if self.walt_white else 0
        self._base = (root, img)
        return img

    def _test_pattern(self, img: np.ndarray) -> None:
        """Colour bars, a gradient, a checkerboard and text: content that shows codec losses."""
        u = self.unit
        y0, y1 = self.status_h + 5 * u, self.height - u
        x0, x1 = u, (self.width * 6) // 10
        bars = [
            (255, 255, 255),
            (255, 255, 0),
            (0, 255, 255),
            (0, 255, 0),
            (255, 0, 255),
            (255, 0, 0),
            (0, 0, 255),
        ]
        bw = (x1 - x0) // len(bars)
        for i, c in enumerate(bars):
            img[y0 : y0 + 6 * u, x0 + i * bw : x0 + (i + 1) * bw] = c
        ramp = np.linspace(0, 255, x1 - x0, dtype=np.float32).astype(np.uint8)
        img[y0 + 6 * u : y0 + 9 * u, x0:x1] = ramp[None, :, None]
        yy, xx = np.mgrid[y0 + 9 * u : y1, x0:x1]
        checker = (((yy // (2 * u)) + (xx // (2 * u))) % 2 * 160 + 50).astype(np.uint8)
        img[y0 + 9 * u : y1, x0:x1] = checker[..., None]
        for k in range(4):
            cv2.putText(
                img,
                f"Mayday HIL test pattern line {k + 1}",
                (x0 + u, y0 + (12 + 3 * k) * u),
                _FONT,
                self.unit / 22.0,
                (255, 80, 0),
                2,
                cv2.LINE_AA,
            )

    @property
    def frame_no(self) -> int:
        return self.version

    def _draw(self, img: np.ndarray, node: UiNode) -> None:
        x1, y1, x2, y2 = node.bounds
        if node.fill is not None:
            cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), node.fill, thickness=-1)
        if node.text:
            avail_w = max(1, (x2 - x1) - self.unit // 2)
            scale = min(self.unit / 25.0, (y2 - y1) / 45.0)
            thickness = max(1, int(scale * 2))
            (tw, th), _ = cv2.getTextSize(node.text, _FONT, scale, thickness)
            if tw > avail_w:  # shrink to fit the node's width
                scale *= avail_w / tw
                thickness = max(1, int(scale * 2))
                (tw, th), _ = cv2.getTextSize(node.text, _FONT, scale, thickness)
            tx = x1 + max(0, ((x2 - x1) - tw) // 2) if node.clickable else x1 + self.unit // 4
            ty = y2 - max(2, (y2 - y1 - th) // 2)
            cv2.putText(
                img, node.text, (tx, ty), _FONT, scale, node.text_color, thickness, cv2.LINE_AA
            )
