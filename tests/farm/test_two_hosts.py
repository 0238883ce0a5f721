"""Two hosts, one farm: an STF farm of 6 twins, two pytest runs at once leasing 3 each with
--shard 1/2 and 2/2; no device leased twice, all released (also when one run is killed), and
`hil report merge` has every device's figures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.farm.process import Child
from harness.report import read_results

TOKEN = "tok-farm-user-1"
RUN_TIMEOUT_S = 300.0
SUITE = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def test_getprop_round_trip(device, hil_device, measure):
        m = measure("getprop_round_trip_ms", "ms")
        for _ in range(3):
            t0 = time.monotonic()
            assert device.getprop("ro.serialno") == hil_device.stf["serial"]
            m.add(1000 * (time.monotonic() - t0))
        if os.environ.get("HOLD"):
            Path(os.environ["HOLD"], hil_device.stf["serial"]).write_text("held")
            time.sleep(120)
    """
)


def _start(
    tmp_path: Path, url: str, shard: str, env: dict | None = None, sharded: bool = True
) -> subprocess.Popen:
    host = tmp_path / f"host{shard[0]}"
    host.mkdir()
    (host / "test_suite.py").write_text(SUITE)
    child = Child(  # its own process group, registered with the run's reaper
        f"runner host {shard}",
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_suite.py", "--stf", url]
        + ["--stf-count", "3", "--hil-reports", str(host / "reports")]
        + (["--shard", shard] if sharded else []),
        env={**os.environ, "STF_TOKEN": TOKEN, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=host,
    )
    return child.spawn().proc


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        pytest.fail(f"run not done in {RUN_TIMEOUT_S:g} s: {out.decode()[-2000:]}")
    return proc.returncode, out.decode(errors="replace")


def _claims_never_overlap(events: list[dict]) -> list[str]:
    """Every claim of a device follows the release of its previous claim; the serials claimed."""
    held: set[str] = set()
    claimed = []
    for e in events:
        if e["event"] == "claim":
            assert e["serial"] not in held, f"{e['serial']} leased twice"
            held.add(e["serial"])
            claimed.append(e["serial"])
        elif e["event"] == "release":
            held.discard(e["serial"])
    return claimed


@pytest.mark.parametrize("sharded", [True, False], ids=["sharded", "racing"])
def test_two_runs_share_one_farm_and_merge(start_farm, tmp_path, sharded):
    """Sharded, the runs never compete; racing (no --shard), both list the same free devices
    and the farm's 403 on a taken device sends the loser on to the next one."""
    farm = start_farm("fire-hdx-7-2013x3", "android-emulator-api34x3")
    serials = sorted(d["serial"] for d in farm.info["devices"])
    procs = [_start(tmp_path, farm.url, s, sharded=sharded) for s in ("1/2", "2/2")]
    results = [_finish(p) for p in procs]
    for code, out in results:
        assert code == 0 and "3 passed" in out, out
    claimed = _claims_never_overlap(farm.state()["events"])
    assert sorted(claimed) == serials  # each of the 6 leased once, by one run
    assert set(farm.owners().values()) == {None}
    run_dirs = [
        next(p for p in (tmp_path / f"host{i}" / "reports").iterdir() if p.is_dir()) for i in (1, 2)
    ]
    assert main(["report", "merge", *map(str, run_dirs), "-o", str(tmp_path / "merged")]) == 0
    rows = read_results(tmp_path / "merged" / "results.jsonl")
    by_device = {}
    for r in rows:
        by_device[r["device"]] = r
    html = (tmp_path / "merged" / "report.html").read_text()
    assert "6 measurements on 6 devices" in html and "0 clashes" in html
    for s in serials:
        assert f"<td>{s}</td>" in html
    assert sorted(by_device) == serials  # named by STF serial, every device's figures
    assert all(r["stats"]["n"] == 3 for r in rows)


def test_a_killed_run_releases_its_leases_and_the_other_goes_on(start_farm, tmp_path, wait):
    farm = start_farm("android-emulator-api34x6")
    held = tmp_path / "held"
    held.mkdir()
    killed = _start(tmp_path, farm.url, "1/2", env={"HOLD": str(held)})
    try:
        wait(lambda: len(list(held.iterdir())) >= 1, 120, "shard 1 holding a device")
        other = _start(tmp_path, farm.url, "2/2")
        os.kill(killed.pid, signal.SIGKILL)  # the controller only: its reaper releases
        killed.wait(30)
        code, out = _finish(other)
        assert code == 0 and "3 passed" in out, out
        wait(lambda: set(farm.owners().values()) == {None}, 30, "every lease released")
        claimed = _claims_never_overlap(farm.state()["events"])
        assert len(claimed) == 6 and len(set(claimed)) == 6
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait(10)
        if killed.stdout:
            killed.stdout.close()
