"""The regression detector on real runs: its false alarms over 20 unchanged runs of the connect
test against one twin, and whether it flags a planted +30 % connect-time p95.

    .venv/bin/python benchmarks/regression_bench.py [--runs 20] [--planted 3] [--sessions 3]
        [--answer-s 1.0] [--profile android-emulator-api34] [--budget-s 720] [--reports DIR]
        [--json OUT]

One adb server and one twin, started here and stopped (by PID) at the end. Each run is a real
pytest of suites/test_connect.py::test_connect_time_within_budget (3 sessions: connect time and
queue wait) against that twin (`--device`), a run directory of its own in one reports dir; the
plugin appends it to reports/history.sqlite as any run does. `--sessions N` (other than 3) runs
the same measurement with N sessions per run instead (a test file written here, the suite's
connect loop with the same fixtures), to see what more samples per run buy. After each run the detector
(harness.report.history.regressions) compares it with its baseline (the last 5 runs of the same
series): a flag on an unchanged run is a false alarm. Then the twin's support backend is made to
answer later by 30 % of the connect-time p95 of the last baseline (through the twin's control
socket: `backend answer_s`), a real slowdown of what the harness measures, and the next
`--planted` runs are compared with the unchanged runs before them. Bounded: each pytest run
RUN_TIMEOUT_S, the whole --budget-s (runs not started past it are reported as such).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.farm import AdbServer, TwinProcess  # noqa: E402
from harness.report.history import (  # noqa: E402
    BASELINE_RUNS,
    HISTORY_FILE,
    History,
    regressions,
)

TEST = "suites/test_connect.py::test_connect_time_within_budget"
METRIC = "connect_time_s"
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


def _pytest(serial: str, adb_port: int, reports: Path, test: str = TEST) -> tuple[str, float, str]:
    """One run of the connect test: (run id, wall s, pytest's last line)."""
    before = {p.name for p in reports.iterdir()} if reports.exists() else set()
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", test, "--device", serial, "--adb-port", str(adb_port)]
        + ["--hil-reports", str(reports), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
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


def _compare(reports: Path, run_id: str) -> dict:
    """The detector's verdicts of one stored run (per metric) and its connect-time figures."""
    with History(reports / HISTORY_FILE) as h:
        comps = regressions(h, run_id)
        rows = [r for r in h.run_records(run_id) if r["metric"] == METRIC]
    samples = json.loads(rows[0]["samples"]) if rows else []
    return {
        "run": run_id,
        "connect_s": [round(v, 3) for v in samples],
        "uncertainty_s": rows[0]["uncertainty"] if rows else None,
        "compared": {
            c.metric: {
                "flagged": c.regression,
                "verdict": c.verdict,
                "uncertainty": round(c.uncertainty, 3),
                "p": round(c.p_value, 4),
                "delta": round(c.cliffs_delta, 2),
                "p95_change": round(c.p95_change, 3),
                "base_runs": c.base_runs,
            }
            for c in comps
        },
    }


def _baseline_p95(reports: Path, run_id: str) -> float:
    """p95 of the connect-time samples of the last BASELINE_RUNS runs up to `run_id`."""
    with History(reports / HISTORY_FILE) as h:
        row = next(r for r in h.run_records(run_id) if r["metric"] == METRIC)
        before = h.series_rows(row["series"])
    runs = list(dict.fromkeys(r["run_id"] for r in before))[-BASELINE_RUNS:]
    values = [v for r in before if r["run_id"] in runs for v in json.loads(r["samples"])]
    return float(np.percentile(values, 95))


def main() -> int:  # noqa: C901 -- one linear procedure: unchanged runs, plant, planted runs
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="unchanged runs")
    ap.add_argument("--planted", type=int, default=3, help="runs after the planted slowdown")
    ap.add_argument("--sessions", type=int, default=SUITE_SESSIONS, help="samples per run")
    ap.add_argument(
        "--answer-s", type=float, default=DEFAULT_ANSWER_S, help="the backend's answer time"
    )
    ap.add_argument("--profile", default="android-emulator-api34")
    ap.add_argument("--budget-s", type=float, default=720.0, help="no run starts past this")
    ap.add_argument("--reports", default=None, metavar="DIR", help="keep the runs here")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    t0 = time.monotonic()
    unchanged: list[dict] = []
    planted: list[dict] = []
    skipped = 0
    with tempfile.TemporaryDirectory(prefix="hil-regression-bench-") as tmp:
        tmp_path = Path(tmp)
        reports = Path(args.reports) if args.reports else tmp_path / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        with AdbServer(home=tmp_path / "adb-home") as adb:
            tp = TwinProcess(args.profile, adb=adb, state_dir=tmp_path / "twin")
            try:
                tp.start()
                serial = f"127.0.0.1:{tp.port}"
                tp.client().backend(answer_s=args.answer_s)
                test = TEST
                if args.sessions != SUITE_SESSIONS:
                    test_file = tmp_path / "test_connect_sessions.py"
                    test_file.write_text(SESSIONS_TEST.replace("SESSIONS", str(args.sessions)))
                    test = str(test_file)
                plant_at = args.runs
                for k in range(args.runs + args.planted):
                    if time.monotonic() - t0 > args.budget_s:
                        skipped = args.runs + args.planted - k
                        print(f"time budget {args.budget_s:g} s spent: {skipped} runs not started")
                        break
                    if k == plant_at:
                        base_p95 = _baseline_p95(reports, unchanged[-1]["run"])
                        answer_s = args.answer_s + PLANT * base_p95
                        tp.client().backend(answer_s=answer_s)
                        print(
                            f"planted: backend answer_s {args.answer_s:g} -> {answer_s:.3f} s "
                            f"(+{PLANT:.0%} of the baseline's connect-time p95 {base_p95:.3f} s)"
                        )
                    run_id, wall, tail = _pytest(serial, adb.port, reports, test)
                    row = _compare(reports, run_id) | {"wall_s": round(wall, 1), "tail": tail}
                    (planted if k >= plant_at else unchanged).append(row)
                    print(
                        f"{'planted' if k >= plant_at else 'unchanged'} run {k + 1}: "
                        f"connect {row['connect_s']} s, {tail}; detector: "
                        + (
                            ", ".join(
                                f"{m} {c['verdict']} (p={c['p']}, unc={c['uncertainty']}, "
                                f"delta={c['delta']}, p95 {c['p95_change']:+.0%})"
                                for m, c in row["compared"].items()
                            )
                            or "no baseline yet"
                        )
                        + f" [{wall:.0f} s]",
                        flush=True,
                    )
            finally:
                tp.stop()
    compared = [r for r in unchanged if r["compared"]]
    false_alarms = sum(any(c["flagged"] for c in r["compared"].values()) for r in compared)
    series_checks = sum(len(r["compared"]) for r in compared)
    series_alarms = sum(c["flagged"] for r in compared for c in r["compared"].values())
    detected = sum(r["compared"].get(METRIC, {}).get("flagged", False) for r in planted)
    verdicts: dict[str, int] = {}
    for r in planted:
        v = r["compared"].get(METRIC, {}).get("verdict", "no baseline")
        verdicts[v] = verdicts.get(v, 0) + 1
    summary = {
        "unchanged_runs": len(unchanged),
        "unchanged_runs_compared": len(compared),
        "false_alarm_runs": false_alarms,
        "series_compared": series_checks,
        "series_false_alarms": series_alarms,
        "planted_runs": len(planted),
        "planted_flagged": detected,
        "planted_verdicts": verdicts,
        "runs_not_started": skipped,
        "sessions_per_run": args.sessions,
        "load_average_1min_end": round(os.getloadavg()[0], 1),
        "total_s": round(time.monotonic() - t0, 1),
    }
    print(
        f"\nfalse alarms: {false_alarms} of {len(compared)} unchanged runs compared "
        f"({series_alarms} of {series_checks} series comparisons); planted +{PLANT:.0%} p95: "
        f"{METRIC} flagged in {detected} of {len(planted)} runs (verdicts {verdicts}); "
        f"{summary['total_s']:.0f} s, load average {summary['load_average_1min_end']}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "unchanged": unchanged, "planted": planted}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
