"""WifiShaper: outages by switching the tablet's own Wi-Fi (`svc wifi disable|enable`).

It expresses a profile's outage schedule (and `offline`), nothing else: delay, loss and rate
belong to another shaper, which can run at the same time. A background thread follows the
schedule with bounded waits; clearing stops it and enables the Wi-Fi again.

The harness's own adb link must not ride on the Wi-Fi it switches off. Over USB (or on an
emulator or a twin on loopback) the host drives every switch. When the adb serial is a network
address the link is the Wi-Fi itself: each outage is then sent as one command that the device
times on its own (`svc wifi disable; sleep N; svc wifi enable`, immune to the hang-up of the
shell), so the device always comes back; an endless outage (`offline`) is refused.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import NetworkShaperError
from harness.network import profiles as P
from harness.network.profiles import NetworkProfile
from harness.network.shaper import Shaper

log = logging.getLogger(__name__)

SHELL_TIMEOUT_S = 10.0
DEFAULT_MAX_DURATION_S = 3600.0  # a repeating schedule runs at most this long
STOP_TIMEOUT_S = SHELL_TIMEOUT_S + 2.0
MAX_TRANSITIONS = 10_000
WIFI_ON = "svc wifi enable"
WIFI_OFF = "svc wifi disable"
CAPABILITIES = {
    P.OUTAGE_SCHEDULE: "`svc wifi disable|enable` on schedule",
    P.OFFLINE: "`svc wifi disable` until cleared",
}
_NETWORK_SERIAL = re.compile(r"^\[?(?P<host>[0-9A-Za-z.:-]+?)\]?:(?P<port>\d+)$")
_SHELL_ERRORS = ("not found", "usage:", "error", "exception", "permission denied")


class ShellDevice(Protocol):
    """Anything with a bounded shell: `shell(cmd, timeout)` returning the output, or a result
    with `.output` (or `.stdout`) and `.returncode` (harness.device.adb.Device does)."""

    def shell(self, cmd: str, timeout: float, /) -> Any: ...


def _shell_text(result: Any) -> tuple[str, int | None]:
    """(output, exit code or None) of whatever a device's shell() returned."""
    if result is None:
        return "", None
    if isinstance(result, str):
        return result, None
    text = getattr(result, "output", None)
    if text is None:
        text = getattr(result, "stdout", "")
    return str(text or ""), getattr(result, "returncode", None)


@dataclass(frozen=True)
class WifiEvent:
    """One switch the shaper made (or tried), on the host's monotonic clock.

    Attributes:
        planned_t: when the schedule wanted it (monotonic s).
        t: when the command returned.
        enabled: the state it asked for.
        ok: whether the device accepted the command.
        detail: the command sent, and the error if any.
    """

    planned_t: float
    t: float
    enabled: bool
    ok: bool
    detail: str


def adb_over_network(serial: str | None) -> bool:
    """True when an adb serial is a network address other than loopback (`192.168.1.5:5555`)."""
    if not serial:
        return False
    m = _NETWORK_SERIAL.match(serial.strip())
    if not m:
        return False
    host = m.group("host")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: reached over the network


class WifiShaper(Shaper):
    """Outages on a schedule, by turning the device's Wi-Fi off and on.

    Args:
        profile: the profile (its outage schedule is what this shaper plays).
        device: an object with `shell(cmd, timeout) -> str`.
        serial: the device's adb serial (default: device.serial if it has one); decides
            whether adb rides on the Wi-Fi.
        adb_over_wifi: override that decision.
        approximate: leave out delay, loss, rate... with a warning instead of refusing.
        max_duration_s: a repeating schedule stops after this long (the Wi-Fi stays on).
        shell_timeout_s: per shell command.

    Raises:
        NetworkShaperError: the profile needs more than outages (and approximate is False),
            or `offline` while adb rides on the Wi-Fi. Nothing was sent to the device.
    """

    kind = "wifi"

    def __init__(
        self,
        profile: NetworkProfile,
        device: ShellDevice,
        *,
        serial: str | None = None,
        adb_over_wifi: bool | None = None,
        approximate: bool = False,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
        shell_timeout_s: float = SHELL_TIMEOUT_S,
    ):
        self.device = device
        self.serial = serial or getattr(device, "serial", None)
        self.adb_over_wifi = (
            adb_over_network(self.serial) if adb_over_wifi is None else adb_over_wifi
        )
        self.max_duration_s = max_duration_s
        self.shell_timeout_s = shell_timeout_s
        self.events: list[WifiEvent] = []
        self.t0: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(profile, str(self.serial or device), approximate=approximate)

    def capabilities(self) -> dict[str, str]:
        caps = dict(CAPABILITIES)
        if self.adb_over_wifi:
            caps[P.OUTAGE_SCHEDULE] = "device-timed `svc wifi disable; sleep N; svc wifi enable`"
        return caps

    def approximation(self, feature: str) -> str:
        return "left out (the Wi-Fi switch only makes outages: pair with another shaper)"

    def _validate(self, profile: NetworkProfile) -> None:
        if profile.outages.always_down and self.adb_over_wifi:
            raise NetworkShaperError(
                f"wifi shaper on {self.target}: adb runs over the Wi-Fi ({self.serial});"
                " switching it off"
                " for good would cut the harness off the device. Connect adb over USB."
            )

    def plan(self) -> list[tuple[float, bool]]:
        """(seconds after apply, Wi-Fi on?) for every switch the shaper will make."""
        schedule = self.profile.outages
        if schedule.always_down:
            return [(0.0, False)]
        return schedule.transitions(self.max_duration_s, after_s=-1.0, limit=MAX_TRANSITIONS)

    def _apply(self) -> None:
        self._stop.clear()
        self.t0 = time.monotonic()
        plan = self.plan()
        if not plan:
            return
        if plan[0][0] <= 0.0:  # down from the start: switch now so apply() returns with it done
            self._switch(plan[0][1], self.t0, duration_s=self._window(plan, 0), raise_on_error=True)
            plan = plan[1:]
        if plan:
            self._thread = threading.Thread(
                target=self._follow, args=(plan,), name=f"wifi-{self.target}", daemon=True
            )
            self._thread.start()

    def _clear(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                self.report.errors.append(
                    f"schedule thread still running after {STOP_TIMEOUT_S:g} s"
                )
            self._thread = None
        self._switch(True, time.monotonic(), raise_on_error=True)

    def _window(self, plan: list[tuple[float, bool]], i: int) -> float:
        """Length of the outage starting at plan[i] (inf if it never ends)."""
        for t, up in plan[i + 1 :]:
            if up:
                return t - plan[i][0]
        return math.inf

    def _follow(self, plan: list[tuple[float, bool]]) -> None:
        assert self.t0 is not None
        full = self.plan()
        offset = len(full) - len(plan)
        for i, (t, up) in enumerate(plan):
            when = self.t0 + t
            if self._stop.wait(max(0.0, when - time.monotonic())):
                return
            if self.adb_over_wifi and up:
                continue  # the device re-enables itself at the end of each timed outage
            self._switch(up, when, duration_s=self._window(full, i + offset), raise_on_error=False)

    def _switch(
        self, on: bool, planned_t: float, duration_s: float = math.inf, raise_on_error: bool = False
    ) -> None:
        if self.adb_over_wifi and not on and math.isfinite(duration_s):
            seconds = max(1, math.ceil(duration_s))
            cmd = f"sh -c 'trap \"\" HUP; {WIFI_OFF}; sleep {seconds}; {WIFI_ON}' >/dev/null 2>&1 &"
        else:
            cmd = WIFI_ON if on else WIFI_OFF
        error = ""
        try:
            out, code = _shell_text(self.device.shell(cmd, self.shell_timeout_s))
            if code not in (0, None) or any(word in out.lower() for word in _SHELL_ERRORS):
                error = (out.strip() or f"exit code {code}")[:200]
        except Exception as e:  # noqa: BLE001 -- the device layer's errors, timeouts, lost links
            error = f"{type(e).__name__}: {e}"
        ok = not error
        self.events.append(
            WifiEvent(planned_t, time.monotonic(), on, ok, cmd + (f" -> {error}" if error else ""))
        )
        self.report.note(f"{cmd}" + ("" if ok else f" failed: {error}"))
        if not ok:
            msg = f"wifi shaper on {self.target}: `{cmd}` failed: {error}"
            if raise_on_error:
                raise NetworkShaperError(msg)
            log.error(msg)
