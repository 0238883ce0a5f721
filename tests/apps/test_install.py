"""The build under test: --install PATH.apk installs on every device before the run (one error
naming device and file when it cannot); the support app's package versions (dumpsys package)
go to the report's environment and to every measurement in results.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.device.adb import Device
from harness.errors import HarnessError
from harness.session.build import check_apks, install, package_versions, parse_dumpsys_package
from harness.twin.apk import make_apk

DUMPSYS_PACKAGE = """Packages:
  Package [com.example.helpdesk] (3b1c5e2):
    userId=10123
    pkg=Package{8f1a2c com.example.helpdesk}
    codePath=/data/app/~~x==/com.example.helpdesk-1
    versionCode=4217 minSdk=24 targetSdk=34
    versionName=4.2.17-rc1
    splits=[base]
"""


def _apk(path: Path) -> Path:
    """A real APK (zip, binary AndroidManifest, dex, v1 signature files): what the twin parses."""
    path.write_bytes(make_apk("com.acme.support", version_code=4217, version_name="4.2.17"))
    return path


def test_dumpsys_package_versions_are_parsed():
    assert parse_dumpsys_package(DUMPSYS_PACKAGE) == "4.2.17-rc1 (4217)"
    assert parse_dumpsys_package("Unable to find package: x\n") is None


def test_bad_install_paths_are_one_error_naming_the_file(tmp_path):
    with pytest.raises(HarnessError, match=r"--install .*nope.apk: no such file"):
        check_apks([tmp_path / "nope.apk"])
    (tmp_path / "app.zip").write_bytes(b"PK")
    with pytest.raises(HarnessError, match=r"--install .*app.zip: not an .apk file"):
        check_apks([tmp_path / "app.zip"])


def test_install_on_a_twin_and_a_failure_names_device_and_file(adb_server, start_twin, tmp_path):
    tp = start_twin("android-emulator-api34")
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    before = set(dev.shell("pm list packages").stdout.split())
    apk = _apk(tmp_path / "acme-support.apk")
    install(dev, apk, timeout_s=30)
    after = set(dev.shell("pm list packages").stdout.split())
    assert len(after - before) == 1  # one new package on the device
    assert after - before == {"package:com.acme.support"}  # named from its manifest
    versions = package_versions(dev, ["com.acme.support", "com.example.absent"])
    assert versions == {"com.acme.support": "4.2.17 (4217)"}  # from the twin's dumpsys package
    tp.control("offline", seconds=60)
    with pytest.raises(HarnessError) as err:
        install(dev, apk, timeout_s=15)
    assert dev.serial in str(err.value) and str(apk) in str(err.value)


def test_install_option_in_a_run_and_versions_in_results(pytester, tmp_path):
    suites = Path(__file__).resolve().parents[2] / "suites"
    pytester.copy_example(str(suites / "test_connect.py"))
    apk = _apk(tmp_path / "acme-support.apk")
    result = pytester.runpytest_subprocess(
        "test_connect.py",
        "-k",
        "connect_time_within",
        "--twin",
        "android-emulator-api34",
        "--install",
        str(apk),
        "--hil-reports",
        str(tmp_path / "reports"),
        "-p",
        "no:cacheprovider",
        timeout=300,
    )
    result.assert_outcomes(passed=1)
    (results,) = list((tmp_path / "reports").glob("*/results.jsonl"))
    records = [json.loads(line) for line in results.read_text().splitlines()]
    connect = next(r for r in records if r["metric"] == "connect_time_s")
    assert "com.mayday.support" in connect["meta"]["app_versions"], connect["meta"]
    missing = pytester.runpytest_subprocess(
        "test_connect.py",
        "--twin",
        "android-emulator-api34",
        "--install",
        str(tmp_path / "nope.apk"),
        "--hil-reports",
        str(tmp_path / "reports2"),
        timeout=120,
    )
    assert missing.ret != 0
    missing.stderr.fnmatch_lines(["*--install *nope.apk: no such file*"])
