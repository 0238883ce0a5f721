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

    @property
    def shell_v2(self) -> bool:
        return "shell_v2" in self.features


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
        features=("shell_v2",) if api >= 24 else (),
        pty_crlf=api <= 20,
        has_exec=api >= 21,
        has_wm_size=api >= 18,
        has_screenrecord=api >= 19,
        has_screenrecord_stdout=api >= 21,
        has_toybox=api >= 23,
        has_cmd=api >= 24,
        has_u2=api >= 18,
        has_audio_recording_dump=api >= 24,
    )
