"""STF leasing end to end: `hil farm stf` with twins, the run's private adb server, pytest runs
leasing from it; released in every ending (pass, taken back, SIGTERM, SIGKILL via the reaper)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.device.adb import Device
from harness.farm.process import Child
from harness.farm.stf import HEALTH_WAIT_S, StfClient, StfError, StfLeaser

TOKEN = "tok-farm-user-1"  # conftest's first user
RUN_TIMEOUT_S = 240.0


def _pytest(
    tmp_path: Path, farm_url: str, *args: str, env: dict | None = None, preexec_fn=None
) -> subprocess.Popen:
    """An inner pytest run on the farm: its own process group, registered with the run's
    reaper (harness.farm.process.Child); _finish() collects it."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--stf", farm_url]
    cmd += ["--hil-reports", str(tmp_path / "reports"), *args]
    child = Child(
        f"inner pytest run ({tmp_path.name})",
        cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        preexec_fn=preexec_fn,
    )
    return child.spawn().proc


def _finish(proc: subprocess.Popen, timeout_s: float = RUN_TIMEOUT_S) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        pytest.fail(f"pytest run not done in {timeout_s:g} s: {out.decode()[-2000:]}")
    return proc.returncode, out.decode(errors="replace")


def test_lease_survives_offline_after_connect_and_is_released(start_farm, adb_server):
    farm = start_farm(
        "fire-hdx-7-2013x2", args=("--offline-after-connect-s", str(HEALTH_WAIT_S + 1))
    )
    leaser = StfLeaser(StfClient(farm.url, TOKEN), adb_server, count=2, lease_s=120)
    try:
        leases = leaser.acquire()
        assert sorted(lease.serial for lease in leases) == sorted(
            d["serial"] for d in farm.info["devices"]
        )
        # remote adb was offline past one health wait: one counted reconnect per device
        assert leaser.retries == {"stf adb offline after connect": 2}
        for lease in leases:
            assert adb_server.states()[lease.remote_url] == "device"
            # the remote adb port reaches the twin STF named
            assert (
                Device(lease.remote_url, port=adb_server.port).getprop("ro.serialno")
                == lease.serial
            )
            assert lease.provider == "twin-provider-1" and lease.sdk == "17"
        assert set(farm.owners().values()) == {"user1@twin-stf.local"}
    finally:
        leaser.release_all()
    assert set(farm.owners().values()) == {None}
    states = adb_server.states()
    assert not any(lease.remote_url in states for lease in leases)


def test_no_free_device_is_one_error_naming_the_farm(start_farm, adb_server, farm_api):
    farm = start_farm("android-emulator-api34")
    serial = farm.info["devices"][0]["serial"]
    assert (
        farm_api(farm.url, "POST", "/api/v1/user/devices", "tok-farm-user-2", {"serial": serial})[0]
        == 200
    )
    leaser = StfLeaser(StfClient(farm.url, TOKEN), adb_server, count=1)
    with pytest.raises(StfError, match=r"no device leased \(1 present match no filter, 0 free\)"):
        leaser.acquire()
    leaser = StfLeaser(StfClient(farm.url, TOKEN), adb_server, filters={"sdk": "17"})
    with pytest.raises(StfError, match="0 present match"):
        leaser.acquire()


TAKEN_BACK = textwrap.dedent(
    """
    import json, os, urllib.request

    def _leave(serial):
        req = urllib.request.Request(
            os.environ["FARM_URL"] + "/_twin/faults", method="POST",
            data=json.dumps({"op": "leave", "serial": serial}).encode(),
            headers={"Authorization": "Bearer " + os.environ["FARM_TOKEN"]})
        urllib.request.urlopen(req, timeout=10).read()

    def test_1(device, hil_device, measure):
        m = measure("serial_ok", "count")
        m.add(float(device.getprop("ro.serialno") == hil_device.stf["serial"]))
        assert m.samples[0].value == 1.0
        if hil_device.stf["serial"] == os.environ["LEAVE"]:
            _leave(hil_device.stf["serial"])

    def test_2(device):
        assert device.getprop("ro.product.model") == "KFTHWI"

    def test_3(device):
        assert device.getprop("ro.product.model") == "KFTHWI"
    """
)


def test_device_taken_back_mid_run_is_one_error_naming_it(start_farm, tmp_path):
    farm = start_farm("fire-hdx-7-2013x2")
    leave = farm.info["devices"][0]["serial"]
    secret = TOKEN
    (tmp_path / "test_taken.py").write_text(TAKEN_BACK)
    proc = _pytest(
        tmp_path,
        farm.url,
        "--stf-count",
        "2",
        "--stf-filter",
        "profile=fire-hdx-7-2013",
        "-rA",
        "--stf-token",
        secret,  # on the command line: it must not reach the report either
        "test_taken.py",
        env={"FARM_TOKEN": secret, "FARM_URL": farm.url, "LEAVE": leave},
    )
    code, out = _finish(proc)
    assert code == 1, out
    assert "4 passed, 1 skipped, 1 error" in out, out
    assert f"STF device {leave} (twin-provider-1) was taken back by the farm mid-run" in out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED [1]")]
    assert (
        len(skipped) == 1 and f"STF device {leave} was taken back by the farm mid-run" in skipped[0]
    )
    errors = [line for line in out.splitlines() if line.startswith("ERROR test_taken.py::test_2")]
    assert len(errors) == 1, out
    assert set(farm.owners().values()) == {None}  # the other one released at the end
    # the token is in no output and no file of the run
    assert secret not in out
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())  # not history
    for f in run_dir.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    html = (run_dir / "report.html").read_text()
    assert f"STF {leave}" in html and "provider twin-provider-1" in html


def test_wrong_token_is_one_startup_error_without_the_token(start_farm, tmp_path):
    farm = start_farm("android-emulator-api34")
    (tmp_path / "test_x.py").write_text("def test_x(device):\n    pass\n")
    proc = _pytest(tmp_path, farm.url, "--stf-token", "wrong-secret-123", "test_x.py")
    code, out = _finish(proc, 120)
    assert code == 4, out  # pytest usage error
    assert f"mayday-hil: STF {farm.url}: 401 Bad Credentials: check --stf-token or STF_TOKEN" in out
    assert out.count("wrong-secret-123") == 0
    files = [f for f in (tmp_path / "reports").rglob("*") if f.is_file()]
    assert files  # the run directory was written, without the token
    assert not [f for f in files if b"wrong-secret-123" in f.read_bytes()]


HOLD = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def test_hold(device, hil_device):
        Path(os.environ["HELD"]).write_text(hil_device.stf["serial"])
        time.sleep(120)
    """
)


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"]
)
def test_stopped_run_releases_its_leases(start_farm, tmp_path, sig, default_signals, wait):
    """Ctrl-C, SIGTERM: the run releases on its way out; SIGKILL: no cleanup runs, the reaper
    releases."""
    farm = start_farm("android-emulator-api34x2")
    (tmp_path / "test_hold.py").write_text(HOLD)
    held = tmp_path / "held"
    proc = _pytest(
        tmp_path,
        farm.url,
        "--stf-count",
        "2",
        "test_hold.py",
        env={"STF_TOKEN": TOKEN, "HELD": str(held)},
        preexec_fn=default_signals,
    )
    try:
        wait(lambda: held.exists() and held.read_text(), 120, "the test holding the device")
        assert set(farm.owners().values()) == {"user1@twin-stf.local"}
        os.kill(proc.pid, sig)  # the controller only (the reaper and adb server live apart)
        _finish(proc, 60)
        wait(lambda: set(farm.owners().values()) == {None}, 30, "every lease released")
        events = [
            e for e in farm.state()["events"] if e["event"] in ("release", "remote_disconnect")
        ]
        assert sorted(e["event"] for e in events) == ["release"] * 2 + ["remote_disconnect"] * 2
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


CRASH = textwrap.dedent(
    """
    import os
    from pathlib import Path

    def test_crash_or_pass(device, hil_device):
        once = Path(os.environ["CRASHED"])
        if hil_device.stf["serial"] == os.environ["CRASH"] and not once.exists():
            once.write_text("crashed")  # (xdist's loadgroup hands the group to the new worker)
            os._exit(3)  # the xdist worker dies without any cleanup
        assert device.getprop("ro.serialno") == hil_device.stf["serial"]
    """
)


def test_crashed_worker_leases_are_released_by_the_controller(start_farm, tmp_path):
    farm = start_farm("android-emulator-api34x2")
    crash = farm.info["devices"][0]["serial"]
    (tmp_path / "test_crash.py").write_text(CRASH)
    proc = _pytest(
        tmp_path,
        farm.url,
        "--stf-count",
        "2",
        "-n",
        "2",
        "test_crash.py",
        env={"STF_TOKEN": TOKEN, "CRASH": crash, "CRASHED": str(tmp_path / "crashed")},
    )
    code, out = _finish(proc)
    assert code == 1 and "replacing crashed worker" in out and " failed" in out, out
    assert set(farm.owners().values()) == {None}
    released = sorted(e["serial"] for e in farm.state()["events"] if e["event"] == "release")
    assert released == sorted(d["serial"] for d in farm.info["devices"])


EXPIRES = textwrap.dedent(
    """
    import time

    def test_1(device):
        assert device.getprop("ro.product.model")
        time.sleep(4)  # past the 2 s lease

    def test_2(device):
        assert device.getprop("ro.product.model")
    """
)


def test_lease_that_expires_mid_run_is_one_error_naming_the_device(start_farm, tmp_path):
    farm = start_farm("android-emulator-api34")
    serial = farm.info["devices"][0]["serial"]
    (tmp_path / "test_expires.py").write_text(EXPIRES)
    proc = _pytest(
        tmp_path, farm.url, "--stf-lease-s", "2", "test_expires.py", env={"STF_TOKEN": TOKEN}
    )
    code, out = _finish(proc)
    assert code == 1 and "1 passed, 1 error" in out, out
    assert f"STF device {serial} (twin-provider-1) was taken back by the farm mid-run" in out
    whys = [e["why"] for e in farm.state()["events"] if e["event"] == "release"]
    assert whys == [
        "expired"
    ]  # the farm took it back; the run's own release then had nothing to do
