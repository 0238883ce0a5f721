"""The build under test: install APKs on every device before a run, and read the support app's
package versions (`dumpsys package`) for the report's environment and results.jsonl."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from harness.device.adb import Device
from harness.errors import HarnessError

log = logging.getLogger(__name__)

INSTALL_TIMEOUT_S = 120.0
DUMPSYS_TIMEOUT_S = 10.0
NOT_INSTALLED = "not installed"
_VERSION_NAME = re.compile(r"^\s*versionName=(\S+)", re.M)
_VERSION_CODE = re.compile(r"^\s*versionCode=(\d+)", re.M)


def check_apks(paths: list[str | Path]) -> list[Path]:
    """The --install files, checked before any device is touched.

    Raises:
        HarnessError: a path that is not a readable .apk file (names it).
    """
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise HarnessError(f"--install {p}: no such file")
        if path.suffix.lower() != ".apk":
            raise HarnessError(f"--install {p}: not an .apk file")
        out.append(path)
    return out


def install(device: Device, apk: Path, timeout_s: float = INSTALL_TIMEOUT_S) -> None:
    """Install one APK with adbutils (push + `pm install -r -t`), bounded by timeout_s.

    Raises:
        HarnessError: the install failed or timed out (names the device and the file).
    """
    error: list[BaseException] = []

    def run() -> None:
        try:
            device.adbutils_device.install(str(apk), nolaunch=True, silent=True)
        except BaseException as e:  # noqa: BLE001 -- reported below, with the device and the file
            error.append(e)

    t = threading.Thread(target=run, name=f"install-{device.serial}", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise HarnessError(f"[{device.serial}] installing {apk}: no answer within {timeout_s:g} s")
    if error:
        e = error[0]
        raise HarnessError(f"[{device.serial}] installing {apk} failed: {type(e).__name__}: {e}")
    log.info("%s: installed %s", device.serial, apk)


def install_all(devices: list[Device], apks: list[Path]) -> None:
    """Every APK on every device, in order; the first failure is the error (names both)."""
    for device in devices:
        for apk in apks:
            install(device, apk)


def parse_dumpsys_package(text: str) -> str | None:
    """ "versionName (versionCode)" from `dumpsys package PKG`, or None when it names none."""
    name = _VERSION_NAME.search(text)
    code = _VERSION_CODE.search(text)
    if name is None and code is None:
        return None
    return f"{name.group(1) if name else '?'} ({code.group(1) if code else '?'})"


def package_versions(
    device: Device, packages: tuple[str, ...] | list[str], timeout_s: float = DUMPSYS_TIMEOUT_S
) -> dict[str, str]:
    """{package: "versionName (versionCode)" | "installed (version unknown)" | "not installed"}
    for the packages a device has (those it does not have are left out unless none is there)."""
    try:
        listed = device.shell("pm list packages", timeout_s=timeout_s).stdout
    except Exception as e:  # noqa: BLE001 -- facts for the report: never break the run
        return {p: f"unknown ({e})" for p in packages}
    installed = {line.split(":", 1)[1].strip() for line in listed.splitlines() if ":" in line}
    out: dict[str, str] = {}
    for pkg in packages:
        if pkg not in installed:
            continue
        try:
            text = device.shell(f"dumpsys package {pkg}", timeout_s=timeout_s).stdout
        except Exception as e:  # noqa: BLE001 -- facts for the report: never break the run
            out[pkg] = f"installed (dumpsys failed: {e})"
            continue
        out[pkg] = parse_dumpsys_package(text) or "installed (version unknown)"
    return out or {p: NOT_INSTALLED for p in packages}
