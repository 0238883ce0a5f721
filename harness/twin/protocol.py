"""ADB transport packets, device side (AOSP packages/modules/adb docs/dev/protocol.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

COMMAND_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_STLS: "STLS",
}

VERSION_CHECKSUMMED = 0x01000000  # what a 2013 adbd speaks
VERSION_SKIP_CHECKSUM = 0x01000001
AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
TOKEN_SIZE = 20
MAX_HANDSHAKE_PAYLOAD = 4096  # CNXN and AUTH payloads

HEADER = struct.Struct("<6I")
HEADER_SIZE = HEADER.size


class ProtocolViolation(Exception):
    """The peer broke the transport protocol; the connection is dropped."""


@dataclass(frozen=True)
class Header:
    command: int
    arg0: int
    arg1: int
    length: int
    check: int
    magic: int

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.command, f"0x{self.command:08x}")


def parse_header(raw: bytes, max_payload: int) -> Header:
    """Decode and validate a 24-byte header.

    Raises:
        ProtocolViolation: bad magic, unknown command, or a payload over max_payload.
    """
    h = Header(*HEADER.unpack(raw))
    if h.magic != h.command ^ 0xFFFFFFFF:
        raise ProtocolViolation(
            f"bad magic 0x{h.magic:08x} for command 0x{h.command:08x} (garbage on the transport?)"
        )
    if h.command not in COMMAND_NAMES:
        raise ProtocolViolation(f"unknown command 0x{h.command:08x}")
    if h.length > max_payload:
        raise ProtocolViolation(
            f"{h.name} declares a {h.length}-byte payload, over the {max_payload}-byte maximum"
        )
    return h


def packet(command: int, arg0: int, arg1: int, data: bytes = b"", checksum: bool = False) -> bytes:
    """Encode one packet. data_check is a plain byte sum; receivers never verify it."""
    check = sum(data) & 0xFFFFFFFF if checksum and data else 0
    return HEADER.pack(command, arg0, arg1, len(data), check, command ^ 0xFFFFFFFF) + data
