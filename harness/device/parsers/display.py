"""Display size and density: `wm size`, `wm density` (API 18+) and the API 17 fallbacks.

- `wm size`: `Physical size: 1920x1200`, plus `Override size: 1280x800` when overridden.
  On API 17 there is no `wm`: the shell answers `/system/bin/sh: wm: not found`.
- `wm density`: `Physical density: 320`, plus `Override density: 280` when overridden.
- `dumpsys display` (API 17+): `DISPLAY MANAGER (dumpsys display)`, then among others
  `  mDefaultViewport=DisplayViewport{valid=true, ..., deviceWidth=1920, deviceHeight=1200}`
  and under `Display Devices:` one line per device
  `  DisplayDeviceInfo{"Built-in Screen": 1920 x 1200, 60.0 fps, density 320, ...,
  FLAG_DEFAULT_DISPLAY, ...}` (API 23+: `"Built-in Screen": uniqueId="local:0", 1080 x 2340`).
- `dumpsys window displays` (API 17+): `WINDOW MANAGER DISPLAY CONTENTS (dumpsys window
  displays)`, `  Display: mDisplayId=0`, `    init=1920x1200 320dpi cur=1920x1200 app=...`.

Sizes are in the display's natural orientation (what the panel reports), not the current one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

WM_SIZE = "wm size"
WM_DENSITY = "wm density"
DUMPSYS_DISPLAY = "dumpsys display"
DUMPSYS_WINDOW_DISPLAYS = "dumpsys window displays"

_PHYSICAL_SIZE = re.compile(r"^\s*Physical size: (\d+)x(\d+)\s*$")
_OVERRIDE_SIZE = re.compile(r"^\s*Override size: (\d+)x(\d+)\s*$")
_PHYSICAL_DENSITY = re.compile(r"^\s*Physical density: (\d+)\s*$")
_OVERRIDE_DENSITY = re.compile(r"^\s*Override density: (\d+)\s*$")
_DEVICE_INFO = re.compile(r'DisplayDeviceInfo\{"[^"]*": (?:uniqueId="[^"]*", )?(\d+) x (\d+)')
_DENSITY = re.compile(r", density (\d+)")
_VIEWPORT = re.compile(
    r"mDefaultViewport=DisplayViewport\{valid=true,.*?deviceWidth=(\d+), deviceHeight=(\d+)"
)
_INIT = re.compile(r"^\s*init=(\d+)x(\d+) (\d+)dpi")


@dataclass(frozen=True)
class WmSize:
    """`wm size`: the physical size, and the override when one is set."""

    width: int
    height: int
    override: tuple[int, int] | None = None


@dataclass(frozen=True)
class WmDensity:
    """`wm density`: the physical density (dpi), and the override when one is set."""

    density: int
    override: int | None = None


@dataclass(frozen=True)
class DisplayMetrics:
    """A display's natural-orientation size in pixels and density in dpi (None: unknown)."""

    width: int
    height: int
    density: int | None = None


def parse_wm_size(text: str | bytes) -> WmSize:
    """Parse `wm size`.

    Raises:
        ShellOutputError: no `Physical size: WxH` line (API 17 says `wm: not found`).
    """
    check_shell_failure(WM_SIZE, text)
    lines = lines_of(text)
    physical = next((m for m in map(_PHYSICAL_SIZE.match, lines) if m), None)
    if physical is None:
        raise ShellOutputError(WM_SIZE, "no `Physical size: <w>x<h>` line", text)
    override = next((m for m in map(_OVERRIDE_SIZE.match, lines) if m), None)
    return WmSize(
        int(physical.group(1)),
        int(physical.group(2)),
        (int(override.group(1)), int(override.group(2))) if override else None,
    )


def parse_wm_density(text: str | bytes) -> WmDensity:
    """Parse `wm density`.

    Raises:
        ShellOutputError: no `Physical density: N` line.
    """
    check_shell_failure(WM_DENSITY, text)
    lines = lines_of(text)
    physical = next((m for m in map(_PHYSICAL_DENSITY.match, lines) if m), None)
    if physical is None:
        raise ShellOutputError(WM_DENSITY, "no `Physical density: <dpi>` line", text)
    override = next((m for m in map(_OVERRIDE_DENSITY.match, lines) if m), None)
    return WmDensity(int(physical.group(1)), int(override.group(1)) if override else None)


def parse_dumpsys_display(text: str | bytes) -> DisplayMetrics:
    """The default display's size and density from `dumpsys display`.

    Uses the DisplayDeviceInfo flagged FLAG_DEFAULT_DISPLAY (else the first), falling back to
    mDefaultViewport for the size (density then unknown).

    Raises:
        ShellOutputError: neither a DisplayDeviceInfo nor a valid mDefaultViewport.
    """
    check_shell_failure(DUMPSYS_DISPLAY, text)
    lines = lines_of(text)
    infos = [line for line in lines if _DEVICE_INFO.search(line)]
    if infos:
        line = next((x for x in infos if "FLAG_DEFAULT_DISPLAY" in x), infos[0])
        size = _DEVICE_INFO.search(line)
        density = _DENSITY.search(line)
        return DisplayMetrics(
            int(size.group(1)), int(size.group(2)), int(density.group(1)) if density else None
        )
    viewport = next((m for m in map(_VIEWPORT.search, lines) if m), None)
    if viewport is not None and int(viewport.group(1)) > 0:
        return DisplayMetrics(int(viewport.group(1)), int(viewport.group(2)))
    raise ShellOutputError(
        DUMPSYS_DISPLAY, "no `DisplayDeviceInfo{...}` and no valid `mDefaultViewport`", text
    )


def parse_dumpsys_window_displays(text: str | bytes) -> DisplayMetrics:
    """The first display's initial size and density from `dumpsys window displays`.

    Raises:
        ShellOutputError: no `init=<w>x<h> <dpi>dpi` line.
    """
    check_shell_failure(DUMPSYS_WINDOW_DISPLAYS, text)
    m = next((m for m in map(_INIT.match, lines_of(text)) if m), None)
    if m is None:
        raise ShellOutputError(DUMPSYS_WINDOW_DISPLAYS, "no `init=<w>x<h> <dpi>dpi` line", text)
    return DisplayMetrics(int(m.group(1)), int(m.group(2)), int(m.group(3)))
