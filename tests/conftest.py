"""Shared fixtures: one private adb server per test session, twins started and stopped per test."""

from __future__ import annotations

import pytest

from harness.farm import AdbServer, TwinProcess


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
