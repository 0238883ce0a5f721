"""`input tap|swipe|keyevent|text` as Android's input command parses them."""

from __future__ import annotations

import asyncio

from harness.twin.proc import Proc

SWIPE_DEFAULT_MS = 300  # `input swipe` without a duration (InputShellCommand)
LONG_PRESS_S = 0.5  # ViewConfiguration.getLongPressTimeout(): draganddrop and --longpress hold it
GESTURE_MAX_S = 60.0  # a gesture's duration is honoured up to this

KEYCODES = {
    "KEYCODE_HOME": 3,
    "KEYCODE_BACK": 4,
    "KEYCODE_POWER": 26,
    "KEYCODE_MENU": 82,
    "KEYCODE_ENTER": 66,
    "KEYCODE_WAKEUP": 224,
    "KEYCODE_SLEEP": 223,
    "KEYCODE_VOLUME_UP": 24,
    "KEYCODE_VOLUME_DOWN": 25,
    "KEYCODE_APP_SWITCH": 187,
}
_USAGE = (
    "Usage: input [<source>] <command> [<arg>...]\n\nThe commands and default sources are:\n"
    "      text <string> (Default: touchscreen)\n      keyevent [--longpress] <key code number or name> ... (Default: keyboard)\n"
    "      tap <x> <y> (Default: touchscreen)\n      swipe <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)"
)
_SOURCES = (
    "touchscreen",
    "keyboard",
    "mouse",
    "touchpad",
    "dpad",
    "trackball",
    "stylus",
    "gamepad",
    "joystick",
)


async def run_input(p: Proc) -> int:  # noqa: C901 -- one branch per `input` subcommand, as Android's input
    args = p.argv[1:]
    if args and args[0] in _SOURCES:
        args = args[1:]
    screen = p.twin.screen
    try:
        if args[:1] == ["tap"] and len(args) == 3:
            screen.tap(float(args[1]), float(args[2]))
            return 0
        if args[:1] == ["swipe"] and len(args) in (5, 6):
            if len(args) == 6 and p.twin.personality.api < 19:
                # Android 4.2's input swipe takes no duration (not verified on hardware)
                await p.eprint(_USAGE)
                return 1
            x1, y1, x2, y2 = (float(a) for a in args[1:5])
            ms = int(args[5]) if len(args) == 6 else SWIPE_DEFAULT_MS
            screen.swipe(x1, y1, x2, y2, ms)
            await asyncio.sleep(
                min(max(ms, 0) / 1000.0, GESTURE_MAX_S)
            )  # the gesture takes its time
            return 0
        if args[:1] == ["draganddrop"] and len(args) in (5, 6) and p.twin.personality.api >= 24:
            x1, y1, x2, y2 = (float(a) for a in args[1:5])
            ms = int(args[5]) if len(args) == 6 else SWIPE_DEFAULT_MS
            await asyncio.sleep(LONG_PRESS_S)  # hold until the drag starts
            screen.swipe(x1, y1, x2, y2, ms)
            await asyncio.sleep(min(max(ms, 0) / 1000.0, GESTURE_MAX_S))
            return 0
        if args[:1] == ["keyevent"] and len(args) >= 2:
            longpress = "--longpress" in args
            for key in args[1:]:
                if key == "--longpress":
                    continue
                code = KEYCODES.get(key.upper()) if not key.isdigit() else int(key)
                if code is None:
                    await p.eprint(f"Error: Unknown keycode: {key}")
                    return 1
                screen.key(code)
                if longpress:
                    await asyncio.sleep(LONG_PRESS_S)
            return 0
        if args[:1] == ["text"] and len(args) >= 2:
            p.twin.truth.record("text", text=" ".join(args[1:]).replace("%s", " "))
            return 0
    except ValueError as e:
        await p.eprint(f"Error: {e}")
        return 1
    await p.eprint(_USAGE)
    return 1
