"""Lab faults are pytest errors with one line naming the device and the step; a device that a
test dropped or rebooted is waited for before the next test, and the wait is counted."""

from __future__ import annotations

import json
import textwrap

RECOVERY_TESTS = textwrap.dedent(
    """
    from harness.twin.control import control_request

    def test_a_reboots_the_device(device, hil_device):
        assert device.shell("echo before", timeout_s=5).stdout == "before\\n"
        control_request(hil_device.twin_control, {"op": "reboot", "boot_s": 3, "serial": hil_device.serial})

    def test_b_drops_it_offline(device, hil_device):
        assert device.shell("echo between", timeout_s=5).stdout == "between\\n"
        control_request(hil_device.twin_control, {"op": "offline", "seconds": 3, "serial": hil_device.serial})

    def test_c_runs_on_the_device_that_came_back(device):
        assert device.shell("echo after", timeout_s=5).stdout == "after\\n"
    """
)

SERVER_GONE_TESTS = textwrap.dedent(
    """
    import socket
    from harness.device.adb import Device
    from harness.farm.adbserver import free_port

    # an adb server that is gone: nothing listens on its port any more (the run's own server is
    # left alone: killing it is the reaper's business, see tests/plugin/test_termination.py)

    def test_the_adb_server_is_gone(device, hil_device):
        Device(hil_device.serial, port=free_port()).shell("echo hi", timeout_s=5)

    def test_a_raw_socket_error(device, hil_device):
        socket.create_connection(("127.0.0.1", free_port()), timeout=5)

    def test_budget_failures_stay_failures(device):
        from harness.errors import BudgetExceeded
        raise BudgetExceeded("connect_time_s p95 20.0 > 15.0")

    def test_plain_assertions_stay_failures(device):
        assert device.shell("echo 1", timeout_s=5).stdout == "2\\n"
    """
)


def test_a_dropped_or_rebooted_device_is_waited_for_and_counted(
    pytester, tmp_path, run_with_twin, run_dir
):
    pytester.makepyfile(test_recovery=RECOVERY_TESTS)
    reports = tmp_path / "reports"
    result = run_with_twin(reports, twin="android-tablet-api30", timeout_s=180)
    result.assert_outcomes(passed=3)
    summary = json.loads((run_dir(reports) / "summary.json").read_text())
    assert list(summary["device_recoveries"].values()) == [2], summary
    result.stdout.fnmatch_lines(["*device recoveries on *: 2 (waited for it*"])


def test_adb_server_gone_is_one_error_line_naming_device_and_step(
    pytester, tmp_path, run_with_twin
):
    pytester.makepyfile(test_gone=SERVER_GONE_TESTS)
    result = run_with_twin(tmp_path / "r", twin="android-tablet-api30", timeout_s=180)
    result.assert_outcomes(errors=2, failed=2)
    for outcome, name in [
        ("ERROR", "test_the_adb_server_is_gone"),
        ("ERROR", "test_a_raw_socket_error"),
        ("FAILED", "test_budget_failures_stay_failures"),
        ("FAILED", "test_plain_assertions_stay_failures"),
    ]:
        result.stdout.fnmatch_lines([f"{outcome} test_gone.py::{name}*"])
    lines = [x for x in result.stdout.lines if x.startswith("infrastructure error")]
    assert len(lines) == 2, result.stdout.str()[-3000:]
    gone, raw = lines
    # one line each: the kind, the test's line (the step), the device, the command
    assert gone.startswith("infrastructure error (AdbError) at test_gone.py:9: [127.0.0.1:")
    assert "features`: adb server on 127.0.0.1:" in gone and "unreachable" in gone  # its 1st call
    assert raw.startswith(
        "infrastructure error (ConnectionRefusedError) at test_gone.py:12: [127.0.0.1:"
    )
