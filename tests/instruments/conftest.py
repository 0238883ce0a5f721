"""Fixtures for the instruments layer: simulated WALT and relay on ptys, and a fake world.

The fake world stands in for the twin until the lead wires its framebuffer: a screen region
that shows a requested colour after a random draw latency, a speaker, and a stylus. Each
records its ground truth on the host's monotonic clock.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.twin.instruments import RelaySim, SerialSim, StepSignal, WaltSim, WaltSimConfig

SIM_THREADS = ("walt-sim", "relay-sim", "relay-listeners")


def pty_fds() -> dict[int, str]:
    """This process's descriptors on ptys: {fd: target}."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("/dev/pts/") or target == "/dev/ptmx":
            out[int(name)] = target
    return out


def fds_on(path: str) -> list[int]:
    """Descriptors of this process open on one device path (the port is released if none)."""
    return [fd for fd, target in pty_fds().items() if target == path]


def released(sim: SerialSim) -> None:
    """Assert the harness holds the sim's port no more: no descriptor on it but the sim's
    own, and it opens exclusively again (unless it vanished with the device)."""
    from harness.errors import InstrumentError
    from harness.instruments.serialport import SerialLink

    path = sim.path
    held = [fd for fd in fds_on(path) if sim.pty.closed or fd != sim.pty.slave_fd]
    assert held == [], f"{path} still open"
    try:
        link = SerialLink(path, 115200, exclusive=True)
    except InstrumentError as e:
        assert "No such file" in str(e), e  # the port vanished with the device
        return
    link.close()


@pytest.fixture
def assert_released() -> Callable[[SerialSim], None]:
    return released


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test leaves no simulator thread and no pty descriptor behind."""
    before = pty_fds()
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(t.name in SIM_THREADS for t in threading.enumerate()):
        time.sleep(0.01)
    alive = [t.name for t in threading.enumerate() if t.name in SIM_THREADS]
    assert not alive, f"threads left running: {alive}"
    leaked = {fd: t for fd, t in pty_fds().items() if before.get(fd) != t}
    assert not leaked, f"pty descriptors left open: {leaked}"


class FakeScreen:
    """The region under the photodiode: draw(white) shows the colour after a draw latency."""

    def __init__(self, seed: int = 0, latency_s: tuple[float, float] = (0.025, 0.07)):
        self.light = StepSignal(0.0)
        self.rng = random.Random(seed)
        self.latency_s = latency_s
        self.shown: list[tuple[float, float, bool]] = []  # (t_request, t_pixels, white)

    def draw(self, white: bool) -> float:
        """Its own request time, which the truth counts from (walt_latency.Request: a draw
        that knows when it asked; else a thread switch between the caller's clock read and
        this one, under load, would count as draw latency the truth does not have)."""
        t = time.monotonic()
        self.show_at(t, t + self.rng.uniform(*self.latency_s), white)
        return t

    def show_at(self, t_request: float, t_pixels: float, white: bool) -> None:
        self.light.set(t_pixels, 1.0 if white else 0.0)
        self.shown.append((t_request, t_pixels, white))

    def truth_ms(self, t_request: float) -> float:
        """Ground-truth draw latency of the request made at (about) t_request."""
        t_req, t_px, _ = min(self.shown, key=lambda s: abs(s[0] - t_request))
        assert abs(t_req - t_request) < 0.005, "no draw request near that time"
        return (t_px - t_req) * 1e3


class FakeSpeaker:
    """The device's headphone line: play() outputs a tone after an output latency."""

    def __init__(self, seed: int = 0, latency_s: tuple[float, float] = (0.02, 0.04)):
        self.line = StepSignal(0.0)
        self.rng = random.Random(seed)
        self.latency_s = latency_s
        self.played: list[tuple[float, float]] = []  # (t_request, t_sound)

    def play(self) -> None:
        t = time.monotonic()
        t_sound = t + self.rng.uniform(*self.latency_s)
        self.line.pulse(t_sound, 0.3, 0.05)  # 0.3 V for 50 ms
        self.played.append((t, t_sound))


class FakeStylus:
    """A tap with WALT's stylus: a 5 g shock, then the app flips the screen after a latency."""

    def __init__(
        self, screen: FakeScreen, seed: int = 0, latency_s: tuple[float, float] = (0.03, 0.08)
    ):
        self.shock = StepSignal(0.0)
        self.screen = screen
        self.rng = random.Random(seed)
        self.latency_s = latency_s
        self.white = False
        self.taps: list[tuple[float, float]] = []  # (t_shock, t_pixels)

    def tap(self) -> None:
        t_shock = time.monotonic() + 0.005
        self.shock.pulse(t_shock, 5.0, 0.003)
        self.white = not self.white
        t_px = t_shock + self.rng.uniform(*self.latency_s)
        self.screen.show_at(t_shock, t_px, self.white)
        self.taps.append((t_shock, t_px))


@pytest.fixture
def screen() -> FakeScreen:
    return FakeScreen(seed=7)


@pytest.fixture
def speaker() -> FakeSpeaker:
    return FakeSpeaker(seed=6)


@pytest.fixture
def stylus(screen: FakeScreen) -> FakeStylus:
    return FakeStylus(screen, seed=5)


@pytest.fixture
def make_walt_sim() -> Iterator[Callable[..., WaltSim]]:
    """Factory: make_walt_sim(brightness_source=..., **config fields) -> a started WaltSim."""
    sims: list[WaltSim] = []

    def make(
        brightness_source: Callable[[float], float] | None = None,
        audio_source: Callable[[float], float] | None = None,
        shock_source: Callable[[float], float] | None = None,
        **config: object,
    ) -> WaltSim:
        cfg = WaltSimConfig(**config)  # type: ignore[arg-type]
        sim = WaltSim(brightness_source, audio_source, shock_source, cfg)
        sims.append(sim)
        return sim.start()  # type: ignore[return-value]

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def make_relay_sim() -> Iterator[Callable[..., RelaySim]]:
    """Factory: make_relay_sim(**RelaySim kwargs) -> a started RelaySim."""
    sims: list[RelaySim] = []

    def make(**kwargs: object) -> RelaySim:
        sim = RelaySim(**kwargs)  # type: ignore[arg-type]
        sims.append(sim)
        return sim.start()

    yield make
    for sim in sims:
        sim.stop()
