"""The result record: one measurement of one test on one device, as results.jsonl stores it.

One definition, written by the plugin and read back by the overview, the summary, the history
and `hil report`. Lines written before the record had a version (no `version` key) read as
version 0 and are upgraded on load.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.measure import Measurement
from harness.report.conditions import HOST_KEY, host_conditions

RECORD_VERSION = 1

# What a record's verdict says, in the words the terminal, the report and summary.json use.
PASS, FAIL, INCONCLUSIVE, RECORDED = "PASS", "FAIL", "INCONCLUSIVE", "RECORDED"
# Over budget where degradation is data (a shaped network profile of the poor Wi-Fi matrix):
# the figure shows how far it degraded, the test does not fail on it. Set by the test in the
# measurement's meta (DEGRADATION_IS_DATA: True).
DEGRADED = "DEGRADED"
DEGRADATION_IS_DATA = "degradation_is_data"


@dataclass
class ResultRecord:
    """One measurement of one test on one device.

    Attributes:
        test: pytest node id.
        device: adb serial.
        model: ro.product.model of the device.
        profile: matched device profile name (None: no profile describes the model).
        metric: measurement name (a budget metric or a free-form figure).
        unit: unit of the samples.
        samples: sample values, in order.
        stats: summary statistics (harness.measure.Stats as a dict), empty with no samples.
        uncertainty: largest per-sample uncertainty (same unit).
        meta: free-form facts (network profile, source...); `host` (load average, CPUs) and,
            where the measurement knows it, `health` (harness.report.conditions).
        verdict: harness.measure.Verdict.to_dict() when the measurement was checked, else None.
        interrupted: the run was stopped while the test was measuring: the samples are what
            was measured until then.
        run: the run id (reports/<run>/).
        t: wall-clock time the record was made (s since the epoch).
        version: RECORD_VERSION of the writer.
    """

    test: str
    device: str
    metric: str
    unit: str
    samples: list[float]
    model: str = ""
    profile: str | None = None
    stats: dict[str, float] = field(default_factory=dict)
    uncertainty: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    interrupted: bool = False
    run: str = ""
    t: float = 0.0
    version: int = RECORD_VERSION

    @classmethod
    def from_measurement(
        cls,
        m: Measurement,
        *,
        test: str,
        device: str,
        model: str = "",
        profile: str | None = None,
        verdict: Any = None,
        interrupted: bool = False,
        run: str = "",
    ) -> ResultRecord:
        """The record of a measurement (with samples) and its verdict (a Verdict or None)."""
        return cls(
            test=test,
            device=device,
            model=model,
            profile=profile,
            metric=m.name,
            unit=m.unit,
            samples=[s.value for s in m.samples],
            stats=asdict(m.stats()) if m.samples else {},
            uncertainty=m.uncertainty,
            # the host's conditions when the measurement ended (harness.report.conditions):
            # the regression detector compares only runs measured under comparable ones
            meta={HOST_KEY: host_conditions(), **m.meta},
            verdict=verdict.to_dict() if verdict is not None else None,
            interrupted=interrupted,
            run=run,
            t=time.time(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        """A record from a results.jsonl line (any version); unknown keys are kept in meta."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        kw.setdefault("version", 0)
        kw["samples"] = [float(x) for x in kw.get("samples") or []]
        kw["stats"] = dict(kw.get("stats") or {})
        kw["meta"] = {**(kw.get("meta") or {}), **extra}
        for required in ("test", "device", "metric", "unit"):
            kw.setdefault(required, "")
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- what the verdict says
    @property
    def checked(self) -> bool:
        """A budget limit was checked (a verdict with at least one check, or a failed one)."""
        v = self.verdict
        return bool(v) and (bool(v.get("checks")) or not v.get("passed", True))

    @property
    def mark(self) -> str:
        """PASS, FAIL (over budget beyond the uncertainty), INCONCLUSIVE, RECORDED (no
        budget limit was checked: a figure, not a verdict), or DEGRADED (over budget where
        the test records degradation as data: meta DEGRADATION_IS_DATA)."""
        if not self.checked:
            return RECORDED
        if self.verdict.get("passed", False):
            return PASS
        if self.verdict.get("inconclusive"):
            return INCONCLUSIVE
        return DEGRADED if self.meta.get(DEGRADATION_IS_DATA) else FAIL

    def stat(self, name: str) -> float:
        """A statistic, NaN when absent."""
        value = self.stats.get(name)
        return float(value) if value is not None else math.nan

    def limits(self) -> list[dict[str, Any]]:
        """The checks of the verdict: stat, op, limit, measured, passed, inconclusive."""
        return list((self.verdict or {}).get("checks") or [])

    @property
    def network(self) -> str:
        """The network profile the figure was measured under ("" when none)."""
        return str(self.meta.get("network") or "")
