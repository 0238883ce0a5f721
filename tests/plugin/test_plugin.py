"""The pytest plugin end to end: pytest runs in a subprocess against twins it starts itself."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.report import read_results

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_capability_suite_on_two_twins_with_xdist(pytester: pytest.Pytester, tmp_path, run_dir):
    reports = tmp_path / "reports"
    result = pytester.runpytest_subprocess(
        str(SUITES / "test_capabilities.py"),
        "--twin",
        "fire-hdx-7-2013",
        "--twin",
        "fire-hd-7-2013",
        "-n",
        "2",
        "-v",
        "--hil-reports",
        str(reports),
        "-p",
        "no:cacheprovider",
        timeout=180,
    )
    result.assert_outcomes(passed=8, skipped=2)
    # one device per worker: every test of a device ran on the same xdist worker
    workers: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        if line.startswith("[gw") and "[127.0.0.1:" in line:
            device = line.split("[127.0.0.1:", 1)[1].split("]", 1)[0]
            workers.setdefault(device, set()).add(line.split("]", 1)[0])
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), workers
    result.stdout.fnmatch_lines(["*not eligible for live support: no microphone*"])
    result.stdout.fnmatch_lines(["*(fire-hd-7-2013) lacks microphone*"])
    run = run_dir(reports)
    devices = json.loads((run / "devices.json").read_text())
    assert sorted(d["profile"] for d in devices) == ["fire-hd-7-2013", "fire-hdx-7-2013"]
    html = (run / "report.html").read_text()
    assert "KFSOWI" in html and "KFTHWI" in html and "mic no" in html and "mic yes" in html
    assert "not eligible for live support" in html and "probed capabilities" in html


MEASURING_TEST = textwrap.dedent(
    """
    import pytest

    @pytest.mark.budget("connect_time_s")
    @pytest.mark.parametrize("waits", [(5.0, 7.0, 8.0), (5.0, 7.0, 21.0)], ids=["fast", "slow"])
    def test_connect(device, measure, waits):
        m = measure("connect_time_s", "s")
        for w in waits:
            m.add(w, uncertainty=0.033)
        measure.check(m)
    """
)


# the run's process caps glibc's arenas before any session's threads exist (harness/native.py):
# six threads allocating at once share at most two (tests/test_native.py: seven without the cap)
ARENAS_TEST = textwrap.dedent(
    """
    import threading
    from harness.native import arena_count

    def test_session_threads_share_two_arenas():
        barrier, keep = threading.Barrier(7), []
        def work():
            keep.append([bytearray(8192) for _ in range(50)])
            barrier.wait(10)
            barrier.wait(10)
        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        barrier.wait(10)
        arenas = arena_count()
        barrier.wait(10)
        assert arenas is None or arenas <= 2, arenas
    """
)


def test_measurements_go_to_results_jsonl_and_budget_failures_fail(
    pytester: pytest.Pytester, tmp_path, run_with_twin, run_dir
):
    pytester.makepyfile(test_measuring=MEASURING_TEST, test_arenas=ARENAS_TEST)
    reports = tmp_path / "reports"
    result = run_with_twin(reports, timeout_s=120)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*BudgetExceeded*connect_time_s p95 = 19.6 s (limit <= 15 s): OVER BUDGET*"]
    )
    records = read_results(run_dir(reports) / "results.jsonl")
    by_test = {r["test"].rstrip("]").rsplit("-", 1)[1]: r for r in records if "[" in r["test"]}
    assert set(by_test) == {"fast", "slow"}
    assert by_test["fast"]["verdict"]["passed"] and not by_test["slow"]["verdict"]["passed"]
    assert (
        by_test["slow"]["samples"] == [5.0, 7.0, 21.0] and by_test["slow"]["uncertainty"] == 0.033
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--twin", "fire-hdx-99"],
            "*unknown profile 'fire-hdx-99'*known: android-emulator-api34*",
        ),
        (
            ["--device", "emulator-9998", "--adb-port", "{adb_port}"],
            "*device emulator-9998 is not attached*",
        ),
        (
            ["--twin", "android-emulator-api34", "--profiles-dir", "{bad_profiles}"],
            "*budgets.yaml: budgets.default.connect_time_s.p95.max: expected float*",
        ),
    ],
    ids=["unknown-profile", "serial-not-attached", "malformed-budget"],
)
def test_bad_input_ends_with_one_clear_line(pytester, tmp_path, adb_server, args, message):
    bad = tmp_path / "profiles"
    bad.mkdir()
    src = Path(__file__).resolve().parents[2] / "device_profiles"
    for f in src.glob("*.yaml"):
        (bad / f.name).write_text(f.read_text())
    (bad / "budgets.yaml").write_text(
        "budgets:\n  default:\n    connect_time_s:\n      p95: {max: soon}\n"
    )
    pytester.makepyfile(test_x="def test_x(device):\n    pass\n")
    args = [a.format(adb_port=adb_server.port, bad_profiles=bad) for a in args]
    result = pytester.runpytest_subprocess(
        *args, "--hil-reports", str(tmp_path / "r"), "-p", "no:cacheprovider", timeout=60
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*mayday-hil: {message}"])


OFFLINE_TEST = textwrap.dedent(
    """
    import pytest
    from harness.errors import AdbError
    from harness.farm.control import TwinControl

    def test_measure_then_device_drops(device, measure, hil_device):
        m = measure("connect_time_s", "s")
        m.add(4.2)
        TwinControl(hil_device.twin_control, hil_device.serial).offline(30)
        device.shell("echo gone?", timeout_s=5)
    """
)


def test_device_offline_mid_test_is_one_error_and_results_survive(
    pytester, tmp_path, run_with_twin, run_dir
):
    pytester.makepyfile(test_offline=OFFLINE_TEST)
    reports = tmp_path / "reports"
    result = run_with_twin(reports, timeout_s=120)
    result.assert_outcomes(errors=1)  # the lab's fault, not the product's
    result.stdout.fnmatch_lines(["*infrastructure error (AdbError*127.0.0.1:*echo gone?*"])
    run = run_dir(reports)
    assert [r["samples"] for r in read_results(run / "results.jsonl")] == [[4.2]]
    assert (run / "report.html").is_file() and (run / "summary.json").is_file()
