"""History store, the two-sample test and regression flags: a planted +30 % p95 is flagged,
unchanged runs are not; `hil report trend` builds trend.html from the history alone."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from harness.cli import main
from harness.measure import Measurement
from harness.report import ResultRecord
from harness.report.history import SCHEMA_VERSION, History, HistoryError
from harness.report.regression import regressions
from harness.report.stats import mann_whitney_greater

NODE = "suites/test_media.py::test_share[127.0.0.1:41234-fire-hdx-7-2013]"


def _records(samples, serial="127.0.0.1:41234", metric="share_latency_ms", network=""):
    m = Measurement(metric, "ms", meta={"network": network} if network else {})
    for v in samples:
        m.add(float(v), uncertainty=2.0)
    return [
        ResultRecord.from_measurement(
            m,
            test=NODE.replace("41234", serial.rsplit(":", 1)[-1]),
            device=serial,
            model="KFTHWI",
            profile="fire-hdx-7-2013",
        )
    ]


def _latencies(rng, n=30, scale=1.0):
    return 120.0 * scale * rng.lognormal(0.0, 0.25, n)


def _history(tmp_path, runs=6, seed=7) -> tuple[History, np.random.Generator]:
    rng = np.random.default_rng(seed)
    h = History(tmp_path / "history.sqlite")
    for k in range(runs):  # twins get a new loopback port every run: still one series
        h.append_run(
            f"run-{k:02d}", _records(_latencies(rng), serial=f"127.0.0.1:{40000 + k}"), t=1000.0 + k
        )
    return h, rng


def test_u_test_exact_small_case_and_direction():
    r = mann_whitney_greater([4, 5, 6], [1, 2, 3])
    assert r.u == 9 and r.method == "exact" and r.p_value == pytest.approx(1 / 20)
    assert r.cliffs_delta == 1.0
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mann_whitney_greater([], [1.0])


def test_u_test_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for k in range(200):
        n1, n2 = int(rng.integers(1, 14)), int(rng.integers(1, 50))
        x, y = rng.normal(0.3, 1, n1), rng.normal(0, 1, n2)
        if k % 3 == 0:  # ties: the asymptotic path with tie correction
            x, y = np.round(x, 1), np.round(y, 1)
        ours = mann_whitney_greater(x, y)
        ref = stats.mannwhitneyu(x, y, alternative="greater")
        assert ours.u == pytest.approx(ref.statistic)
        assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_schema_versioned_and_a_newer_store_refused(tmp_path):
    h = History(tmp_path / "history.sqlite")
    assert h.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    h.close()
    db = sqlite3.connect(tmp_path / "history.sqlite")
    db.execute("PRAGMA user_version = 9")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="history schema 9 is newer"):
        History(tmp_path / "history.sqlite")


def test_planted_regression_flagged_unchanged_runs_not(tmp_path):
    h, rng = _history(tmp_path)
    h.append_run("run-planted", _records(_latencies(rng, scale=1.3)), t=2000.0)
    (first,) = regressions(h, "run-planted")  # flagged once: suspected
    assert first.suspected and not first.regression and first.verdict == "suspected"
    assert first.base_runs == 5 and first.p95_change > 0.15
    assert "suspected regression" in first.describe()
    h.append_run("run-planted-2", _records(_latencies(rng, scale=1.3)), t=2001.0)
    (planted,) = regressions(h, "run-planted-2")  # the next run confirms it
    assert planted.regression and not planted.suspected and planted.p95_change > 0.15
    assert planted.p_value < 0.01 and planted.cliffs_delta >= 0.33
    assert "REGRESSION" in planted.describe()
    # its baseline: the 5 unchanged runs before the first flagged one (not run-planted)
    runs = [json.loads(h.run_records(f"run-{k:02d}")[0]["samples"]) for k in range(1, 6)]
    assert planted.base_runs == 5
    assert planted.base_p95 == pytest.approx(np.median([np.percentile(r, 95) for r in runs]))
    # unchanged runs: 20 more from the same distribution, each against its own last 5
    false_alarms = suspected = 0
    for k in range(20):
        h.append_run(f"same-{k:02d}", _records(_latencies(rng)), t=3000.0 + k)
        (c,) = regressions(h, f"same-{k:02d}")
        false_alarms += c.regression
        suspected += c.suspected
    assert false_alarms == 0 and suspected == 0
    # an improvement is never a regression; another network profile is another series
    h.append_run("faster", _records(_latencies(rng, scale=0.7)), t=4000.0)
    assert not regressions(h, "faster")[0].regression
    h.append_run("edge", _records(_latencies(rng, scale=3), network="edge"), t=4001.0)
    assert regressions(h, "edge") == []  # no baseline for that series yet


def test_baseline_run_option_compares_with_one_run(tmp_path):
    h, rng = _history(tmp_path)
    h.append_run("slow-day", _records(_latencies(rng, scale=1.3)), t=2000.0)
    h.append_run("today", _records(_latencies(rng, scale=1.3)), t=2001.0)
    (vs_slow,) = regressions(h, "today", baseline_run="slow-day")
    assert vs_slow.base_runs == 1 and not vs_slow.regression
    (vs_old,) = regressions(h, "today", baseline_run="run-00")
    assert vs_old.regression
    # a run known to be slow kept out of the baseline: today against the 5 runs before it
    (vs_last5,) = regressions(h, "today", exclude_runs={"slow-day"})
    five = [json.loads(h.run_records(f"run-{k:02d}")[0]["samples"]) for k in range(1, 6)]
    p95s = [np.percentile(r, 95) for r in five]  # the baseline's p95: the median of its runs'
    assert vs_last5.base_runs == 5 and vs_last5.base_p95 == pytest.approx(np.median(p95s))
    assert vs_last5.suspected  # flagged, with no flagged run before it
    # without exclusion, slow-day was flagged (suspected): kept out of today's baseline, and
    # today, flagged as well, confirms it
    (c,) = regressions(h, "today")
    assert c.regression and c.base_p95 == vs_last5.base_p95
    with pytest.raises(HistoryError, match="no baseline run 'nope'"):
        regressions(h, "today", baseline_run="nope")


def test_hil_report_trend_builds_the_page_from_history_alone(tmp_path, capsys):
    h, rng = _history(tmp_path)
    h.append_run("run-suspect", _records(_latencies(rng, scale=1.3)), t=2000.0)
    h.append_run("run-planted", _records(_latencies(rng, scale=1.3)), t=2001.0)
    h.close()
    out = tmp_path / "trend.html"
    assert (
        main(["report", "trend", "--reports", str(tmp_path), "--last", "10", "-o", str(out)]) == 0
    )
    page = out.read_text()
    assert "id='hil-trend'" in page and "1 regression in run run-planted" in page
    assert page.count("hil-trend-row hil-regression") == 1
    assert main(["report", "trend", "--reports", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert "no history" in capsys.readouterr().err


def test_a_run_of_few_samples_says_too_few_instead_of_ok(tmp_path):
    from harness.report.regression import MIN_SAMPLES
    from harness.report.trend import trend_page

    rng = np.random.default_rng(5)
    h = History(tmp_path / "history.sqlite")
    for k in range(6):  # three samples per run, as the connect test takes
        h.append_run(f"run-{k}", _records(_latencies(rng, n=3)), t=1000.0 + k)
    (c,) = regressions(h, "run-5")
    assert c.n_today == 3 < MIN_SAMPLES and c.too_few_samples and not c.regression
    assert c.verdict == "too few samples" and "too few samples: 3 < 10" in c.describe()
    page = trend_page(h)
    assert "hil-trend-row hil-too-few" in page and "too few samples (3 &lt; 10)" in page
    assert "1 with too few samples to see one" in page and ">ok<" not in page
    h.append_run("big", _records(_latencies(rng, n=MIN_SAMPLES)), t=2000.0)
    assert regressions(h, "big")[0].verdict == "ok"
    h.close()


def test_worse_within_the_figures_uncertainty_is_said_not_flagged(tmp_path):
    def recs(values, unc):
        m = Measurement("connect_time_s", "s")
        for v in values:
            m.add(float(v), uncertainty=unc)
        return [ResultRecord.from_measurement(m, test=NODE, device="SER", model="M", profile="p")]

    def compared(unc: float, name: str):
        rng = np.random.default_rng(9)
        with History(tmp_path / f"{name}.sqlite") as h:
            for k in range(5):
                h.append_run(f"run-{k}", recs(2.0 * rng.lognormal(0, 0.05, 30), unc), t=1.0 + k)
            h.append_run("slow", recs(2.6 * rng.lognormal(0, 0.05, 30), unc), t=10.0)
            (c,) = regressions(h, "slow")
        return c

    c = compared(1.5, "coarse")  # +30 %, the figures good to +/- 1.5 s each
    assert not c.regression and c.within_uncertainty and c.verdict == "within uncertainty"
    assert c.uncertainty == pytest.approx(3.0) and "within the figures' uncertainty" in c.describe()
    precise = compared(0.01, "precise")  # the same shift, measured precisely: flagged
    assert precise.suspected and not precise.within_uncertainty


def test_the_history_grid_is_device_by_metric_with_the_flag_on_its_cell(tmp_path):
    """One grid row per device, one cell per metric: the cell of the planted series is flagged
    and links to that series' row; a cell of two series (two network profiles) says so."""
    import re

    from harness.report.trend import series_anchor, trend_page

    rng = np.random.default_rng(13)
    with History(tmp_path / "history.sqlite") as h:
        for k in range(7):
            recs = (
                _records(_latencies(rng, scale=1.3 if k >= 5 else 1.0))  # KFTHWI share: planted
                + _records(_latencies(rng), network="edge")  # KFTHWI share under edge: same
                + _records(_latencies(rng), metric="glass_to_glass_ms")
                + _records(_latencies(rng), serial="SERIAL-B")  # a real device, unchanged
            )
            h.append_run(f"run-{k}", recs, t=1000.0 + k)
        page = trend_page(h)
        comps = {c.series: c for c in regressions(h, "run-6")}
    grid = page[page.index("<table class='hil-trend-grid'>") :]
    grid = grid[: grid.index("</table>")]
    rows = re.findall(r"<tr class='hil-grid-row' data-device='([^']+)'>(.*?)</tr>", grid)
    assert [d for d, _ in rows] == ["KFTHWI/fire-hdx-7-2013", "SERIAL-B"]
    cells = {
        (d, m): (v, href)
        for d, row in rows
        for m, v, href in re.findall(
            r"data-metric='([^']+)' data-verdict='([^']+)'.*?href='#([^']+)'", row
        )
    }
    planted = next(s for s, c in comps.items() if c.regression)
    assert cells[("KFTHWI/fire-hdx-7-2013", "share_latency_ms")] == (
        "REGRESSION",
        series_anchor(planted),
    )
    assert f"<tr id='{series_anchor(planted)}' class='hil-trend-row hil-regression'" in page
    assert cells[("KFTHWI/fire-hdx-7-2013", "glass_to_glass_ms")][0] == "ok"
    assert cells[("SERIAL-B", "share_latency_ms")][0] == "ok"
    assert ("SERIAL-B", "glass_to_glass_ms") not in cells  # an empty cell: no series there
    assert "2 series, 1 flagged" in grid and sum(c.regression for c in comps.values()) == 1


def test_a_one_off_slow_run_is_suspected_then_left_out_and_cannot_hide_a_regression(tmp_path):
    """The quiet bench's run B: one unchanged run with a slow stretch (a third of its samples
    +50 %) was flagged, then its tail raised the pooled baseline p95 above the planted runs'.
    Now it is only suspected, the next (unchanged) run does not confirm it, it stays out of
    every later baseline, and the baseline's p95 is the median of its runs' own p95s."""
    rng = np.random.default_rng(21)
    with History(tmp_path / "history.sqlite") as h:
        for k in range(6):
            h.append_run(f"run-{k}", _records(_latencies(rng, n=60)), t=1000.0 + k)
        slow = _latencies(rng, n=60)
        slow[20:] *= 1.5
        h.append_run("one-off", _records(slow), t=1010.0)
        (c,) = regressions(h, "one-off")
        assert c.verdict == "suspected" and not c.regression
        h.append_run("after", _records(_latencies(rng, n=60)), t=1011.0)
        (c,) = regressions(h, "after")
        assert (
            c.verdict == "ok"
            and c.outliers_left_out == 1
            and "1 flagged run left out" in (c.describe())
        )
        for j in range(2):
            h.append_run(f"planted-{j}", _records(_latencies(rng, n=60, scale=1.3)), t=1020.0 + j)
        (c,) = regressions(h, "planted-1")
        assert c.regression and c.outliers_left_out == 2  # the one-off and planted-0, held
        kept = ["run-3", "run-4", "run-5", "after", "planted-0"]  # not the one-off
        p95s = [np.percentile(json.loads(h.run_records(r)[0]["samples"]), 95) for r in kept[:4]]
        assert c.base_runs == 5 and c.base_p95 != pytest.approx(np.median(p95s))
        base = [
            np.percentile(json.loads(h.run_records(r)[0]["samples"]), 95)
            for r in ["run-2", "run-3", "run-4", "run-5", "after"]
        ]
        assert c.base_p95 == pytest.approx(np.median(base))  # planted-0 held, one-off out
        # a lasting change: flagged against the runs before it for K runs in a row, then the
        # norm (its K runs enter the baseline together)
        verdicts = []
        for j in range(2, 7):
            h.append_run(f"planted-{j}", _records(_latencies(rng, n=60, scale=1.3)), t=1020.0 + j)
            (c,) = regressions(h, f"planted-{j}")
            verdicts.append(c.verdict)
        assert verdicts == ["REGRESSION"] * 3 + ["ok", "ok"], verdicts
