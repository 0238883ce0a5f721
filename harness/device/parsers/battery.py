"""`dumpsys battery`: charge level, power source and charging status.

Format: `Current Battery Service state:`, optionally `  (UPDATES STOPPED -- use 'reset' to
restart)`, then indented `key: value` lines: `AC powered`, `USB powered`, `Wireless powered`
(API 17+), `Dock powered` (API 33+), `Max charging current` ... (API 24+), `status` (1 unknown,
2 charging, 3 discharging, 4 not charging, 5 full), `health`, `present`, `level`, `scale`,
`voltage` (`voltage:4012` without a space on 4.2), `temperature`, `technology`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "dumpsys battery"
_HEADER = "Current Battery Service state:"
_FIELD = re.compile(r"^\s+([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$")
_STATUS_NAMES = {1: "unknown", 2: "charging", 3: "discharging", 4: "not charging", 5: "full"}
_DEFAULT_SCALE = 100


@dataclass(frozen=True)
class BatteryState:
    """The battery as BatteryService reports it.

    Attributes:
        level: charge level, out of `scale`.
        scale: full-scale value (100).
        ac_powered, usb_powered: the charger type plugged in.
        wireless_powered: None where the release does not print it.
        status: BatteryManager status code (see status_name).
        present: battery present; None when not printed.
        updates_stopped: someone ran `dumpsys battery unplug/set`: values are simulated.
    """

    level: int
    scale: int
    ac_powered: bool
    usb_powered: bool
    wireless_powered: bool | None
    status: int
    present: bool | None = None
    updates_stopped: bool = False

    @property
    def percent(self) -> float:
        return 100.0 * self.level / self.scale if self.scale else float(self.level)

    @property
    def powered(self) -> bool:
        return self.ac_powered or self.usb_powered or bool(self.wireless_powered)

    @property
    def status_name(self) -> str:
        return _STATUS_NAMES.get(self.status, f"status {self.status}")


def parse_dumpsys_battery(text: str | bytes) -> BatteryState:
    """Parse `dumpsys battery`.

    Raises:
        ShellOutputError: no `Current Battery Service state:` header, or a required field
            (AC powered, USB powered, status, level) missing or malformed.
    """
    check_shell_failure(COMMAND, text)
    lines = lines_of(text)
    starts = [i for i, line in enumerate(lines) if line.strip() == _HEADER]
    if not starts:
        raise ShellOutputError(COMMAND, f"no `{_HEADER}` header", text)
    fields: dict[str, str] = {}
    stopped = False
    for line in lines[starts[0] + 1 :]:
        if "UPDATES STOPPED" in line:
            stopped = True
            continue
        m = _FIELD.match(line)
        if not m:
            if line.strip():
                break
            continue
        fields.setdefault(m.group(1).lower(), m.group(2))
    try:
        return BatteryState(
            level=int(fields["level"]),
            scale=int(fields.get("scale", _DEFAULT_SCALE)),
            ac_powered=_bool(fields["ac powered"]),
            usb_powered=_bool(fields["usb powered"]),
            wireless_powered=_opt_bool(fields.get("wireless powered")),
            status=int(fields["status"]),
            present=_opt_bool(fields.get("present")),
            updates_stopped=stopped,
        )
    except KeyError as e:
        raise ShellOutputError(COMMAND, f"no `{e.args[0]}:` field", text) from None
    except ValueError as e:
        raise ShellOutputError(COMMAND, f"malformed field: {e}", text) from None


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(f"expected true/false, got {value!r}")
    return value == "true"


def _opt_bool(value: str | None) -> bool | None:
    return None if value is None else _bool(value)
