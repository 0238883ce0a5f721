"""A run stopped while a test is measuring keeps that test's samples (marked interrupted) in
results.jsonl and the report, and summary.json says the run was interrupted, also after a second
signal arrives while the first is handled (issue 14, items 4 and 8)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import pytest

from harness.report import read_records

WAIT_S = 90.0
INNER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def test_a_measures(measure, hil_device):
        m = measure("connect_time_s", "s")
        m.add(4.2)

    def test_b_measures_until_stopped(measure, hil_device):
        m = measure("share_latency_ms", "ms", network="poor-wifi")
        m.add(150.0, uncertainty=8.0)
        m.add(170.0, uncertainty=8.0)
        Path(os.environ["HIL_STARTED_FILE"]).write_text("measuring")
        time.sleep(120)
    """
)
# a second signal while pytest handles the first (as a second Ctrl-C does)
SECOND_SIGNAL_CONFTEST = textwrap.dedent(
    """
    import os, signal

    def pytest_keyboard_interrupt(excinfo):
        if not os.environ.get("HIL_SECOND_SENT"):
            os.environ["HIL_SECOND_SENT"] = "1"
            os.kill(os.getpid(), signal.SIGTERM)
    """
)


@pytest.fixture
def stop_mid_test(tmp_path: Path, inner_run, wait_until, run_dir):
    """stop_mid_test(sig, extra=()) -> (exit code, output, run dir): the inner run gets `sig`
    while test_b measures (inner_run stops it at teardown if anything fails before)."""

    def stop(sig: signal.Signals, extra: tuple[str, ...] = ()) -> tuple[int, str, Path]:
        (tmp_path / "test_stop.py").write_text(INNER)
        started = tmp_path / "started"
        reports = tmp_path / "reports"
        args = ["--hil-reports", str(reports), "--junitxml", str(tmp_path / "junit.xml")]
        proc = inner_run(
            [*args, *extra, "test_stop.py"], env={**os.environ, "HIL_STARTED_FILE": str(started)}
        ).proc
        wait_until(started.exists, WAIT_S, "test_b measuring")
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=WAIT_S)
        return proc.returncode, out.decode(errors="replace"), run_dir(reports)

    return stop


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_stopped_run_keeps_the_running_tests_samples_marked_interrupted(
    tmp_path, sig, stop_mid_test
):
    code, out, run = stop_mid_test(sig)
    assert code == pytest.ExitCode.INTERRUPTED, out[-2000:]
    records = {r.metric: r for r in read_records(run / "results.jsonl")}
    assert set(records) == {"connect_time_s", "share_latency_ms"}, out[-2000:]
    assert records["connect_time_s"].samples == [4.2] and not records["connect_time_s"].interrupted
    cut = records["share_latency_ms"]
    assert cut.samples == [150.0, 170.0] and cut.interrupted and cut.uncertainty == 8.0
    assert "test_b_measures_until_stopped" in cut.test
    assert cut.meta["network"] == "poor-wifi" and cut.mark == "RECORDED"
    html = (run / "report.html").read_text()
    assert "test_b_measures_until_stopped" in html and f"stopped by {sig.name}" in html
    summary = json.loads((run / "summary.json").read_text())
    assert summary["exitstatus"] == pytest.ExitCode.INTERRUPTED
    assert summary["interrupted_by"] == sig.name and summary["counts"]["interrupted"] == 1
    assert "share_latency_ms" in out and "[interrupted]" in out
    # JUnit XML: the finished test's measurement as flat properties CI servers show
    junit = (tmp_path / "junit.xml").read_text()
    assert '<property name="hil.connect_time_s.p95" value="4.2"' in junit
    assert '<property name="hil.connect_time_s.verdict" value="RECORDED"' in junit
    assert '<property name="hil.model" value="sdk_gphone64_x86_64"' in junit


def test_with_xdist_the_workers_running_test_hands_over_its_samples(stop_mid_test):
    """SIGTERM reaches only the controller: it asks the worker (SIGINT), which spills the
    running test's samples to a file the controller merges into results.jsonl and the report."""
    code, out, run = stop_mid_test(signal.SIGTERM, ("-n", "2"))
    assert code == pytest.ExitCode.INTERRUPTED, out[-2000:]
    records = {r.metric: r for r in read_records(run / "results.jsonl")}
    assert set(records) == {"connect_time_s", "share_latency_ms"}, out[-3000:]
    cut = records["share_latency_ms"]
    assert cut.samples == [150.0, 170.0] and cut.interrupted
    assert "stopped by SIGTERM" in (run / "report.html").read_text()
    assert json.loads((run / "summary.json").read_text())["counts"]["interrupted"] == 1


def test_second_signal_during_the_first_still_reports_interrupted(tmp_path, stop_mid_test):
    (tmp_path / "conftest.py").write_text(SECOND_SIGNAL_CONFTEST)
    code, out, run = stop_mid_test(signal.SIGTERM)
    assert code != 0, out[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["exitstatus"] == pytest.ExitCode.INTERRUPTED, out[-2000:]
