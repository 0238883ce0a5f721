"""The run's devices: attached ones (--device, --profile) and twins started for it (--twin).

Resolved once on the xdist controller (or the single process), handed to workers as plain
data, and torn down by PID at the end of the run, also when it is interrupted.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.device.adb import Device
from harness.device.capabilities import match_profile
from harness.errors import HarnessError, ProfileError
from harness.farm import AdbServer, TwinProcess
from harness.farm.reaper import Reaper
from harness.profiles import DeviceProfile, load_profile, load_profiles

log = logging.getLogger(__name__)
_TWIN_SPEC = re.compile(r"^(?P<profile>[A-Za-z0-9_.\-/]+?)(?:x(?P<count>\d+))?$")
MAX_TWINS = 64  # per --twin option: one host's ports, cores and patience
PORT_RANGE = range(1, 65536)


@dataclass(frozen=True)
class DeviceSpec:
    """Everything a worker needs to reach one device."""

    serial: str
    adb_host: str
    adb_port: int
    profile: str | None  # matched profile name
    model: str
    api_level: int
    twin_truth: str | None = None
    twin_control: str | None = None
    console_port: int | None = None  # emulator console (emulators and twins)
    console_token_file: str | None = None
    walt_port: str | None = None  # serial port of the WALT on this device's screen
    relay_port: str | None = None  # serial port of the USB relay powering this device
    camera_url: str | None = None  # lab camera stream filming this device (and the agent's monitor)

    @property
    def id(self) -> str:
        return f"{self.serial}-{self.profile or 'unknown'}"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_twin_option(value: str) -> tuple[str, int]:
    """ "fire-hdx-7-2013x2" -> ("fire-hdx-7-2013", 2)."""
    m = _TWIN_SPEC.match(value)
    if not m:
        raise ProfileError("--twin", value, "expected PROFILE or PROFILExN")
    count = int(m.group("count") or 1)
    if not 1 <= count <= MAX_TWINS:
        raise ProfileError("--twin", value, f"twin count must be 1..{MAX_TWINS}, got {count}")
    return m.group("profile"), count


def validate_run(
    options, profiles_dir: Path | None, budget_override: str | None = None, media_slots=None
) -> None:
    """Check every piece of the run's configuration at start-up, before any device is touched:
    device profiles, budgets (and each profile's budget), --budget, --profile, --twin (known
    profile, count 1..MAX_TWINS), --network (a known, valid profile), --adb-port, --media-slots.

    Args:
        options: pytest's config.option (the mayday-hil options).
        profiles_dir: the profiles directory (None: the stock one).
        budget_override: --budget or the hil_budget ini value.
        media_slots: --media-slots or the hil_media_slots ini value.

    Raises:
        ProfileError: one line naming the file or option and the key at fault.
    """
    from harness.network.profiles import load_network_profile
    from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets

    directory = Path(profiles_dir or DEFAULT_PROFILES_DIR)
    if profiles_dir is not None and not directory.is_dir():
        raise ProfileError("--profiles-dir", str(profiles_dir), "not a directory")
    profiles = load_profiles(profiles_dir)
    budgets = load_budgets(directory / "budgets.yaml")
    for prof in profiles.values():
        if prof.budget not in budgets:
            raise ProfileError(
                prof.file,
                "support.budget",
                f"unknown budget {prof.budget!r}; {directory / 'budgets.yaml'} has:"
                f" {', '.join(sorted(budgets))}",
            )
    if budget_override and budget_override not in budgets:
        raise ProfileError(
            "--budget", budget_override, f"unknown budget; known: {', '.join(sorted(budgets))}"
        )
    if getattr(options, "profile", None) and options.profile not in profiles:
        raise ProfileError(
            "--profile", options.profile, f"unknown profile; known: {', '.join(sorted(profiles))}"
        )
    for spec in getattr(options, "twin", None) or []:
        name, _ = parse_twin_option(spec)
        try:
            load_profile(name, profiles_dir)
        except ProfileError as e:
            raise ProfileError("--twin", spec, e.msg) from None
    network = getattr(options, "network", None)
    if network:
        try:
            load_network_profile(network)
        except ProfileError as e:
            raise ProfileError(f"--network {network}", e.key, f"{e.msg} (in {e.file})") from None
    adb_port = getattr(options, "adb_port", None)
    if adb_port is not None and adb_port not in PORT_RANGE:
        raise ProfileError("--adb-port", str(adb_port), "a port is 1..65535")
    if media_slots not in (None, ""):
        try:
            slots = int(media_slots)
        except (TypeError, ValueError):
            slots = 0
        if slots < 1:
            raise ProfileError("--media-slots", str(media_slots), "must be a whole number >= 1")


class HilRun:
    """Owns the adb server and twins of a run (controller side)."""

    def __init__(self, profiles_dir: Path | None, adb_host: str, adb_port: int | None):
        self.profiles_dir = profiles_dir
        self.adb_host = adb_host
        self.adb_port = adb_port or int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
        self.adb_server: AdbServer | None = None
        self.twins: list[TwinProcess] = []
        self.devices: list[DeviceSpec] = []
        self.reaper: Reaper | None = None
        self._stopped = False

    def start_twins(self, specs: list[str], lab: bool = False) -> None:
        """Start a private adb server and the twins (each an own process); bounded waits."""
        parsed = [parse_twin_option(s) for s in specs]
        for name, _ in parsed:
            load_profile(
                name, self.profiles_dir
            )  # unknown profile: ProfileError before anything starts
        atexit.register(self.stop)
        home = Path(tempfile.mkdtemp(prefix="hil-run-adb-"))
        self.reaper = Reaper(home / "reaper.ledger").start()  # stops them all if this run is killed
        self.adb_server = AdbServer(home=home, reaper=self.reaper).start()
        self.adb_host, self.adb_port = "127.0.0.1", self.adb_server.port
        for name, count in parsed:
            tp = TwinProcess(
                name,
                adb=self.adb_server,
                count=count,
                state_dir=Path(tempfile.mkdtemp(prefix=f"hil-twin-{name}-")),
                extra_args=(
                    *(("--profiles-dir", str(self.profiles_dir)) if self.profiles_dir else ()),
                    *(("--walt", "--relay", "--camera") if lab else ()),
                ),
                reaper=self.reaper,
            )
            self.twins.append(tp)
            tp.start()

    def resolve(
        self,
        serials: list[str],
        profile_filter: str | None,
        walt_port: str | None = None,
        relay_port: str | None = None,
        camera_url: str | None = None,
    ) -> list[DeviceSpec]:
        """The devices of this run: the twins, or the named serials, or every attached device."""
        profiles = load_profiles(self.profiles_dir)
        if profile_filter and profile_filter not in profiles:
            raise ProfileError(
                str(self.profiles_dir or "device_profiles"),
                "--profile",
                f"unknown profile {profile_filter!r}; known: {', '.join(sorted(profiles))}",
            )
        twin_info = {f"127.0.0.1:{t.port}": t for tp in self.twins for t in tp.twins}
        import adbutils

        try:
            listed = adbutils.AdbClient(
                host=self.adb_host, port=self.adb_port, socket_timeout=5
            ).list()
        except (adbutils.AdbError, OSError) as e:
            raise HarnessError(
                f"adb server {self.adb_host}:{self.adb_port} unreachable: {e}"
            ) from None
        states = {d.serial: d.state for d in listed}
        if twin_info:
            wanted = list(twin_info)
        elif serials:
            wanted = serials
            for s in serials:
                if s not in states:
                    shown = ", ".join(f"{k} ({v})" for k, v in states.items()) or "none"
                    raise HarnessError(f"device {s} is not attached (adb devices shows: {shown})")
        else:
            wanted = [s for s, st in states.items() if st == "device"]
        out = []
        for serial in wanted:
            state = states.get(serial, "absent")
            if state != "device":
                raise HarnessError(f"device {serial} is {state}, not ready for tests")
            dev = Device(serial, host=self.adb_host, port=self.adb_port)
            props = dev.getprops()
            prof: DeviceProfile | None = match_profile(props, profiles)
            if profile_filter and (prof is None or prof.name != profile_filter):
                continue
            info = twin_info.get(serial)
            console = (
                info.console_port
                if info
                else (int(serial.split("-", 1)[1]) if serial.startswith("emulator-") else None)
            )
            home = (
                self.adb_server.home
                if self.adb_server is not None
                else Path(os.path.expanduser("~"))
            )
            out.append(
                DeviceSpec(
                    serial=serial,
                    adb_host=self.adb_host,
                    adb_port=self.adb_port,
                    profile=prof.name if prof else None,
                    model=props.get("ro.product.model", "?"),
                    api_level=int(props.get("ro.build.version.sdk", "0") or 0),
                    twin_truth=str(info.truth) if info else None,
                    twin_control=str(info.control) if info else None,
                    console_port=console,
                    console_token_file=str(home / ".emulator_console_auth_token")
                    if console
                    else None,
                    walt_port=(info.walt if info else walt_port),
                    relay_port=(info.relay if info else relay_port),
                    camera_url=(
                        f"{info.camera}/stream.mjpg" if info and info.camera else camera_url
                    ),
                )
            )
        if (walt_port or relay_port or camera_url) and len(out) != 1:
            raise HarnessError(
                f"--walt/--relay/--camera name the instruments of one device; {len(out)} devices were selected"
            )
        self.devices = out
        return out

    def stop(self) -> None:
        """Stop every twin and the private adb server by PID. Never raises."""
        if self._stopped:
            return
        self._stopped = True
        for tp in self.twins:
            tp.stop()
        if self.adb_server is not None:
            self.adb_server.stop()
        if self.reaper is not None:
            self.reaper.stop()


RECOVERY_TIMEOUT_S = 60.0  # a device dropped or rebooting by the previous test: back by then
_RECOVERY_POLL_S = 0.25
_RECONNECT_EVERY_S = 2.0  # `adb connect` again (a device reached over TCP) this often
_HARD_STATES = ("unauthorized", "no permissions")  # waiting does not fix these


def await_device(spec: DeviceSpec, timeout_s: float = RECOVERY_TIMEOUT_S) -> float:
    """Before a test: wait (bounded) until the device is `device` on its adb server again, after
    a drop or reboot left it offline or gone; a TCP device (HOST:PORT) is `adb connect`ed again
    every few seconds meanwhile. Raw host services only: nothing here can make adbutils start
    an adb server of its own.

    Returns:
        Seconds waited: 0.0 when the device was ready (no recovery), else the recovery's time.

    Raises:
        DeviceError: the adb server is gone, the device is unauthorized, or it was not back
            within timeout_s (one line naming the device and its last state).
    """
    import time

    from harness.errors import DeviceError
    from harness.farm.adbserver import host_query, parse_devices

    if spec.adb_host not in ("127.0.0.1", "localhost"):
        return 0.0  # a remote adb server (a farm): its own leasing checks the device
    t0 = time.monotonic()
    last_connect = t0 - _RECONNECT_EVERY_S
    first = True
    while True:
        try:
            states = parse_devices(host_query(spec.adb_port, "host:devices", timeout_s=2.0))
        except OSError as e:
            raise DeviceError(
                spec.serial, f"before the test: adb server 127.0.0.1:{spec.adb_port} is gone ({e})"
            ) from None
        state = states.get(spec.serial, "absent")
        now = time.monotonic()
        if state == "device":
            return 0.0 if first else now - t0
        first = False
        if state in _HARD_STATES:
            raise DeviceError(spec.serial, f"before the test: the device is {state}")
        if now - t0 > timeout_s:
            raise DeviceError(
                spec.serial,
                f"before the test: not back on adb within {timeout_s:g} s after a drop or"
                f" reboot (state {state})",
            )
        if ":" in spec.serial and now - last_connect >= _RECONNECT_EVERY_S:
            last_connect = now
            try:
                reply = host_query(spec.adb_port, f"host:connect:{spec.serial}", timeout_s=5.0)
                log.info("%s: %s (state %s): %s", spec.serial, "adb connect", state, reply)
            except OSError as e:
                log.info("%s: adb connect: %s", spec.serial, e)
        time.sleep(_RECOVERY_POLL_S)


def infrastructure_error(
    exc: BaseException, serial: str | None, where: str | None = None
) -> str | None:
    """One line for an exception that is the lab's fault, not the product's (an adb or device
    fault, a shaper, an instrument, a profile; a raw socket error of a lost adb server; or an
    error caused by one of these), None for anything else (assertions, budgets, session and
    measurement outcomes stay test failures). The line names the device and the step (the
    command, or `where`: the test's line that raised)."""
    from harness.errors import (
        AdbError,
        DeviceError,
        InstrumentError,
        NetworkShaperError,
        ProfileError,
        UiError,
    )

    infra = (AdbError, NetworkShaperError, InstrumentError, ProfileError, OSError)
    try:
        import adbutils

        infra = (*infra, adbutils.AdbError)
    except ImportError:  # pragma: no cover - adbutils is a dependency
        pass
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:  # bounded: a cycle of causes cannot hang us
        if isinstance(cause, AssertionError):
            return None
        if isinstance(cause, infra) or (
            type(cause) is DeviceError and not isinstance(cause, UiError)
        ):
            break
        cause = cause.__cause__ or cause.__context__
        seen += 1
    else:
        return None
    text = " ".join(str(exc).split()) or type(exc).__name__
    if serial and f"[{serial}]" not in text:
        text = f"[{serial}] {text}"
    kind = type(cause).__name__
    if cause is not exc:
        kind = f"{type(exc).__name__} <- {kind}"
    at = f" at {where}" if where else ""
    return f"infrastructure error ({kind}){at}: {text}"
