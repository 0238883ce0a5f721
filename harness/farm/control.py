"""The typed client of a twin's control socket: fault injection and the taps adb cannot make.

The twin (harness.twin.control) answers one JSON object per line on a Unix socket in its state
dir. The harness never imports the twin: it speaks that socket through this client, one method
per op, typed replies, and every failure (no socket, no reply, the twin refusing) one
TwinControlError naming the twin and the op.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

CONTROL_TIMEOUT_S = 5.0
_MAX_REPLY_B = 16 * 1024 * 1024


class TwinControlError(HarnessError):
    """A control request to a twin failed (no socket, no reply, or the twin refused it)."""

    def __init__(self, twin: str, op: str, reason: str):
        self.twin = twin
        self.op = op
        self.reason = reason
        super().__init__(f"twin {twin}: control {op} failed: {reason}")


@dataclass(frozen=True)
class TwinStatus:
    """What `status` says about one twin."""

    serial: str
    port: int
    profile: str
    online: int  # live adb transports
    wifi: bool
    network: dict[str, Any]
    screen: str
    truth: Path


@dataclass(frozen=True)
class BackendInfo:
    """The twin world's support backend (in the twin process) after a `backend` request."""

    agents: int
    queued: int
    free_agents: int
    bots: tuple[str, ...]
    truth: Path
    address: tuple[str, int]  # JSON-lines agent API
    http: tuple[str, int] | None  # HTTP agent API
    token: str | None = None  # the agent credential of this run (Authorization: Bearer)
    unauthorized: int = 0  # agent requests refused with 401 so far


def request(
    path: Path | str, req: dict[str, Any], timeout_s: float = CONTROL_TIMEOUT_S
) -> dict[str, Any]:
    """Send one raw request to a control socket; its raw reply (blocking, bounded).

    Raises:
        OSError: no socket, or it did not answer within timeout_s.
        ValueError: the reply is not JSON.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n") and len(buf) < _MAX_REPLY_B:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf or b'{"ok": false, "error": "no reply"}')


class TwinControl:
    """One twin's control socket.

    Args:
        path: the socket (TwinInfo.control, DeviceSpec.twin_control).
        serial: the twin addressed (None: the only twin of its process).
        timeout_s: per request.
    """

    def __init__(
        self, path: Path | str, serial: str | None = None, timeout_s: float = CONTROL_TIMEOUT_S
    ):
        self.path = Path(path)
        self.serial = serial
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"TwinControl({str(self.path)!r}, serial={self.serial!r})"

    def call(self, op: str, timeout_s: float | None = None, **kw: Any) -> dict[str, Any]:
        """One op; its reply (with "ok": true).

        Raises:
            TwinControlError: no socket or reply, or the twin refused (its error).
        """
        req: dict[str, Any] = {"op": op, **kw}
        if self.serial is not None:
            req.setdefault("serial", self.serial)
        who = req.get("serial") or str(self.path)
        try:
            reply = request(self.path, req, timeout_s or self.timeout_s)
        except (OSError, ValueError) as e:
            raise TwinControlError(who, op, f"{type(e).__name__}: {e}") from None
        if not reply.get("ok"):
            raise TwinControlError(who, op, str(reply.get("error", "refused")))
        return reply

    # --- the process --------------------------------------------------------------------------
    def twins(self) -> dict[str, int]:
        """serial -> adb port of every twin of this process."""
        return {str(k): int(v) for k, v in self.call("list")["twins"].items()}

    def backend(
        self,
        *,
        answer_s: float | None = None,
        answer_waits: Sequence[float] | None = None,
        handle_s: float | None = None,
        wrap_s: float | None = None,
        clock_offset_s: float | None = None,
        agents: int | None = None,
    ) -> BackendInfo:
        """Set (the given) support backend settings; the backend's state and addresses."""
        settings = {
            "answer_s": answer_s,
            "answer_waits": list(answer_waits) if answer_waits is not None else None,
            "handle_s": handle_s,
            "wrap_s": wrap_s,
            "clock_offset_s": clock_offset_s,
            "agents": agents,
        }
        r = self.call("backend", **{k: v for k, v in settings.items() if v is not None})
        return BackendInfo(
            agents=int(r["agents"]),
            queued=int(r["queued"]),
            free_agents=int(r["free_agents"]),
            bots=tuple(r["bots"]),
            truth=Path(r["truth"]),
            address=(str(r["address"][0]), int(r["address"][1])),
            http=(str(r["http"][0]), int(r["http"][1])) if r.get("http") else None,
            token=r.get("token"),
            unauthorized=int(r.get("unauthorized", 0)),
        )

    # --- one twin ------------------------------------------------------------------------------
    def status(self) -> TwinStatus:
        r = self.call("status")
        return TwinStatus(
            serial=r["serial"],
            port=int(r["port"]),
            profile=r["profile"],
            online=int(r["online"]),
            wifi=bool(r["wifi"]),
            network=dict(r["network"]),
            screen=str(r["screen"]),
            truth=Path(r["truth"]),
        )

    def accept_keys(self) -> int:
        """Tap "Allow" on the USB-debugging dialog; how many keys were accepted."""
        return int(self.call("accept_keys")["accepted"])

    def drop(self) -> None:
        """Drop every adb transport (the device stays; adb reconnects)."""
        self.call("drop")

    def offline(self, seconds: float) -> None:
        """Go offline for `seconds`, then register with the adb server again."""
        self.call("offline", seconds=seconds)

    def reboot(self, boot_s: float = 1.0) -> None:
        self.call("reboot", boot_s=boot_s)

    def wifi(self, on: bool) -> None:
        self.call("wifi", on=on)

    def stall(self, service: str) -> None:
        """Services starting with this prefix stop answering (until unstall)."""
        self.call("stall", service=service)

    def unstall(self, service: str) -> None:
        self.call("unstall", service=service)

    def media(
        self,
        *,
        block: bool | None = None,
        freeze_share: bool | None = None,
        share_hold_ms: float | None = None,
    ) -> None:
        """Block the media path, freeze the screen share and/or hold each share frame
        `share_hold_ms` before it is sent (the truth's share_frame_sent carries hold_ms)."""
        kw = {
            k: v
            for k, v in {
                "block": block,
                "freeze_share": freeze_share,
                "share_hold_ms": share_hold_ms,
            }.items()
            if v is not None
        }
        self.call("media", **kw)

    def support(self, *, reconnect_grace_s: float | None = None) -> None:
        kw = {"reconnect_grace_s": reconnect_grace_s} if reconnect_grace_s is not None else {}
        self.call("support", **kw)

    def privacy_mask(self, on: bool) -> None:
        self.call("privacy_mask", on=on)

    def camera(self, on: bool) -> None:
        """Another app holds the camera (on) or releases it."""
        self.call("camera", on=on)

    def mic(self, samples: Sequence[int], timeout_s: float | None = None) -> float:
        """Play 16-bit samples into the session's microphone; the twin's monotonic time."""
        return float(self.call("mic", timeout_s=timeout_s, samples=list(samples))["t"])

    def mayday_button(self, on: bool) -> None:
        self.call("mayday_button", on=on)

    def region(self, region: str | None = None, timezone: str | None = None) -> tuple[str, str]:
        """Set (the given) region and time zone; both as the twin now has them."""
        kw = {k: v for k, v in {"region": region, "timezone": timezone}.items() if v is not None}
        r = self.call("region", **kw)
        return str(r["region"]), str(r["timezone"])

    def registered(self, on: bool) -> None:
        """The device has (on) or has no account registered."""
        self.call("registered", on=on)
