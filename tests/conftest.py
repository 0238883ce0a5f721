"""Shared fixtures: one private adb server per test session, twins started and stopped per test."""

from __future__ import annotations

import pytest

from harness.farm import AdbServer, TwinProcess

_SESSION_REAPER = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    """The test session's own reaper: every child a test or fixture starts through
    harness.farm.process (adb servers, twins, relays, farms) is recorded in its ledger
    ($HIL_REAPER_LEDGER), so a test run killed outright (SIGKILL, a CI timeout) leaves nothing
    running. xdist workers inherit the controller's ledger."""
    if hasattr(config, "workerinput"):
        return
    import tempfile
    from pathlib import Path

    from harness.farm.reaper import Reaper

    ledger_dir = Path(tempfile.mkdtemp(prefix="hil-tests-reaper-"))
    reaper = Reaper(ledger_dir / "ledger").start()
    reaper.track_dir(ledger_dir)
    config.stash[_SESSION_REAPER] = (reaper, ledger_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop what a test left running, then the reaper. Never raises."""
    entry = config.stash.get(_SESSION_REAPER, None)
    if entry is None:
        return
    import shutil

    reaper, ledger_dir = entry
    reaper.reap_leftovers()
    reaper.stop()
    shutil.rmtree(ledger_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory):
    server = AdbServer(home=tmp_path_factory.mktemp("adb-home")).start()
    yield server
    server.stop()


@pytest.fixture
def start_twin(adb_server, tmp_path):
    """start_twin(profile, **TwinProcess kwargs) -> a running TwinProcess, stopped at teardown."""
    started: list[TwinProcess] = []

    def start(profile: str, **kw) -> TwinProcess:
        tp = TwinProcess(
            profile,
            adb=adb_server,
            state_dir=kw.pop("state_dir", tmp_path / f"twin{len(started)}"),
            **kw,
        )
        started.append(tp)
        tp.start()
        return tp

    yield start
    for tp in started:
        tp.stop()


pytest_plugins = ["pytester"]


def _reset_signal_dispositions() -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.fixture
def default_signals():
    """preexec_fn for a child that a test stops by a signal: SIGINT, SIGTERM and SIGHUP back to
    their defaults, as in a terminal. A run started by nohup or as a background job ignores
    SIGHUP or SIGINT, children inherit that, and such a child would never see the signal."""
    return _reset_signal_dispositions
