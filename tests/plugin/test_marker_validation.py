"""The configuration tests carry (markers and profile parameters) is checked at collection, in one
place: a bad `@network`, `media_network`, `@budget` or `@requires` stops the run with one line
naming the test, the marker and the key, exit code 4, before any test runs (with or without
xdist)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

EMU = "android-emulator-api34"
XDIST_RUN_TIMEOUT_S = 120.0
TEMP_POLL_S = 0.02

BAD_NETWORK = textwrap.dedent(
    """
    name: bad
    description: a bad profile
    source: test
    delay_ms: {delay}
    loss_pct: {loss}
    """
)

TEST_BODY = """
import pytest

@{marker}
def test_marked({fixtures}):
    open({ran!r}, "w").write("ran")
"""

CASES = [
    (
        'pytest.mark.network("nowhere")',
        "device",
        "*test_m.py::test_marked?*?: @network('nowhere'): name: unknown network profile"
        " 'nowhere'; known: *",
    ),
    (
        'pytest.mark.network("{net}")',
        "device",
        "*test_m.py::test_marked?*?: @network('*bad.yaml'): delay_ms: must be >= 0.0,"
        " got -50.0 (in *bad.yaml)",
    ),
    (
        'pytest.mark.parametrize("media_network", ["good-wifi", "{net}"])',
        "device, media_network",
        "*test_m.py::test_marked?*?: media_network='*bad.yaml': delay_ms: must be >= 0.0,"
        " got -50.0 (in *bad.yaml)",
    ),
    (
        'pytest.mark.budget("connect_tme_s")',
        "device",
        "*test_m.py::test_marked?*?: @budget('connect_tme_s'): no budget limits this metric;"
        " known: *connect_time_s*",
    ),
    (
        'pytest.mark.requires("eligible", "teleporter")',
        "device",
        "*test_m.py::test_marked?*?: @requires('teleporter'): unknown capability; use *",
    ),
]
IDS = ["network-unknown", "network-delay-negative", "media-network-bad", "budget", "requires"]


def _write_test(pytester, tmp_path: Path, marker: str, fixtures: str) -> Path:
    net = tmp_path / "bad.yaml"
    net.write_text(BAD_NETWORK.format(delay=-50, loss=0))
    ran = tmp_path / "ran"
    pytester.makepyfile(
        test_m=TEST_BODY.format(marker=marker.format(net=net), fixtures=fixtures, ran=str(ran))
    )
    return ran


def _assert_one_line_exit_4(result, message: str, ran: Path) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    errors = [line for line in result.stderr.lines if "mayday-hil:" in line]
    assert len(errors) == 1, result.stderr.lines
    result.stderr.fnmatch_lines([f"ERROR: mayday-hil: {message}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not ran.exists(), "the test ran despite its bad marker"


@pytest.mark.parametrize("marker,fixtures,message", CASES, ids=IDS)
def test_bad_marker_is_one_line_and_exit_4_before_any_test(
    pytester, tmp_path, marker, fixtures, message
):
    ran = _write_test(pytester, tmp_path, marker, fixtures)
    result = pytester.runpytest_subprocess(
        "--twin", EMU, "--hil-reports", str(tmp_path / "r"), "-p", "no:cacheprovider", timeout=90
    )
    _assert_one_line_exit_4(result, message, ran)


def test_bad_marker_under_xdist_is_exit_4_before_any_twin_starts(inner_run, tmp_path):
    """Under xdist the workers collect after the controller started the twins: the controller
    checks the markers first (a child collection), so a bad one ends the run before any device
    is touched. Seen from outside: no twin state dir (hil-twin-*) ever appears in the run's
    TMPDIR (a twin that starts keeps one for the whole run), polled until the run has exited."""
    marker, fixtures, message = CASES[0]
    (tmp_path / "test_m.py").write_text(
        TEST_BODY.format(marker=marker, fixtures=fixtures, ran=str(tmp_path / "ran"))
    )
    temp = Path(tempfile.mkdtemp(prefix="hil-mv-"))  # short: the twins' sockets live there
    env = {**os.environ, "TMPDIR": str(temp)}
    seen: set[str] = set()
    try:
        run = inner_run(["-n", "2", "--hil-reports", str(tmp_path / "r")], env=env)
        deadline = time.monotonic() + XDIST_RUN_TIMEOUT_S
        while run.alive() and time.monotonic() < deadline:
            seen |= {p.name for p in temp.iterdir()}
            time.sleep(TEMP_POLL_S)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert not run.alive(), f"the run did not end within {XDIST_RUN_TIMEOUT_S:g} s"
    out, _ = run.communicate(5.0)
    text = out.decode("utf-8", "replace")
    assert run.poll() == pytest.ExitCode.USAGE_ERROR, text[-2000:]
    errors = [line for line in text.splitlines() if "mayday-hil:" in line]
    assert len(errors) == 1, errors
    assert fnmatch.fnmatch(errors[0], f"ERROR: mayday-hil: {message}"), errors[0]
    assert "Traceback" not in text
    assert not (tmp_path / "ran").exists(), "the test ran despite its bad marker"
    assert not [n for n in seen if n.startswith("hil-twin-")], f"a twin started: {sorted(seen)}"


def test_good_markers_pass_collection(pytester, tmp_path):
    """The stock names: nothing to report (the check does not refuse what is valid)."""
    ran = _write_test(
        pytester,
        tmp_path,
        'pytest.mark.network("poor-wifi")\n@pytest.mark.budget("connect_time_s")\n'
        '@pytest.mark.requires("eligible", "microphone")\n'
        '@pytest.mark.parametrize("media_network", ["good-wifi", "lossy-5"])',
        "device, media_network",
    )
    result = pytester.runpytest_subprocess(
        "--twin",
        EMU,
        "--collect-only",
        "-q",
        "--hil-reports",
        str(tmp_path / "r"),
        "-p",
        "no:cacheprovider",
        timeout=90,
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:] + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_marked*good-wifi*", "*test_marked*lossy-5*"])
    assert not ran.exists()
