"""Driver for a WALT latency timer (google/walt firmware, protocol version 6) over pyserial.

The firmware speaks single-character commands, acknowledged with the case flipped ('Z' ->
"z"); sensor events arrive as lines "G <tag> <t_us> <value> <count>". Its clock is zeroed
with 'Z' and bounded against the host's with the min/max one-way method of WALT's
sync_clock.c (see clock.py and docs/walt.md). Every read is bounded; a port that vanishes, a
board that answers garbage or nothing, or a wrong baud rate ends in one InstrumentError naming
the port, and the port is closed before it is raised.

Usage:
    with Walt.open("/dev/ttyACM0") as walt:   # reset, version check, clock sync
        walt.screen_auto(True)
        trig = walt.wait_trigger("S", timeout_s=1.0)
        t_host = walt.to_host(trig.walt_us)

Size: one driver for one wire protocol (commands, events, clock sync, drift), kept whole.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import InstrumentError
from harness.instruments.clock import RemoteClock, SyncPoint, unwrap_us
from harness.instruments.serialport import Line, SerialLink, find_ports, is_text

log = logging.getLogger(__name__)

WALT_BAUD = 115200
PROTOCOL_VERSION = "6"
TEENSY_VID = 0x16C0
TEENSY_SERIAL_PIDS = (0x0483, 0x0485, 0x0487, 0x0489)  # Serial, +MIDI, +keyboard, +MIDI (TD 1.31+)

CMD_TIMEOUT_S = 0.5  # any command's answer
DRAIN_QUIET_S = 0.02  # input considered flushed after this much silence
DRAIN_MAX_S = 0.5  # a port that keeps talking is flushed for at most this long
CURVE_TIMEOUT_S = 2.0  # 'U': 1000 samples take about 0.5 s
SYNC_REPEATS = 7  # kSyncRepeats in sync_clock.c
SYNC_N = 9  # digits per bounds round
SYNC_SLEEP_MIN_US = 70
SYNC_SLEEP_MAX_US = 700
RESYNC_INTERVAL_S = 2.0  # bounds re-measured when older than this during a run
DRIFT_LIMIT_US = 500.0  # a measured lag this far from the model is logged as drift
CLOCK_JUMP_US = 50_000.0  # this far off, the WALT was reset: zero it again
MAX_STRAY_LINES = 16  # unexpected lines tolerated while waiting for one answer

_TRIGGER_RE = re.compile(r"^G ([A-Z]) (-?\d+) (-?\d+) (-?\d+)$")
_INT_RE = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class Trigger:
    """One sensor event as the firmware reported it.

    Attributes:
        tag: "S" screen photodiode, "A" audio line, "L" laser, "G" accelerometer, "M" MIDI.
        walt_us: WALT time of the event (us, unwrapped when the clock is synced).
        value: 1 = changed to light / high, 0 = to dark (screen, laser); 0 for audio.
        count: occurrences since the last report (more than 1: flicker or PWM).
        t_rx: host time the line arrived.
    """

    tag: str
    walt_us: int
    value: int
    count: int
    t_rx: float


@dataclass(frozen=True)
class DriftCheck:
    """Result of re-measuring the clock bounds without re-zeroing."""

    drift_us: float  # measured lag midpoint minus the model's prediction
    half_width_us: float
    drift_ppm: float  # the refitted drift of the WALT clock


def find_walt() -> str:
    """The device path of the only WALT (Teensy in a serial mode) on USB.

    Raises:
        InstrumentError: none, or more than one.
    """
    ports = find_ports(TEENSY_VID, TEENSY_SERIAL_PIDS)
    ids = ", ".join(f"{TEENSY_VID:04x}:{p:04x}" for p in TEENSY_SERIAL_PIDS)
    if not ports:
        raise InstrumentError(f"no WALT found on USB (looked for {ids}); pass its port")
    if len(ports) > 1:
        listed = "; ".join(str(p) for p in ports)
        raise InstrumentError(f"{len(ports)} WALT candidates ({listed}); pass the port to use")
    return ports[0].device


def parse_trigger(text: str) -> tuple[str, int, int, int] | None:
    """(tag, raw_t, value, count) of a "G <tag> <t> <value> <count>" line, else None."""
    m = _TRIGGER_RE.match(text)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


def _sample(data: bytes, n: int = 32) -> str:
    return repr(data[:n]) + ("..." if len(data) > n else "")


class Walt:
    """One WALT on one serial port. Not thread-safe: one caller drives it.

    Use `Walt.open()`; the constructor takes an already open link.
    """

    def __init__(self, link: SerialLink):
        self.link = link
        self.port = link.port
        self.clock: RemoteClock | None = None
        self.version: str | None = None
        self._triggers: deque[Trigger] = deque()
        self.stray_lines = 0

    @classmethod
    def open(
        cls,
        port: str | None = None,
        *,
        baud: int = WALT_BAUD,
        sync: bool = True,
        check_version: bool = True,
    ) -> Walt:
        """Open a WALT: flush, reset ('F'), check the protocol version, sync the clock.

        Args:
            port: device path; None finds the only WALT by USB VID/PID.
            baud: 115200 (a Teensy ignores it; a UART-bridged clone does not).
            sync: zero and bound the clock now.
            check_version: refuse firmware that speaks another protocol version.

        Raises:
            InstrumentError: no port, no answer, garbage, wrong version (port released).
        """
        port = port or find_walt()
        walt = cls(SerialLink(port, baud, label="WALT"))
        try:
            walt.link.drain(DRAIN_QUIET_S, DRAIN_MAX_S)
            walt.reset()
            if check_version:
                walt.check_version()
            if sync:
                walt.sync()
        except BaseException:
            walt.close()
            raise
        return walt

    def __enter__(self) -> Walt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop auto-reporting if possible and release the port. Never raises."""
        if self.link.is_open:
            try:
                self.link.write(b"c")  # screen auto-send off; nothing else streams unasked
            except InstrumentError as e:
                log.debug("%s: %s", self.link.where(), e)
        self.link.close()

    @property
    def is_open(self) -> bool:
        return self.link.is_open

    # -- command/answer -----------------------------------------------------------------------

    def _write(self, cmd: str) -> float:
        return self.link.write(cmd.encode("ascii"))

    def _expect(self, what: str, accept: Callable[[str], bool], timeout_s: float) -> Line:
        """The next line `accept` takes; triggers met meanwhile are queued.

        Raises:
            InstrumentError: no such line within timeout_s, or too many others (port closed).
        """
        deadline = time.monotonic() + timeout_s
        stray: list[bytes] = []
        while True:
            line = self.link.read_line(deadline - time.monotonic())
            if line is None:
                raise self._no_answer(what, timeout_s, stray)
            text = line.text
            if line.printable and accept(text):
                return line
            if line.printable and self._queue_trigger(text, line.t):
                continue
            if text.startswith("Unknown command"):
                raise self.link.fail(
                    f"{what}: the WALT does not know this command ({text!r}); "
                    f"its firmware speaks another protocol than version {PROTOCOL_VERSION}?"
                )
            stray.append(line.data)
            self.stray_lines += 1
            log.debug("%s: stray line while waiting for %s: %r", self.link.where(), what, line.data)
            if len(stray) >= MAX_STRAY_LINES:
                raise self._no_answer(what, timeout_s, stray)

    def _no_answer(self, what: str, timeout_s: float, stray: list[bytes]) -> InstrumentError:
        got = b"\n".join(stray) + (b"\n" if stray else b"") + self.link.take_partial()
        if not got:
            return self.link.fail(
                f"no answer to {what} within {timeout_s:g} s "
                "(not a WALT, not running its firmware, or a wrong baud rate on a UART clone)"
            )
        if not is_text(got):
            return self.link.fail(
                f"garbled answer to {what}: {_sample(got)} ({len(got)} bytes); "
                f"wrong baud rate? (port opened at {self.link.baud} baud, a WALT speaks "
                f"{WALT_BAUD}) or not a WALT"
            )
        return self.link.fail(f"unexpected answer to {what}: {_sample(got, 80)}; not a WALT?")

    def command(self, cmd: str, *, timeout_s: float = CMD_TIMEOUT_S) -> str:
        """Send a one-character command; return its answer after the case-flipped echo.

        E.g. command("V") -> "6" for the reply "v 6"; command("Z") -> "" for "z".
        """
        if len(cmd) != 1:
            raise ValueError("WALT commands are single characters")
        ack = cmd.swapcase()
        self._write(cmd)
        line = self._expect(f"{cmd!r}", lambda s: s == ack or s.startswith(ack + " "), timeout_s)
        return line.text[1:].strip()

    def reset(self) -> None:
        """'F': reset the firmware's triggers and sync state (not its clock)."""
        self.command("F")
        self._triggers.clear()

    def check_version(self) -> str:
        """'V': the firmware's protocol version; must be PROTOCOL_VERSION.

        Raises:
            InstrumentError: another version (port closed).
        """
        self.version = self.command("V")
        if self.version != PROTOCOL_VERSION:
            raise self.link.fail(
                f"firmware protocol version {self.version!r}; this driver speaks "
                f"{PROTOCOL_VERSION!r} (flash the matching walt.ino)"
            )
        return self.version

    def ping(self) -> float:
        """'P': round-trip time of one byte (s)."""
        t0 = time.monotonic()
        self.command("P")
        return time.monotonic() - t0

    def time_now(self) -> int:
        """'T': the WALT clock now (us, unwrapped when synced)."""
        t_sent = time.monotonic()
        raw = int(self.command("T"))
        return self.clock.unwrap(raw, t_sent) if self.clock else raw

    # -- clock sync ---------------------------------------------------------------------------

    def sync(self, repeats: int = SYNC_REPEATS) -> RemoteClock:
        """Zero the WALT clock ('Z') and bound its lag (min/max one-way); drops queued events.

        Returns:
            The new clock; its last point's half width is the sync uncertainty.
        """
        self.link.drain(DRAIN_QUIET_S, DRAIN_MAX_S)
        self._triggers.clear()
        base = self._write("Z")
        line = self._expect("clock zero ('Z')", lambda s: s == "z", CMD_TIMEOUT_S)
        clock = RemoteClock(base)
        point = self._bounds(clock, 0.0, (line.t - base) * 1e6, repeats)
        clock.add(point)
        clock.shift_base(point.min_lag_us)  # as sync_clock.c: remote zero at min lag
        self.clock = clock
        log.info("%s: clock synced: %s", self.link.where(), clock.describe())
        return clock

    def check_drift(self, repeats: int = SYNC_REPEATS) -> DriftCheck:
        """Re-measure the bounds without re-zeroing and refit the drift (update_bounds)."""
        clock = self.clock
        if clock is None:
            self.sync(repeats)
            return DriftCheck(0.0, self.clock.last.half_width_us, 0.0)
        point = self._bounds(clock, -1e7, 1e7, repeats)
        drift = point.mid_us - clock.lag_us(point.walt_us)
        clock.add(point)
        outside = not point.min_lag_us <= clock.lag_us(point.walt_us) <= point.max_lag_us
        if abs(drift) > DRIFT_LIMIT_US or outside:
            log.warning("%s: clock drifted %.0f us since the last sync", self.link.where(), drift)
        return DriftCheck(drift, point.half_width_us, clock.drift_ppm)

    def ensure_sync(self, max_age_s: float = RESYNC_INTERVAL_S) -> None:
        """Sync if never synced; re-measure bounds if the last ones are older than max_age_s.

        Call it only between events (the firmware does not probe its sensors while it answers
        a sync). A clock that jumped (the WALT was reset) is zeroed again.
        """
        if self.clock is None:
            self.sync()
        elif time.monotonic() - self.clock.last.t_host > max_age_s:
            check = self.check_drift()
            if abs(check.drift_us) > CLOCK_JUMP_US:
                log.warning("%s: the WALT clock jumped; re-zeroing", self.link.where())
                self.sync()

    def _bounds(self, clock: RemoteClock, lo: float, hi: float, repeats: int) -> SyncPoint:
        remote: list[float] = []
        for _ in range(repeats):
            lo = max(lo, self._min_lag_round(clock, lo, hi, remote))
            hi = min(hi, self._max_lag_round(clock, lo, remote))
        if hi < lo:
            raise self.link.fail(
                f"clock bounds are inconsistent ([{lo:.0f}, {hi:.0f}] us): the WALT clock jumped"
            )
        return SyncPoint(sum(remote) / len(remote), lo, hi, time.monotonic())

    def _min_lag_round(
        self, clock: RemoteClock, lo: float, hi: float, remote: list[float]
    ) -> float:
        """Digits host -> WALT: E > L_sent - R_received."""
        sleep_us = min(max((hi - lo) / 10.0, SYNC_SLEEP_MIN_US), SYNC_SLEEP_MAX_US)
        sent = []
        for i in range(SYNC_N):
            sent.append(clock.local_us(self._write(str(i + 1))))
            time.sleep(sleep_us * 1e-6)
        best = -float("inf")
        for l_sent, raw in zip(sent, self._readout(), strict=True):
            if raw == 0:
                continue
            r = unwrap_us(raw, l_sent - lo)
            remote.append(r)
            best = max(best, l_sent - r)
        return best

    def _max_lag_round(self, clock: RemoteClock, lo: float, remote: list[float]) -> float:
        """Digits WALT -> host ('I'): E < L_received - R_sent."""
        self._write("I")
        received: dict[int, float] = {}
        for _ in range(SYNC_N):
            line = self._expect(
                "sync digits ('I')",
                lambda s: len(s) == 1 and "1" <= s <= "9" and int(s) not in received,
                CMD_TIMEOUT_S,
            )
            received[int(line.text)] = clock.local_us(line.t)
        best = float("inf")
        for i, raw in enumerate(self._readout()):
            l_recv = received.get(i + 1)
            if raw == 0 or l_recv is None:
                continue
            r = unwrap_us(raw, l_recv - lo)
            remote.append(r)
            best = min(best, l_recv - r)
        return best

    def _readout(self) -> list[int]:
        """'R' x 9: the WALT's timestamps of the last 9 sync digits (raw)."""
        self._write("R" * SYNC_N)
        out = []
        for i in range(SYNC_N):
            prefix = f"{i + 1}:"
            line = self._expect(
                "sync readout ('R')",
                lambda s, p=prefix: s.startswith(p) and _INT_RE.match(s[len(p) :]) is not None,
                CMD_TIMEOUT_S,
            )
            out.append(int(line.text[len(prefix) :]))
        return out

    def to_host(self, walt_us: float) -> float:
        """Host monotonic time of a WALT timestamp.

        Raises:
            InstrumentError: the clock was never synced.
        """
        if self.clock is None:
            raise InstrumentError(f"{self.link.where()}: clock not synced; call sync() first")
        return self.clock.to_host(walt_us)

    def uncertainty_s(self, walt_us: float) -> float:
        """Half-width of the host-time interval of a WALT timestamp (s)."""
        return float("inf") if self.clock is None else self.clock.uncertainty_us(walt_us) * 1e-6

    # -- sensors ------------------------------------------------------------------------------

    def _queue_trigger(self, text: str, t_rx: float) -> bool:
        parsed = parse_trigger(text)
        if parsed is None:
            return False
        tag, raw, value, count = parsed
        walt_us = self.clock.unwrap(raw, t_rx) if self.clock else raw
        self._triggers.append(Trigger(tag, walt_us, value, count, t_rx))
        return True

    def wait_trigger(self, tag: str, timeout_s: float) -> Trigger | None:
        """The next event of one sensor (queued ones first), or None after timeout_s.

        Raises:
            InstrumentError: the port vanished (port closed).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            for trig in self._triggers:
                if trig.tag == tag:
                    self._triggers.remove(trig)
                    return trig
            line = self.link.read_line(deadline - time.monotonic())
            if line is None:
                return None
            if not (line.printable and self._queue_trigger(line.text, line.t)):
                self.stray_lines += 1
                log.debug("%s: stray line %r", self.link.where(), line.data)

    def take_triggers(self, tag: str | None = None) -> list[Trigger]:
        """Remove and return queued events (of one sensor, or all), after reading what arrived."""
        while (line := self.link.read_line(0.0)) is not None:
            if not (line.printable and self._queue_trigger(line.text, line.t)):
                self.stray_lines += 1
        out = [t for t in self._triggers if tag is None or t.tag == tag]
        for t in out:
            self._triggers.remove(t)
        return out

    def screen_auto(self, on: bool) -> None:
        """'C' / 'c': report every screen light transition (or stop)."""
        self.command("C" if on else "c")

    def laser_auto(self, on: bool) -> None:
        """'L' / 'l': report every laser beam transition (or stop)."""
        self.command("L" if on else "l")

    def arm_audio(self) -> None:
        """'A': report the next time the audio line rises above threshold (once)."""
        self.command("A")

    def read_shock(self) -> int | None:
        """'G': the last accelerometer shock since the previous 'G' (None if none); re-arms."""
        t_sent = time.monotonic()
        self._write("G")
        line = self._expect(
            "shock time ('G')", lambda s: _INT_RE.match(s) is not None, CMD_TIMEOUT_S
        )
        raw = int(line.text)
        if raw == 0:
            return None
        return self.clock.unwrap(raw, t_sent) if self.clock else raw

    def sample_all(self) -> dict[str, int]:
        """'Q': raw ADC readings {"G": .., "PD_screen": .., "PD_laser": ..}."""
        text = self.command("Q")
        out = {}
        for part in text.split():
            key, _, value = part.partition(":")
            if value.lstrip("-").isdigit():
                out[key] = int(value)
        return out

    def brightness_curve(
        self, during: Callable[[], object] | None = None, lead_s: float = 0.05
    ) -> list[tuple[int, int]]:
        """'U': 1000 photodiode samples about 0.47 ms apart, as (walt_us, counts).

        Args:
            during: called once, `lead_s` after the curve starts (e.g. to flip the screen).
            lead_s: delay before `during` is called.

        Raises:
            InstrumentError: the curve did not end within CURVE_TIMEOUT_S (port closed).
        """
        t_ack = time.monotonic()
        self.command("U")
        deadline = t_ack + CURVE_TIMEOUT_S
        samples: list[tuple[int, int]] = []
        pending = during
        while True:
            now = time.monotonic()
            if pending is not None and now >= t_ack + lead_s:
                pending()
                pending = None
                continue
            wait = deadline - now
            if pending is not None:
                wait = min(wait, t_ack + lead_s - now)
            line = self.link.read_line(max(0.0, wait))
            if line is None:
                if time.monotonic() >= deadline:
                    raise self.link.fail(
                        f"brightness curve ('U') did not end within {CURVE_TIMEOUT_S:g} s "
                        f"({len(samples)} samples)"
                    )
                continue
            text = line.text
            if text == "end":
                return samples
            parts = text.split()
            if len(parts) == 2 and all(_INT_RE.match(p) for p in parts):
                raw, counts = int(parts[0]), int(parts[1])
                walt_us = self.clock.unwrap(raw, line.t) if self.clock else raw
                samples.append((walt_us, counts))
            elif not self._queue_trigger(text, line.t):
                self.stray_lines += 1
