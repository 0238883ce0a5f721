"""History of runs: reports/history.sqlite and trends.

Each run appends its measurements (samples included). A series is one test's metric on one
device under one network profile and app build; a device is its serial, or for twins and
emulators (whose loopback serial changes every run) its model and profile.

Each series row also stores the conditions it was measured under (harness.report.conditions);
regressions (today against a baseline of comparable runs) are judged in harness.report.regression.
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
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.report.conditions import HEALTH_KEY, HEALTH_NOTE_KEY, Conditions
from harness.report.record import ResultRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: the conditions columns (load_1min, cpus, health, health_note, cpu_pressure)
HISTORY_FILE = "history.sqlite"
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
