"""Device-side commands built from user input are quoted: an injection never runs on the device
(proven on twins through the real adb server: the file it would create does not exist)."""

from __future__ import annotations

import contextlib

import pytest

from harness.device.adb import Device
from harness.device.ui import DumpBackend
from harness.errors import AdbError

PWNED = "/data/local/tmp/pwned"
INJECTIONS = [
    f"x; touch {PWNED}",
    f"$(touch {PWNED})",
    f"`touch {PWNED}`",
    f"x && touch {PWNED}",
    f"x | touch {PWNED}",
    f"x'; touch {PWNED}; echo '",
    f'x"; touch {PWNED}; echo "',
    f"x\ntouch {PWNED}",
]


def _exists(dev: Device, path: str) -> bool:
    return dev.shell(f"ls {path}").returncode == 0


@pytest.mark.parametrize("profile", ["android-emulator-api34", "fire-hdx-7-2013"])
def test_injection_through_getprop_and_press_never_runs(adb_server, start_twin, profile):
    tp = start_twin(profile)
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    # the twin's shell does run such lines (so the check below can fail)
    dev.shell(f"echo x; touch {PWNED}")
    assert _exists(dev, PWNED)
    dev.shell(f"rm {PWNED}")
    assert not _exists(dev, PWNED)
    ui = DumpBackend(dev)
    for text in INJECTIONS:
        assert dev.getprop(text) == ""  # no such property: the whole text is one key
        with contextlib.suppress(AdbError):  # not a key: refused by `input`, and nothing else
            ui.press(text)
        assert not _exists(dev, PWNED), text
    assert dev.getprop("ro.build.version.sdk") in ("34", "17")  # a plain key still works
