"""`dumpsys media.camera`: camera count, facings and the clients holding a camera open.

Two formats (see fixtures/shell/dumpsys-media.camera/):

- Legacy, API 17-22 (Fire OS 3/4): `Camera module name: ...`, `Number of camera devices: N`,
  then per camera `Camera <i> static information:` / `  Facing: BACK|FRONT` / either
  `  Device is closed, no client instance` or `  Device is open. Client instance dump:`
  followed by the client's own dump (`Client[<i>] (0x...) PID: <pid>` on 4.2 HAL1,
  `Client[<i>] (0x...) with UID <uid>` on 4.4, `Client2[<i>] (0x...) Client: <pkg> PID: <pid>,
  dump:` on 4.4 HAL2). `No active camera clients yet.` when none is open. No camera HAL at
  all: `No camera module available!`.
- Modern, API 23+: `== Service global info: ==`, `Number of camera devices: N`, then
  `Active Camera Clients:` followed by `[]` when idle, or `[`, one
  `(Camera ID: 0, Cost: 100, PID: 123, Score: 0, State: 2User Id: 0, Client Package Name: pkg,
  Conflicting Client Devices: {})` line per client (the missing separator before `User Id` is
  AOSP's), `]`. Facings appear in the provider dump as `    Facing: Back|Front`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "dumpsys media.camera"
_NUMBER = re.compile(r"^\s*Number of camera devices: (\d+)\s*$")
_FACING = re.compile(r"^\s*Facing: (\w+)\s*$")
_STATIC = re.compile(r"^Camera (\d+) static information:\s*$")
_ACTIVE_ENTRY = re.compile(r"^\(Camera ID: ([^,]+), Cost: -?\d+, PID: (-?\d+)")
_ACTIVE_PACKAGE = re.compile(r"Client Package Name: ([^,)\s]+)")
_LEGACY_CLIENT = re.compile(
    r"^\s*(?:Pro)?Client2?\[(\d+)\] \([^)]*\)(?: Client: (\S+))?"
    r"(?: PID: (\d+)| with UID (\d+))?"
)
_NO_MODULE = ("No camera module available!", "!! No camera HAL available !!")


@dataclass(frozen=True)
class CameraClient:
    """One client holding a camera open.

    Attributes:
        camera_id: the camera's id as printed ("0", "1").
        package: the client app's package; None where the format does not say (API 17/19).
        pid: the client's process id, when printed.
        uid: the client's uid, when printed instead of the pid (4.4 HAL1).
    """

    camera_id: str
    package: str | None = None
    pid: int | None = None
    uid: int | None = None


@dataclass(frozen=True)
class CameraState:
    """What the camera service reports.

    Attributes:
        number_of_cameras: `Number of camera devices` (0 when there is no camera HAL).
        facings: "BACK" / "FRONT" per camera as printed (empty when the dump has none).
        clients: the clients holding a camera open now.
        format: "legacy" (API <= 22) or "modern".
    """

    number_of_cameras: int
    facings: tuple[str, ...]
    clients: tuple[CameraClient, ...]
    format: str

    @property
    def has_front(self) -> bool:
        return "FRONT" in self.facings

    @property
    def has_back(self) -> bool:
        return "BACK" in self.facings


def parse_dumpsys_camera(text: str | bytes) -> CameraState:
    """Parse `dumpsys media.camera` (legacy or modern format).

    Raises:
        ShellOutputError: not the camera service's dump (no `Number of camera devices`),
            service missing, or an unterminated `Active Camera Clients` block.
    """
    check_shell_failure(COMMAND, text)
    lines = lines_of(text)
    stripped = [line.strip() for line in lines]
    if any(s in _NO_MODULE for s in stripped):
        fmt = "legacy" if "No camera module available!" in stripped else "modern"
        return CameraState(0, (), (), fmt)
    number = None
    for line in lines:
        m = _NUMBER.match(line)
        if m:
            number = int(m.group(1))
            break
    if number is None:
        raise ShellOutputError(COMMAND, "no `Number of camera devices:` line", text)
    facings = tuple(m.group(1).upper() for m in map(_FACING.match, lines) if m)
    if "Active Camera Clients:" in stripped:
        clients = _modern_clients(lines, stripped.index("Active Camera Clients:"), text)
        return CameraState(number, facings, clients, "modern")
    return CameraState(number, facings, _legacy_clients(lines), "legacy")


def _modern_clients(lines: list[str], header: int, text: str | bytes) -> tuple[CameraClient, ...]:
    body = lines[header + 1 :]
    first = next((i for i, line in enumerate(body) if line.strip()), None)
    if first is None:
        raise ShellOutputError(COMMAND, "nothing after `Active Camera Clients:`", text)
    opening = body[first].strip()
    if opening == "[]":
        return ()
    if opening != "[":
        raise ShellOutputError(
            COMMAND, f"`Active Camera Clients:` followed by {opening[:40]!r}, not `[`", text
        )
    clients = []
    for line in body[first + 1 :]:
        s = line.strip()
        if s == "]":
            return tuple(clients)
        m = _ACTIVE_ENTRY.match(s)
        if m:
            pkg = _ACTIVE_PACKAGE.search(s)
            clients.append(
                CameraClient(m.group(1).strip(), pkg.group(1) if pkg else None, int(m.group(2)))
            )
    raise ShellOutputError(COMMAND, "`Active Camera Clients:` list has no closing `]`", text)


def _legacy_clients(lines: list[str]) -> tuple[CameraClient, ...]:
    clients = []
    camera: str | None = None
    open_camera: str | None = None
    for line in lines:
        m = _STATIC.match(line)
        if m:
            _flush(clients, open_camera)
            camera, open_camera = m.group(1), None
            continue
        s = line.strip()
        if s.startswith("Device is open.") and camera is not None:
            open_camera = camera
            continue
        m = _LEGACY_CLIENT.match(line)
        if m and open_camera is not None:
            pid, uid = m.group(3), m.group(4)
            clients.append(
                CameraClient(
                    open_camera, m.group(2), int(pid) if pid else None, int(uid) if uid else None
                )
            )
            open_camera = None
    _flush(clients, open_camera)
    return tuple(clients)


def _flush(clients: list[CameraClient], open_camera: str | None) -> None:
    """A camera said open whose client line was not recognised still counts as open."""
    if open_camera is not None:
        clients.append(CameraClient(open_camera))
