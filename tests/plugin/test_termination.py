"""A run that is stopped from outside: SIGTERM/SIGHUP end it like Ctrl-C (report, summary,
results, every process stopped); SIGKILL runs no cleanup, so the report rewritten after every
test and the reaper (harness.farm.reaper) keep the results and stop the twins and adb server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
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


@pytest.fixture
def run_until_b_starts(tmp_path: Path, inner_run, wait_until):
    """() -> (the inner run's Popen, the pids test_b wrote, its reports directory)."""

    def start():
        (tmp_path / "test_stop.py").write_text(INNER)
        pids_file = tmp_path / "pids.json"
        reports = tmp_path / "reports"
        proc = inner_run(
            ["--hil-reports", str(reports), "test_stop.py"],
            env={**os.environ, "HIL_PIDS_FILE": str(pids_file)},
        ).proc
        wait_until(lambda: pids_file.exists() and pids_file.read_text(), WAIT_S, "test_b")
        return proc, json.loads(pids_file.read_text()), reports

    return start


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_ends_the_run_like_ctrl_c(sig, run_until_b_starts, run_dir):
    proc, pids, reports = run_until_b_starts()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=WAIT_S)
    text = out.decode(errors="replace")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text[-2000:]
    assert f"stopped by {sig.name}" in text
    _wait(
        lambda: not any(alive(p, None) for p in pids), 10.0, "twin, adb server and reaper stopped"
    )
    run = run_dir(reports)
    assert [r["samples"] for r in read_results(run / "results.jsonl")] == [[4.2]]
    assert "test_a_measures" in (run / "report.html").read_text()
    assert (run / "summary.json").is_file()


def test_sigkill_leaves_the_report_and_the_reaper_stops_every_process(run_until_b_starts, run_dir):
    proc, pids, reports = run_until_b_starts()
    *children, reaper_pid = pids
    os.kill(proc.pid, signal.SIGKILL)  # no handler, no atexit, no finally
    proc.communicate(timeout=WAIT_S)
    _wait(
        lambda: not any(alive(p, None) for p in children),
        15.0,
        "the reaper stopping twin and adb server",
    )
    _wait(lambda: not alive(reaper_pid, None), 5.0, "the reaper exiting")
    run = run_dir(reports)
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


# --- nothing of a run outlives it (issue 14: orphans, stray adb daemon, temp dirs) -------------
MARK_ENV = "HIL_TEST_RUN_MARK"
GONE_WITHIN_S = 10.0
OWN_PROCESSES = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    from harness.farm import AdbServer, TwinProcess

    def test_starts_its_own_adb_server_and_twins(hil_device, tmp_path):
        # as the busiest-day suite does: outside every fixture, not stopped by this test
        adb = AdbServer(home=tmp_path / "adb").start()
        tp = TwinProcess("android-emulator-api34", adb=adb, count=2, state_dir=tmp_path / "twins")
        tp.start()
        info = {"own": [adb.proc.pid, tp.proc.pid], "adb_port": hil_device.adb_port}
        Path(os.environ["HIL_PIDS_FILE"]).write_text(json.dumps(info))
        if os.environ["HIL_MODE"] != "adb-death":
            time.sleep(120)
            return
        # the run's adb server is killed from outside now; adbutils calls through the harness's
        # clients must not start another one (on any port)
        from harness.device.adb import Device

        dev = Device(hil_device.serial, host=hil_device.adb_host, port=hil_device.adb_port)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            for call in (lambda: dev.adbutils_device.shell("echo hi", timeout=1),
                         lambda: dev.client.list(), lambda: dev.shell("echo hi", timeout_s=1)):
                try:
                    call()
                except Exception:
                    pass
            time.sleep(0.2)
    """
)


def _processes_marked(mark: str) -> dict[int, str]:
    """Every live process whose environment carries the run's mark: pid -> command line."""
    needle = f"{MARK_ENV}={mark}".encode()
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in env and start_time(int(d.name)) is not None:  # zombies have ended
            out[int(d.name)] = cmd.strip()
    return out


def _start_marked_run(tmp_path: Path, mode: str, inner_run):
    import uuid

    (tmp_path / "test_own.py").write_text(OWN_PROCESSES)
    pids_file = tmp_path / "pids.json"
    mark = uuid.uuid4().hex
    # the run's tempfile.gettempdir() (its hil-run-adb-*, hil-twin-*) and basetemp: short paths,
    # the twins' Unix control sockets must fit in 108 bytes
    short = Path(tempfile.mkdtemp(prefix="hilt-"))
    tmp = short / "t"
    tmp.mkdir()
    env = {
        **os.environ,
        "HIL_PIDS_FILE": str(pids_file),
        "HIL_MODE": mode,
        MARK_ENV: mark,
        "TMPDIR": str(tmp),
    }
    env.pop("ANDROID_ADB_SERVER_PORT", None)
    child = inner_run(
        ["-n", "2", "--hil-reports", str(tmp_path / "reports")]
        + ["--basetemp", str(short / "b"), "test_own.py"],
        env=env,
    )
    proc = child.proc
    try:
        _wait(lambda: pids_file.exists() and pids_file.read_text(), WAIT_S, "the test's own twins")
    except BaseException:
        child.stop(signal.SIGKILL, 10.0)
        for pid in _processes_marked(mark):
            os.kill(pid, signal.SIGKILL)
        raise
    return proc, mark, json.loads(pids_file.read_text()), tmp


def _nothing_left(mark: str, tmp: Path, what: str) -> None:
    try:
        _wait(lambda: not _processes_marked(mark), GONE_WITHIN_S, what)
    except AssertionError:
        left = _processes_marked(mark)
        for pid in left:
            os.kill(pid, signal.SIGKILL)  # leave nothing behind for the next test
        raise AssertionError(f"{what}: still running {left}") from None
    leftovers = sorted(p.name for p in tmp.iterdir() if p.name.startswith(("hil-run-", "hil-twin")))
    assert leftovers == [], f"temporary directories left: {leftovers}"


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "adb-death"])
def test_nothing_of_a_run_outlives_it(tmp_path, how, inner_run):
    """A -n 2 run whose test starts its own adb server and twins (outside every fixture): after
    SIGTERM to the controller, SIGKILL of the controller, or the death of the run's adb server,
    no process of the run (they all carry its mark in their environment) lives 10 s on, no adb
    daemon was started in its place, and its temporary directories are gone."""
    import shutil

    proc, mark, info, tmp = _start_marked_run(
        tmp_path, "adb-death" if how == "adb-death" else "sleep", inner_run
    )
    try:
        _stop_and_check(proc, mark, info, tmp, how)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def _stop_and_check(proc, mark: str, info: dict, tmp: Path, how: str) -> None:
    assert set(info["own"]) <= set(_processes_marked(mark))  # the probe sees them
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif how == "sigkill":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        port = info["adb_port"]
        servers = [
            pid
            for pid, cmd in _processes_marked(mark).items()
            if f"-P {port} server nodaemon" in cmd
        ]
        assert len(servers) == 1, _processes_marked(mark)
        os.kill(servers[0], signal.SIGKILL)
    out, _ = proc.communicate(timeout=WAIT_S)
    text = out.decode(errors="replace")
    if how == "adb-death":
        daemons = [c for c in _processes_marked(mark).values() if "fork-server" in c]
        assert daemons == [], f"an adb server was started in place of the dead one: {daemons}"
    _nothing_left(mark, tmp, f"the run's processes after {how}\n{text[-1500:]}")
