"""ADB RSA authentication, device side: parse adb public keys and verify token signatures.

The host signs the 20-byte token with RSA_sign(NID_sha1, ...): PKCS#1 v1.5 over a SHA-1
DigestInfo whose digest is the token itself. adb public keys are base64 of the little-endian
struct {u32 len_words; u32 n0inv; u32 n[len]; u32 rr[len]; u32 e} followed by " user@host".
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


@dataclass(frozen=True)
class AdbPublicKey:
    n: int
    e: int
    comment: str
    line: str

    @property
    def fingerprint(self) -> str:
        """MD5 of the key blob, as Android's "Allow USB debugging?" dialog shows it."""
        blob = base64.b64decode(self.line.split()[0])
        digest = hashlib.md5(blob).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def parse_public_key(text: str | bytes) -> AdbPublicKey:
    """Parse one adb public key line (as sent in AUTH type 3 or kept in adb_keys).

    Raises:
        ValueError: not an adb RSA public key.
    """
    if isinstance(text, bytes):
        text = text.rstrip(b"\0").decode("ascii", "replace")
    line = text.strip()
    parts = line.split(None, 1)
    if not parts:
        raise ValueError("empty public key")
    try:
        blob = base64.b64decode(parts[0], validate=True)
    except ValueError as e:
        raise ValueError(f"public key is not base64: {e}") from None
    if len(blob) < 8:
        raise ValueError("public key blob too short")
    (words,) = struct.unpack_from("<I", blob, 0)
    if words == 0 or len(blob) != 4 + 4 + 8 * words + 4:
        raise ValueError(f"public key blob of {len(blob)} bytes does not fit {words} words")
    n = int.from_bytes(blob[8 : 8 + 4 * words], "little")
    (e,) = struct.unpack_from("<I", blob, 8 + 8 * words)
    return AdbPublicKey(n=n, e=e, comment=parts[1] if len(parts) > 1 else "", line=line)


def verify_signature(key: AdbPublicKey, token: bytes, signature: bytes) -> bool:
    """True when signature is key's PKCS#1 v1.5 SHA-1 signature of token."""
    k = (key.n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    m = pow(int.from_bytes(signature, "big"), key.e, key.n).to_bytes(k, "big")
    suffix = _SHA1_DIGEST_INFO + token
    padding_len = k - 3 - len(suffix)
    expected = b"\x00\x01" + b"\xff" * padding_len + b"\x00" + suffix
    return padding_len >= 8 and m == expected


class KeyStore:
    """The device's /data/misc/adb/adb_keys: keys the user allowed."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.keys: list[AdbPublicKey] = []
        if path and path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    try:
                        self.keys.append(parse_public_key(line))
                    except ValueError:
                        continue

    def add(self, key: AdbPublicKey) -> None:
        if any(k.n == key.n for k in self.keys):
            return
        self.keys.append(key)
        if self.path:
            with self.path.open("a") as f:
                f.write(key.line + "\n")

    def verify(self, token: bytes, signature: bytes) -> AdbPublicKey | None:
        for key in self.keys:
            if verify_signature(key, token, signature):
                return key
        return None
