"""The run's devices: attached ones (--device, --profile) and twins started for it (--twin).

Resolved once on the xdist controller (or the single process), handed to workers as plain
data, and torn down by PID at the end of the run, also when it is interrupted. Every run has a
reaper (harness.farm.reaper) from its start: whatever the run, its workers or its tests start
through harness.farm.process is stopped when the run ends or dies, and its temporary
directories (hil-run-adb-*, hil-twin-*) are removed.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import AdbError, HarnessError, ProfileError
from harness.farm.adbserver import AdbServer
from harness.farm.hostprotocol import default_adb_port, host_query, parse_devices
from harness.farm.reaper import Reaper
from harness.farm.twins import TwinProcess
from harness.profiles import DeviceProfile, load_profile, load_profiles, match_profile

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
    count = int(m.group("count") or 1)
    if not 1 <= count <= MAX_TWINS:
        raise ProfileError("--twin", value, f"twin count must be 1..{MAX_TWINS}, got {count}")
    return m.group("profile"), count


class HilRun:
    """Owns the adb server and twins of a run (controller side)."""

    def __init__(self, profiles_dir: Path | None, adb_host: str, adb_port: int | None):
        self.profiles_dir = profiles_dir
        self.adb_host = adb_host
        self.adb_port = adb_port or default_adb_port()
        self.adb_server: AdbServer | None = None
        self.twins: list[TwinProcess] = []
        self.devices: list[DeviceSpec] = []
        self.reaper: Reaper | None = None
        self.temp_dirs: list[Path] = []
        self.stf = None  # harness.farm.stf.StfLeaser
        self._stopped = False

    def start_reaper(self, env: dict[str, str] | None = None) -> Reaper:
        """Start the run's reaper (once): from now on every child registered in its ledger, and
        every temporary directory of the run, goes when the run ends or dies. env: added to the
        reaper's environment (the STF token it needs to release leases)."""
        if self.reaper is None:
            atexit.register(self.stop)
            home = self._temp_dir("hil-run-adb-")
            self.reaper = Reaper(home / "reaper.ledger").start(env=env)
            self.reaper.track_dir(home)
        return self.reaper

    def _temp_dir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.temp_dirs.append(path)
        if self.reaper is not None:
            self.reaper.track_dir(path)
        return path

    def start_twins(
        self, specs: list[str], lab: bool = False, extra_args: tuple[str, ...] = ()
    ) -> None:
        """Start a private adb server and the twins (each an own process); bounded waits."""
        parsed = [parse_twin_option(s) for s in specs]
        for name, _ in parsed:
            load_profile(
                name, self.profiles_dir
            )  # unknown profile: ProfileError before anything starts
        reaper = self.start_reaper()  # stops them all if this run is killed
        home = self.temp_dirs[0]
        self.adb_server = AdbServer(home=home, reaper=reaper).start()
        self.adb_host, self.adb_port = "127.0.0.1", self.adb_server.port
        for name, count in parsed:
            tp = TwinProcess(
                name,
                adb=self.adb_server,
                count=count,
                state_dir=self._temp_dir(f"hil-twin-{name.replace('/', '_')}-"),
                extra_args=(
                    *(("--profiles-dir", str(self.profiles_dir)) if self.profiles_dir else ()),
                    *(("--walt", "--relay", "--camera") if lab else ()),
                    *extra_args,
                ),
                reaper=reaper,
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
        reaper = self.start_reaper(env={STF_TOKEN_ENV: token})
        if self.adb_server is None:
            self.adb_server = AdbServer(home=self.temp_dirs[0], reaper=reaper).start()
            self.adb_host, self.adb_port = "127.0.0.1", self.adb_server.port
        leaser.adb_server, leaser.reaper = self.adb_server, reaper
        self.stf = leaser
        leaser.acquire()

    def resolve(  # noqa: C901 -- one branch per kind of device source (twins, STF, serials, attached)
        self,
        serials: list[str],
        profile_filter: str | None,
        walt_port: str | None = None,
        relay_port: str | None = None,
        camera_url: str | None = None,
        props_of: Callable[[str], Mapping[str, str]] | None = None,
    ) -> list[DeviceSpec]:
        """The devices of this run: the twins, or the named serials, or every attached device.

        Args:
            props_of: serial -> the device's getprop properties (the device layer's Device
                reads them; the farm only lists and matches).
        """
        if props_of is None:
            raise HarnessError("resolving devices needs props_of (serial -> getprop properties)")
        profiles = load_profiles(self.profiles_dir)
        if profile_filter and profile_filter not in profiles:
            raise ProfileError(
                str(self.profiles_dir or "device_profiles"),
                "--profile",
                f"unknown profile {profile_filter!r}; known: {', '.join(sorted(profiles))}",
            )
        twin_info = {f"127.0.0.1:{t.port}": t for tp in self.twins for t in tp.twins}
        try:
            states = parse_devices(host_query(self.adb_port, "host:devices", 5.0, self.adb_host))
        except (AdbError, OSError) as e:
            raise HarnessError(
                f"adb server {self.adb_host}:{self.adb_port} unreachable: {e}"
            ) from None
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
            props = props_of(serial)
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
        """Stop every twin and the private adb server by PID, then whatever else of the run is
        still running (started by a worker or a test that did not stop it), and remove the
        run's temporary directories. Never raises."""
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
            self.reaper.reap_leftovers()
            self.reaper.stop()
        for path in self.temp_dirs:
            shutil.rmtree(path, onerror=lambda _f, p, e: log.info("removing %s: %s", p, e[1]))
