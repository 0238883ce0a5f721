"""Each retry of a device is counted once in the report: the Device keeps a running total for
the run, the plugin sends each test's new retries only (setup, call and teardown), the
controller adds them up. Before: every test sent the running total and the totals were added."""

from __future__ import annotations

import json

import pytest

EMU = "android-emulator-api34"

TESTS = """
import pytest

@pytest.fixture
def retry_in_teardown(device):
    yield
    device.retries.record("shell", 1, "teardown retry")

def test_a(device):
    device.retries.record("shell", 1, "a")

def test_b(device):
    device.retries.record("shell", 1, "b")
    device.retries.record("reconnect", 1, "b")

def test_c(device, retry_in_teardown):
    pass

def test_d_no_device():
    pass
"""


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["plain", "xdist"])
def test_each_retry_is_counted_once(pytester, tmp_path, workers):
    pytester.makepyfile(test_r=TESTS)
    reports = tmp_path / "r"
    result = pytester.runpytest_subprocess(
        "--twin",
        EMU,
        *workers,
        "--hil-reports",
        str(reports),
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    result.assert_outcomes(passed=4)
    (summary,) = reports.glob("*/summary.json")
    retries = json.loads(summary.read_text())["retries"]
    assert list(retries.values()) == [{"shell": 3, "reconnect": 1}], retries
    result.stdout.fnmatch_lines(["retries on *: shell=3, reconnect=1"])
