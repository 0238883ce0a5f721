"""Shaper: the common contract of every way of applying a NetworkProfile.

A shaper is built for one profile and one target. Its constructor decides, before anything is
touched, which parts of the profile it can express; it refuses the rest with one clear
NetworkShaperError, or (approximate=True) leaves them out and says so in its report. Used as a
context manager it always restores the link: on exit, on an exception, on SIGTERM/SIGHUP
(a handler clears every active shaper, then lets the signal kill the process) and at
interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.errors import NetworkShaperError
from harness.network.profiles import ASYMMETRIC_DELAY, NetworkProfile

log = logging.getLogger(__name__)

_ACTIVE: dict[int, Shaper] = {}
_ACTIVE_LOCK = threading.RLock()  # re-entrant: the signal handler may interrupt a holder
_HOOKS_INSTALLED = False
_RESTORE_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass
class ShapingReport:
    """What a shaper was asked for, what it expressed, what it left out, and what it did.

    Attributes:
        shaper: shaper kind (console, netem, wifi, relay).
        target: what it shapes (emulator-5554, eth1, 192.168.1.23 on eth1, 127.0.0.1:4000...).
        profile: profile name.
        expressed: feature -> how the shaper expressed it.
        approximations: one warning per feature left out or changed (approximate=True).
        events: (host monotonic time, what happened), in order.
        errors: problems met while clearing (cleanup logs, never raises).
    """

    shaper: str
    target: str
    profile: str
    expressed: dict[str, str] = field(default_factory=dict)
    approximations: list[str] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    applied_at: float | None = None
    cleared_at: float | None = None

    def note(self, what: str) -> None:
        self.events.append((time.monotonic(), what))

    def to_dict(self) -> dict[str, Any]:
        return {
            "shaper": self.shaper,
            "target": self.target,
            "profile": self.profile,
            "expressed": dict(self.expressed),
            "approximations": list(self.approximations),
            "events": [{"t": t, "what": w} for t, w in self.events],
            "errors": list(self.errors),
            "applied_at": self.applied_at,
            "cleared_at": self.cleared_at,
        }


class Shaper:
    """Base of the four shapers. Subclasses set `kind`, `capabilities()`, `_apply`, `_clear`.

    Args:
        profile: the profile asked for.
        target: what is shaped, for messages and the report.
        approximate: leave out what cannot be expressed (with a warning) instead of refusing.

    Raises:
        NetworkShaperError: the profile needs something this shaper cannot express (and
            approximate is False). Raised by the constructor: nothing has been touched.
    """

    kind: ClassVar[str] = "shaper"

    def __init__(self, profile: NetworkProfile, target: str, *, approximate: bool = False):
        self.requested = profile
        self.target = target
        self.approximate = approximate
        self.report = ShapingReport(self.kind, target, profile.name)
        self.profile = self._plan(profile)
        self._applied = False
        self._lock = threading.RLock()

    # -- what a shaper can do --------------------------------------------------------------

    def capabilities(self) -> dict[str, str]:
        """Feature name -> how this shaper expresses it (features it lacks are absent)."""
        return {}

    def approximation(self, feature: str) -> str:
        """How a feature this shaper lacks is approximated, in words."""
        if feature == ASYMMETRIC_DELAY:
            return "both directions get the mean delay"
        return "left out"

    def _plan(self, profile: NetworkProfile) -> NetworkProfile:
        wanted = profile.features()
        caps = self.capabilities()
        missing = [f for f in wanted if f not in caps]
        if missing and not self.approximate:
            parts = "; ".join(f"{f} ({wanted[f]})" for f in missing)
            raise NetworkShaperError(
                f"{self.kind} shaper on {self.target} cannot express profile"
                f" {profile.name!r}: {parts}."
                " Use a shaper that can (see docs/network.md), or approximate=True (--approximate)"
                " to leave these out with a warning in the report"
            )
        for f in missing:
            warning = f"{f} ({wanted[f]}): {self.approximation(f)}"
            self.report.approximations.append(warning)
            log.warning(
                "%s shaper on %s, profile %s: %s", self.kind, self.target, profile.name, warning
            )
        effective = profile.without(*missing)
        self.report.expressed = {f: caps[f] for f in effective.features() if f in caps}
        self._validate(effective)
        return effective

    def _validate(self, profile: NetworkProfile) -> None:
        """Shaper-specific checks on the effective profile (raise NetworkShaperError)."""

    # -- apply / clear -------------------------------------------------------------------

    def apply(self) -> None:
        """Apply the profile. On failure, whatever was applied is cleared, then it raises.

        Raises:
            NetworkShaperError: the profile could not be applied.
        """
        with self._lock:
            if self._applied:
                raise NetworkShaperError(f"{self.kind} shaper on {self.target}: already applied")
            _register(self)
            self.report.note(f"apply {self.profile.name}")
            try:
                self._apply()
            except BaseException as e:
                self.report.note(f"apply failed: {e}")
                self._clear_quietly()
                _unregister(self)
                if isinstance(e, NetworkShaperError) or not isinstance(e, Exception):
                    raise
                raise NetworkShaperError(f"{self.kind} shaper on {self.target}: {e}") from e
            self._applied = True
            self.report.applied_at = time.monotonic()

    def clear(self) -> None:
        """Restore the link. Never raises: problems are logged and kept in report.errors."""
        with self._lock:
            if not self._applied:
                return
            self._clear_quietly()
            self._applied = False
            self.report.cleared_at = time.monotonic()
            _unregister(self)

    def detach(self) -> None:
        """Leave the profile applied after this process ends (manual lab work, `hil net apply`).

        The shaper forgets it: no clear on exit or signal. `hil net clear` undoes it later.
        """
        with self._lock:
            self._applied = False
            _unregister(self)
            self.report.note("detached: left applied")

    @property
    def applied(self) -> bool:
        return self._applied

    def _clear_quietly(self) -> None:
        try:
            self._clear()
            self.report.note("cleared")
        except BaseException as e:  # noqa: BLE001 -- cleanup never raises (it logs)
            msg = f"clear failed: {type(e).__name__}: {e}"
            self.report.errors.append(msg)
            self.report.note(msg)
            log.error("%s shaper on %s: %s", self.kind, self.target, msg)

    def _apply(self) -> None:
        raise NotImplementedError

    def _clear(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Shaper:
        self.apply()
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.profile.name} on {self.target}>"


def active_shapers() -> list[Shaper]:
    """Shapers applied and not yet cleared in this process."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE.values())


def clear_all() -> None:
    """Clear every active shaper (never raises)."""
    for shaper in active_shapers():
        shaper.clear()


def _register(shaper: Shaper) -> None:
    _install_hooks()
    with _ACTIVE_LOCK:
        _ACTIVE[id(shaper)] = shaper


def _unregister(shaper: Shaper) -> None:
    with _ACTIVE_LOCK:
        _ACTIVE.pop(id(shaper), None)


def _install_hooks() -> None:
    """atexit, and SIGTERM/SIGHUP where nobody else handles them (main thread only)."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(clear_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _RESTORE_SIGNALS:
        try:
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _on_signal)
        except (ValueError, OSError) as e:  # pragma: no cover - exotic platforms
            log.debug("cannot hook %s: %s", sig, e)


def _on_signal(signum: int, frame: object) -> None:
    """Clear every active shaper, then die of the same signal as if nothing had caught it."""
    log.warning("signal %d: clearing %d active shaper(s) before exiting", signum, len(_ACTIVE))
    clear_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
