"""Regressions: today's run of a series against a baseline of comparable earlier runs.

A regression is today's sample worse than the baseline's (the last K runs of the same series,
or one chosen run) beyond the noise: a one-sided Mann-Whitney U test (harness.report.stats)
with p < ALPHA, a large effect (Cliff's delta >= MIN_DELTA) and a p95 worse by more than
MIN_P95_CHANGE plus the figures' uncertainty. All three: a p-value alone flags tiny shifts in
big samples; an effect size alone flags noise in small ones.

A run with fewer than MIN_SAMPLES samples in a series is too small to see a +30 % p95 reliably:
its comparison says "too few samples" rather than "ok" (a regression it does see is still
flagged). The figure comes from simulating the rule (benchmarks/report_bench.py, 1,000
lognormal series per case, baseline 5 runs): at log-sd 0.1 a +30 % p95 is flagged at once
(suspected) in 81 % of runs of 3 samples, 96 % of 10, 99.7 % of 30, with at most 2 unchanged
runs in 1,000 suspected and none confirmed; at log-sd 0.25, 18 % / 60 % / 89 %, with 1-6
suspected and 0-1 confirmed.

Like with like: each series row also stores the conditions it was measured under (the host's
load average, CPU count and CPU pressure, the measurement's health: harness.report.conditions).
A baseline holds only runs of comparable conditions (the last K of them), and a run that is
starved, or has fewer than MIN_BASELINE_RUNS comparable runs before it, says "not comparable:
<why>" (never a regression flag).

Like with like, for the tail too: the baseline's p95 is the median of its runs' own p95s, not
the p95 of their samples pooled. Today's p95 is one run's; so is each baseline run's, with the
same sampling spread; a pooled p95 is a different estimator, and one tail-heavy run in the
baseline raises it (the quiet bench's run B: one run's slow stretch put the pooled p95 at
44.8 ms against runs of 30-40, and hid a planted +30 %).

Confirmed by the next run: a single run that the rule flags is "suspected", and becomes a
REGRESSION when the next run of the series is flagged as well (against the same baseline).
Flagged runs stay out of the baselines: a suspected run that the next one does not confirm was
a one-off (a slow stretch on the host or the device), and the runs of a regression that ended
are not the norm either. K flagged runs in a row are a lasting change: they enter the baseline
together and the new level is the norm from then on (a wanted change stops being flagged after
K runs). This is how step detectors on performance
dashboards work (Mozilla's Perfherder alerts on a change seen over several runs; a single
point is noise until repeated); the cost is one run of delay before the red flag, with the
suspicion shown at once. A chosen baseline run (`--baseline`) is a deliberate comparison:
there one run's flag is the verdict.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace

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
# earlier runs judged again (oldest first) to know which of the baseline's candidates were
# flagged (held out) and whether the run before today was: two baselines' K and two
WALK_RUNS = 2 * BASELINE_RUNS + 2


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
    # flagged by the rule, not yet confirmed by the next run (never with regression)
    suspected: bool = False
    outliers_left_out: int = 0  # flagged runs kept out of the baseline (one-offs, regressions)

    @property
    def comparable(self) -> bool:
        return not self.not_comparable

    @property
    def within_uncertainty(self) -> bool:
        """Not flagged only because the p95 change is inside the figures' uncertainty: the
        U test and the effect size saw today worse, the figures cannot confirm it."""
        return (
            not self.regression
            and not self.suspected
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
        """ "REGRESSION", "suspected" (flagged, to be confirmed by the next run), "not
        comparable" (starved, or no baseline run of comparable conditions: not judged), "within
        uncertainty", "too few samples" (not flagged, but it could not have seen one) or "ok"."""
        if not self.comparable:
            return "not comparable"
        if self.regression:
            return "REGRESSION"
        if self.suspected:
            return "suspected"
        if self.within_uncertainty:
            return "within uncertainty"
        return "too few samples" if self.too_few_samples else "ok"

    def describe(self) -> str:
        word = "REGRESSION" if self.regression else "no regression"
        if self.suspected:
            word = "suspected regression (the next run confirms it or not)"
        if not self.comparable:
            word = f"not comparable: {self.not_comparable}; figures for information"
        elif self.within_uncertainty:
            word += f" (worse, but within the figures' uncertainty +/- {self.uncertainty:.3g})"
        elif not self.regression and self.too_few_samples:
            word += f" seen (too few samples: {self.n_today} < {MIN_SAMPLES})"
        return (
            f"{word}: {self.metric} p95 {self.today_p95:.4g} vs {self.base_p95:.4g} {self.unit} "
            f"({self.p95_change:+.0%}), Cliff's delta {self.cliffs_delta:+.2f}, "
            f"Mann-Whitney U p = {self.p_value:.2g} ({self.base_runs} baseline runs"
            + (
                f"; {self.outliers_left_out} flagged run{'s' if self.outliers_left_out != 1 else ''} left out"
                if self.outliers_left_out
                else ""
            )
            + ")"
        )


def baseline_p95(runs: list[list[float]]) -> float:
    """The baseline's p95: the median of its runs' own p95s (one run: its p95). Like today's,
    each is one run's p95; one tail-heavy run cannot raise it (see the module's docstring)."""
    return float(np.median([np.percentile(np.asarray(r, float), 95) for r in runs]))


def compare(
    today: list[float],
    baseline: list[float],
    *,
    lower_better: bool = True,
    uncertainty: float = 0.0,
    base_p95: float | None = None,
) -> tuple[float, float, float, bool, str]:
    """(p_value, cliffs_delta, p95_change, regression, method) of today against baseline,
    oriented so that positive delta and change mean worse. `base_p95`: the baseline's p95
    (baseline_p95 of its runs); None: the p95 of `baseline`'s samples."""
    t = np.asarray(today, float)
    b = np.asarray(baseline, float)
    sign = 1.0 if lower_better else -1.0
    tp95 = float(np.percentile(t, 95))
    bp95 = float(np.percentile(b, 95)) if base_p95 is None else float(base_p95)
    scale = abs(bp95) if bp95 else 1.0
    change = sign * (tp95 - bp95) / scale
    beyond_noise = sign * (tp95 - bp95) > MIN_P95_CHANGE * scale + uncertainty
    test = mann_whitney_greater(sign * t, sign * b)
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
    same series before it measured under comparable conditions (never one of `exclude_runs`,
    nor a flagged run held out of the baselines), or the one `baseline_run`.

    A run the rule flags is "suspected" unless the run before it was flagged too, which
    confirms it (REGRESSION); a chosen `baseline_run` is a deliberate comparison, where one
    flag is the verdict. A series whose run is starved, or that has earlier runs but none of
    comparable conditions (or whose chosen baseline run is not comparable), is compared for
    information only: its Comparison says why in `not_comparable` and is never flagged.

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
        judge = _Judge(baseline_runs)
        if baseline_run is not None:
            c = judge.compare(row, base_by_series.get(row["series"], []), chosen=True)
        else:
            before = [
                r
                for r in history.series_rows(row["series"], before_t=row["t"])
                if r["run_id"] not in exclude_runs
            ]
            c = judge.in_turn(row, before)
        if c is not None:
            out.append(c)
    return out


class _Judge:
    """The rule applied to one series: a run against its candidates, and in turn over the
    runs before today (which of them are held out as flagged, whether the last was)."""

    def __init__(self, baseline_runs: int):
        self.k = baseline_runs
        self._samples: dict[str, list[float]] = {}

    def samples(self, row: dict) -> list[float]:
        key = row["run_id"]
        if key not in self._samples:
            self._samples[key] = json.loads(row["samples"])
        return self._samples[key]

    def in_turn(self, today: dict, before: list[dict]) -> Comparison | None:
        """Today against the runs before it, judging the last WALK_RUNS of those in turn
        (oldest first; the ones before them are taken as accepted). A flagged run is held out
        of the baselines; K flagged in a row are a lasting change, taken as the norm; a run
        not flagged ends the run of flags, whose runs stay out for good."""
        if not before:
            return None
        lower = lower_is_better(today["metric"])
        start = max(0, len(before) - WALK_RUNS)
        accepted, held, left_out = list(before[:start]), [], 0
        for r in before[start:]:
            if accepted and self._flagged(r, accepted, lower):
                held.append(r)
                if len(held) >= self.k:  # a lasting change: the new level is the norm
                    accepted += held
                    held = []
            else:
                left_out += len(held)  # a one-off, or a regression that ended
                held = []
                accepted.append(r)
        c = self.compare(today, accepted or before, lower=lower, left_out=left_out + len(held))
        if c is None or not c.regression:
            return c
        if not held:  # flagged, and the run before was not: to be confirmed
            return replace(c, regression=False, suspected=True)
        return c

    def _flagged(self, row: dict, candidates: list[dict], lower: bool) -> bool:
        c = self.compare(row, candidates, lower=lower)
        return c is not None and c.regression

    def compare(
        self,
        row: dict,
        before: list[dict],
        *,
        chosen: bool = False,
        lower: bool | None = None,
        left_out: int = 0,
    ) -> Comparison | None:
        """One run against its baseline chosen among `before` (comparable conditions, the
        last K runs; all of `before` when `chosen`). None: nothing before it."""
        if not before:
            return None
        today_c = Conditions.from_row(row)
        why_not = {r["run_id"]: today_c.incomparable(Conditions.from_row(r)) for r in before}
        comparable = [r for r in before if why_not[r["run_id"]] is None]
        reason = today_c.starved() or ""
        n_comparable = len({r["run_id"] for r in comparable})
        if comparable and (chosen or n_comparable >= MIN_BASELINE_RUNS):
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
        runs = list(dict.fromkeys(r["run_id"] for r in pool))[-self.k :]
        base = [r for r in pool if r["run_id"] in runs]
        today = self.samples(row)
        per_run = [self.samples(r) for r in base]
        base_samples = [v for r in per_run for v in r]
        lower = lower_is_better(row["metric"]) if lower is None else lower
        # bounds, not standard deviations: they add (docs/report.md: why not root-sum-square)
        unc = float(row["uncertainty"] or 0.0) + max(float(r["uncertainty"] or 0) for r in base)
        bp95 = baseline_p95(per_run)
        p, delta, change, flagged, method = compare(
            today, base_samples, lower_better=lower, uncertainty=unc, base_p95=bp95
        )
        return Comparison(
            series=row.get("series", ""),
            test=row.get("test", ""),
            device=row.get("device_key", ""),
            metric=row.get("metric", ""),
            network=row.get("network") or "",
            unit=row["unit"],
            today_p50=float(np.percentile(today, 50)),
            today_p95=float(np.percentile(today, 95)),
            base_p50=float(np.percentile(base_samples, 50)),
            base_p95=bp95,
            n_today=len(today),
            n_base=len(base_samples),
            base_runs=len(per_run),
            p_value=p,
            cliffs_delta=delta,
            p95_change=change,
            regression=flagged and not reason,
            lower_is_better=lower,
            method=method,
            uncertainty=unc,
            not_comparable=reason,
            conditions=today_c.describe(),
            outliers_left_out=left_out,
        )
