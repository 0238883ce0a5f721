"""The WALT's clock seen from the host: min/max one-way bounds, drift, and conversion.

Notation of WALT's sync_clock.c (docs/walt.md): local time L = (host - base) in us, remote
time R = the WALT's microsecond counter, and the lag E = L - R (the remote clock lags the
local one by E). A message the host sends at L_s and the WALT stamps R_r gives a lower bound
E > L_s - R_r (travel time is positive); a message the WALT stamps R_s and the host receives
at L_r gives an upper bound E < L_r - R_s. The truth is inside [min_lag, max_lag] whatever
the asymmetry of the link; the midpoint is the estimate and half the width its uncertainty.

A crystal drifts, so E changes slowly with R. Each bounds measurement is a SyncPoint; with
two or more the clock fits E(R) = e0 + k R and extrapolates with a conservative error.
"""

from __future__ import annotations

from dataclasses import dataclass

WRAP_US = 2**32  # the firmware's microsecond counter is 32-bit
ASSUMED_MAX_DRIFT_PPM = 1000.0  # prior bound on crystal drift before it has been measured
MAX_POINTS = 8  # sync points kept for the drift fit (older ones age out)
MIN_HALF_WIDTH_US = 10.0  # floor of a point's half width when weighting the fit


@dataclass(frozen=True)
class SyncPoint:
    """One bounds measurement: at remote time walt_us the lag was within [min_lag, max_lag] us."""

    walt_us: float
    min_lag_us: float
    max_lag_us: float
    t_host: float

    @property
    def mid_us(self) -> float:
        return 0.5 * (self.min_lag_us + self.max_lag_us)

    @property
    def half_width_us(self) -> float:
        return 0.5 * (self.max_lag_us - self.min_lag_us)


def unwrap_us(raw: int, near_us: float) -> int:
    """The unwrapped remote time closest to `near_us` whose low 32 bits equal `raw`.

    The firmware prints some timestamps signed (%ld of a 32-bit long), so raw may be negative.
    """
    raw %= WRAP_US
    k = round((near_us - raw) / WRAP_US)
    return raw + k * WRAP_US


class RemoteClock:
    """Maps WALT microseconds to host monotonic seconds.

    Args:
        base_s: host time of local zero (L = 0); after a sync the remote zero is near it.
        max_drift_ppm: prior bound on drift, used while only one point is known.
    """

    def __init__(self, base_s: float, max_drift_ppm: float = ASSUMED_MAX_DRIFT_PPM):
        self.base_s = base_s
        self.max_drift_ppm = max_drift_ppm
        self.points: list[SyncPoint] = []
        self._e0 = 0.0
        self._k = 0.0

    # -- model --------------------------------------------------------------------------------

    def add(self, point: SyncPoint) -> None:
        """Add a bounds measurement and refit the lag model."""
        if point.max_lag_us < point.min_lag_us:
            raise ValueError(f"empty bounds: [{point.min_lag_us}, {point.max_lag_us}] us")
        self.points.append(point)
        del self.points[:-MAX_POINTS]
        self._fit()

    def _fit(self) -> None:
        pts = self.points
        if len(pts) == 1 or pts[-1].walt_us == pts[0].walt_us:
            self._k = 0.0
            self._e0 = pts[-1].mid_us
            return
        # weighted least squares: a point with wide bounds (a slow USB moment) counts less
        w = [1.0 / max(p.half_width_us, MIN_HALF_WIDTH_US) ** 2 for p in pts]
        sw = sum(w)
        mr = sum(wi * p.walt_us for wi, p in zip(w, pts, strict=True)) / sw
        me = sum(wi * p.mid_us for wi, p in zip(w, pts, strict=True)) / sw
        sxx = sum(wi * (p.walt_us - mr) ** 2 for wi, p in zip(w, pts, strict=True))
        sxy = sum(wi * (p.walt_us - mr) * (p.mid_us - me) for wi, p in zip(w, pts, strict=True))
        self._k = sxy / sxx
        self._e0 = me - self._k * mr

    @property
    def synced(self) -> bool:
        return bool(self.points)

    @property
    def last(self) -> SyncPoint:
        return self.points[-1]

    @property
    def drift_ppm(self) -> float:
        """How fast the WALT clock runs relative to the host (ppm, positive = fast)."""
        return -self._k / (1.0 + self._k) * 1e6

    def lag_us(self, walt_us: float) -> float:
        """Estimated lag E at remote time walt_us."""
        return self._e0 + self._k * walt_us

    def _drift_error(self) -> float:
        """Bound on the error of the fitted slope (dimensionless)."""
        prior = self.max_drift_ppm * 1e-6
        if len(self.points) < 2:
            return prior
        first, last = self.points[0], self.points[-1]
        span = last.walt_us - first.walt_us
        if span <= 0:
            return prior
        return min(prior, (first.half_width_us + last.half_width_us) / span)

    def uncertainty_us(self, walt_us: float) -> float:
        """Half-width of the interval the true host time of walt_us lies in (us)."""
        if not self.points:
            return float("inf")
        near = min(self.points, key=lambda p: abs(p.walt_us - walt_us))
        residual = abs(near.mid_us - self.lag_us(near.walt_us))
        return near.half_width_us + residual + abs(walt_us - near.walt_us) * self._drift_error()

    # -- conversions --------------------------------------------------------------------------

    def local_us(self, t_host: float) -> float:
        """Local time L (us since base) of a host time."""
        return (t_host - self.base_s) * 1e6

    def to_host(self, walt_us: float) -> float:
        """Host monotonic time (s) at which the WALT clock read walt_us."""
        return self.base_s + (walt_us + self.lag_us(walt_us)) * 1e-6

    def to_walt(self, t_host: float) -> float:
        """The WALT clock reading (us, unwrapped) at a host time."""
        return (self.local_us(t_host) - self._e0) / (1.0 + self._k)

    def unwrap(self, raw: int, t_host: float) -> int:
        """Unwrap a raw 32-bit remote timestamp taken near host time t_host."""
        return unwrap_us(raw, self.to_walt(t_host))

    def shift_base(self, delta_us: float) -> None:
        """Move the base by delta_us (lags shift by -delta_us); keeps every conversion equal."""
        self.base_s += delta_us * 1e-6
        self.points = [
            SyncPoint(p.walt_us, p.min_lag_us - delta_us, p.max_lag_us - delta_us, p.t_host)
            for p in self.points
        ]
        if self.points:
            self._fit()

    def describe(self) -> str:
        if not self.points:
            return "not synced"
        p = self.last
        return (
            f"lag in [{p.min_lag_us:.0f}, {p.max_lag_us:.0f}] us "
            f"(+/- {p.half_width_us / 1000:.3f} ms), drift {self.drift_ppm:+.0f} ppm "
            f"over {len(self.points)} point(s)"
        )
