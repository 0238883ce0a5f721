"""A simulated LCUS-type USB relay board (CH340 USB-serial, 9600 baud) on a pty.

Protocol (docs/instruments.md): 4-byte frames ``A0 <channel> <op> <checksum>``, op 0x00 = off,
0x01 = on, checksum = (0xA0 + channel + op) & 0xFF; a lone 0xFF asks for the status, answered
(on boards that support it) with one ASCII line per channel, ``CH1: ON\\r\\n``. Frames with a
bad checksum or channel are ignored, as the boards do.

A relay that changes state calls its power listeners, `on_power(on)`, after the mechanical
actuation time. The listeners run on a worker thread of their own, in order, so a slow one
(starting a twin process) never stalls the serial line.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from harness.twin.instruments.serialsim import SerialSim, TruthSink

log = logging.getLogger(__name__)

LCUS_BAUD = 9600
FRAME_START = 0xA0
STATUS_QUERY = 0xFF
ACTUATE_S = 0.008  # coil energised -> contacts switched
STATUS_REPLY_DELAY_S = 0.002  # the board's MCU answering the status query
LISTENER_STOP_TIMEOUT_S = 2.0

PowerListener = Callable[[bool], None]


class RelaySim(SerialSim):
    """An LCUS-1/2/4/8 relay board.

    Args:
        channels: number of relays (1 for an LCUS-1).
        on_power: listener of channel 1, called with True (power on) / False (power off).
        initially_on: relay states at start (all off on a real board after USB enumeration).
        answers_status: whether the board answers the 0xFF status query (many LCUS-1 do not).
        baud: the board's baud rate (9600 for LCUS boards).
        actuate_s: delay between a frame and the contacts switching.
        seed: seed for garbage/garbling.
        record: optional ground-truth sink, record(event, t, **fields).
    """

    def __init__(
        self,
        channels: int = 1,
        *,
        on_power: PowerListener | None = None,
        initially_on: bool = False,
        answers_status: bool = True,
        baud: int = LCUS_BAUD,
        actuate_s: float = ACTUATE_S,
        seed: int = 0,
        record: TruthSink | None = None,
    ):
        super().__init__("relay", baud, strict_baud=True, seed=seed, record=record)
        if not 1 <= channels <= 8:
            raise ValueError("an LCUS board has 1 to 8 channels")
        self.channels = channels
        self.answers_status = answers_status
        self.actuate_s = actuate_s
        self.states = [initially_on] * channels
        self._listeners: dict[int, list[PowerListener]] = {}
        if on_power is not None:
            self.add_listener(1, on_power)
        self._rx = bytearray()
        self._pending: list[tuple[float, int, bool]] = []
        self._calls: queue.Queue[tuple[PowerListener, bool] | None] = queue.Queue()
        self._worker = threading.Thread(
            target=self._call_listeners, name="relay-listeners", daemon=True
        )
        self.frames: list[bytes] = []

    def add_listener(self, channel: int, listener: PowerListener) -> None:
        """Call `listener(on)` whenever relay `channel` (1-based) switches."""
        self._listeners.setdefault(channel, []).append(listener)

    def state(self, channel: int = 1) -> bool:
        """The relay's true state (contacts closed = power on)."""
        return self.states[channel - 1]

    def start(self) -> RelaySim:
        if not self._worker.is_alive() and self._thread is None:
            self._worker.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self._worker.is_alive():
            self._calls.put(None)
            self._worker.join(LISTENER_STOP_TIMEOUT_S)
            if self._worker.is_alive():
                log.warning(
                    "relay: a power listener did not return within %.1f s", LISTENER_STOP_TIMEOUT_S
                )

    # -- protocol -----------------------------------------------------------------------------

    def _on_bytes(self, data: bytes, t_rx: float) -> None:
        self._rx.extend(data)
        while self._rx:
            if self._rx[0] == STATUS_QUERY:
                del self._rx[0]
                if self.answers_status:
                    self._send(self._status_text().encode("ascii"), t_rx + STATUS_REPLY_DELAY_S)
                continue
            if self._rx[0] != FRAME_START:
                del self._rx[0]  # noise between frames
                continue
            if len(self._rx) < 4:
                return
            frame = bytes(self._rx[:4])
            _, ch, op, chk = frame
            if chk != (FRAME_START + ch + op) & 0xFF or not 1 <= ch <= self.channels or op > 1:
                self.note("bad_frame", t_rx, frame=frame.hex(" "))
                del self._rx[0]  # resynchronise on the next start byte
                continue
            del self._rx[:4]
            self.frames.append(frame)
            self._pending.append((t_rx + self.actuate_s, ch, bool(op)))

    def _status_text(self) -> str:
        return "".join(
            f"CH{i + 1}: {'ON' if on else 'OFF'}\r\n" for i, on in enumerate(self.states)
        )

    def _advance(self, now: float) -> float | None:
        due = [p for p in self._pending if p[0] <= now]
        self._pending = [p for p in self._pending if p[0] > now]
        for t, ch, on in due:
            if self.states[ch - 1] == on:
                continue
            self.states[ch - 1] = on
            self.note("switch", t, channel=ch, on=on)
            for listener in self._listeners.get(ch, []):
                self._calls.put((listener, on))
        return min((p[0] for p in self._pending), default=None)

    def _call_listeners(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            listener, on = item
            try:
                listener(on)
            except Exception:
                log.exception("relay: power listener failed")
