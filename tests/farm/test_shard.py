"""--shard I/N on one host's devices: with one device the tests are split (disjoint, complete,
the same on every host); a malformed --shard is one start-up error."""

from __future__ import annotations

import pytest

SUITE = "\n".join(
    f"def test_{i:02d}(hil_device):\n    assert hil_device.serial\n" for i in range(12)
)


def _selected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest_subprocess(
        "--twin",
        "android-emulator-api34",
        "-p",
        "no:cacheprovider",
        "--co",
        "-q",
        *args,
        timeout=120,
    )
    assert result.ret == 0, result.stdout.str()
    return [line.split("::")[1].split("[")[0] for line in result.stdout.lines if "::test_" in line]


def test_one_device_shards_split_its_tests(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_suite=SUITE)
    reports = str(tmp_path / "reports")
    one = _selected(pytester, "--shard", "1/2", "--hil-reports", reports)
    two = _selected(pytester, "--shard", "2/2", "--hil-reports", reports)
    everything = [f"test_{i:02d}" for i in range(12)]
    assert one and two and not set(one) & set(two)
    assert sorted(one + two) == everything
    assert _selected(pytester, "--shard", "1/2", "--hil-reports", reports) == one  # deterministic


def test_malformed_shard_is_one_startup_error(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "--twin",
        "android-emulator-api34",
        "--shard",
        "3/2",
        "--hil-reports",
        str(tmp_path),
        timeout=60,
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*mayday-hil: --shard: 3/2: expected I/N with 1 <= I <= N*"])


def test_stf_with_local_devices_is_one_startup_error(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "--stf", "http://127.0.0.1:9", "--twin", "android-emulator-api34",
        "--hil-reports", str(tmp_path), timeout=60,
    )  # fmt: skip
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*mayday-hil: --stf: *: leases the run's devices: not with --twin*"]
    )
