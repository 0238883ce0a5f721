"""A run that is stopped from outside: SIGTERM/SIGHUP end it like Ctrl-C (report, summary,
results, every process stopped); SIGKILL runs no cleanup, so the report rewritten after every
test and the reaper (harness.farm.reaper) keep the results and stop the twins and adb server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.farm.reaper import Reaper, alive, reap, start_time
from harness.report import read_results

WAIT_S = 90.0
INNER = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path
    from harness.plugin.state import PLUGIN_STATE

    def test_a_measures(measure, hil_device):
        m = measure("connect_time_s", "s")
        m.add(4.2)

    def test_b_runs_until_stopped(request, hil_device):
        run = request.config.stash[PLUGIN_STATE].run
        pids = [tp.proc.pid for tp in run.twins] + [run.adb_server.proc.pid, run.reaper.proc.pid]
        Path(os.environ["HIL_PIDS_FILE"]).write_text(json.dumps(pids))
        time.sleep(120)
    """
)


def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"{what} not within {timeout_s:g} s"
        time.sleep(0.1)


def _run_until_b_starts(tmp_path: Path, preexec_fn):
    (tmp_path / "test_stop.py").write_text(INNER)
    pids_file = tmp_path / "pids.json"
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--twin",
            "android-emulator-api34",
            "--hil-reports",
            str(reports),
            "-p",
            "no:cacheprovider",
            "test_stop.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "HIL_PIDS_FILE": str(pids_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
    try:
        _wait(lambda: pids_file.exists() and pids_file.read_text(), WAIT_S, "test_b")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise
    return proc, json.loads(pids_file.read_text()), reports


def _run_dir(reports: Path) -> Path:
    runs = [p for p in reports.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_ends_the_run_like_ctrl_c(tmp_path, sig, default_signals):
    proc, pids, reports = _run_until_b_starts(tmp_path, default_signals)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=WAIT_S)
    text = out.decode(errors="replace")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text[-2000:]
    assert f"stopped by {sig.name}" in text
    _wait(
        lambda: not any(alive(p, None) for p in pids), 10.0, "twin, adb server and reaper stopped"
    )
    run = _run_dir(reports)
    assert [r["samples"] for r in read_results(run / "results.jsonl")] == [[4.2]]
    assert "test_a_measures" in (run / "report.html").read_text()
    assert (run / "summary.json").is_file()


def test_sigkill_leaves_the_report_and_the_reaper_stops_every_process(tmp_path, default_signals):
    proc, pids, reports = _run_until_b_starts(tmp_path, default_signals)
    *children, reaper_pid = pids
    os.kill(proc.pid, signal.SIGKILL)  # no handler, no atexit, no finally
    proc.communicate(timeout=WAIT_S)
    _wait(
        lambda: not any(alive(p, None) for p in children),
        15.0,
        "the reaper stopping twin and adb server",
    )
    _wait(lambda: not alive(reaper_pid, None), 5.0, "the reaper exiting")
    run = _run_dir(reports)
    assert [r["samples"] for r in read_results(run / "results.jsonl")] == [[4.2]]
    assert "test_a_measures" in (run / "report.html").read_text()  # rewritten after test_a


def test_reaper_spares_a_reused_pid_and_a_run_that_cleaned_up(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    try:
        # a ledger entry whose start time does not match is a reused PID: never signalled
        assert reap([(child.pid, (start_time(child.pid) or 0) + 1)], grace_s=0.1) == []
        assert alive(child.pid, None)
        r = Reaper(tmp_path / "ledger").start()
        r.watch(child.pid)
        assert (tmp_path / "ledger").read_text().split()[0] == str(child.pid)
        r.stop()  # the run cleaned up itself: ledger gone, reaper gone, the child untouched
        assert not (tmp_path / "ledger").exists() and r.proc is None
        assert alive(child.pid, None)
        assert reap([(child.pid, start_time(child.pid))], grace_s=2.0) == [child.pid]
        _wait(lambda: child.poll() is not None, 5.0, "the reaped child exiting")
    finally:
        child.kill()
        child.wait(5)
