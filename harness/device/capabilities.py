"""Capabilities: what a device really has, probed, and how it compares with its profile.

This module is pure: the probe (adb side) runs `probe_commands(api_level)` on the device and
hands the raw stdout of each command, keyed by the exact command string, to
`capabilities_from`. The parsers live in harness.device.parsers; fixtures/shell/ holds
recorded-style outputs per command and API level.

Keys of `capabilities_from` (the exact shell commands):
    required: "getprop", "pm list features"
    optional: "dumpsys media.camera", "dumpsys audio", "dumpsys wifi", "dumpsys account",
        "dumpsys battery", "wm size" and "wm density" (API 18+), "dumpsys display" and
        "dumpsys window displays" (display fallback for API < 18), "which screenrecord".
A missing optional key leaves the fact unknown (None); an unknown key is a ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TypeVar

from harness.device.parsers import (
    Account,
    AudioRecording,
    BatteryState,
    CameraState,
    DisplayMetrics,
    ShellOutputError,
    WifiState,
    lines_of,
    parse_dumpsys_account,
    parse_dumpsys_audio,
    parse_dumpsys_battery,
    parse_dumpsys_camera,
    parse_dumpsys_display,
    parse_dumpsys_wifi,
    parse_dumpsys_window_displays,
    parse_getprop,
    parse_pm_list_features,
    parse_wm_density,
    parse_wm_size,
)
from harness.profiles import DeviceProfile
from harness.profiles.device import AmbiguousProfileError, match_profile  # noqa: F401 -- re-exported: found with the capabilities they gate

GETPROP = "getprop"
PM_LIST_FEATURES = "pm list features"
DUMPSYS_CAMERA = "dumpsys media.camera"
DUMPSYS_AUDIO = "dumpsys audio"
DUMPSYS_WIFI = "dumpsys wifi"
DUMPSYS_ACCOUNT = "dumpsys account"
DUMPSYS_BATTERY = "dumpsys battery"
WM_SIZE = "wm size"
WM_DENSITY = "wm density"
DUMPSYS_DISPLAY = "dumpsys display"
DUMPSYS_WINDOW_DISPLAYS = "dumpsys window displays"
WHICH_SCREENRECORD = "which screenrecord"

REQUIRED_COMMANDS = (GETPROP, PM_LIST_FEATURES)
OPTIONAL_COMMANDS = (
    DUMPSYS_CAMERA,
    DUMPSYS_AUDIO,
    DUMPSYS_WIFI,
    DUMPSYS_ACCOUNT,
    DUMPSYS_BATTERY,
    WM_SIZE,
    WM_DENSITY,
    DUMPSYS_DISPLAY,
    DUMPSYS_WINDOW_DISPLAYS,
    WHICH_SCREENRECORD,
)
KNOWN_COMMANDS = REQUIRED_COMMANDS + OPTIONAL_COMMANDS

WM_MIN_API = 18
SCREENRECORD_H264_MIN_API = 21

FEATURE_MICROPHONE = "android.hardware.microphone"
FEATURE_CAMERA_BACK = "android.hardware.camera"
FEATURE_CAMERA_FRONT = "android.hardware.camera.front"
FEATURE_WIFI = "android.hardware.wifi"

BACKEND_SCREENRECORD_H264 = "screenrecord-h264"
BACKEND_SCREENCAP = "screencap"
BACKEND_FRAMEBUFFER = "framebuffer"

_T = TypeVar("_T")


@dataclass(frozen=True)
class Capabilities:
    """What a device has, as probed. None means "not probed", never "absent".

    Attributes:
        api_level: ro.build.version.sdk.
        os_version: ro.build.version.release, e.g. "4.2.2".
        model, manufacturer: ro.product.model / ro.product.manufacturer.
        display: natural-orientation size and density; None when not probed.
        microphone: android.hardware.microphone declared.
        front_camera: android.hardware.camera.front declared, or a FRONT camera in the dump.
        back_camera: android.hardware.camera declared, or a BACK camera in the dump.
        wifi_hardware: android.hardware.wifi declared.
        wifi: Wi-Fi state and connection; None when not probed.
        accounts: registered accounts (all users); None when not probed.
        capture_backends: frame sources usable on this device, preferred first
            (see capture_backends()).
        features: every declared feature name.
        gl_es_version: reqGlEsVersion (0x20000 = GL ES 2.0).
        camera: the camera service's view (count, facings, open clients); None: not probed.
        recordings: active audio recordings; None when not probed or unknown (API < 24).
        battery: battery state; None when not probed.
        fingerprint: ro.build.fingerprint.
        serial: ro.serialno (or ro.boot.serialno); "" when not printed.
    """

    api_level: int
    os_version: str
    model: str
    manufacturer: str
    display: DisplayMetrics | None
    microphone: bool
    front_camera: bool
    back_camera: bool
    wifi_hardware: bool
    wifi: WifiState | None
    accounts: tuple[Account, ...] | None
    capture_backends: tuple[str, ...]
    features: frozenset[str]
    gl_es_version: int | None = None
    camera: CameraState | None = None
    recordings: tuple[AudioRecording, ...] | None = None
    battery: BatteryState | None = None
    fingerprint: str = ""
    serial: str = ""

    @property
    def account_registered(self) -> bool:
        """At least one account is registered (False when not probed)."""
        return bool(self.accounts)

    @property
    def account_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.accounts or ())


@dataclass(frozen=True)
class Difference:
    """One fact where the device disagrees with its profile."""

    field: str
    expected: object
    probed: object

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected!r}, probed {self.probed!r}"


@dataclass(frozen=True)
class Eligibility:
    """Whether a device can run a support session, and why not.

    Attributes:
        eligible: every requirement met.
        reason: "eligible", or the failed requirements in plain English joined with "; ".
        reasons: the failed requirements one by one.
    """

    eligible: bool
    reason: str
    reasons: tuple[str, ...] = ()


def probe_commands(api_level: int) -> tuple[str, ...]:
    """The shell commands to run for `capabilities_from`, getprop first.

    The API level comes from getprop (see api_level_of): below 18 there is no `wm`, so the
    display comes from `dumpsys display` and `dumpsys window displays`.
    """
    commands = [GETPROP, PM_LIST_FEATURES]
    if api_level >= WM_MIN_API:
        commands += [WM_SIZE, WM_DENSITY]
    else:
        commands += [DUMPSYS_DISPLAY, DUMPSYS_WINDOW_DISPLAYS]
    commands += [DUMPSYS_CAMERA, DUMPSYS_AUDIO, DUMPSYS_WIFI, DUMPSYS_ACCOUNT, DUMPSYS_BATTERY]
    if api_level >= SCREENRECORD_H264_MIN_API:
        commands.append(WHICH_SCREENRECORD)
    return tuple(commands)


def api_level_of(getprops: Mapping[str, str]) -> int:
    """ro.build.version.sdk as an int.

    Raises:
        ShellOutputError: the property is missing or not a number.
    """
    sdk = getprops.get("ro.build.version.sdk", "").strip()
    if not sdk.isdigit():
        raise ShellOutputError(GETPROP, f"ro.build.version.sdk is {sdk or 'missing'!r}")
    return int(sdk)


def capture_backends(api_level: int, *, has_screenrecord: bool | None = None) -> tuple[str, ...]:
    """Frame sources usable on a device, preferred first.

    API 21+: screenrecord's H.264 stream to stdout, then `exec:screencap -p`, then the
    framebuffer service. Below 21 there is no H.264-to-stdout and `shell:` is a PTY that
    mangles `screencap -p` (LF -> CRLF), so the framebuffer service comes first.

    Args:
        api_level: the device's API level.
        has_screenrecord: False when `which screenrecord` found nothing (some vendor builds
            drop it); None: assume the stock binary is there.
    """
    if api_level >= SCREENRECORD_H264_MIN_API:
        first = () if has_screenrecord is False else (BACKEND_SCREENRECORD_H264,)
        return (*first, BACKEND_SCREENCAP, BACKEND_FRAMEBUFFER)
    return (BACKEND_FRAMEBUFFER, BACKEND_SCREENCAP)


def screenrecord_present(which_output: str | bytes | None) -> bool | None:
    """Read `which screenrecord`: True (a path), False (nothing), None (unknown/no `which`)."""
    if which_output is None:
        return None
    lines = [line.strip() for line in lines_of(which_output) if line.strip()]
    if not lines:
        return False
    if lines[0].startswith("/") and lines[0].endswith("/screenrecord"):
        return True
    return None


def capabilities_from(outputs: Mapping[str, str | bytes]) -> Capabilities:
    """Build Capabilities from raw command outputs keyed by command (see module docstring).

    Raises:
        ValueError: an unknown key or a required key missing (a probe bug).
        ShellOutputError: an output is not what its command prints.
    """
    unknown = sorted(set(outputs) - set(KNOWN_COMMANDS))
    if unknown:
        raise ValueError(f"unknown command keys {unknown}; known: {list(KNOWN_COMMANDS)}")
    missing = [key for key in REQUIRED_COMMANDS if key not in outputs]
    if missing:
        raise ValueError(f"required command outputs missing: {missing}")
    props = parse_getprop(outputs[GETPROP])
    api = api_level_of(props)
    features = parse_pm_list_features(outputs[PM_LIST_FEATURES])
    camera = _optional(outputs, DUMPSYS_CAMERA, parse_dumpsys_camera)
    return Capabilities(
        api_level=api,
        os_version=props.get("ro.build.version.release", ""),
        model=props.get("ro.product.model", ""),
        manufacturer=props.get("ro.product.manufacturer", ""),
        display=_display(outputs, api, props),
        microphone=FEATURE_MICROPHONE in features,
        front_camera=FEATURE_CAMERA_FRONT in features or bool(camera and camera.has_front),
        back_camera=FEATURE_CAMERA_BACK in features or bool(camera and camera.has_back),
        wifi_hardware=FEATURE_WIFI in features,
        wifi=_optional(outputs, DUMPSYS_WIFI, parse_dumpsys_wifi),
        accounts=_optional(outputs, DUMPSYS_ACCOUNT, parse_dumpsys_account),
        capture_backends=capture_backends(
            api, has_screenrecord=screenrecord_present(outputs.get(WHICH_SCREENRECORD))
        ),
        features=features.names,
        gl_es_version=features.gl_es_version,
        camera=camera,
        recordings=_optional(outputs, DUMPSYS_AUDIO, parse_dumpsys_audio),
        battery=_optional(outputs, DUMPSYS_BATTERY, parse_dumpsys_battery),
        fingerprint=props.get("ro.build.fingerprint", ""),
        serial=props.get("ro.serialno") or props.get("ro.boot.serialno", ""),
    )


def compare(profile: DeviceProfile, caps: Capabilities) -> list[Difference]:
    """Expected (profile) vs probed (caps): API level, hardware, display.

    The display counts as equal when width and height are merely swapped (natural orientation
    differs between a profile and a panel); facts not probed (None) are not compared.
    """
    diffs = []
    if profile.api_level != caps.api_level:
        diffs.append(Difference("api_level", profile.api_level, caps.api_level))
    hw = profile.hardware
    for name, probed in (
        ("microphone", caps.microphone),
        ("front_camera", caps.front_camera),
        ("back_camera", caps.back_camera),
        ("wifi", caps.wifi_hardware),
    ):
        expected = getattr(hw, name)
        if expected != probed:
            diffs.append(Difference(f"hardware.{name}", expected, probed))
    if caps.display is not None:
        want, got = profile.display, caps.display
        if (got.width, got.height) not in {(want.width, want.height), (want.height, want.width)}:
            diffs.append(Difference("display.width", want.width, got.width))
            diffs.append(Difference("display.height", want.height, got.height))
        if got.density is not None and got.density != want.density:
            diffs.append(Difference("display.density", want.density, got.density))
    return diffs


def eligibility(
    profile: DeviceProfile | None,
    caps: Capabilities,
    *,
    account_types: Collection[str] | None = None,
) -> Eligibility:
    """Can this device run a support session? Every unmet requirement gives a reason.

    Requirements: a microphone, a registered account (of one of `account_types` if given),
    Wi-Fi enabled and connected, and a model whose profile says eligible.
    """
    reasons = []
    if not caps.microphone:
        reasons.append(f"no microphone ({FEATURE_MICROPHONE} missing)")
    if caps.accounts is None:
        reasons.append("account state unknown (dumpsys account not probed)")
    elif not any(account_types is None or a.type in account_types for a in caps.accounts):
        kinds = f" of type {', '.join(sorted(account_types))}" if account_types else ""
        reasons.append(f"no registered account{kinds}")
    if caps.wifi is None:
        reasons.append("Wi-Fi state unknown (dumpsys wifi not probed)")
    elif not caps.wifi.enabled:
        reasons.append("Wi-Fi disabled")
    elif not caps.wifi.connected:
        reasons.append(
            f"Wi-Fi not connected (supplicant state {caps.wifi.supplicant_state or 'unknown'})"
        )
    if profile is None:
        reasons.append(f"unknown model {caps.manufacturer} {caps.model} (no profile matches)")
    elif not profile.eligible:
        reasons.append(f"model not eligible ({profile.name}): {profile.ineligible_reason}")
    if reasons:
        return Eligibility(False, "; ".join(reasons), tuple(reasons))
    return Eligibility(True, "eligible")


def _display(
    outputs: Mapping[str, str | bytes], api: int, props: Mapping[str, str]
) -> DisplayMetrics | None:
    """wm size/density on API 18+, else dumpsys display, else dumpsys window displays."""
    lcd_density = props.get("ro.sf.lcd_density", "")
    fallback_density = int(lcd_density) if lcd_density.isdigit() else None
    if api >= WM_MIN_API and WM_SIZE in outputs:
        size = parse_wm_size(outputs[WM_SIZE])
        density = _optional(outputs, WM_DENSITY, parse_wm_density)
        return DisplayMetrics(
            size.width, size.height, density.density if density else fallback_density
        )
    if DUMPSYS_DISPLAY in outputs:
        metrics = parse_dumpsys_display(outputs[DUMPSYS_DISPLAY])
        if metrics.density is not None:
            return metrics
        window = _optional(outputs, DUMPSYS_WINDOW_DISPLAYS, parse_dumpsys_window_displays)
        density = window.density if window else fallback_density
        return DisplayMetrics(metrics.width, metrics.height, density)
    return _optional(outputs, DUMPSYS_WINDOW_DISPLAYS, parse_dumpsys_window_displays)


def _optional(
    outputs: Mapping[str, str | bytes], key: str, parse: Callable[[str | bytes], _T]
) -> _T | None:
    return parse(outputs[key]) if key in outputs else None
