"""Regressions: today's run of a series against a baseline of comparable earlier runs.

A regression is today's sample worse than the baseline's (the last K runs of the same series,
or one chosen run) beyond the noise: a one-sided Mann-Whitney U test (harness.report.stats)
with p < ALPHA, a large effect (Cliff's delta >= MIN_DELTA) and a p95 worse by more than
MIN_P95_CHANGE plus the figures' uncertainty. All three: a p-value alone flags tiny shifts in
big samples; an effect size alone flags noise in small ones.

A run with fewer than MIN_SAMPLES samples in a series is too small to see a +30 % p95 reliably:
its comparison says "too few samples" rather than "ok" (a regression it does see is still
flagged). The figure comes from simulating the detector (benchmarks/report_bench.py, 1,000
lognormal series per case, baseline 5 runs): at log-sd 0.1 a +30 % p95 is flagged in 62 % of
runs of 3 samples, 92 % of 10, 99 % of 30, with 0 false alarms from 5 samples up (1 in 1,000 at
3); at log-sd 0.25, 12 % / 49 % / 81 %, with 0 false alarms only at 30.

Like with like: each series row also stores the conditions it was measured under (the host's
load average, CPU count and CPU pressure, the measurement's health: harness.report.conditions).
A baseline holds only runs of comparable conditions (the last K of them), and a run that is
starved, or has fewer than MIN_BASELINE_RUNS comparable runs before it, says "not comparable:
<why>" (never a regression flag).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from harness.report.conditions import Conditions
from harness.report.history import History, HistoryError, lower_is_better
from harness.report.stats import mann_whitney_greater

ALPHA = 0.01
MIN_DELTA = 0.33  # "medium" (Romano et al. 2006)
MIN_P95_CHANGE = 0.15  # relative
BASELINE_RUNS = 5  # K
# fewer comparable runs before today: no baseline yet (one or two runs do not show how far an
# unchanged run's figures move from run to run; a chosen --baseline run is taken as it is)
MIN_BASELINE_RUNS = 3
MIN_SAMPLES = 10  # per run: fewer cannot show a +30 % p95 reliably (see above)


@dataclass(frozen=True)
class Comparison:
    """Today's sample of a series against its baseline."""

    series: str
    test: str
    device: str
    metric: str
    network: str
    unit: str
    today_p50: float
    today_p95: float
    base_p50: float
    base_p95: float
    n_today: int
    n_base: int
    base_runs: int
    p_value: float
    cliffs_delta: float
    p95_change: float  # relative, positive = worse
    regression: bool
    lower_is_better: bool
    method: str
    uncertainty: float = 0.0  # of the p95 change: today's plus the baseline's
    # why today cannot be compared ("" when it can): starved, or no comparable baseline run
    not_comparable: str = ""
    conditions: str = ""  # today's, in words

    @property
    def comparable(self) -> bool:
        return not self.not_comparable

    @property
    def within_uncertainty(self) -> bool:
        """Not flagged only because the p95 change is inside the figures' uncertainty: the
        U test and the effect size saw today worse, the figures cannot confirm it."""
        return (
            not self.regression
            and self.comparable
            and self.p_value < ALPHA
            and self.cliffs_delta >= MIN_DELTA
            and self.p95_change > MIN_P95_CHANGE
        )

    @property
    def too_few_samples(self) -> bool:
        """Today's run has fewer samples than the detector needs to see a +30 % p95."""
        return self.n_today < MIN_SAMPLES

    @property
    def verdict(self) -> str:
        """ "REGRESSION", "not comparable" (starved, or no baseline run of comparable
        conditions: not judged), "within uncertainty", "too few samples" (not flagged, but it
        could not have seen one) or "ok"."""
        if not self.comparable:
            return "not comparable"
        if self.regression:
            return "REGRESSION"
        if self.within_uncertainty:
            return "within uncertainty"
        return "too few samples" if self.too_few_samples else "ok"

    def describe(self) -> str:
        word = "REGRESSION" if self.regression else "no regression"
        if not self.comparable:
            word = f"not comparable: {self.not_comparable}; figures for information"
        elif self.within_uncertainty:
            word += f" (worse, but within the figures' uncertainty +/- {self.uncertainty:.3g})"
        elif not self.regression and self.too_few_samples:
            word += f" seen (too few samples: {self.n_today} < {MIN_SAMPLES})"
        return (
            f"{word}: {self.metric} p95 {self.today_p95:.4g} vs {self.base_p95:.4g} {self.unit} "
            f"({self.p95_change:+.0%}), Cliff's delta {self.cliffs_delta:+.2f}, "
            f"Mann-Whitney U p = {self.p_value:.2g} ({self.base_runs} baseline runs)"
        )


def compare(
    today: list[float],
    baseline: list[float],
    *,
    lower_better: bool = True,
    uncertainty: float = 0.0,
) -> tuple[float, float, float, bool, str]:
    """(p_value, cliffs_delta, p95_change, regression, method) of today against baseline,
    oriented so that positive delta and change mean worse."""
    t = np.asarray(today, float)
    b = np.asarray(baseline, float)
    sign = 1.0 if lower_better else -1.0
    test = mann_whitney_greater(sign * t, sign * b)
    tp95, bp95 = float(np.percentile(t, 95)), float(np.percentile(b, 95))
    scale = abs(bp95) if bp95 else 1.0
    change = sign * (tp95 - bp95) / scale
    beyond_noise = sign * (tp95 - bp95) > MIN_P95_CHANGE * scale + uncertainty
    regression = test.p_value < ALPHA and test.cliffs_delta >= MIN_DELTA and beyond_noise
    return test.p_value, test.cliffs_delta, change, bool(regression), test.method


def regressions(
    history: History,
    run_id: str,
    *,
    baseline_runs: int = BASELINE_RUNS,
    baseline_run: str | None = None,
    exclude_runs: Collection[str] = (),
) -> list[Comparison]:
    """Every series of a stored run against its baseline: the last `baseline_runs` runs of the
    same series before it measured under comparable conditions (never one of `exclude_runs`),
    or the one `baseline_run`.

    A series whose run is starved, or that has earlier runs but none of comparable conditions
    (or whose chosen baseline run is not comparable), is compared for information only: its
    Comparison says why in `not_comparable` and is never a regression.

    Raises:
        HistoryError: an unknown run or baseline run.
    """
    if not history.has_run(run_id):
        raise HistoryError(f"{history.path}: no run {run_id!r} in the history")
    if baseline_run is not None and not history.has_run(baseline_run):
        raise HistoryError(f"{history.path}: no baseline run {baseline_run!r} in the history")
    out = []
    base_by_series: dict[str, list[dict]] = {}
    if baseline_run is not None:
        for row in history.run_records(baseline_run):
            base_by_series.setdefault(row["series"], []).append(row)
    for row in history.run_records(run_id):
        if row["interrupted"]:
            continue
        today_c = Conditions.from_row(row)
        if baseline_run is not None:
            before = base_by_series.get(row["series"], [])
        else:
            before = [
                r
                for r in history.series_rows(row["series"], before_t=row["t"])
                if r["run_id"] not in exclude_runs
            ]
        if not before:
            continue
        why_not = {r["run_id"]: today_c.incomparable(Conditions.from_row(r)) for r in before}
        comparable = [r for r in before if why_not[r["run_id"]] is None]
        reason = today_c.starved() or ""
        n_comparable = len({r["run_id"] for r in comparable})
        if comparable and (baseline_run is not None or n_comparable >= MIN_BASELINE_RUNS):
            pool = comparable
        elif comparable:
            pool = comparable
            reason = reason or (
                f"only {n_comparable} earlier run{'s' if n_comparable != 1 else ''} of comparable "
                f"conditions ({MIN_BASELINE_RUNS} needed; {today_c.describe()} today)"
            )
        else:
            # nothing comparable: the figures against the plain last runs, for information
            pool = before
            reasons = list(dict.fromkeys(w for w in why_not.values() if w))
            reason = reason or (
                f"no baseline run of comparable conditions ({today_c.describe()} today; "
                f"{len(why_not)} earlier run{'s' if len(why_not) != 1 else ''}: "
                + "; ".join(reasons[:3])
                + ")"
            )
        runs = list(dict.fromkeys(r["run_id"] for r in pool))[-baseline_runs:]
        base = [r for r in pool if r["run_id"] in runs]
        today = json.loads(row["samples"])
        base_samples = [v for r in base for v in json.loads(r["samples"])]
        lower = lower_is_better(row["metric"])
        # bounds, not standard deviations: they add (docs/report.md: why not root-sum-square)
        unc = float(row["uncertainty"] or 0.0) + max(float(r["uncertainty"] or 0) for r in base)
        p, delta, change, flagged, method = compare(
            today, base_samples, lower_better=lower, uncertainty=unc
        )
        out.append(
            Comparison(
                series=row["series"],
                test=row["test"],
                device=row["device_key"],
                metric=row["metric"],
                network=row["network"] or "",
                unit=row["unit"],
                today_p50=float(np.percentile(today, 50)),
                today_p95=float(np.percentile(today, 95)),
                base_p50=float(np.percentile(base_samples, 50)),
                base_p95=float(np.percentile(base_samples, 95)),
                n_today=len(today),
                n_base=len(base_samples),
                base_runs=len({r["run_id"] for r in base}),
                p_value=p,
                cliffs_delta=delta,
                p95_change=change,
                regression=flagged and not reason,
                lower_is_better=lower,
                method=method,
                uncertainty=unc,
                not_comparable=reason,
                conditions=today_c.describe(),
            )
        )
    return out
