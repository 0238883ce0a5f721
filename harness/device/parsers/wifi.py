"""`dumpsys wifi`: is Wi-Fi on, and which network is it connected to.

Two lines matter, at every API level:

- `Wi-Fi is enabled` / `disabled` / `enabling` / `disabling` / `unknown state` (the first such
  line; API 31+ print it again per client mode manager).
- The first `mWifiInfo SSID: ...` line (WifiStateMachine / ClientModeImpl dump):
  - API 17/19: `mWifiInfo SSID: HomeNet, BSSID: 00:1a:..., MAC: ..., Supplicant state:
    COMPLETED, RSSI: -55, Link speed: 65, Net ID: 0, Metered hint: false`
  - API 30: `... Supplicant state: COMPLETED, Wi-Fi standard: 5, RSSI: -55, Link speed: 433Mbps,
    Tx Link speed: 433Mbps, Rx Link speed: 390Mbps, Frequency: 5180MHz, Net ID: 0, ...`
  - API 34: the SSID is quoted (`SSID: "HomeNet"`), `IP: /192.168.1.23` and `Security type: 2`
    come before the supplicant state, more fields follow the frequency.
  Not connected: `SSID: <unknown ssid>`, `BSSID: <none>`, supplicant state other than
  COMPLETED, RSSI -127 (-9999 on 4.2), link speed -1. When Wi-Fi is off, API 30+ may print no
  `mWifiInfo` line at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "dumpsys wifi"
_STATE = re.compile(r"^\s*Wi-Fi is (enabled|disabled|enabling|disabling|unknown state|\w+)\s*$")
_INFO = re.compile(r"^\s*mWifiInfo (SSID: .*)$")
_SSID = re.compile(r"^SSID: (.*?), BSSID: ")
_BSSID = re.compile(r", BSSID: ([^,]*),")
_SUPPLICANT = re.compile(r", Supplicant state: ([A-Z0-9_]+)")
_RSSI = re.compile(r", RSSI: (-?\d+)")
_LINK = re.compile(r", Link speed: (-?\d+)")  # ", " keeps "Tx Link speed" out
_FREQUENCY = re.compile(r", Frequency: (-?\d+)")
_UNKNOWN_SSIDS = ("", "<unknown ssid>", "<none>")
_MIN_VALID_RSSI_DBM = -126


@dataclass(frozen=True)
class WifiState:
    """Wi-Fi as the device reports it.

    Attributes:
        enabled: `Wi-Fi is enabled`.
        connected: enabled, supplicant state COMPLETED and an SSID known.
        ssid: the network name without quotes; None when not associated.
        bssid: the access point's MAC; None when not associated.
        rssi_dbm: signal strength; None when invalid (not associated).
        link_speed_mbps: negotiated link speed; None when unknown.
        frequency_mhz: channel frequency (API 21+); None when unknown or not printed.
        supplicant_state: e.g. COMPLETED, DISCONNECTED, SCANNING; None when not printed.
    """

    enabled: bool
    connected: bool
    ssid: str | None = None
    bssid: str | None = None
    rssi_dbm: int | None = None
    link_speed_mbps: int | None = None
    frequency_mhz: int | None = None
    supplicant_state: str | None = None


def parse_dumpsys_wifi(text: str | bytes) -> WifiState:
    """Parse Wi-Fi state and the current connection out of `dumpsys wifi`.

    Raises:
        ShellOutputError: no `Wi-Fi is ...` line (not the Wi-Fi service's dump).
    """
    check_shell_failure(COMMAND, text)
    lines = lines_of(text)
    state = next((m.group(1) for m in map(_STATE.match, lines) if m), None)
    if state is None:
        raise ShellOutputError(COMMAND, "no `Wi-Fi is enabled|disabled` line", text)
    enabled = state == "enabled"
    info = next((m.group(1) for m in map(_INFO.match, lines) if m), None)
    if info is None:
        return WifiState(enabled=enabled, connected=False)
    ssid_m = _SSID.match(info)
    ssid = _unquote(ssid_m.group(1)) if ssid_m else None
    if ssid in _UNKNOWN_SSIDS:
        ssid = None
    bssid = _group(_BSSID, info)
    if bssid in ("<none>", "", "00:00:00:00:00:00"):
        bssid = None
    supplicant = _group(_SUPPLICANT, info)
    rssi = _int(_RSSI, info)
    link = _int(_LINK, info)
    freq = _int(_FREQUENCY, info)
    return WifiState(
        enabled=enabled,
        connected=enabled and supplicant == "COMPLETED" and ssid is not None,
        ssid=ssid,
        bssid=bssid,
        rssi_dbm=rssi if rssi is not None and rssi >= _MIN_VALID_RSSI_DBM else None,
        link_speed_mbps=link if link is not None and link > 0 else None,
        frequency_mhz=freq if freq is not None and freq > 0 else None,
        supplicant_state=supplicant,
    )


def _unquote(ssid: str) -> str:
    if len(ssid) >= 2 and ssid[0] == ssid[-1] == '"':
        return ssid[1:-1]
    return ssid


def _group(pattern: re.Pattern[str], s: str) -> str | None:
    m = pattern.search(s)
    return m.group(1).strip() if m else None


def _int(pattern: re.Pattern[str], s: str) -> int | None:
    m = pattern.search(s)
    return int(m.group(1)) if m else None
