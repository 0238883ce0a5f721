"""Like with like: the conditions a figure was measured under go into the history with it, the
detector's baseline holds only runs of comparable conditions, and a starved run or one without
a comparable baseline says "not comparable: why" instead of a verdict (synthetic series)."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest

from harness.measure import Measurement
from harness.report import ResultRecord
from harness.report.conditions import (
    HOST_KEY,
    MIN_HEALTH,
    PSI_CPU,
    Conditions,
    cpu_pressure,
    host_conditions,
    rate_health,
)
from harness.report.history import SCHEMA_VERSION, History, series_of
from harness.report.regression import regressions
from harness.report.trend import trend_page

NODE = "suites/test_media.py::test_share[127.0.0.1:41234-android-emulator-api34]"
NOMINAL_FRAMES = 60  # 15 frames/s x 4 s


def _records(samples, load=0.4, cpus=2, frames=NOMINAL_FRAMES):
    meta = {HOST_KEY: {"load_1min": load, "cpus": cpus}} if load is not None else {}
    m = Measurement("share_latency_ms", "ms", meta=meta)
    if frames is not None:
        m.meta.update(rate_health(frames, 15.0, 4.0, "share frames"))
    for v in samples:
        m.add(float(v), uncertainty=1.0)
    return [
        ResultRecord.from_measurement(
            m, test=NODE, device="127.0.0.1:41234", model="sdk", profile="android-emulator-api34"
        )
    ]


def _lat(rng, scale=1.0, n=50, sd=0.2):
    return 120.0 * scale * rng.lognormal(0.0, sd, n)


def test_host_conditions_and_rate_health_are_recorded_with_the_record(monkeypatch, tmp_path):
    now = host_conditions()
    assert now["cpus"] >= 1 and now["load_1min"] >= 0.0
    if os.path.exists(PSI_CPU):
        assert 0.0 <= now["cpu_pressure"] <= 100.0
    psi = tmp_path / "cpu"
    psi.write_text("some avg10=74.04 avg60=62.55 avg300=37.72 total=136\nfull avg10=0.00\n")
    assert cpu_pressure(str(psi)) == 74.04 and cpu_pressure(str(tmp_path / "none")) is None
    monkeypatch.undo()  # the report tests' fixed host: here the real one
    m = Measurement("share_latency_ms", "ms", meta=rate_health(32, 15.0, 6.0, "share frames"))
    m.add(100.0)
    r = ResultRecord.from_measurement(m, test=NODE, device="d")
    assert (
        set(r.meta[HOST_KEY]) == {"load_1min", "cpus", "cpu_pressure"}
        and r.meta[HOST_KEY]["cpus"] >= 1
    )
    c = Conditions.from_meta(r.meta)
    assert c.health == pytest.approx(32 / 90, abs=1e-3) and c.known
    assert c.starved() and "32 of 90 share frames" in c.starved()
    with pytest.raises(ValueError, match="nominal share frames"):
        rate_health(3, 0.0, 4.0, "share frames")


def test_the_comparability_rule():
    quiet, busy = Conditions(0.2, 2, 1.0), Conditions(4.0, 2, 1.0)
    assert quiet.incomparable(Conditions(0.9, 2, 0.95)) is None  # both under the floor x 2
    assert "(more than 1.25x apart)" in busy.incomparable(quiet)
    assert busy.incomparable(Conditions(4.8, 2, 0.9)) is None  # 2.0 vs 2.4 per CPU
    assert "2.60 vs 2.00" in busy.incomparable(Conditions(5.2, 2, 1.0))
    assert "4 CPUs vs 2" in quiet.incomparable(Conditions(0.2, 4, 1.0))
    starved = Conditions(4.0, 2, MIN_HEALTH - 0.01, "47 of 60 share frames")
    assert "baseline run starved" in busy.incomparable(starved)
    assert "not recorded" in quiet.incomparable(Conditions())
    assert Conditions().incomparable(Conditions()) is None  # schema-1 rows among themselves
    assert Conditions(4.0, 2, MIN_HEALTH).starved() is None
    # the CPU pressure of the last 10 s, where the kernel gives it: 15 points apart at most
    calm, pressed = (
        Conditions(3.0, 2, 1.0, cpu_pressure=30.0),
        Conditions(3.0, 2, 1.0, cpu_pressure=60.0),
    )
    assert "CPU pressure 30% vs 60% (more than 15 points apart)" in pressed.incomparable(calm)
    assert calm.incomparable(Conditions(3.0, 2, 1.0, cpu_pressure=45.0)) is None
    assert calm.incomparable(Conditions(3.0, 2, 1.0)) is None  # one without: the load decides


def test_a_starved_run_is_not_judged_and_never_enters_a_baseline(tmp_path):
    """The bench's failure on a loaded host: starved unchanged runs (a third of the frames,
    latency doubled) were flagged, and their load spikes raised the baseline's p95 above the
    planted runs'. Now they say "not comparable" and stay out of the baselines."""
    rng = np.random.default_rng(3)
    with History(tmp_path / "history.sqlite") as h:
        false_alarms, verdicts = 0, []
        for k in range(20):
            starved = k % 3 == 2  # one unchanged run in three starved by the host
            recs = (
                _records(_lat(rng, 2.0, sd=0.5), load=9.0, frames=25)
                if starved
                else _records(_lat(rng))
            )
            h.append_run(f"same-{k:02d}", recs, t=1000.0 + k)
            for c in regressions(h, f"same-{k:02d}"):
                false_alarms += c.regression
                verdicts.append(c.verdict)
                if starved:
                    assert c.verdict == "not comparable" and not c.regression
                    assert c.not_comparable.startswith("starved (health 42% < 80%: 25 of 60")
                    assert "not comparable: starved" in c.describe()
        # 6 starved runs, and runs 2 and 4 with 1 and 2 healthy runs before them (3 needed)
        assert false_alarms == 0 and verdicts.count("not comparable") == 6 + 2
        assert verdicts.count("ok") == 19 - 8
        unchanged = [f"same-{k:02d}" for k in range(20)]
        for j in range(2):  # the first planted run suspected, the second confirms it
            h.append_run(f"planted-{j}", _records(_lat(rng, 1.3)), t=2000.0 + j)
            (c,) = regressions(h, f"planted-{j}")
            assert (c.suspected, c.regression) == (j == 0, j == 1) and c.base_runs == 5
            base = {r["run_id"] for r in h.series_rows(c.series) if r["run_id"] in unchanged}
            healthy = [r for r in sorted(base) if int(r[-2:]) % 3 != 2][-5:]
            p95s = [np.percentile(json.loads(h.run_records(r)[0]["samples"]), 95) for r in healthy]
            assert c.base_p95 == pytest.approx(np.median(p95s))
        page = trend_page(h, run_id="same-17")
        assert "hil-trend-row hil-not-comparable" in page and "1 not comparable" in page
        assert "data-verdict='not comparable'" in page and "class='hil-grid-cell hil-g-nc'" in page


def test_no_baseline_of_comparable_conditions_says_so_then_builds_one(tmp_path):
    rng = np.random.default_rng(4)
    with History(tmp_path / "history.sqlite") as h:
        for k in range(5):  # a quiet host
            h.append_run(f"quiet-{k}", _records(_lat(rng), load=0.3), t=1000.0 + k)
        # a busy host (load 4 per CPU), not starved, slower: not judged against quiet runs
        h.append_run("busy-0", _records(_lat(rng, 1.6), load=8.0), t=2000.0)
        (c,) = regressions(h, "busy-0")
        assert c.verdict == "not comparable" and not c.regression and c.p95_change > 0.3
        assert c.not_comparable.startswith("no baseline run of comparable conditions")
        assert (
            "load 8.0 on 2 CPUs" in c.not_comparable and "more than 1.25x apart" in c.not_comparable
        )
        # busy runs accumulate their own baseline; a quiet run is still judged against quiet
        for k in range(1, 4):
            h.append_run(f"busy-{k}", _records(_lat(rng, 1.6), load=7.0), t=2000.0 + k)
        (c,) = regressions(h, "busy-2")  # two busy runs before it: not yet a baseline
        assert c.not_comparable.startswith("only 2 earlier runs of comparable conditions (3 ")
        (c,) = regressions(h, "busy-3")
        assert c.comparable and c.verdict == "ok" and c.base_runs == 3
        h.append_run("quiet-planted", _records(_lat(rng, 1.3), load=0.5), t=3000.0)
        (c,) = regressions(h, "quiet-planted")
        assert c.suspected and c.base_runs == 5  # the quiet runs, not the busy (slower) ones
        # a chosen baseline run of other conditions: not comparable either
        (c,) = regressions(h, "quiet-planted", baseline_run="busy-1")
        assert not c.comparable and not c.regression


def test_a_schema_1_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "history.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, t REAL, exitstatus INTEGER, app_build TEXT,
            interrupted_by TEXT);
        CREATE TABLE measurements (run_id TEXT NOT NULL REFERENCES runs(run_id), t REAL,
            series TEXT NOT NULL, test TEXT, device_key TEXT, device TEXT, model TEXT,
            profile TEXT, network TEXT, app_build TEXT, metric TEXT, unit TEXT, n INTEGER,
            p50 REAL, p95 REAL, mean REAL, uncertainty REAL, mark TEXT, interrupted INTEGER,
            samples TEXT);
        PRAGMA user_version = 1;
        """
    )
    rng = np.random.default_rng(5)
    for k in range(5):  # runs as a schema-1 harness wrote them: no conditions
        (r,) = _records(_lat(rng))
        s = sorted(r.samples)
        db.execute("INSERT INTO runs VALUES (?, ?, 0, '', NULL)", (f"old-{k}", 1.0 + k))
        db.execute(
            "INSERT INTO measurements VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"old-{k}", 1.0 + k, series_of(r), "t", "sdk/android-emulator-api34", r.device)
            + (r.model, r.profile, "", "", r.metric, "ms", len(s), s[len(s) // 2], s[-3], 0.0)
            + (1.0, "RECORDED", 0, json.dumps(r.samples)),
        )
    db.commit()
    db.close()
    with History(path) as h:
        assert h.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        cols = {row[1] for row in h.db.execute("PRAGMA table_info(measurements)")}
        assert {"load_1min", "cpus", "health", "health_note", "cpu_pressure"} <= cols
        (c,) = regressions(h, "old-4")
        assert c.comparable and c.verdict == "ok"  # old rows compare among themselves
        h.append_run("new", _records(_lat(rng)), t=10.0)
        (c,) = regressions(h, "new")
        assert c.verdict == "not comparable" and "not recorded" in c.not_comparable
    with History(path) as h:  # opened again: nothing to migrate, rows kept
        assert len(h.runs()) == 6
        assert h.run_records("new")[0]["load_1min"] == 0.4
