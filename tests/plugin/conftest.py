"""What the plugin's tests share: an inner pytest run with a twin, started as a child of this
run (its own process group, registered with the run's reaper, stopped by its PID at teardown)
or through pytester, the one run directory of its reports, and a bounded wait."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from harness.farm.process import Child

INNER_TWIN = "android-emulator-api34"
INNER_STOP_GRACE_S = 10.0
INNER_TIMEOUT_S = 120.0
WAIT_POLL_S = 0.1


@pytest.fixture
def inner_run(tmp_path: Path, default_signals) -> Iterator[Callable[..., Child]]:
    """start(args, env=None, twin=INNER_TWIN) -> Child: `python -m pytest --twin TWIN -p
    no:cacheprovider ARGS` in tmp_path, stdout and stderr on one pipe, SIGINT/SIGTERM/SIGHUP
    at their defaults (the test stops it by a signal). Whatever still runs at teardown is
    killed (SIGKILL to its group)."""
    started: list[Child] = []

    def start(
        args: Sequence[str], env: Mapping[str, str] | None = None, twin: str = INNER_TWIN
    ) -> Child:
        child = Child(
            f"inner pytest run ({tmp_path.name})",
            [sys.executable, "-m", "pytest", "--twin", twin, "-p", "no:cacheprovider", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            preexec_fn=default_signals,
        )
        started.append(child.spawn())
        return child

    yield start
    for child in started:
        if child.alive():
            child.stop(signal.SIGKILL, INNER_STOP_GRACE_S)
        child.close_pipes()


@pytest.fixture
def run_with_twin(pytester: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """run(reports, *args, twin=INNER_TWIN, timeout_s=INNER_TIMEOUT_S) -> RunResult: pytester's
    files run by `pytest --twin TWIN --hil-reports REPORTS -p no:cacheprovider ARGS` in a
    subprocess (pytester's own, bounded by timeout_s)."""

    def run(
        reports: Path, *args: str, twin: str = INNER_TWIN, timeout_s: float = INNER_TIMEOUT_S
    ) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "--twin",
            twin,
            "--hil-reports",
            str(reports),
            "-p",
            "no:cacheprovider",
            *args,
            timeout=timeout_s,
        )

    return run


@pytest.fixture
def run_dir() -> Callable[[Path], Path]:
    """run_dir(reports) -> the one run directory an inner run wrote there."""

    def one(reports: Path) -> Path:
        runs = [p for p in reports.iterdir() if p.is_dir()]
        assert len(runs) == 1, runs
        return runs[0]

    return one


@pytest.fixture
def wait_until() -> Callable[[Callable[[], object], float, str], None]:
    """wait_until(cond, timeout_s, what): poll cond until true; fails naming `what` past the
    deadline."""

    def wait(cond: Callable[[], object], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond():
            assert time.monotonic() < deadline, f"{what} not within {timeout_s:g} s"
            time.sleep(WAIT_POLL_S)

    return wait
