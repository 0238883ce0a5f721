"""Shared fixtures: one private adb server per test session (per xdist worker), twins started and
stopped per test; the xdist groups that keep tests sharing a resource off each other's workers."""

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


# The suite runs side by side under pytest-xdist (README: `-n 2 --dist loadgroup`). The tests of
# one group run on one worker, one after another; every other test goes to whichever worker is
# free. Each group names what its tests share that two workers must not use at once.
XDIST_GROUPS: dict[str, tuple[str, ...]] = {
    # What keeps the host's cores busy for tens of seconds: live media sessions (the host decodes,
    # encodes and analyses video for each; two at once on 2 cores starve each other and the
    # frames they measure, the plugin's own rule of one live media session per two cores,
    # harness/plugin/slots.py) and the vision corpora (thousands of frame decodes). One at a
    # time, so none of them runs beside another. With them, the relay's accuracy test: it times
    # 10,000 datagrams through a Python relay to 2 ms, which a session beside it on 2 cores
    # breaks (CI, session 7: the relay's own hold p50 +2.1 ms, median added delay +3.75 ms).
    "host-cpu": (
        "tests/media/",
        "tests/vision/test_corpus.py",
        "tests/vision/test_onset.py",
        "tests/network/test_relay_accuracy.py",
    ),
    # adbutils' e2e tests: one sdist cache (~/.cache/mayday-hil/peer), downloaded and unpacked
    # by whichever test comes first.
    "adbutils-peer": ("tests/twin/test_peer_adbutils.py",),
}


def xdist_group_of(nodeid: str) -> str | None:
    """The XDIST_GROUPS group a test (by node id, relative to the rootdir) belongs to, if any."""
    for group, prefixes in XDIST_GROUPS.items():
        if nodeid.startswith(prefixes):
            return group
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test of an XDIST_GROUPS group with `xdist_group(name)`."""
    for item in items:
        group = xdist_group_of(item.nodeid)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
