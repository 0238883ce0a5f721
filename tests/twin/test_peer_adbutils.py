"""Fidelity against tests nobody here wrote: adbutils 2.12.0's own `e2etests` (from its sdist)
run against an API 34 and an API 17 twin through a private adb server.

The sdist is fetched once with `pip download --no-binary :all: --no-deps adbutils==2.12.0` into
~/.cache/mayday-hil/peer/ (MAYDAY_HIL_PEER_CACHE overrides); without the registry the test skips
with one line. Each level gets its own private adb server with exactly one device on it (the
e2etests pick "the" device), and adbutils' tests run in a pytest subprocess with
ANDROID_ADB_SERVER_PORT/ANDROID_SERIAL set; `-p tests.twin.peer.redirect` sends test_adb.py's
hard-coded AdbClient("127.0.0.1", 5037) to the private server too, so nothing reaches 5037.

Every e2etest's outcome is asserted by name. A failure is allowed only where a real device of
that level fails the same way, with the reason written next to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.farm import AdbServer, TwinProcess
from harness.farm.reaper import Reaper

ADBUTILS_VERSION = "2.12.0"
_DOWNLOAD_TIMEOUT_S = 120.0
_RUN_TIMEOUT_S = 600.0
_STOP_TIMEOUT_S = 5.0
_REPO = Path(__file__).resolve().parents[2]

PASS, FAIL, SKIP = "passed", "failed", "skipped"

# A failure a real device of the level gives too, and why.
_WAIT_FOR_USB = (
    "adb.wait_for(transport='usb', state='device') needs a USB device; a twin, like an "
    "emulator or a device on `adb connect`, is a TCP transport: a real one times out the same way"
)
_NO_SCREENRECORD_17 = "Android 4.2 (API 17) has no screenrecord (it came with API 19)"
_NO_REVERSE_17 = "adbd before API 21 (Android 5.0) has no reverse: service: the open is refused"
_CRLF_PNG_17 = (
    "API <= 20 runs shell: under a PTY, LF -> CRLF: `screencap -p` through adb shell is a "
    "corrupt PNG on a real 4.2 device too"
)
_NO_WM_SIZE_17 = "`wm size` arrived with API 18; Android 4.2 answers 'wm: not found'"

# test name (module::function) -> (API 34 outcome, API 17 outcome, reason for any failure)
EXPECTED: dict[str, tuple[str, str, str]] = {}


def _expected_table() -> dict[str, tuple[str, str, str]]:
    both = dict.fromkeys(
        [
            "test_adb::test_server_version",
            "test_adb::test_adb_disconnect",
            "test_adb::test_track_device",
            "test_deprecated::test_package_info",
            "test_deprecated::test_client_shell",
            "test_device_base::test_shell",
            "test_device_base::test_shell_without_encoding",
            "test_device_base::test_shell_stream",
            "test_device_base::test_adb_shell_raise_timeout",
            "test_device_base::test_shell2",
            "test_device_base::test_get_xxx",
            "test_device_base::test_transport",
            "test_device_base::test_framebuffer",
            "test_device_shell_extend::test_battery",
            "test_device_shell_extend::test_keyevent",
            "test_device_shell_extend::test_brightness",
            "test_device_shell_extend::test_switch_screen",
            "test_device_shell_extend::test_switch_airplane",
            "test_device_shell_extend::test_switch_wifi",
            "test_device_shell_extend::test_swipe",
            "test_device_shell_extend::test_drag",
            "test_device_shell_extend::test_click",
            "test_device_shell_extend::test_send_keys",
            "test_device_shell_extend::test_wlan_ip",
            "test_device_shell_extend::test_sync_pull_push",
            "test_device_shell_extend::test_sync_pull_file_push",
            "test_device_shell_extend::test_sync_push_to_dir",
            "test_device_shell_extend::test_screenshot",
            "test_device_shell_extend::test_app_info",
            "test_device_shell_extend::test_window_size",
            "test_device_shell_extend::test_is_screen_on",
            "test_device_shell_extend::test_open_browser",
            "test_device_shell_extend::test_dump_hierarchy",
            "test_device_shell_extend::test_remove",
            "test_device_shell_extend::test_logcat",
            "test_device_sync::test_pull_push_dirs",
            "test_forward_reverse::test_forward",
            "test_import::test_import",
            "test_utils::test_stop_event",
            "test_utils::test_get_free_port",
            "test_utils::test_get_bin_dir",
        ],
        (PASS, PASS, ""),
    )
    table = dict(both)
    # skipped by adbutils itself: io.appium.android.apis is not installed (nor on a stock device)
    table["test_device_shell_extend::test_app_start_stop"] = (SKIP, SKIP, "")
    table["test_deprecated::test_current_app"] = (SKIP, SKIP, "")
    table["test_adb::test_wait_for"] = (FAIL, FAIL, _WAIT_FOR_USB)
    table["test_forward_reverse::test_reverse"] = (PASS, FAIL, _NO_REVERSE_17)
    table["test_record::test_screenrecord"] = (PASS, FAIL, _NO_SCREENRECORD_17)
    table["test_device_shell_extend::test_screenshot"] = (PASS, FAIL, _CRLF_PNG_17)
    table["test_device_shell_extend::test_window_size"] = (PASS, FAIL, _NO_WM_SIZE_17)
    return table


EXPECTED.update(_expected_table())


def _cache_dir() -> Path:
    return Path(
        os.environ.get("MAYDAY_HIL_PEER_CACHE", Path.home() / ".cache" / "mayday-hil" / "peer")
    )


def _e2etests() -> Path:
    """adbutils' e2etests from its sdist, downloaded once. Skips when the download fails."""
    cache = _cache_dir()
    tests = cache / f"adbutils-{ADBUTILS_VERSION}" / "e2etests"
    if (tests / "conftest.py").is_file():
        return tests
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"adbutils-{ADBUTILS_VERSION}.tar.gz"
    if not sdist.is_file():
        try:
            cp = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    f"adbutils=={ADBUTILS_VERSION}",
                    "-d",
                    str(cache),
                ],
                capture_output=True,
                timeout=_DOWNLOAD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"adbutils=={ADBUTILS_VERSION} sdist: pip download timed out")
        if cp.returncode != 0 or not sdist.is_file():
            last = (cp.stderr or cp.stdout).decode(errors="replace").strip().splitlines()[-1:]
            pytest.skip(f"adbutils=={ADBUTILS_VERSION} sdist not downloadable: {' '.join(last)}")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/e2etests/" in m.name and m.isfile()]
        tar.extractall(cache, members=members, filter="data")
    return tests


@pytest.fixture(scope="module")
def reaper(tmp_path_factory):
    r = Reaper(tmp_path_factory.mktemp("peer-reaper") / "ledger").start()
    yield r
    r.stop()


@pytest.fixture
def peer_device(reaper, tmp_path):
    """start(profile) -> (AdbServer, serial): a private adb server with exactly one twin."""
    started: list = []

    def start(profile: str) -> tuple[AdbServer, str]:
        server = AdbServer(home=tmp_path / "adb-home", reaper=reaper).start()
        started.append(server)
        tp = TwinProcess(profile, adb=server, state_dir=tmp_path / "twin", reaper=reaper)
        started.append(tp)
        tp.start()
        return server, f"127.0.0.1:{tp.port}"

    yield start
    for proc in reversed(started):
        proc.stop()


def _run_e2etests(
    tests: Path, server: AdbServer, serial: str, workdir: Path, reaper: Reaper
) -> dict[str, str]:
    """Run adbutils' e2etests in a pytest subprocess; outcome per module::function."""
    junit = workdir / "junit.xml"
    env = dict(server.env)
    env.update(
        {
            "ANDROID_SERIAL": serial,
            "MAYDAY_PEER_ADB_PORT": str(server.port),
            "PYTHONPATH": str(_REPO),
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(tests),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.twin.peer.redirect",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit1",
        f"--rootdir={tests}",
        "-c",
        os.devnull,
    ]
    with open(workdir / "e2e.log", "wb") as logf:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    reaper.watch(proc.pid)
    try:
        proc.wait(_RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(_STOP_TIMEOUT_S)
        pytest.fail(f"adbutils e2etests did not finish within {_RUN_TIMEOUT_S:g} s")
    if not junit.is_file():
        log = (workdir / "e2e.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"adbutils e2etests wrote no junit report (exit {proc.returncode}): {log}")
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = FAIL
        elif case.find("skipped") is not None:
            outcomes[name] = SKIP
        else:
            outcomes[name] = PASS
    return outcomes


def _failure_text(workdir: Path, name: str) -> str:
    root = ET.parse(workdir / "junit.xml").getroot()
    func = name.split("::", 1)[1]
    for case in root.iter("testcase"):
        if case.get("name") == func:
            for tag in ("failure", "error"):
                el = case.find(tag)
                if el is not None:
                    return (el.get("message") or "")[:300]
    return ""


@pytest.mark.parametrize("profile,column", [("android-emulator-api34", 0), ("fire-hdx-7-2013", 1)])
def test_adbutils_e2etests_outcome_per_test(peer_device, reaper, tmp_path, profile, column):
    tests = _e2etests()
    server, serial = peer_device(profile)
    workdir = tmp_path / "work"
    workdir.mkdir()
    outcomes = _run_e2etests(tests, server, serial, workdir, reaper)
    assert set(outcomes) == set(EXPECTED), (
        f"e2etests collected {sorted(set(outcomes) ^ set(EXPECTED))} unlike the table"
    )
    wrong = {
        name: f"{got} (expected {EXPECTED[name][column]}) {_failure_text(workdir, name)}"
        for name, got in sorted(outcomes.items())
        if got != EXPECTED[name][column]
    }
    counts = {k: list(outcomes.values()).count(k) for k in (PASS, FAIL, SKIP)}
    assert not wrong, f"{profile}: {counts}; differing from a real device: {wrong}"
