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
    stf: dict | None = None  # an STF lease: serial, provider, remote_url, leased_at, lease_s, ...

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
    return m.group("profile"), int(m.group("count") or 1)


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
        self.stf = None  # harness.farm.stf.StfLeaser
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
                extra_args=("--walt", "--relay", "--camera") if lab else (),
                reaper=self.reaper,
            )
            self.twins.append(tp)
            tp.start()

    def lease_stf(
        self,
        url: str,
        token: str,
        filters: list[str],
        count: int,
        lease_s: float,
        shard: str | None = None,
    ) -> None:
        """Lease devices from an STF farm onto a private adb server (--stf ...); the reaper
        releases them if this run is killed outright. resolve() then uses them."""
        from harness.farm.reaper import STF_TOKEN_ENV
        from harness.farm.stf import StfClient, StfLeaser, parse_filters, parse_shard

        client = StfClient(url, token)  # a malformed URL or no token: one error, nothing started
        leaser = StfLeaser(
            client,
            adb_server=None,
            filters=parse_filters(filters),
            count=count,
            lease_s=lease_s,
            profiles=load_profiles(self.profiles_dir),
            shard=parse_shard(shard),
        )
        atexit.register(self.stop)
        home = Path(tempfile.mkdtemp(prefix="hil-run-adb-"))
        self.reaper = Reaper(home / "reaper.ledger").start(env={STF_TOKEN_ENV: token})
        self.adb_server = AdbServer(home=home, reaper=self.reaper).start()
        self.adb_host, self.adb_port = "127.0.0.1", self.adb_server.port
        leaser.adb_server, leaser.reaper = self.adb_server, self.reaper
        self.stf = leaser
        leaser.acquire()

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
        stf = {lease.remote_url: lease for lease in (self.stf.leases if self.stf else [])}
        if twin_info:
            wanted = list(twin_info)
        elif stf:
            wanted = list(stf)
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
                    stf=stf[serial].to_dict() if serial in stf else None,
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
        if self.stf is not None:
            self.stf.release_all()
        for tp in self.twins:
            tp.stop()
        if self.adb_server is not None:
            self.adb_server.stop()
        if self.reaper is not None:
            self.reaper.stop()
