"""A simulated WALT (Teensy latency timer, firmware protocol version 6) on a pty.

It speaks the firmware's serial protocol (single-character commands, case-flipped
acknowledgements, "G <tag> <t> <value> <count>" trigger lines; docs/walt.md) with the
firmware's timing habits: the 9 clock-sync digits 737 us apart, a 32-bit microsecond clock
zeroed by 'Z', a photodiode compared against 110/90 counts with hysteresis, an audio line
threshold of 20 counts, an accelerometer threshold of 900 counts, and commands that block the
main loop ('I', 'D', 'U', 'O') so the sensors are not probed meanwhile.

Physics, all on the host's monotonic clock:
- The WALT clock runs `drift_ppm` fast and starts at `clock_start_us`; 'Z' zeroes it at the
  moment the command reaches the board. `walt_to_host()` is the truth the driver must find.
- The USB link delays each byte by a fixed one-way latency plus an exponential jitter, in each
  direction (asymmetric if you like: the min/max bounds method does not care).
- The photodiode sees `brightness_source(t)` (mean luminance 0..1 of the probed region) through
  a first-order response of time constant `pd_tau_s` (10-90 % rise 2.2 tau), mapped to ADC
  counts between `pd_dark_counts` and `pd_white_counts`, plus Gaussian noise.
- The audio line is `audio_source(t)` volts (3.3 V = 1023 counts); the accelerometer is
  `shock_source(t)` g above rest (rest 500 counts, 3 g = 900 counts).

The sensors are sampled in virtual time (every `sample_period_s`) as the loop catches up, so a
source must answer for recent past times: `StepSignal` does. Sources must be cheap (they are
called about 10 000 times per simulated second while a probe is armed).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.twin.instruments.serialsim import SerialSim, TruthSink

Source = Callable[[float], float]
"""A sensor input: host monotonic seconds -> value (luminance 0..1, volts, or g)."""

PROTOCOL_VERSION = "6"
WALT_BAUD = 115200
CLOCK_SYNC_N = 9
SYNC_SEND_SPACING_S = 737e-6  # firmware: delayMicroseconds(737) before each sync digit
PING_DELAY_S = 0.010  # 'D'
NOTE_DELAY_US = 10000  # 'N'
CURVE_SAMPLES = 1000  # 'U': brightness curve
ACCEL_CURVE_SAMPLES = 4000  # 'O': accelerometer curve
CURVE_PERIOD_S = 470e-6  # delayMicroseconds(450) + analogRead + send
SCREEN_THRESH_HIGH = 110
SCREEN_THRESH_LOW = 90
AUDIO_THRESH_COUNTS = 20  # about 65 mV on the 3.3 V, 10-bit ADC
GSHOCK_THRESH_COUNTS = 900  # about 3 g
ADC_MAX = 1023
ADC_VREF_V = 3.3
ACCEL_REST_COUNTS = 500.0
ACCEL_COUNTS_PER_G = (GSHOCK_THRESH_COUNTS - ACCEL_REST_COUNTS) / 3.0
CLOCK_WRAP_US = 2**32
TICK_S = 0.001  # loop period while a probe or a curve is active
PD_WARMUP_TAU = 20  # filter history recomputed when a probe starts, in time constants


@dataclass
class WaltSimConfig:
    """Knobs of the simulated WALT (defaults: a typical USB full-speed link and panel)."""

    clock_start_us: int = 0
    drift_ppm: float = 0.0
    link_out_s: float = 250e-6  # host -> WALT minimum one-way latency
    link_in_s: float = 350e-6  # WALT -> host minimum one-way latency
    link_jitter_s: float = 150e-6  # mean of the exponential extra delay, each direction
    sample_period_s: float = 100e-6
    pd_dark_counts: float = 20.0
    pd_white_counts: float = 700.0
    pd_tau_s: float = 2e-3
    pd_noise_counts: float = 2.0
    baud: int = WALT_BAUD
    strict_baud: bool = True  # a UART-bridged board; a real Teensy (USB CDC) ignores the baud rate
    version: str = PROTOCOL_VERSION
    seed: int = 0


@dataclass
class _Trigger:
    tag: str
    t: int = 0  # raw 32-bit WALT time of the latest occurrence
    value: int = 0
    count: int = 0
    probe: bool = False
    autosend: bool = False

    def reset(self) -> None:
        self.t = self.value = self.count = 0
        self.probe = self.autosend = False


def _signed32(raw: int) -> int:
    return raw - CLOCK_WRAP_US if raw >= 2**31 else raw


class WaltSim(SerialSim):
    """A WALT on a pty pair; open `sim.path` with the harness's driver.

    Args:
        brightness_source: luminance (0..1) under the screen photodiode at a host time.
        audio_source: audio line level (volts) at a host time.
        shock_source: acceleration above rest (g) at a host time.
        config: clock, link, sensor and fault knobs.
        record: optional ground-truth sink, record(event, t, **fields).
    """

    def __init__(
        self,
        brightness_source: Source | None = None,
        audio_source: Source | None = None,
        shock_source: Source | None = None,
        config: WaltSimConfig | None = None,
        record: TruthSink | None = None,
    ):
        cfg = config or WaltSimConfig()
        super().__init__(
            "walt", cfg.baud, strict_baud=cfg.strict_baud, seed=cfg.seed, record=record
        )
        self.config = cfg
        self._brightness = brightness_source or (lambda t: 0.0)
        self._audio = audio_source or (lambda t: 0.0)
        self._shock = shock_source or (lambda t: 0.0)
        self._rate = 1.0 + cfg.drift_ppm * 1e-6
        now = self.note("config", **asdict(cfg))
        self._epoch_h = now
        self._epoch_us = float(cfg.clock_start_us)
        self._cmds: deque[tuple[float, int]] = deque()
        self._last_arrival = 0.0
        self._busy_until = 0.0
        self._t_sense = now
        self._curve: dict[str, Any] | None = None
        self._pd_t = now
        self._pd_y = self._brightness(now)
        self._decay = math.exp(-cfg.sample_period_s / cfg.pd_tau_s)
        self._sync_times = [0] * CLOCK_SYNC_N
        self._last_sent = -1
        self.screen = _Trigger("S")
        self.sound = _Trigger("A")
        self.gshock = _Trigger("G")
        self.laser = _Trigger("L")
        self.midi = _Trigger("M")
        self._triggers = (self.laser, self.screen, self.sound, self.midi, self.gshock)

    # -- ground truth of the clock ------------------------------------------------------------

    def walt_at(self, t_host: float) -> float:
        """The WALT clock (us, unwrapped, current zero epoch) at a host time: the truth."""
        return self._epoch_us + (t_host - self._epoch_h) * 1e6 * self._rate

    def walt_to_host(self, walt_us: float) -> float:
        """The host time at which the WALT clock read `walt_us` (unwrapped, current epoch)."""
        return self._epoch_h + (walt_us - self._epoch_us) / (1e6 * self._rate)

    @property
    def zero_host(self) -> float:
        """Host time at which the WALT clock read 0 in the current epoch."""
        return self.walt_to_host(0.0)

    def _raw(self, t_host: float) -> int:
        return int(math.floor(self.walt_at(t_host))) % CLOCK_WRAP_US

    # -- link model ---------------------------------------------------------------------------

    def _jitter(self) -> float:
        j = self.config.link_jitter_s
        return self.rng.expovariate(1.0 / j) if j > 0 else 0.0

    def _out(self, text: str | bytes, t_send: float) -> None:
        data = text.encode("latin-1") if isinstance(text, str) else text
        self._send(data, t_send + self.config.link_in_s + self._jitter())

    def _line(self, text: str, t_send: float) -> None:
        self._out(text + "\n", t_send)

    def _on_bytes(self, data: bytes, t_rx: float) -> None:
        arrival = max(t_rx + self.config.link_out_s + self._jitter(), self._last_arrival)
        self._last_arrival = arrival
        for b in data:
            self._cmds.append((arrival, b))

    # -- virtual time -------------------------------------------------------------------------

    def _advance(self, now: float) -> float | None:
        while True:
            p = max(self._cmds[0][0], self._busy_until) if self._cmds else math.inf
            self._sense_until(min(p, now))
            if p > now:
                break
            _, b = self._cmds.popleft()
            self._execute(b, p)
        if self._curve is not None or any(t.probe for t in self._triggers):
            return now + TICK_S
        if self._cmds:
            return max(self._cmds[0][0], self._busy_until)
        return None

    def _sense_until(self, t_end: float) -> None:
        if self._curve is not None:
            self._run_curve(t_end)
        screen, sound, gshock = self.screen, self.sound, self.gshock
        if not (screen.probe or sound.probe or gshock.probe):
            self._t_sense = max(self._t_sense, t_end)
            return
        period = self.config.sample_period_s
        ts = max(self._t_sense, self._busy_until)
        while ts + period <= t_end:
            ts += period
            if screen.probe:
                v = self._pd_counts(ts)
                if (screen.value == 0 and v > SCREEN_THRESH_HIGH) or (
                    screen.value != 0 and v < SCREEN_THRESH_LOW
                ):
                    screen.value = 0 if screen.value else 1
                    self._hit(screen, ts, light=round(v))
            if sound.probe and self._audio(ts) / ADC_VREF_V * ADC_MAX > AUDIO_THRESH_COUNTS:
                sound.probe = False
                self._hit(sound, ts)
            if gshock.probe and self._accel_counts(ts) > GSHOCK_THRESH_COUNTS:
                gshock.probe = False
                self._hit(gshock, ts)
        self._t_sense = max(self._t_sense, ts)

    def _hit(self, trig: _Trigger, ts: float, **fields: Any) -> None:
        trig.t = self._raw(ts)
        trig.count += 1
        self.note(f"trigger_{trig.tag}", ts, value=trig.value, walt_us=self.walt_at(ts), **fields)
        if trig.autosend:
            self._send_trigger(trig, ts)
            trig.count = 0

    def _send_trigger(self, trig: _Trigger, t_send: float) -> None:
        self._line(f"G {trig.tag} {_signed32(trig.t)} {trig.value} {trig.count}", t_send)

    def _pd_counts(self, ts: float) -> float:
        """Photodiode ADC reading at host time ts (advances the first-order response)."""
        cfg = self.config
        period = cfg.sample_period_s
        if ts - self._pd_t > PD_WARMUP_TAU * cfg.pd_tau_s:  # long idle: restart from rest
            self._pd_t = ts - PD_WARMUP_TAU * cfg.pd_tau_s
            self._pd_y = self._brightness(self._pd_t)
        y, t = self._pd_y, self._pd_t
        while t + period <= ts:
            t += period
            level = self._brightness(t)
            y = level + (y - level) * self._decay
        if ts > t:
            level = self._brightness(ts)
            y = level + (y - level) * math.exp(-(ts - t) / cfg.pd_tau_s)
            t = ts
        self._pd_y, self._pd_t = y, t
        v = cfg.pd_dark_counts + (cfg.pd_white_counts - cfg.pd_dark_counts) * y
        v += self.rng.gauss(0.0, cfg.pd_noise_counts)
        return min(max(v, 0.0), ADC_MAX)

    def _accel_counts(self, ts: float) -> float:
        v = ACCEL_REST_COUNTS + self._shock(ts) * ACCEL_COUNTS_PER_G + self.rng.gauss(0.0, 2.0)
        return min(max(v, 0.0), ADC_MAX)

    def _run_curve(self, t_end: float) -> None:
        curve = self._curve
        assert curve is not None
        while curve["i"] < curve["n"]:
            ts = curve["start"] + curve["i"] * CURVE_PERIOD_S
            if ts > t_end:
                return
            v = curve["read"](ts)
            self._line(f"{_signed32(self._raw(ts))} {round(v)}", ts)
            curve["i"] += 1
        self._line("end", curve["start"] + curve["n"] * CURVE_PERIOD_S)
        self._curve = None

    # -- the firmware's process_command() ------------------------------------------------------

    def _ack(self, cmd: str, p: float) -> None:
        self._line(cmd.swapcase(), p)

    def _execute(self, b: int, p: float) -> None:  # noqa: C901 -- one branch per WALT command, as walt.ino
        cmd = chr(b)
        if cmd == "Z":
            self._epoch_h, self._epoch_us = p, 0.0
            self._sync_times = [0] * CLOCK_SYNC_N
            self._last_sent = -1
            self.note("zero", p)
            self._ack(cmd, p)
        elif cmd == "T":
            self._line(f"t {self._raw(p)}", p)
        elif cmd == "P":
            self._ack(cmd, p)
        elif cmd == "D":
            self._busy_until = p + PING_DELAY_S
            self._ack(cmd, p + PING_DELAY_S)
        elif "1" <= cmd <= "9":
            self._sync_times[b - ord("1")] = self._raw(p)
            self._last_sent = -1
        elif cmd == "R":
            self._last_sent += 1
            t = self._sync_times[self._last_sent] if self._last_sent < CLOCK_SYNC_N else 0
            self._line(f"{self._last_sent + 1}:{_signed32(t)}", p)
        elif cmd == "I":
            self._last_sent = -1
            for i in range(CLOCK_SYNC_N):
                ts = p + SYNC_SEND_SPACING_S * (i + 1)
                self._sync_times[i] = self._raw(ts)
                self._line(str(i + 1), ts)
            self._busy_until = p + SYNC_SEND_SPACING_S * CLOCK_SYNC_N
        elif cmd == "F":
            self._sync_times = [0] * CLOCK_SYNC_N
            self._last_sent = -1
            for trig in self._triggers:
                trig.reset()
            self._ack(cmd, p)
        elif cmd == "V":
            self._line(f"v {self.config.version}", p)
        elif cmd == "G":
            self._line(str(_signed32(self.gshock.t)), p)
            self.gshock.t = self.gshock.count = 0
            self.gshock.probe = True
        elif cmd == "A":
            self.sound.t = self.sound.count = 0
            self.sound.probe = self.sound.autosend = True
            self._ack(cmd, p)
        elif cmd == "B":
            self.note("beep", p)
            self._line(f"b {_signed32(self._raw(p))}", p)
        elif cmd == "S":
            self._ack(cmd, p)
        elif cmd == "M":
            self.midi.t = self.midi.count = 0
            self.midi.probe = False  # no MIDI host in the simulation
            self.midi.autosend = True
            self._ack(cmd, p)
        elif cmd == "N":
            self._line(f"n {(self._raw(p) + NOTE_DELAY_US) % CLOCK_WRAP_US}", p)
            self._busy_until = p + NOTE_DELAY_US * 1e-6
        elif cmd == "C":
            self.screen.value = 1 if self._pd_counts(p) > SCREEN_THRESH_HIGH else 0
            self.screen.probe = self.screen.autosend = True
            self._t_sense = max(self._t_sense, p)
            self._ack(cmd, p)
        elif cmd == "c":
            self.screen.probe = self.screen.autosend = False
            self._ack(cmd, p)
        elif cmd == "E":
            self._send_trigger(self.screen, p)
            self.screen.count = 0
        elif cmd == "L":
            self.laser.autosend = True
            self.laser.count = 0
            self._ack(cmd, p)
        elif cmd == "l":
            self.laser.autosend = False
            self._ack(cmd, p)
        elif cmd == "J":
            self._send_trigger(self.laser, p)
            self.laser.count = 0
        elif cmd in ("U", "O"):
            self._ack(cmd, p)
            n = CURVE_SAMPLES if cmd == "U" else ACCEL_CURVE_SAMPLES
            read = self._pd_counts if cmd == "U" else self._accel_counts
            self._curve = {"start": p, "n": n, "i": 0, "read": read}
            self._busy_until = p + n * CURVE_PERIOD_S
        elif cmd == "Q":
            g, pd = round(self._accel_counts(p)), round(self._pd_counts(p))
            self._line(f"q G:{g} PD_screen:{pd} PD_laser:0", p)
        else:
            self._out(b"Unknown command: " + bytes([b]) + b"\n", p)
