"""A pseudo-terminal pair, and the base of every simulated serial instrument served on one.

The simulator owns the pty master; the harness opens the slave path with pyserial. The base
class runs one background thread that reads what the host sends, lets the instrument model
advance its virtual time, and writes scheduled output when it is due. It also models the
faults a serial link can have:

- ``mode = "silent"``: the board hangs: it reads and sends nothing any more;
- ``mode = "garbage"``: the board answers every byte with random bytes;
- a wrong baud rate: with ``strict_baud`` the simulator reads the speed the host configured on
  the pty (termios) and, when it differs from the board's, garbles both directions the way a
  UART at the wrong speed does (each byte becomes a different byte: framing noise);
- `vanish()`: the device is unplugged (the pty is closed under the host's feet).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.05  # longest the loop sleeps when nothing is due
STOP_TIMEOUT_S = 2.0  # join bound when stopping the thread
READ_CHUNK_BYTES = 4096
MODES = ("ok", "silent", "garbage")

_SPEEDS = {
    getattr(termios, f"B{b}"): b
    for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{b}")
}

TruthSink = Callable[..., Any]
"""Called as sink(event, t, **fields); harness.twin.truth.GroundTruth.record fits."""


class PtyPort:
    """The device end of a pty pair; `path` is what the harness opens (like /dev/ttyACM0).

    The simulator keeps a slave descriptor open too (`slave_fd`, never read), so that the
    master does not see EIO while the host has the port closed.
    """

    def __init__(self) -> None:
        self.master, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        os.set_blocking(self.master, False)
        self.closed = False
        self._dropped = 0

    def host_baud(self) -> int | None:
        """The baud rate the host configured on the port (None when unknown or closed)."""
        if self.closed:
            return None
        try:
            speed = termios.tcgetattr(self.master)[5]
        except (OSError, termios.error):
            return None
        return _SPEEDS.get(speed)

    def read(self) -> bytes:
        """What the host has written so far (b"" when nothing); never blocks."""
        if self.closed:
            return b""
        try:
            return os.read(self.master, READ_CHUNK_BYTES)
        except BlockingIOError:
            return b""
        except OSError as e:  # EIO: no slave open at the moment
            log.debug("pty %s read: %s", self.path, e)
            return b""

    def write(self, data: bytes) -> None:
        """Send bytes to the host; drops them (logged) when the host does not read."""
        if self.closed or not data:
            return
        try:
            n = os.write(self.master, data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            log.debug("pty %s write: %s", self.path, e)
            return
        if n < len(data):
            self._dropped += len(data) - n
            if self._dropped == len(data) - n:
                log.warning("pty %s: host is not reading, output dropped", self.path)

    def close(self) -> None:
        """Close both ends: the port vanishes. Never raises."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.master, self.slave_fd):
            try:
                os.close(fd)
            except OSError as e:
                log.debug("pty %s close: %s", self.path, e)


class SerialSim:
    """Base of a simulated serial instrument: one thread, one pty, scheduled output.

    Subclasses implement `_on_bytes(data, t_rx)` (bytes the board received, after the link
    model) and may implement `_advance(now)` (virtual-time work; returns the next host time
    it wants to run, or None). Output is queued with `_send(data, due)`; it is written to the
    host no earlier than `due` (host monotonic seconds), in order.

    Args:
        name: label for logs and the ground truth.
        baud: the board's baud rate.
        strict_baud: garble traffic when the host's baud rate differs (a UART board);
            False models a USB CDC device, which ignores the baud rate.
        seed: seed of the simulator's random numbers (noise, jitter, garbage).
        record: optional ground-truth sink, called as record(event, t, **fields).
    """

    def __init__(
        self,
        name: str,
        baud: int,
        *,
        strict_baud: bool = True,
        seed: int = 0,
        record: TruthSink | None = None,
    ):
        self.name = name
        self.baud = baud
        self.strict_baud = strict_baud
        self.rng = random.Random(seed)
        self._record = record
        self.truth: list[dict[str, Any]] = []
        self.mode = "ok"
        self.pty = PtyPort()
        self.path = self.pty.path
        self._outq: list[tuple[float, int, bytes]] = []
        self._out_seq = itertools.count()
        self._last_due = 0.0
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._vanish = threading.Event()
        self._vanished = threading.Event()
        self._thread: threading.Thread | None = None
        self._baud_warned = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SerialSim:
        """Start serving; returns self (also a context manager)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-sim", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the pty. Never raises."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning(
                    "%s: simulator thread did not stop within %.1f s", self.name, STOP_TIMEOUT_S
                )
        self.pty.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def vanish(self) -> None:
        """The device is unplugged: the pty closes now; the host's next read or write fails.

        The loop thread closes it itself: a descriptor closed while another thread sits in
        select() on it is only released when that select returns.
        """
        self.note("vanish")
        if self.running and threading.current_thread() is not self._thread:
            self._vanish.set()
            self._wake()
            if self._vanished.wait(STOP_TIMEOUT_S):
                return
        with self._lock:
            self.pty.close()

    def set_mode(self, mode: str) -> None:
        """Switch fault mode at run time: "ok", "silent" or "garbage"."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.note("mode", mode=mode)
        self.mode = mode

    def __enter__(self) -> SerialSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- ground truth -------------------------------------------------------------------------

    def note(self, event: str, t: float | None = None, **fields: Any) -> float:
        """Record one ground-truth event (host monotonic time) and forward it to the sink."""
        t = time.monotonic() if t is None else t
        item = {"t": t, "event": f"{self.name}_{event}", **fields}
        self.truth.append(item)
        if self._record is not None:
            try:
                self._record(item["event"], t, **fields)
            except Exception:  # a broken sink must not kill the instrument
                log.exception("%s: ground-truth sink failed", self.name)
        return t

    def events(self, event: str) -> list[dict[str, Any]]:
        """Ground-truth events of one kind (without the name prefix)."""
        name = f"{self.name}_{event}"
        return [e for e in self.truth if e["event"] == name]

    # -- for subclasses -----------------------------------------------------------------------

    def _on_bytes(self, data: bytes, t_rx: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _advance(self, now: float) -> float | None:
        return None

    def _send(self, data: bytes, due: float) -> None:
        """Queue bytes for the host, written no earlier than host time `due`, in order."""
        with self._lock:
            due = max(due, self._last_due)
            self._last_due = due
            heapq.heappush(self._outq, (due, next(self._out_seq), data))
        self._wake()

    # -- the loop -----------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def _garbled(self) -> bool:
        if not self.strict_baud:
            return False
        host = self.pty.host_baud()
        bad = host is not None and host != self.baud
        if bad and not self._baud_warned:
            self._baud_warned = True
            self.note("baud_mismatch", host_baud=host, board_baud=self.baud)
        return bad

    def _garble(self, data: bytes) -> bytes:
        # A UART at the wrong speed samples the wrong bits: every byte turns into noise.
        return bytes(
            self.rng.choice((0x00, 0x80, 0xF8, 0xFE, 0xE0, 0x1C, 0x9E, 0xFF)) for _ in data
        )

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("%s: simulator crashed", self.name)
        finally:
            self.note("stopped")

    def _loop(self) -> None:
        next_work: float | None = None
        while not self._stop.is_set():
            if self._vanish.is_set() and not self._vanished.is_set():
                with self._lock:
                    self.pty.close()
                self._vanished.set()
            now = time.monotonic()
            wait = IDLE_WAIT_S
            with self._lock:
                if self._outq:
                    wait = min(wait, self._outq[0][0] - now)
            if next_work is not None:
                wait = min(wait, next_work - now)
            fds = [self._wake_r] + ([] if self.pty.closed else [self.pty.master])
            try:
                ready, _, _ = select.select(fds, [], [], max(0.0, wait))
            except (OSError, ValueError):  # a descriptor closed under us (vanish)
                ready = []
                time.sleep(0.001)
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            if self.pty.master in ready:
                with self._lock:  # vanish() closes the pty under this lock
                    data = self.pty.read()
                t_rx = time.monotonic()
                if data:
                    self._receive(data, t_rx)
            now = time.monotonic()
            with self._lock:
                next_work = self._advance(now)
                self._flush(time.monotonic())

    def _receive(self, data: bytes, t_rx: float) -> None:
        mode = self.mode
        if mode == "silent":
            return
        if mode == "garbage":
            junk = bytes(self.rng.randrange(256) for _ in range(len(data) * self.rng.randint(2, 6)))
            self._send(junk, t_rx)
            return
        with self._lock:
            if self._garbled():
                data = self._garble(data)
            self._on_bytes(data, t_rx)

    def _flush(self, now: float) -> None:
        garble = None
        while self._outq and self._outq[0][0] <= now:
            _, _, data = heapq.heappop(self._outq)
            if self.mode == "silent":  # a hung board: nothing comes out any more
                continue
            if garble is None:
                garble = self._garbled()
            self.pty.write(self._garble(data) if garble else data)
