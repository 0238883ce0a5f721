"""Pure parsers of Android shell output, one module per command.

Each parser takes the raw stdout (str or bytes; CRLF and trailing junk tolerated) and returns
a frozen dataclass or a simple type, or raises ShellOutputError (a ValueError) naming the
command and what was unexpected. The formats per API level are in each module's docstring
and recorded in fixtures/shell/<command>/.
"""

from harness.device.parsers.account import Account, parse_dumpsys_account
from harness.device.parsers.audio import AudioRecording, parse_dumpsys_audio
from harness.device.parsers.battery import BatteryState, parse_dumpsys_battery
from harness.device.parsers.camera import CameraClient, CameraState, parse_dumpsys_camera
from harness.device.parsers.display import (
    DisplayMetrics,
    WmDensity,
    WmSize,
    parse_dumpsys_display,
    parse_dumpsys_window_displays,
    parse_wm_density,
    parse_wm_size,
)
from harness.device.parsers.features import Features, parse_pm_list_features
from harness.device.parsers.getprop import parse_getprop
from harness.device.parsers.text import ShellOutputError, lines_of
from harness.device.parsers.wifi import WifiState, parse_dumpsys_wifi

__all__ = [
    "Account",
    "AudioRecording",
    "BatteryState",
    "CameraClient",
    "CameraState",
    "DisplayMetrics",
    "Features",
    "ShellOutputError",
    "WifiState",
    "WmDensity",
    "WmSize",
    "lines_of",
    "parse_dumpsys_account",
    "parse_dumpsys_audio",
    "parse_dumpsys_battery",
    "parse_dumpsys_camera",
    "parse_dumpsys_display",
    "parse_dumpsys_window_displays",
    "parse_dumpsys_wifi",
    "parse_getprop",
    "parse_pm_list_features",
    "parse_wm_density",
    "parse_wm_size",
]
