"""Sample -> Measurement -> Stats, and Budget -> Verdict.

Percentiles use linear interpolation between order statistics (numpy's default), so p50 of
an even count is the mean of the two middle samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.errors import BudgetExceeded, MeasurementError
from harness.profiles.budget import Budget, Limit


@dataclass(frozen=True)
class Sample:
    """One measured value.

    Attributes:
        value: the figure, in the measurement's unit.
        t: host monotonic time (s) the sample refers to, if any.
        uncertainty: half-width of the interval the true value lies in (same unit), e.g. the
            capture interval for a latency read off frames.
        meta: free-form facts (frame number, device, profile...).
    """

    value: float
    t: float | None = None
    uncertainty: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    min: float
    max: float
    std: float

    def get(self, stat: str) -> float:
        return float(getattr(self, stat))


def stats_of(values) -> Stats:
    """Summary statistics of a sequence of numbers.

    Raises:
        MeasurementError: no values, or a value that is not finite.
    """
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise MeasurementError("no samples to summarise")
    if not np.all(np.isfinite(arr)):
        raise MeasurementError(f"{int(np.sum(~np.isfinite(arr)))} sample(s) are not finite")
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return Stats(
        n=int(arr.size),
        mean=float(arr.mean()),
        p50=float(p50),
        p95=float(p95),
        p99=float(p99),
        min=float(arr.min()),
        max=float(arr.max()),
        std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
    )


@dataclass
class Measurement:
    """A named series of samples with a unit."""

    name: str
    unit: str
    samples: list[Sample] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, value: float, t: float | None = None, uncertainty: float = 0.0, **meta) -> Sample:
        sample = Sample(float(value), t, float(uncertainty), meta)
        self.samples.append(sample)
        return sample

    @property
    def values(self) -> list[float]:
        return [s.value for s in self.samples]

    @property
    def uncertainty(self) -> float:
        """Largest per-sample uncertainty (the bound every figure carries)."""
        return max((s.uncertainty for s in self.samples), default=0.0)

    def stats(self) -> Stats:
        if not self.samples:
            raise MeasurementError(f"{self.name}: no samples were measured")
        return stats_of(self.values)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "unit": self.unit, "meta": self.meta}
        out["samples"] = [asdict(s) for s in self.samples]
        out["uncertainty"] = self.uncertainty
        out["stats"] = asdict(self.stats()) if self.samples else None
        return out


@dataclass(frozen=True)
class Check:
    """One limit against its statistic. `passed` is the plain comparison; a failing check whose
    measured value is within `uncertainty` of the limit is inconclusive (the harness cannot
    tell, and says so instead of blaming the product)."""

    limit: Limit
    measured: float
    passed: bool
    uncertainty: float = 0.0

    @property
    def definitely_failed(self) -> bool:
        if self.passed:
            return False
        if self.limit.op == "<=":
            return self.measured - self.uncertainty > self.limit.value
        return self.measured + self.uncertainty < self.limit.value

    @property
    def inconclusive(self) -> bool:
        return not self.passed and not self.definitely_failed

    def describe(self) -> str:
        unit = f" {self.limit.unit}" if self.limit.unit else ""
        mark = (
            "ok"
            if self.passed
            else ("OVER BUDGET" if self.definitely_failed else "INCONCLUSIVE (within uncertainty)")
        )
        return f"{self.limit.metric} {self.limit.stat} = {self.measured:.4g}{unit} (limit {self.limit.op} {self.limit.value:g}{unit}): {mark}"


@dataclass(frozen=True)
class Verdict:
    metric: str
    budget: str
    checks: tuple[Check, ...]
    uncertainty: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def message(self) -> str:
        if not self.checks:
            return f"{self.metric}: no limit in budget {self.budget!r}"
        text = "; ".join(c.describe() for c in self.checks)
        if self.uncertainty:
            text += f" (uncertainty +/- {self.uncertainty:.3g})"
        return f"budget {self.budget!r}: {text}"

    @property
    def inconclusive(self) -> bool:
        return not self.passed and not any(c.definitely_failed for c in self.checks)

    def raise_if_failed(self) -> None:
        """Raises BudgetExceeded (an AssertionError) naming measured value and limit when a limit
        is broken beyond the measurement's uncertainty; MeasurementError when a limit is broken
        only within it (the figure is not precise enough to judge the product)."""
        if any(c.definitely_failed for c in self.checks):
            raise BudgetExceeded(self.message)
        if not self.passed:
            raise MeasurementError(f"inconclusive: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "budget": self.budget,
            "passed": self.passed,
            "message": self.message,
            "inconclusive": self.inconclusive,
            "checks": [
                {
                    "stat": c.limit.stat,
                    "op": c.limit.op,
                    "limit": c.limit.value,
                    "measured": c.measured,
                    "passed": c.passed,
                    "inconclusive": c.inconclusive,
                }
                for c in self.checks
            ],
        }


def check(measurement: Measurement, budget: Budget) -> Verdict:
    """Check a measurement against every limit its budget sets for its metric.

    The `n` statistic counts samples (e.g. a minimum number of sessions).
    """
    limits = budget.for_metric(measurement.name)
    stats = measurement.stats()
    checks = []
    for limit in limits:
        measured = stats.get(limit.stat)
        uncertainty = 0.0 if limit.stat == "n" else measurement.uncertainty
        checks.append(
            Check(limit, measured, limit.holds(measured) and not math.isnan(measured), uncertainty)
        )
    return Verdict(measurement.name, budget.name, tuple(checks), measurement.uncertainty)
