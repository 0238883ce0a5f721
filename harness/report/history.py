"""History of runs: reports/history.sqlite, trends and regressions.

Each run appends its measurements (samples included). A series is one test's metric on one
device under one network profile and app build; a device is its serial, or for twins and
emulators (whose loopback serial changes every run) its model and profile.

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
Schema 2 added those columns; a schema-1 file is migrated in place (its rows keep NULL
conditions and are comparable only with each other).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.report.conditions import HEALTH_KEY, HEALTH_NOTE_KEY, Conditions
from harness.report.record import ResultRecord
from harness.report.stats import mann_whitney_greater

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: the conditions columns (load_1min, cpus, health, health_note, cpu_pressure)
HISTORY_FILE = "history.sqlite"
ALPHA = 0.01
MIN_DELTA = 0.33  # "medium" (Romano et al. 2006)
MIN_P95_CHANGE = 0.15  # relative
BASELINE_RUNS = 5  # K
# fewer comparable runs before today: no baseline yet (one or two runs do not show how far an
# unchanged run's figures move from run to run; a chosen --baseline run is taken as it is)
MIN_BASELINE_RUNS = 3
MIN_SAMPLES = 10  # per run: fewer cannot show a +30 % p95 reliably (see above)
TREND_RUNS = 20  # N
DB_TIMEOUT_S = 10.0
_HIGHER_IS_BETTER = re.compile(r"(ssim|psnr|fps|coverage|score)", re.I)
_EPHEMERAL_SERIAL = re.compile(r"^(127\.0\.0\.1:|localhost:|emulator-)")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, t REAL, exitstatus INTEGER, app_build TEXT, interrupted_by TEXT
);
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL REFERENCES runs(run_id), t REAL, series TEXT NOT NULL,
    test TEXT, device_key TEXT, device TEXT, model TEXT, profile TEXT, network TEXT,
    app_build TEXT, metric TEXT, unit TEXT, n INTEGER, p50 REAL, p95 REAL, mean REAL,
    uncertainty REAL, mark TEXT, interrupted INTEGER, samples TEXT,
    load_1min REAL, cpus INTEGER, health REAL, health_note TEXT, cpu_pressure REAL
);
CREATE INDEX IF NOT EXISTS measurements_series ON measurements(series, t);
"""
# schema 1 -> 2: the conditions a series was measured under (appended: the INSERT's order)
_CONDITION_COLUMNS = (
    ("load_1min", "REAL"),
    ("cpus", "INTEGER"),
    ("health", "REAL"),
    ("health_note", "TEXT"),
    ("cpu_pressure", "REAL"),
)


class HistoryError(HarnessError):
    """The history store cannot be used (newer schema, corrupt file)."""


def device_key(serial: str, model: str, profile: str | None) -> str:
    """The device of a series: its serial, or model/profile for loopback twins and emulators."""
    if _EPHEMERAL_SERIAL.match(serial or ""):
        return f"{model or '?'}/{profile or 'none'}"
    return serial


def series_test(nodeid: str, serial: str, profile: str | None) -> str:
    from harness.report.collector import readable_test_id

    return readable_test_id(nodeid, serial, profile)


def series_of(r: ResultRecord, app_build: str = "") -> str:
    """The series a record belongs to (what a baseline must share with it)."""
    return json.dumps(
        [
            series_test(r.test, r.device, r.profile),
            device_key(r.device, r.model, r.profile),
            r.metric,
            r.network,
            str(r.meta.get("app_build") or app_build),
        ]
    )


def lower_is_better(metric: str, limits: Iterable[dict] = ()) -> bool:
    """Direction of "worse": from the budget's limits (<= : lower is better), else the name."""
    ops = {c.get("op") for c in limits}
    if ops == {">="}:
        return False
    if "<=" in ops:
        return True
    return not _HIGHER_IS_BETTER.search(metric)


class History:
    """The SQLite history store of a reports directory."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=DB_TIMEOUT_S)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path}: history schema {version} is newer than this harness's "
                    f"({SCHEMA_VERSION}); use a newer mayday-hil or another --reports"
                )
            self.db.executescript(_SCHEMA)
            self._migrate(version)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.commit()
        except sqlite3.DatabaseError as e:
            raise HistoryError(f"{self.path}: not a usable history store: {e}") from None

    def _migrate(self, version: int) -> None:
        """Bring a store of an older schema to this one (in place, rows kept)."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(measurements)")}
        missing = [(n, t) for n, t in _CONDITION_COLUMNS if n not in have]
        for name, kind in missing:
            self.db.execute(f"ALTER TABLE measurements ADD COLUMN {name} {kind}")
        if missing:
            log.info("%s: history schema %d migrated to %d", self.path, version, SCHEMA_VERSION)

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error as e:
            log.warning("closing %s: %s", self.path, e)

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing
    def append_run(
        self,
        run_id: str,
        records: list[ResultRecord],
        exitstatus: int = 0,
        app_build: str = "",
        interrupted_by: str | None = None,
        t: float | None = None,
    ) -> None:
        """Store a run and its measurements (again: replaced)."""
        t = time.time() if t is None else t
        with self.db:
            self.db.execute("DELETE FROM measurements WHERE run_id = ?", (run_id,))
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                (run_id, t, exitstatus, app_build, interrupted_by),
            )
            self.db.executemany(
                "INSERT INTO measurements VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        t,
                        series_of(r, app_build),
                        series_test(r.test, r.device, r.profile),
                        device_key(r.device, r.model, r.profile),
                        r.device,
                        r.model,
                        r.profile,
                        r.network,
                        str(r.meta.get("app_build") or app_build),
                        r.metric,
                        r.unit,
                        len(r.samples),
                        r.stats.get("p50"),
                        r.stats.get("p95"),
                        r.stats.get("mean"),
                        r.uncertainty,
                        r.mark,
                        int(r.interrupted),
                        json.dumps(r.samples),
                        *_condition_values(r),
                    )
                    for r in records
                    if r.samples
                ],
            )

    # --- reading
    def runs(self, last: int | None = None) -> list[tuple[str, float]]:
        """(run_id, t) of the stored runs, oldest first (the last `last` of them)."""
        rows = self.db.execute("SELECT run_id, t FROM runs ORDER BY t DESC, run_id DESC").fetchall()
        rows = rows[:last] if last else rows
        return list(reversed(rows))

    def has_run(self, run_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None
        )

    def series_rows(self, series: str, before_t: float | None = None) -> list[dict]:
        """Measurements of a series (not interrupted), oldest first."""
        q = (
            "SELECT run_id, t, n, p50, p95, uncertainty, mark, samples, unit, "
            + ", ".join(n for n, _ in _CONDITION_COLUMNS)
            + " FROM measurements "
            "WHERE series = ? AND interrupted = 0"
        )
        args: list = [series]
        if before_t is not None:
            q += " AND t < ?"
            args.append(before_t)
        q += " ORDER BY t, run_id"
        keys = (
            "run_id",
            "t",
            "n",
            "p50",
            "p95",
            "uncertainty",
            "mark",
            "samples",
            "unit",
            *(n for n, _ in _CONDITION_COLUMNS),
        )
        return [dict(zip(keys, row, strict=True)) for row in self.db.execute(q, args)]

    def run_records(self, run_id: str) -> list[dict]:
        keys = (
            "run_id",
            "series",
            "test",
            "device_key",
            "device",
            "model",
            "profile",
            "network",
            "metric",
            "unit",
            "n",
            "p50",
            "p95",
            "uncertainty",
            "mark",
            "interrupted",
            "samples",
            "t",
            *(n for n, _ in _CONDITION_COLUMNS),
        )
        q = f"SELECT {', '.join(keys)} FROM measurements WHERE run_id = ?"
        return [dict(zip(keys, row, strict=True)) for row in self.db.execute(q, (run_id,))]

    def all_series(self, runs: list[str]) -> list[str]:
        if not runs:
            return []
        marks = ",".join("?" * len(runs))
        q = f"SELECT DISTINCT series FROM measurements WHERE run_id IN ({marks}) ORDER BY series"
        return [row[0] for row in self.db.execute(q, runs)]


def _condition_values(r: ResultRecord) -> tuple:
    """(load_1min, cpus, health, health_note, cpu_pressure) of a record, None where not
    recorded."""
    c = Conditions.from_meta(r.meta)
    note = r.meta.get(HEALTH_NOTE_KEY) if HEALTH_KEY in r.meta else None
    return (c.load_1min, c.cpus, c.health, note, c.cpu_pressure)


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


def trend(history: History, last: int = TREND_RUNS) -> dict[str, list[dict]]:
    """Per series, its rows (run_id, t, p50, p95, n, mark) over the last `last` runs."""
    runs = [r for r, _ in history.runs(last)]
    out: dict[str, list[dict]] = {}
    for series in history.all_series(runs):
        rows = [r for r in history.series_rows(series) if r["run_id"] in set(runs)]
        if rows:
            out[series] = rows
    return out


def series_label(series: str) -> dict[str, str]:
    test, device, metric, network, build = json.loads(series)
    return {"test": test, "device": device, "metric": metric, "network": network, "build": build}


def finite(x: float | None) -> float:
    return float(x) if x is not None and math.isfinite(float(x)) else math.nan
