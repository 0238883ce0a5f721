"""The conditions a figure was measured under, and when two runs' figures are comparable.

A twin's (or a lab host's) latency measures the host's load as much as the product: the twin's
capture and encoding and the agent's decoding share the cores with every other job. So each
record carries, in its meta, the host's conditions (HOST_KEY: the 1-minute load average when
the measurement ended, which covers the minute before it, and the CPU count) and, where the
measurement knows it, its own health (HEALTH_KEY: the fraction of its nominal sample rate it
received, e.g. share frames received over the share's nominal rate x window; HEALTH_NOTE_KEY
says it in words). The history stores them with each series (harness.report.history).

The rule (docs/report.md, "Comparable conditions"):
- a run is **starved** when its health is below MIN_HEALTH: its figure describes the host's
  starvation, not the product; it is never compared (verdict "not comparable") and never
  enters a baseline;
- a baseline run is **comparable** with today's when both have the same CPU count and their
  load per CPU is within a factor LOAD_RATIO of each other (loads below LOAD_FLOOR_PER_CPU
  count as that floor: a quiet host is a quiet host), and it is not starved;
- runs recorded before conditions were (history schema 1) are comparable only with each other.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

HOST_KEY = "host"  # meta: {"load_1min": float, "cpus": int, "cpu_pressure": float | None}
HEALTH_KEY = "health"  # meta: received / nominal samples, 0..1
HEALTH_NOTE_KEY = "health_note"  # meta: the health in words ("32 of 90 frames")
MIN_HEALTH = 0.8  # below: starved (a quiet twin's share: 85-89 of 90 frames; starved: 29-55)
LOAD_RATIO = 1.25  # loads per CPU further apart than this: not comparable (see docs)
# loads per CPU below this count as this: fewer runnable tasks than CPUs rarely wait for one
# (the CPU pressure, where there is one, still tells such hosts apart)
LOAD_FLOOR_PER_CPU = 1.0
PRESSURE_BAND_PCT = 15.0  # CPU pressures further apart than this (points): not comparable
PSI_CPU = "/proc/pressure/cpu"  # Linux >= 4.20 pressure stall information


def cpu_pressure(path: str = PSI_CPU) -> float | None:
    """The share of the last 10 s in which some runnable task waited for a CPU, in % (Linux
    pressure stall information, "some avg10"), or None where the kernel does not give it."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("some "):
                    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
                    return float(fields["avg10"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def host_conditions() -> dict[str, Any]:
    """The host's conditions now: the 1-minute load average, the CPU count and the CPU
    pressure of the last 10 s (None where not available)."""
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # not on this platform
        load = None
    return {"load_1min": load, "cpus": os.cpu_count(), "cpu_pressure": cpu_pressure()}


def rate_health(received: int, nominal_rate_hz: float, window_s: float, what: str) -> dict:
    """The meta keys of a measurement's health: `received` samples of `what` over a window
    whose nominal rate would give nominal_rate_hz x window_s."""
    nominal = nominal_rate_hz * window_s
    if nominal <= 0:
        raise ValueError(f"rate_health: nominal {what} must be > 0 (got {nominal:g})")
    return {
        HEALTH_KEY: round(min(1.0, received / nominal), 3),
        HEALTH_NOTE_KEY: f"{received} of {nominal:.0f} {what} ({nominal_rate_hz:g}/s x "
        f"{window_s:.3g} s)",
    }


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Conditions:
    """What a series' figure in one run was measured under (None: not recorded)."""

    load_1min: float | None = None
    cpus: int | None = None
    health: float | None = None
    health_note: str = ""
    cpu_pressure: float | None = None  # % of the last 10 s some task waited for a CPU

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Conditions:
        host = meta.get(HOST_KEY) or {}
        cpus = _num(host.get("cpus"))
        return cls(
            load_1min=_num(host.get("load_1min")),
            cpus=int(cpus) if cpus else None,
            health=_num(meta.get(HEALTH_KEY)),
            health_note=str(meta.get(HEALTH_NOTE_KEY) or ""),
            cpu_pressure=_num(host.get("cpu_pressure")),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Conditions:
        """From a history row (load_1min, cpus, health, health_note columns)."""
        cpus = _num(row.get("cpus"))
        return cls(
            load_1min=_num(row.get("load_1min")),
            cpus=int(cpus) if cpus else None,
            health=_num(row.get("health")),
            health_note=str(row.get("health_note") or ""),
            cpu_pressure=_num(row.get("cpu_pressure")),
        )

    @property
    def known(self) -> bool:
        """The host's conditions were recorded (history schema 2 on)."""
        return self.load_1min is not None and self.cpus is not None

    @property
    def load_per_cpu(self) -> float | None:
        return self.load_1min / self.cpus if self.known else None

    def describe(self) -> str:
        parts = []
        if self.known:
            parts.append(f"load {self.load_1min:.1f} on {self.cpus} CPUs")
        if self.cpu_pressure is not None:
            parts.append(f"CPU pressure {self.cpu_pressure:.0f}%")
        if self.health is not None:
            parts.append(
                f"health {self.health:.0%}" + (f" ({self.health_note})" if self.health_note else "")
            )
        return ", ".join(parts) or "conditions not recorded"

    def starved(self) -> str | None:
        """Why the run is starved (its health below MIN_HEALTH), or None."""
        if self.health is None or self.health >= MIN_HEALTH:
            return None
        note = f": {self.health_note}" if self.health_note else ""
        load = f", host load {self.load_1min:.1f} on {self.cpus} CPUs" if self.known else ""
        return f"starved (health {self.health:.0%} < {MIN_HEALTH:.0%}{note}{load})"

    def incomparable(self, base: Conditions) -> str | None:
        """Why a baseline run measured under `base` cannot be compared with this run, or
        None when it can."""
        starved = base.starved()
        if starved:
            return f"baseline run {starved}"
        if self.known != base.known:
            return "one run's conditions were not recorded"
        if not self.known:
            return None
        if self.cpus != base.cpus:
            return f"{base.cpus} CPUs vs {self.cpus}"
        a = max(self.load_per_cpu, LOAD_FLOOR_PER_CPU)
        b = max(base.load_per_cpu, LOAD_FLOOR_PER_CPU)
        if max(a, b) / min(a, b) > LOAD_RATIO:
            return (
                f"load per CPU {base.load_per_cpu:.2f} vs {self.load_per_cpu:.2f} "
                f"(more than {LOAD_RATIO:g}x apart)"
            )
        if self.cpu_pressure is not None and base.cpu_pressure is not None:
            if abs(self.cpu_pressure - base.cpu_pressure) > PRESSURE_BAND_PCT:
                return (
                    f"CPU pressure {base.cpu_pressure:.0f}% vs {self.cpu_pressure:.0f}% (more "
                    f"than {PRESSURE_BAND_PCT:g} points apart)"
                )
        return None
