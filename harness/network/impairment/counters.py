"""What an impairment relay did, per direction: counters and delay statistics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.network.impairment.settings import MAX_HOLD_SAMPLES


@dataclass
class DirectionCounters:
    """What the relay did to one direction (live; read a snapshot with .snapshot())."""

    direction: str
    received: int = 0
    received_bytes: int = 0
    forwarded: int = 0
    forwarded_bytes: int = 0
    dropped_random: int = 0
    dropped_burst: int = 0
    dropped_outage: int = 0
    dropped_queue: int = 0
    dropped_send: int = 0
    duplicated: int = 0
    reordered: int = 0
    hold_ms: list[float] = field(default_factory=list, repr=False)

    def hold(self, seconds: float) -> None:
        if len(self.hold_ms) < MAX_HOLD_SAMPLES:
            self.hold_ms.append(seconds * 1000.0)

    def snapshot(self) -> DirectionStats:
        holds = sorted(self.hold_ms)
        values = {k: v for k, v in asdict(self).items() if k != "hold_ms"}
        return DirectionStats(
            **values,
            hold_samples=len(holds),
            hold_ms_p50=_pct(holds, 50),
            hold_ms_p99=_pct(holds, 99),
            hold_ms_max=holds[-1] if holds else None,
            hold_ms_mean=sum(holds) / len(holds) if holds else None,
        )


@dataclass(frozen=True)
class DirectionStats:
    """A snapshot of DirectionCounters; hold_ms_* is the relay's own view of queue delay."""

    direction: str
    received: int
    received_bytes: int
    forwarded: int
    forwarded_bytes: int
    dropped_random: int
    dropped_burst: int
    dropped_outage: int
    dropped_queue: int
    dropped_send: int
    duplicated: int
    reordered: int
    hold_samples: int
    hold_ms_p50: float | None
    hold_ms_p99: float | None
    hold_ms_max: float | None
    hold_ms_mean: float | None

    @property
    def dropped(self) -> int:
        return (
            self.dropped_random
            + self.dropped_burst
            + self.dropped_outage
            + self.dropped_queue
            + self.dropped_send
        )


@dataclass(frozen=True)
class RelayCounters:
    """Counters of both directions: forward (client -> target) and reverse (replies)."""

    protocol: str
    profile: str
    seed: int
    forward: DirectionStats
    reverse: DirectionStats
    clients: int
    refused_clients: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["forward"]["dropped"] = self.forward.dropped
        out["reverse"]["dropped"] = self.reverse.dropped
        return out

    def describe(self) -> str:
        lines = [
            f"relay {self.protocol} profile {self.profile} seed {self.seed}:"
            f" {self.clients} client(s)"
            + (f", {self.refused_clients} refused" if self.refused_clients else "")
        ]
        for d in (self.forward, self.reverse):
            hold = (
                f", hold p50 {d.hold_ms_p50:.2f} ms p99 {d.hold_ms_p99:.2f} ms"
                if d.hold_ms_p50 is not None
                else ""
            )
            lines.append(
                f"  {d.direction:>7}: received {d.received} ({d.received_bytes} B),"
                f" forwarded {d.forwarded}"
                f" ({d.forwarded_bytes} B), dropped {d.dropped} (random {d.dropped_random}, burst"
                f" {d.dropped_burst}, outage {d.dropped_outage}, queue {d.dropped_queue}, send"
                f" {d.dropped_send}), duplicated {d.duplicated}, reordered {d.reordered}{hold}"
            )
        return "\n".join(lines)


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
