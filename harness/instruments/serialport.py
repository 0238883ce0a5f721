"""A serial port with bounded, timestamped reads: the link every instrument driver talks over.

Every read takes a timeout; every line carries the host monotonic time at which its last byte
was read. Any failure of the port (missing, busy, unplugged mid-run, write stalled) becomes one
InstrumentError naming the port, and the port is closed (released) before it is raised.
"""

from __future__ import annotations

import logging
import select
import time
from collections import deque
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from harness.errors import InstrumentError

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 1.0  # a write that cannot complete within this fails
MAX_LINE_BYTES = 4096  # a "line" longer than this is garbage
READ_CHUNK_BYTES = 4096


@dataclass(frozen=True)
class Line:
    """One line received (without its line ending) and when its last byte arrived."""

    data: bytes
    t: float

    @property
    def text(self) -> str:
        return self.data.decode("latin-1").strip()

    @property
    def printable(self) -> bool:
        return is_text(self.data)


def is_text(data: bytes) -> bool:
    """True when bytes look like protocol text (printable ASCII, tabs, CR, LF)."""
    return all(32 <= b < 127 or b in (9, 10, 13) for b in data)


@dataclass(frozen=True)
class PortInfo:
    """A serial port found on the host's USB buses."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str

    def __str__(self) -> str:
        ids = (
            f"{self.vid:04x}:{self.pid:04x}"
            if self.vid is not None and self.pid is not None
            else "-"
        )
        return f"{self.device} [{ids}] {self.description}"


def find_ports(vid: int | None = None, pids: tuple[int, ...] | None = None) -> list[PortInfo]:
    """Serial ports whose USB vendor (and product, if given) IDs match, sorted by path."""
    found = []
    for p in list_ports.comports():
        if vid is not None and p.vid != vid:
            continue
        if pids is not None and p.pid not in pids:
            continue
        found.append(PortInfo(p.device, p.vid, p.pid, p.serial_number, p.description or ""))
    return sorted(found, key=lambda p: p.device)


class SerialLink:
    """One open serial port.

    Args:
        port: device path (/dev/ttyACM0, /dev/ttyUSB0, a pty slave...).
        baud: baud rate to configure.
        label: instrument name used in error messages ("WALT", "relay").
        exclusive: take an exclusive lock so two harness workers never share an instrument.

    Raises:
        InstrumentError: the port cannot be opened (missing, busy, permission).
    """

    def __init__(self, port: str, baud: int, *, label: str = "serial", exclusive: bool = True):
        self.port = port
        self.baud = baud
        self.label = label
        self._lines: deque[Line] = deque()
        self._buf = bytearray()
        self._overflow = False
        self.received = 0
        try:
            self._ser = serial.Serial(
                port, baud, timeout=0, write_timeout=WRITE_TIMEOUT_S, exclusive=exclusive
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise InstrumentError(f"{label} on {port}: cannot open the port: {e}") from e

    # -- state --------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._ser.is_open

    @property
    def partial(self) -> bytes:
        """Bytes received after the last line ending (an unterminated line)."""
        return bytes(self._buf)

    def where(self) -> str:
        return f"{self.label} on {self.port}"

    def fail(self, msg: str, cause: BaseException | None = None) -> InstrumentError:
        """Close the port and return the error to raise: `raise link.fail("...")`."""
        self.close()
        err = InstrumentError(f"{self.where()}: {msg}")
        if cause is not None:
            err.__cause__ = cause
        return err

    # -- I/O ----------------------------------------------------------------------------------

    def write(self, data: bytes) -> float:
        """Send bytes; returns the host time taken just before the write.

        Raises:
            InstrumentError: the port vanished or the write stalled (port closed).
        """
        if not self.is_open:
            raise InstrumentError(f"{self.where()}: the port is closed")
        t = time.monotonic()
        try:
            self._ser.write(data)
        except serial.SerialTimeoutException as e:
            raise self.fail(f"write stalled for {WRITE_TIMEOUT_S:g} s", e) from e
        except (serial.SerialException, OSError) as e:
            raise self.fail(f"the port vanished (device unplugged?): {e}", e) from e
        return t

    def read_line(self, timeout_s: float) -> Line | None:
        """The next complete line, or None if none arrives within `timeout_s`.

        Raises:
            InstrumentError: the port vanished (port closed).
        """
        deadline = time.monotonic() + timeout_s
        while not self._lines:
            remaining = max(0.0, deadline - time.monotonic())
            if not self._fill(remaining) and remaining <= 0.0:
                return None
        return self._lines.popleft()

    def read_bytes(self, n: int, timeout_s: float) -> bytes:
        """Up to n raw bytes (fewer if the timeout passes first); pending lines count too."""
        deadline = time.monotonic() + timeout_s
        out = bytearray()
        while True:
            while self._lines and len(out) < n:
                out += self._lines.popleft().data + b"\n"
            take = min(n - len(out), len(self._buf))
            out += self._buf[:take]
            del self._buf[:take]
            if len(out) >= n:
                return bytes(out)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._fill(remaining):
                return bytes(out)

    def drain(self, quiet_s: float, max_s: float) -> bytes:
        """Discard input until the line has been quiet for `quiet_s` (at most `max_s`).

        Returns what was discarded.
        """
        out = bytearray(b"".join(line.data + b"\n" for line in self._lines))
        self._lines.clear()
        deadline = time.monotonic() + max_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._fill(min(quiet_s, remaining)):
                break
            while self._lines:
                out += self._lines.popleft().data + b"\n"
        out += self._buf
        self._buf.clear()
        return bytes(out)

    def take_partial(self) -> bytes:
        """Remove and return the unterminated bytes."""
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def _fill(self, timeout_s: float) -> bool:
        """Wait up to timeout_s for input and split it into lines; False on timeout."""
        if not self.is_open:
            raise InstrumentError(f"{self.where()}: the port is closed")
        try:
            ready, _, _ = select.select([self._ser.fileno()], [], [], max(0.0, timeout_s))
            if not ready:
                return False
            data = self._ser.read(READ_CHUNK_BYTES)
        except (serial.SerialException, OSError, ValueError) as e:
            raise self.fail(f"the port vanished (device unplugged?): {e}", e) from e
        t = time.monotonic()
        if not data:
            return True
        self.received += len(data)
        self._buf += data
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                break
            self._lines.append(Line(bytes(self._buf[:i]).rstrip(b"\r"), t))
            del self._buf[: i + 1]
        if len(self._buf) > MAX_LINE_BYTES:
            self._overflow = True
            del self._buf[: len(self._buf) - MAX_LINE_BYTES]
        return True

    def close(self) -> None:
        """Release the port. Never raises."""
        try:
            if self._ser.is_open:
                self._ser.close()
        except Exception as e:  # noqa: BLE001 -- cleanup never raises
            log.warning("%s: error while closing: %s", self.where(), e)
