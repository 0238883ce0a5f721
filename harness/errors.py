"""One error tree for the whole harness (see shared/DESIGN.md, house style).

Infrastructure errors (HarnessError and its children) end a test as a pytest "error";
BudgetExceeded is an AssertionError so the product being out of budget is a "failure".
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class DeviceError(HarnessError):
    """Something went wrong with one device; the message is prefixed with its serial."""

    def __init__(self, device: str, msg: str):
        self.device = device
        self.msg = msg
        super().__init__(f"[{device}] {msg}")


class AdbError(DeviceError):
    """An adb command failed or returned a non-zero exit code."""

    def __init__(
        self,
        cmd: str,
        stdout: str = "",
        stderr: str = "",
        returncode: int | None = None,
        serial: str = "?",
        msg: str | None = None,
    ):
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode
        self.serial = serial
        detail = msg or f"`{cmd}` exited {returncode}"
        tail = (stderr or stdout or "").strip().splitlines()
        if tail and not msg:
            detail += f": {tail[-1][:200]}"
        super().__init__(serial, detail)


class AdbTimeoutError(AdbError):
    """An adb command did not finish within its timeout."""

    def __init__(self, cmd: str, timeout_s: float, serial: str = "?", stdout: str = ""):
        self.timeout_s = timeout_s
        super().__init__(
            cmd, stdout=stdout, serial=serial, msg=f"`{cmd}` timed out after {timeout_s:g} s"
        )


class UiError(DeviceError):
    """A UI element could not be found or driven."""


class NetworkShaperError(HarnessError):
    """A network shaper could not apply, express or clear a profile."""


class ProfileError(HarnessError):
    """A profile or budget file is invalid; names the file and the key at fault."""

    def __init__(self, file: str, key: str, msg: str):
        self.file = str(file)
        self.key = key
        self.msg = msg
        super().__init__(f"{file}: {key}: {msg}")


class MeasurementError(HarnessError):
    """A figure could not be measured (no data, bad input, no overlap...)."""


class InstrumentError(HarnessError):
    """A serial instrument failed: missing port, garbage, timeout, wrong baud rate."""


class SessionError(HarnessError):
    """The support session flow could not be driven (button missing, agent never came...)."""


class BudgetExceeded(AssertionError):
    """The product is out of budget: a measured value broke its limit."""
