"""The regression detector on real runs: its false alarms over 20 unchanged runs of one test
against one twin, and whether it flags a planted +30 % p95 latency.

    .venv/bin/python benchmarks/regression_bench.py [--metric connect|share] [--runs 20]
        [--planted 3] [--sessions 3] [--window-s 6] [--answer-s 1.0]
        [--profile android-emulator-api34] [--budget-s 720] [--reports DIR] [--json OUT]

One adb server and one twin, started here and stopped (by PID) at the end. Each run is a real
pytest against that twin (`--device`), a run directory of its own in one reports dir; the
plugin appends it to reports/history.sqlite as any run does. After each run the detector
(harness.report.regression.regressions) judges it as the plugin does: against its baseline (the
last 5 comparable runs of the same series), "suspected" when flagged once, REGRESSION when the
next run confirms it. A REGRESSION on an unchanged run is a false alarm (a suspected one is
counted apart). Then a real slowdown of what the harness measures is planted, 30 % of the last
baseline's p95, and the next `--planted` runs are judged in turn: the first is expected
suspected, the next ones flagged. Bounded: each pytest run RUN_TIMEOUT_S, the whole
--budget-s (runs not started past it are reported as such).

`--metric connect` (default): suites/test_connect.py::test_connect_time_within_budget (3
sessions: connect time and queue wait); the plant: the twin's support backend answers later
(control op `backend answer_s`). `--sessions N` (other than 3) runs the same measurement with N
sessions per run instead (a test file written here, the suite's connect loop with the same
fixtures), to see what more samples per run buy.

`--metric share`: the share latency of suites/test_media.py (tablet -> agent, the Timecode
app's codes timed on arrival; uncertainty 1 ms), measured alone over `--window-s` of one live
session (a test file written here: the suite's share test also scores SSIM, SSIMULACRA2 and
legibility, which this bench does not need); the plant: the twin's media peer holds each share
frame (control op `media share_hold_ms`, logged in the twin's truth as the frames' hold_ms).
Each run's record carries its conditions (harness.report.conditions: the host's load average,
CPU count and CPU pressure, and the share's health: frames received over the twin's nominal
15/s x the window), printed with each run's verdict; the detector compares only runs of
comparable conditions and says "not comparable: why" otherwise (docs/report.md).

The quiet re-run (23 runs of about 20 s on an idle 2-core host, within 15 min; 4 s of share
give about 60 samples per run, past the 30 at which the simulated detector sees a +30 % p95 in
8 runs of 10 even at log-sd 0.25, and the detector needs 3 comparable earlier runs):

    .venv/bin/python benchmarks/regression_bench.py --metric share --runs 20 --planted 3 \
        --window-s 4 --budget-s 900 --json regression-share.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.farm import AdbServer, TwinProcess  # noqa: E402
from harness.report.conditions import Conditions  # noqa: E402
from harness.report.history import HISTORY_FILE, History  # noqa: E402
from harness.report.regression import BASELINE_RUNS, baseline_p95, regressions  # noqa: E402
from harness.twin.rtc import SHARE_FPS  # noqa: E402  the twin's nominal share rate

TEST = "suites/test_connect.py::test_connect_time_within_budget"
METRIC = "connect_time_s"
SHARE_METRIC = "share_latency_ms"
DEFAULT_WINDOW_S = 6.0  # suites/test_media.py's SHARE_WINDOW_S
RUN_TIMEOUT_S = 120.0
PLANT = 0.30  # +30 % of the baseline's p95
DEFAULT_ANSWER_S = 1.0  # the twin backend's default (hil twin --answer-s)
SUITE_SESSIONS = 3  # suites/test_connect.py's SESSIONS_PER_DEVICE
SESSIONS_TEST = """
import pytest

@pytest.mark.requires("eligible")
@pytest.mark.budget("connect_time_s")
def test_connect_time_within_budget(session_driver, measure):
    connect = measure("connect_time_s", "s", source="host clock, polled frames")
    queue = measure("queue_wait_s", "s")
    for i in range(SESSIONS):
        r = session_driver.connect(timeout_s=60)
        connect.add(r.connect_time_s, uncertainty=r.uncertainty_s, session=i)
        if r.queue_wait_s is not None:
            queue.add(r.queue_wait_s, uncertainty=r.queue_uncertainty_s or 0.0, session=i)
        session_driver.end()
    measure.check(queue)
    measure.check(connect)
"""
SHARE_HOLD_ENV = "HIL_BENCH_SHARE_HOLD_MS"  # the share test's plant, read by the test file
SHARE_TEST = """
import os
import time

import pytest

from harness.farm.control import TwinControl
from harness.report.conditions import rate_health
from harness.session.media import TIMECODE_APP, share_latency

@pytest.mark.requires("eligible")
@pytest.mark.budget("share_latency_ms")
def test_screen_share_latency(device, hil_device, ui, live_session, agent_bot, measure):
    # the plant (0 in unchanged runs): the twin's media peer holds each share frame
    hold_ms = float(os.environ.get("HOLD_ENV", "0"))
    TwinControl(hil_device.twin_control, hil_device.serial).media(share_hold_ms=hold_ms)
    h, w = device.screenshot().shape[:2]
    ui.tap_on(text="Timecode")
    ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=10)
    time.sleep(1.0)  # the share shows the app
    t0 = time.monotonic()
    time.sleep(WINDOW_S)
    frames = [f for f in list(agent_bot.session.share) if f.t_arrival >= t0]
    m = share_latency(frames, (w, h)).measurement
    # the measurement's health: share frames received against the twin's nominal rate
    m.meta.update(rate_health(len(frames), NOMINAL_FPS, WINDOW_S, "share frames"))
    measure.measurements.append(m)
    measure.check(m)
"""


def _pytest(
    target: list[str], reports: Path, test: str = TEST, env: dict[str, str] | None = None
) -> tuple[str, float, str]:
    """One run of the test on `target` (pytest options naming the device or twin): (run id,
    wall s, pytest's last line)."""
    before = {p.name for p in reports.iterdir()} if reports.exists() else set()
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", test, *target]
        + ["--hil-reports", str(reports), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    wall = time.perf_counter() - t
    new = sorted(p.name for p in reports.iterdir() if p.is_dir() and p.name not in before)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    if len(new) != 1:
        raise RuntimeError(f"pytest left {len(new)} run directories: {tail}")
    return new[0], wall, tail


def _compare(reports: Path, run_id: str, metric: str = METRIC) -> dict:
    """The detector's verdicts of one stored run (per metric) and the figures of `metric`."""
    with History(reports / HISTORY_FILE) as h:
        comps = regressions(h, run_id)
        rows = [r for r in h.run_records(run_id) if r["metric"] == metric]
    samples = json.loads(rows[0]["samples"]) if rows else []
    return {
        "run": run_id,
        "samples": [round(v, 3) for v in samples],
        "n": len(samples),
        "p50": round(float(np.percentile(samples, 50)), 3) if samples else None,
        "p95": round(float(np.percentile(samples, 95)), 3) if samples else None,
        "uncertainty": rows[0]["uncertainty"] if rows else None,
        "conditions": Conditions.from_row(rows[0]).describe() if rows else "",
        "load_1min": rows[0]["load_1min"] if rows else None,
        "health": rows[0]["health"] if rows else None,
        "compared": {
            c.metric: {
                "flagged": c.regression,
                "suspected": c.suspected,
                "verdict": c.verdict,
                "why_not_comparable": c.not_comparable,
                "uncertainty": round(c.uncertainty, 3),
                "p": round(c.p_value, 4),
                "delta": round(c.cliffs_delta, 2),
                "p95_change": round(c.p95_change, 3),
                "base_runs": c.base_runs,
            }
            for c in comps
        },
    }


def _baseline_p95(reports: Path, run_id: str, metric: str = METRIC) -> float:
    """The p95 (median of the runs' p95s) of the last BASELINE_RUNS runs up to `run_id` that were
    measured under conditions comparable with its own (the detector's baseline of a run like
    it; all of the last BASELINE_RUNS when none is)."""
    with History(reports / HISTORY_FILE) as h:
        row = next(r for r in h.run_records(run_id) if r["metric"] == metric)
        before = h.series_rows(row["series"])
    like = Conditions.from_row(row)
    # the plant is sized on the healthy runs (a starved one is never a baseline)
    healthy = [r for r in before if not Conditions.from_row(r).starved()]
    ok = [r for r in healthy if like.starved() or like.incomparable(Conditions.from_row(r)) is None]
    before = ok or healthy or before
    runs = list(dict.fromkeys(r["run_id"] for r in before))[-BASELINE_RUNS:]
    return baseline_p95([json.loads(r["samples"]) for r in before if r["run_id"] in runs])


SHOT_WIDTH_PX = 1600
SHOT_MAX_HEIGHT_PX = 2600
SHOT_TIMEOUT_S = 60.0


def _trim(png: bytes, margin_px: int = 16) -> bytes:
    """The screenshot without the blank window below the page."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    rows = np.flatnonzero((img < 250).any(axis=(1, 2)))
    if rows.size:
        img = img[: min(img.shape[0], int(rows[-1]) + margin_px)]
    return cv2.imencode(".png", img)[1].tobytes()


def screenshots(reports: Path, out: Path, run: str | None = None) -> None:
    """report.png (report.html of `run`, default the newest, from its top: the overview first)
    and trend.png (`hil report trend` of `reports`, its newest run compared), by headless
    Chromium and the Debian chromedriver (stopped by PID). Without them: one line saying how
    to install them."""
    from harness.cli import main as hil
    from harness.report.chromium import INSTALL_HINT, executables, headless_chromium

    if executables() is None:
        print(f"screenshots skipped: {INSTALL_HINT}")
        return
    from selenium.webdriver.support.ui import WebDriverWait

    out.mkdir(parents=True, exist_ok=True)
    trend = reports / "trend.html"
    if hil(["report", "trend", "--reports", str(reports), "-o", str(trend)]) != 0:
        raise RuntimeError(f"hil report trend failed on {reports}")
    runs = sorted(p for p in reports.iterdir() if (p / "report.html").exists())
    shot = reports / run if run else runs[-1]
    with (
        tempfile.TemporaryDirectory(prefix="hil-shot-") as profile,
        headless_chromium(
            Path(profile), window=(SHOT_WIDTH_PX, 1000), page_timeout_s=SHOT_TIMEOUT_S
        ) as driver,
    ):
        for page, name in ((shot / "report.html", "report.png"), (trend, "trend.png")):
            driver.get(page.as_uri())
            WebDriverWait(driver, SHOT_TIMEOUT_S).until(
                lambda d: d.execute_script(
                    "return [...document.images].every(i => !i.getAttribute('src') || i.complete)"
                )
            )
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(SHOT_WIDTH_PX, min(int(height) + 40, SHOT_MAX_HEIGHT_PX))
            driver.execute_script("window.scrollTo(0, 0)")
            (out / name).write_bytes(_trim(driver.get_screenshot_as_png()))
            print(f"{out / name}: {page}")


def main() -> int:  # noqa: C901 -- one linear procedure: unchanged runs, plant, planted runs
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--metric", choices=("connect", "share"), default="connect", help="what is planted"
    )
    ap.add_argument("--runs", type=int, default=20, help="unchanged runs")
    ap.add_argument("--planted", type=int, default=3, help="runs after the planted slowdown")
    ap.add_argument("--sessions", type=int, default=SUITE_SESSIONS, help="samples per run")
    ap.add_argument(
        "--window-s", type=float, default=DEFAULT_WINDOW_S, help="share watched per run (share)"
    )
    ap.add_argument(
        "--answer-s", type=float, default=DEFAULT_ANSWER_S, help="the backend's answer time"
    )
    ap.add_argument("--profile", default="android-emulator-api34")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=720.0,
        help="no run starts past this; the plant comes early enough for the planted runs to fit",
    )
    ap.add_argument("--reports", default=None, metavar="DIR", help="keep the runs here")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--screenshots",
        default=None,
        metavar="DIR",
        help="then screenshot the last run's report.html and the trend.html of the reports "
        "(headless Chromium) into DIR/report.png and DIR/trend.png",
    )
    args = ap.parse_args()
    # SIGTERM ends the bench through its finally blocks: the running pytest is killed, the
    # twin and the adb server stopped by their PIDs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    metric = SHARE_METRIC if args.metric == "share" else METRIC
    t0 = time.monotonic()
    unchanged: list[dict] = []
    planted: list[dict] = []
    skipped = 0
    plant_info: dict = {}
    with tempfile.TemporaryDirectory(prefix="hil-regression-bench-") as tmp:
        tmp_path = Path(tmp)
        reports = Path(args.reports) if args.reports else tmp_path / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        with AdbServer(home=tmp_path / "adb-home") as adb:
            # connect: one twin for every run (the plant is its backend's answer time); share:
            # each run starts its own (--twin) and the test file applies the plant from env
            tp = None
            env: dict[str, str] = {}
            try:
                test = TEST
                if args.metric == "share":
                    target = ["--twin", args.profile, "--adb-port", str(adb.port)]
                    test_file = tmp_path / "test_share_latency.py"
                    test_file.write_text(
                        SHARE_TEST.replace("WINDOW_S", repr(args.window_s))
                        .replace("HOLD_ENV", SHARE_HOLD_ENV)
                        .replace("NOMINAL_FPS", repr(SHARE_FPS))
                    )
                    test = str(test_file)
                else:
                    tp = TwinProcess(args.profile, adb=adb, state_dir=tmp_path / "twin")
                    tp.start()
                    target = ["--device", f"127.0.0.1:{tp.port}", "--adb-port", str(adb.port)]
                    tp.client().backend(answer_s=args.answer_s)
                    if args.sessions != SUITE_SESSIONS:
                        test_file = tmp_path / "test_connect_sessions.py"
                        test_file.write_text(SESSIONS_TEST.replace("SESSIONS", str(args.sessions)))
                        test = str(test_file)
                plant_at = args.runs
                walls: list[float] = []
                for k in range(args.runs + args.planted):
                    if k >= plant_at + args.planted:
                        break  # planted early (below): the planted runs are done
                    spent = time.monotonic() - t0
                    if spent > args.budget_s:
                        skipped = plant_at + args.planted - k
                        print(f"time budget {args.budget_s:g} s spent: {skipped} runs not started")
                        break
                    # the budget keeps room for the planted runs: plant early rather than lose
                    # them, when this unchanged run and the planted ones would not fit (at
                    # least BASELINE_RUNS + 1 unchanged runs first, for one comparison)
                    if (
                        k < plant_at
                        and k > BASELINE_RUNS
                        and walls
                        and spent + (1 + args.planted) * max(walls[-3:]) > args.budget_s
                    ):
                        print(
                            f"time budget: planting after {k} unchanged runs (not {args.runs}): "
                            f"{args.planted} planted runs of up to {max(walls[-3:]):.0f} s must "
                            "fit"
                        )
                        plant_at = k
                    if k == plant_at:
                        base_p95 = _baseline_p95(reports, unchanged[-1]["run"], metric)
                        if args.metric == "share":
                            plant = {"share_hold_ms": round(PLANT * base_p95, 1)}
                            env[SHARE_HOLD_ENV] = str(plant["share_hold_ms"])
                            print(
                                f"planted: the twin's media peer holds each share frame "
                                f"{plant['share_hold_ms']:g} ms (+{PLANT:.0%} of the baseline's "
                                f"share-latency p95 {base_p95:.1f} ms)"
                            )
                        else:
                            answer_s = args.answer_s + PLANT * base_p95
                            plant = {"answer_s": round(answer_s, 3)}
                            assert tp is not None
                            tp.client().backend(answer_s=answer_s)
                            print(
                                f"planted: backend answer_s {args.answer_s:g} -> {answer_s:.3f} s "
                                f"(+{PLANT:.0%} of the baseline's connect-time p95 "
                                f"{base_p95:.3f} s)"
                            )
                        plant_info = {"baseline_p95": round(base_p95, 3), **plant}
                    run_id, wall, tail = _pytest(target, reports, test, env)
                    walls.append(wall)
                    # each run judged as the plugin judges it: the first planted run suspected,
                    # the next confirms it (harness.report.regression)
                    row = _compare(reports, run_id, metric) | {
                        "wall_s": round(wall, 1),
                        "tail": tail,
                        "load_average_1min": round(os.getloadavg()[0], 1),
                    }
                    (planted if k >= plant_at else unchanged).append(row)
                    print(
                        f"{'planted' if k >= plant_at else 'unchanged'} run {k + 1}: "
                        f"{metric} n={row['n']} p50={row['p50']} p95={row['p95']}, {tail}; "
                        f"conditions: {row['conditions']}; "
                        "detector: "
                        + (
                            ", ".join(
                                f"{m} {c['verdict']}"
                                + (
                                    f" [{c['why_not_comparable']}]"
                                    if c["why_not_comparable"]
                                    else ""
                                )
                                + f" (p={c['p']}, unc={c['uncertainty']}, "
                                f"delta={c['delta']}, p95 {c['p95_change']:+.0%}, "
                                f"{c['base_runs']} baseline runs)"
                                for m, c in row["compared"].items()
                            )
                            or "no baseline yet"
                        )
                        + f" [{wall:.0f} s]",
                        flush=True,
                    )
            finally:
                if tp is not None:
                    tp.stop()
    compared = [r for r in unchanged if r["compared"]]
    false_alarms = sum(any(c["flagged"] for c in r["compared"].values()) for r in compared)
    series_checks = sum(len(r["compared"]) for r in compared)
    series_alarms = sum(c["flagged"] for r in compared for c in r["compared"].values())
    suspected = sum(any(c["suspected"] for c in r["compared"].values()) for r in compared)
    detected = sum(r["compared"].get(metric, {}).get("flagged", False) for r in planted)
    seen = sum(
        any(r["compared"].get(metric, {}).get(k, False) for k in ("flagged", "suspected"))
        for r in planted
    )
    verdicts: dict[str, int] = {}
    for r in planted:
        v = r["compared"].get(metric, {}).get("verdict", "no baseline")
        verdicts[v] = verdicts.get(v, 0) + 1
    unchanged_verdicts: dict[str, int] = {}
    for r in compared:
        v = r["compared"].get(metric, {}).get("verdict", "no baseline")
        unchanged_verdicts[v] = unchanged_verdicts.get(v, 0) + 1
    loads = [r["load_1min"] for r in unchanged + planted if r["load_1min"] is not None]
    healths = [r["health"] for r in unchanged + planted if r["health"] is not None]
    summary = {
        "unchanged_runs": len(unchanged),
        "unchanged_runs_compared": len(compared),
        "false_alarm_runs": false_alarms,
        "suspected_unchanged_runs": suspected,
        "series_compared": series_checks,
        "series_false_alarms": series_alarms,
        "planted_runs": len(planted),
        "planted_flagged": detected,
        "planted_flagged_or_suspected": seen,
        "planted_verdicts": verdicts,
        "unchanged_verdicts": unchanged_verdicts,
        "load_1min_range": [min(loads), max(loads)] if loads else None,
        "health_range": [min(healths), max(healths)] if healths else None,
        "runs_not_started": skipped,
        "metric": metric,
        "plant": plant_info,
        "sessions_per_run": args.sessions if args.metric == "connect" else None,
        "window_s": args.window_s if args.metric == "share" else None,
        "load_average_1min_end": round(os.getloadavg()[0], 1),
        "total_s": round(time.monotonic() - t0, 1),
    }
    print(
        f"\nfalse alarms: {false_alarms} of {len(compared)} unchanged runs compared, "
        f"{suspected} suspected ({series_alarms} of {series_checks} series comparisons; "
        f"{metric} verdicts {unchanged_verdicts}); planted +{PLANT:.0%} p95: {metric} flagged "
        f"in {detected} of {len(planted)} runs, flagged or suspected in {seen} (verdicts "
        f"{verdicts}); {summary['total_s']:.0f} s, host load "
        f"average (1 min, at each run's end) {summary['load_1min_range']} on {os.cpu_count()} "
        f"CPUs" + (f", health {summary['health_range']}" if healths else "")
    )
    if args.screenshots and args.reports:
        flagged = [r["run"] for r in planted if r["compared"].get(metric, {}).get("flagged")]
        screenshots(Path(args.reports), Path(args.screenshots), flagged[0] if flagged else None)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "unchanged": unchanged, "planted": planted}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
