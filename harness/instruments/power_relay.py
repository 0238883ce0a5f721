"""Power switching for a farm: the PowerSwitch interface and an LCUS USB relay driver.

LCUS boards (LC Technology "USB intelligent switch", CH340 USB-serial 1a86:7523, 9600 8N1)
take 4-byte frames ``A0 <channel> <op> <checksum>``: op 0x01 closes the relay ("on"), 0x00
opens it ("off"), checksum = (0xA0 + channel + op) & 0xFF. Channel 1 on = ``A0 01 01 A2``,
off = ``A0 01 00 A1``. Multi-channel boards (LCUS-2/4/8) answer a lone 0xFF with one line per
channel, ``CH1: ON\\r\\n``; many LCUS-1 answer nothing, so verification is optional
(docs/instruments.md).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Protocol, runtime_checkable

from harness.errors import InstrumentError
from harness.instruments.serialport import SerialLink, is_text

log = logging.getLogger(__name__)

LCUS_BAUD = 9600
CH340_VID, CH340_PID = 0x1A86, 0x7523
FRAME_START = 0xA0
STATUS_QUERY = b"\xff"
STATUS_TIMEOUT_S = 0.5  # a board that answers the status query does so within this
SWITCH_SETTLE_S = 0.05  # relay coil + contacts, before verifying
CYCLE_OFF_S = 3.0  # default off time of a power cycle (let the supply rails drain)

_STATUS_RE = re.compile(r"CH(\d+):\s*(ON|OFF)", re.IGNORECASE)


@runtime_checkable
class PowerSwitch(Protocol):
    """Switches one device's power. on = the device is powered."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def cycle(self, off_s: float = CYCLE_OFF_S) -> None: ...

    def state(self) -> bool | None:
        """True powered, False unpowered, None unknown."""
        ...

    def close(self) -> None: ...


def lcus_frame(channel: int, closed: bool) -> bytes:
    """The 4-byte frame that closes (True) or opens (False) relay `channel` (1-based)."""
    if not 1 <= channel <= 8:
        raise ValueError(f"LCUS channel must be 1..8, not {channel}")
    op = 1 if closed else 0
    return bytes((FRAME_START, channel, op, (FRAME_START + channel + op) & 0xFF))


def parse_status(text: str) -> dict[int, bool]:
    """{channel: closed} from a status answer such as "CH1: ON\\r\\nCH2: OFF\\r\\n"."""
    return {int(ch): state.upper() == "ON" for ch, state in _STATUS_RE.findall(text)}


class LcusRelay:
    """One channel of an LCUS relay board as a PowerSwitch.

    Args:
        port: serial device (/dev/ttyUSB0; /dev/serial/by-id/... is stable across replugs).
        channel: relay number, 1-based.
        baud: 9600 for LCUS boards.
        verify: query the board (0xFF) after each switch and for state(); needs a board that
            answers. Without it, state() is the last commanded state.
        normally_closed: the device is wired through the NC contact (powered while the relay
            is released), so a board or host reset never cuts the tablets' power.
        timeout_s: bound on the status answer.

    Raises:
        InstrumentError: the port cannot be opened; with verify, the board does not answer.
    """

    def __init__(
        self,
        port: str,
        *,
        channel: int = 1,
        baud: int = LCUS_BAUD,
        verify: bool = False,
        normally_closed: bool = False,
        timeout_s: float = STATUS_TIMEOUT_S,
    ):
        lcus_frame(channel, True)  # validates the channel
        self.port = port
        self.channel = channel
        self.verify = verify
        self.normally_closed = normally_closed
        self.timeout_s = timeout_s
        self._commanded: bool | None = None
        self.link = SerialLink(port, baud, label="relay")
        if verify:
            try:
                self._commanded = self._query()
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> LcusRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the port (the relay keeps its state). Never raises."""
        self.link.close()

    def on(self) -> None:
        """Power the device."""
        self._switch(True)

    def off(self) -> None:
        """Cut the device's power."""
        self._switch(False)

    def cycle(self, off_s: float = CYCLE_OFF_S) -> None:
        """Off, wait off_s, on."""
        self.off()
        time.sleep(off_s)
        self.on()

    def state(self) -> bool | None:
        """Whether the device is powered: queried with verify, else the last command."""
        if self.verify:
            self._commanded = self._query()
        return self._commanded

    def _switch(self, powered: bool) -> None:
        closed = powered != self.normally_closed
        self.link.write(lcus_frame(self.channel, closed))
        self._commanded = powered
        log.info("%s: channel %d %s", self.link.where(), self.channel, "on" if powered else "off")
        if self.verify:
            time.sleep(SWITCH_SETTLE_S)
            got = self._query()
            if got != powered:
                raise self.link.fail(
                    f"channel {self.channel} reads {'on' if got else 'off'} after switching "
                    f"{'on' if powered else 'off'}: the board ignored the frame"
                )

    def _query(self) -> bool:
        """Ask the board (0xFF) whether the device is powered.

        Raises:
            InstrumentError: no answer, garbage, or no line for this channel (port closed).
        """
        self.link.drain(0.005, 0.05)  # stale answers
        self.link.write(STATUS_QUERY)
        deadline = time.monotonic() + self.timeout_s
        got = bytearray()
        while True:
            line = self.link.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                got += self.link.take_partial()
                break
            got += line.data + b"\n"
            states = parse_status(line.text)
            if self.channel in states:
                self.link.drain(0.01, 0.1)  # the other channels' lines
                return states[self.channel] != self.normally_closed
        sample = repr(bytes(got[:32]))
        if not got:
            raise self.link.fail(
                f"no answer to the status query (0xFF) within {self.timeout_s:g} s: a wrong baud "
                f"rate (opened at {self.link.baud}; LCUS boards default to {LCUS_BAUD}), or a "
                "board that cannot report (use verify=False)"
            )
        if not is_text(bytes(got)):
            raise self.link.fail(
                f"garbled answer to the status query: {sample}; wrong baud rate? "
                f"(opened at {self.link.baud}; LCUS boards default to {LCUS_BAUD})"
            )
        raise self.link.fail(f"no status for channel {self.channel} in the answer {sample}")


def open_switch(port: str, **kwargs: object) -> PowerSwitch:
    """A PowerSwitch for the relay on `port` (LCUS protocol; kwargs as LcusRelay)."""
    try:
        return LcusRelay(port, **kwargs)  # type: ignore[arg-type]
    except TypeError as e:
        raise InstrumentError(f"relay on {port}: {e}") from e
