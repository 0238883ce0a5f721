"""Every piece of a run's configuration is checked at start-up, in one place: one line naming the
file or option and the key, exit code 4 (usage error), before any device or twin is touched."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

PROFILES = Path(__file__).resolve().parents[2] / "device_profiles"
EMU = "android-emulator-api34"


def _profiles(tmp_path: Path, edit: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of the stock profiles dir, with `file: (old, new)` text replacements."""
    out = tmp_path / "profiles"
    shutil.copytree(PROFILES, out)
    for name, (old, new) in (edit or {}).items():
        path = out / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1))
    return out


def _budget_limit(value: str) -> dict[str, tuple[str, str]]:
    text = (PROFILES / "budgets.yaml").read_text()
    assert "p95: {max: 15}" in text
    return {"budgets.yaml": ("p95: {max: 15}", f"p95: {{max: {value}}}")}


NETWORK_FILE = textwrap.dedent(
    """
    name: bad
    description: a bad profile
    source: test
    delay_ms: {delay}
    loss_pct: {loss}
    """
)

CASES = [
    (["--twin", f"{EMU}x0"], None, None, f"*--twin: {EMU}x0: twin count must be 1..64, got 0"),
    (
        ["--twin", f"{EMU}x500"],
        None,
        None,
        f"*--twin: {EMU}x500: twin count must be 1..64, got 500",
    ),
    (
        ["--twin", EMU],
        _budget_limit("-1"),
        None,
        "*budgets.yaml: budgets.default.connect_time_s.*.max: must be >= 0.0, got -1.0",
    ),
    (
        ["--twin", EMU],
        _budget_limit(".nan"),
        None,
        "*budgets.yaml: budgets.default.connect_time_s.*.max: must be a finite number, got nan",
    ),
    (
        ["--twin", EMU],
        {f"{EMU}.yaml": ("region: US", "region: XX")},
        None,
        f"*{EMU}.yaml: support.region: unknown region 'XX'; known: US, UK, DE",
    ),
    (
        ["--twin", EMU],
        {f"{EMU}.yaml": ("region: US", "region: US\n  timezone: Mars/Olympus_Mons")},
        None,
        f"*{EMU}.yaml: support.timezone: not an IANA time zone: 'Mars/Olympus_Mons'",
    ),
    (
        ["--twin", EMU],
        {f"{EMU}.yaml": ("budget: default", "budget: missing-budget")},
        None,
        f"*{EMU}.yaml: support.budget: unknown budget 'missing-budget'*",
    ),
    (["--twin", EMU, "--budget", "nope"], None, None, "*--budget: nope: unknown budget; known:*"),
    (
        ["--twin", EMU, "--network", "nowhere"],
        None,
        None,
        "*--network nowhere: name: unknown network profile 'nowhere'; known:*",
    ),
    (
        ["--twin", EMU, "--network", "{net}"],
        None,
        {"delay": -50, "loss": 0},
        "*--network *bad.yaml: delay_ms: must be >= 0.0, got -50.0*",
    ),
    (
        ["--twin", EMU, "--network", "{net}"],
        None,
        {"delay": 50, "loss": 150},
        "*--network *bad.yaml: loss_pct: must be <= 100.0, got 150.0*",
    ),
    (
        ["--twin", EMU, "--network", "{net}"],
        None,
        {"delay": ".nan", "loss": 0},
        "*--network *bad.yaml: delay_ms: must be a finite number, got nan*",
    ),
    (
        ["--twin", EMU, "--network", "{net}"],
        None,
        {"delay": 10, "loss": ".inf"},
        "*--network *bad.yaml: loss_pct: must be a finite number, got inf*",
    ),
    (["--twin", EMU, "--adb-port", "70000"], None, None, "*--adb-port: 70000: a port is 1..65535"),
    (["--twin", EMU, "--media-slots", "0"], None, None, "*--media-slots: 0: must be a whole*"),
]
IDS = [
    "twin-x0",
    "twin-x500",
    "negative-budget",
    "nan-budget",
    "region-XX",
    "bad-timezone",
    "missing-budget",
    "unknown-budget-option",
    "unknown-network",
    "network-delay-negative",
    "network-loss-150",
    "network-delay-nan",
    "network-loss-inf",
    "adb-port-70000",
    "media-slots-0",
]


@pytest.mark.parametrize("args,edit,network,message", CASES, ids=IDS)
def test_bad_configuration_is_one_line_and_exit_4_before_any_twin(
    pytester, tmp_path, args, edit, network, message
):
    args = list(args)
    if edit is not None:
        args += ["--profiles-dir", str(_profiles(tmp_path, edit))]
    if network is not None:
        net = tmp_path / "bad.yaml"
        net.write_text(NETWORK_FILE.format(**network))
        args = [a.format(net=net) for a in args]
    pytester.makepyfile(test_x="def test_x(device):\n    pass\n")
    reports = tmp_path / "r"
    result = pytester.runpytest_subprocess(
        *args, "--hil-reports", str(reports), "-p", "no:cacheprovider", timeout=60
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    errors = [line for line in result.stderr.lines if "mayday-hil:" in line]
    assert len(errors) == 1, result.stderr.lines
    result.stderr.fnmatch_lines([f"*mayday-hil: {message}"])
    assert "Traceback" not in result.stderr.str()
    # nothing was started: no run directory, no device list
    assert not list(reports.glob("*/devices.json"))


def test_twins_play_the_profile_from_profiles_dir(pytester, tmp_path, run_with_twin):
    profiles = _profiles(
        tmp_path,
        {
            f"{EMU}.yaml": (
                "ro.product.model: sdk_gphone64_x86_64",
                "ro.product.model: HIL-VALIDATED-1",
            )
        },
    )
    pytester.makepyfile(
        test_x=(
            "def test_model(device):\n"
            "    assert device.getprop('ro.product.model', timeout_s=10) == 'HIL-VALIDATED-1'\n"
        )
    )
    result = run_with_twin(tmp_path / "r", "--profiles-dir", str(profiles), twin=EMU, timeout_s=120)
    result.assert_outcomes(passed=1)
