"""What an adbd and a shell of a given API level do differently (DESIGN principle 5)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.profiles import DeviceProfile
from harness.twin import protocol as p


@dataclass(frozen=True)
class Personality:
    api: int
    version: int
    max_payload: int
    checksum: bool
    auth_required: bool
    features: tuple[str, ...]
    pty_crlf: bool  # shell: ran under a PTY, LF -> CRLF (API <= 20)
    has_exec: bool  # exec: service (API >= 21)
    has_wm_size: bool  # `wm size` (API >= 18)
    has_screenrecord: bool  # API >= 19
    has_screenrecord_stdout: bool  # --output-format=h264 to stdout, API >= 21
    has_toybox: bool  # API >= 23
    has_cmd: bool  # API >= 24
    has_u2: bool  # UiAutomation for the uiautomator2 jar, API >= 18
    has_audio_recording_dump: bool  # dumpsys audio recording section, API >= 24
    has_reverse: bool = True  # reverse: service, API >= 21

    @property
    def shell_v2(self) -> bool:
        return "shell_v2" in self.features


# adbd's feature list by the API level that added each (AOSP adb transport.cpp
# supported_features(); levels from the adb release history). The compression features
# (sendrecv_v2_brotli/_lz4/_zstd) and delayed_ack/devraw/openscreen_mdns are left out: not implemented.
_FEATURES_SINCE = (
    (24, "shell_v2"),
    (24, "cmd"),
    (26, "stat_v2"),
    (26, "fixed_push_mkdir"),
    (28, "fixed_push_symlink_timestamp"),
    (29, "apex"),
    (29, "abb"),
    (29, "abb_exec"),
    (29, "remount_shell"),
    (30, "ls_v2"),
    (31, "track_app"),
    (31, "sendrecv_v2"),
    (31, "sendrecv_v2_dry_run_send"),
)


def features_for(api: int) -> tuple[str, ...]:
    """The features a real adbd of this API level lists in its CNXN banner (of those modelled)."""
    return tuple(name for since, name in _FEATURES_SINCE if api >= since)


def personality_for(profile: DeviceProfile) -> Personality:
    api = profile.api_level
    if api <= 23:
        max_payload = 4096
    elif api <= 27:
        max_payload = 256 * 1024
    else:
        max_payload = 1024 * 1024
    return Personality(
        api=api,
        version=p.VERSION_CHECKSUMMED if api <= 17 else p.VERSION_SKIP_CHECKSUM,
        max_payload=max_payload,
        checksum=api <= 17,
        auth_required=api <= 17 or profile.props.get("ro.adb.secure") == "1",
        features=features_for(api),
        pty_crlf=api <= 20,
        has_exec=api >= 21,
        has_wm_size=api >= 18,
        has_screenrecord=api >= 19,
        has_screenrecord_stdout=api >= 21,
        has_toybox=api >= 23,
        has_cmd=api >= 24,
        has_u2=api >= 18,
        has_audio_recording_dump=api >= 24,
        has_reverse=api >= 21,
    )
