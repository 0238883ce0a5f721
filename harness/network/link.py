"""LinkModel: the per-packet decisions of one direction of an impaired link, seeded.

Each decision has its own random stream derived from (seed, direction, decision), so the same
seed gives the same drops whatever the delay, duplication or reordering settings, and the
two directions never share a stream. Order of decisions for one packet, as netem takes them:
outage, loss (independent, or Gilbert-Elliott: the loss chance of the current state, then the
state transition), duplication, then per copy either reordering (sent at once, ahead of the
delayed ones) or a delay drawn uniformly from [delay - jitter, delay + jitter].
"""

from __future__ import annotations

import random

from harness.network.profiles import Direction, OutageSchedule

DROP_OUTAGE = "outage"
DROP_RANDOM = "random"
DROP_BURST = "burst"


class LinkModel:
    """Decides the fate of each packet of one direction.

    Args:
        direction: the direction's impairment.
        outages: the profile's outage schedule (times relative to the start of shaping).
        seed: seed of every random stream.
        label: direction label ("up"/"down"), part of each stream's seed.
    """

    def __init__(self, direction: Direction, outages: OutageSchedule, seed: int, label: str):
        self.direction = direction
        self.outages = outages if not outages.empty else None
        self.delay_s = direction.delay_ms / 1000.0
        self.jitter_s = direction.jitter_ms / 1000.0
        self.loss = direction.loss_pct / 100.0 if direction.loss_burst is None else 0.0
        ge = direction.loss_burst
        self.ge = ge is not None
        if ge is not None:
            self.ge_p = ge.p_pct / 100.0
            self.ge_r = ge.r_pct / 100.0
            self.ge_bad_loss = ge.bad_loss_pct / 100.0
            self.ge_good_loss = ge.good_loss_pct / 100.0
        self.duplicate = direction.duplicate_pct / 100.0
        self.reorder = direction.reorder_pct / 100.0
        self.bad = False
        self._loss_rng = random.Random(f"{seed}:{label}:loss")
        self._dup_rng = random.Random(f"{seed}:{label}:duplicate")
        self._reorder_rng = random.Random(f"{seed}:{label}:reorder")
        self._delay_rng = random.Random(f"{seed}:{label}:delay")

    @property
    def transparent(self) -> bool:
        """True when every packet passes at once, untouched (the relay's fast path)."""
        return self.direction.is_clean and self.outages is None

    def drop(self, t_s: float) -> str | None:
        """Why the packet arriving t_s after the start is dropped, or None to keep it."""
        if self.outages is not None and self.outages.is_down(t_s):
            return DROP_OUTAGE
        if self.ge:
            rng = self._loss_rng
            if self.bad:
                lost = rng.random() < self.ge_bad_loss
                if rng.random() < self.ge_r:
                    self.bad = False
                return DROP_BURST if lost else None
            lost = rng.random() < self.ge_good_loss
            if rng.random() < self.ge_p:
                self.bad = True
            return DROP_RANDOM if lost else None
        if self.loss and self._loss_rng.random() < self.loss:
            return DROP_RANDOM
        return None

    def copies(self) -> int:
        """1, or 2 when the packet is duplicated."""
        return 2 if self.duplicate and self._dup_rng.random() < self.duplicate else 1

    def delay(self) -> tuple[float, bool]:
        """(delay in s, reordered) for one copy; a reordered copy skips the delay."""
        if self.reorder and self._reorder_rng.random() < self.reorder:
            return 0.0, True
        if self.jitter_s:
            return self._delay_rng.uniform(
                self.delay_s - self.jitter_s, self.delay_s + self.jitter_s
            ), False
        return self.delay_s, False

    def stream_delay(self) -> float:
        """A delay for a byte stream chunk (no reordering), in s."""
        if self.jitter_s:
            return self._delay_rng.uniform(
                self.delay_s - self.jitter_s, self.delay_s + self.jitter_s
            )
        return self.delay_s
