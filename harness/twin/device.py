"""The Twin: one impersonated device with its adbd, console, state and ground truth."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.profiles import DeviceProfile
from harness.twin import commandset  # noqa: F401 -- a Twin has its commands (registers them)
from harness.twin.auth import KeyStore
from harness.twin.console import ConsoleServer
from harness.twin.fs import FileSystem
from harness.twin.logcat import LogStore, chatter, log_truth_event
from harness.twin.packages import PID_SYSTEM_SERVER, app_pid, package_info
from harness.twin.personality import Personality, personality_for
from harness.twin.screen import Screen
from harness.twin.services import ServiceTable
from harness.twin.transport import AdbConnection
from harness.twin.truth import GroundTruth

log = logging.getLogger(__name__)

EMULATOR_PORTS = range(5555, 5586, 2)
_REGISTER_TIMEOUT_S = 2.0
BOOT_COMPLETED_LAG_S = 2.0  # adb is up this long before sys.boot_completed=1 after a reboot


@dataclass
class WifiState:
    enabled: bool = True
    ssid: str = "MaydayLab"
    bssid: str = "02:00:00:4d:44:59"
    rssi_dbm: int = -55
    link_speed_mbps: int = 65
    frequency_mhz: int = 5180
    ip: str = "10.0.2.15"


@dataclass
class NetworkShaping:
    """What the emulator console's `network` commands set (kbit/s, ms; 0 = unlimited)."""

    up_kbps: float = 0.0
    down_kbps: float = 0.0
    min_delay_ms: int = 0
    max_delay_ms: int = 0


@dataclass
class TwinOptions:
    accept_new_keys: bool = False
    registered: bool = True
    account: str = "customer@example.com"
    adb_server_port: int | None = None  # for host:emulator registration
    console_token: str | None = None  # None: read ~/.emulator_console_auth_token
    console_token_path: Path | None = None
    region: str | None = None  # default: the profile's
    timezone: str | None = None  # default: the profile's
    backend: tuple[str, int] | None = None  # the support backend (set by the runner)
    app: str | None = None  # the app profile the support app plays (default: the profile's)
    locale: str | None = None  # the UI locale (persist.sys.locale), e.g. de-DE; default en-US
    extra: dict = field(default_factory=dict)


class Twin:
    """A device as the adb server sees it. Start with `await twin.start()`."""

    def __init__(
        self, profile: DeviceProfile, port: int, state_dir: Path, options: TwinOptions | None = None
    ):
        self.profile = profile
        self.port = port
        self.options = options or TwinOptions()
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.personality: Personality = personality_for(profile)
        self.serial_hint = f"emulator-{port - 1}" if port in EMULATOR_PORTS else f"127.0.0.1:{port}"
        self.truth = GroundTruth(self.state_dir / "groundtruth.jsonl", twin=self.serial_hint)
        self._log_twin_events()
        self.keys = KeyStore(self.state_dir / "adb_keys")
        self.accept_new_keys = self.options.accept_new_keys
        self.fs = FileSystem()
        self.props = self._initial_props()
        self.settings: dict[str, dict[str, str]] = {
            "system": {
                "screen_brightness": "102",
                "screen_brightness_mode": "0",
                "screen_off_timeout": "600000",
            },
            "secure": {"android_id": f"{abs(hash((profile.name, port))) % (1 << 63):016x}"},
            "global": {"wifi_on": "1", "airplane_mode_on": "0", "adb_enabled": "1"},
        }
        self.wifi = WifiState()
        self.network = NetworkShaping()
        self.accounts: list[tuple[str, str]] = (
            [
                (
                    self.options.account,
                    "com.amazon.account" if "Fire" in profile.os_name else "com.google",
                )
            ]
            if self.options.registered
            else []
        )
        self.packages: dict[str, str] = _initial_packages(profile)
        self.package_meta: dict = {}  # name -> harness.twin.packages.PackageInfo
        self.screen = Screen(self)
        self.services = ServiceTable(self)
        self.log = LogStore()
        self._next_pid = 2400  # pids handed to processes started after boot
        self.connections: set = set()
        self.boot_time = time.monotonic()
        self.camera_clients: list[tuple[int, str]] = []
        self.recording_clients: list[tuple[str, str]] = []
        self.processes: dict[int, str] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self.console = None
        self.offline = False
        self.stopped = asyncio.Event()
        self._rng = random.Random(port)
        self._pid_rng = random.Random(port + 1)
        self.region = self.options.region or profile.region
        self.timezone = self.options.timezone or profile.timezone
        self.props["persist.sys.timezone"] = self.timezone

    @property
    def backend_address(self) -> tuple[str, int] | None:
        return self.options.backend

    # --- identity
    def _initial_props(self) -> dict[str, str]:
        props = dict(self.profile.props)
        props.setdefault("ro.serialno", f"TWIN{self.port:05d}")
        props.setdefault(
            "ro.product.cpu.abi", "x86_64" if props.get("ro.kernel.qemu") == "1" else "armeabi-v7a"
        )
        props.update(
            {
                "sys.boot_completed": "1",
                "dev.bootcomplete": "1",
                "init.svc.adbd": "running",
                "persist.sys.timezone": self.profile.timezone,
                "wifi.interface": "wlan0",
                "ro.sf.lcd_density": str(self.profile.display.density),
                "service.adb.tcp.port": str(self.port),
            }
        )
        props.setdefault("ro.product.locale", "en-US")
        if self.options.locale:
            props["persist.sys.locale"] = self.options.locale
        return props

    def banner(self) -> str:
        props = self.props
        parts = [f"ro.product.{k}={props[f'ro.product.{k}']}" for k in ("name", "model", "device")]
        text = "device::" + "".join(f"{part};" for part in parts)
        if self.personality.features:
            text += "features=" + ",".join(self.personality.features)
        return text

    def log_event(
        self,
        tag: str,
        msg: str,
        level: str = "I",
        pid: int | None = None,
        tid: int | None = None,
        buffer: str = "main",
    ) -> None:
        """One line in the device log (system_server's by default), as logcat will show it."""
        pid = PID_SYSTEM_SERVER if pid is None else pid
        self.log.write(tag, msg, prio=level, pid=pid, tid=tid, buffer=buffer)

    def _log_twin_events(self) -> None:
        """What the twin records in its ground truth also reaches the device log, as the lines
        the device's own processes would write (harness.twin.logcat.log_truth_event)."""
        record = self.truth.record

        def record_and_log(event: str, t: float | None = None, **fields) -> float:
            stamp = record(event, t, **fields)
            if hasattr(self, "screen"):
                log_truth_event(self, event, fields)
            return stamp

        self.truth.record = record_and_log  # type: ignore[method-assign]

    def _log_boot(self) -> None:
        """The lines a freshly booted device of this model has in its log: zygote, system_server,
        boot completed, and the launcher's process start."""
        api = self.personality.api
        self.log_event(
            "Zygote", f"System server process {PID_SYSTEM_SERVER} has been created", pid=290
        )
        self.log_event("SystemServer", "Entered the Android system server!", buffer="system")
        launcher = self.screen.launcher
        app_pid(self, launcher)
        info = package_info(self, launcher)
        self.log_event(
            "ActivityManager" if api < 29 else "ActivityTaskManager",
            f"Displayed {launcher}/{info.activity if info else '.Launcher'}: +1s120ms",
            buffer="system",
        )
        self.log_event("BootReceiver", "Copying audit failures to DropBox", buffer="system")

    def alloc_pid(self) -> int:
        """A fresh pid, as the kernel hands them out (increasing)."""
        self._next_pid += self._pid_rng.randint(1, 7)
        return self._next_pid

    # --- lifecycle
    async def start(self) -> None:
        server = await asyncio.start_server(self._on_adb_client, "127.0.0.1", self.port)
        self._servers.append(server)
        self.console = ConsoleServer(self)
        await self.console.start()
        self.truth.record(
            "twin_started",
            profile=self.profile.name,
            port=self.port,
            console_port=self.port - 1,
            api=self.personality.api,
        )
        self._log_boot()
        self._chatter = asyncio.get_running_loop().create_task(chatter(self))
        await self.register_with_adb_server()

    async def register_with_adb_server(self) -> None:
        """Tell a running adb server about us (host:emulator:<port>), as the emulator does."""
        port = self.options.adb_server_port
        if port is None or self.port not in EMULATOR_PORTS:
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), _REGISTER_TIMEOUT_S
            )
            msg = f"host:emulator:{self.port}".encode()
            writer.write(f"{len(msg):04x}".encode() + msg)
            await writer.drain()
            writer.close()
            self.truth.record("registered_with_adb_server", adb_server_port=port)
        except (TimeoutError, OSError) as e:
            log.info(
                "%s: adb server on %s not reachable for registration: %s", self.serial_hint, port, e
            )

    async def _on_adb_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.offline:
            writer.close()
            return
        await AdbConnection(self, reader, writer).run()

    def set_wifi(self, on: bool) -> None:
        if self.wifi.enabled == on:
            return
        self.wifi.enabled = on
        self.settings["global"]["wifi_on"] = "1" if on else "0"
        self.truth.record("wifi", enabled=on)
        if self.personality.api >= 26:
            self.log_event(
                "WifiService",
                f"setWifiEnabled package=com.android.shell uid=2000 enable={str(on).lower()}",
            )
        else:
            self.log_event("WifiService", f"setWifiEnabled: {str(on).lower()} pid=2400, uid=2000")
        session = self.screen.session
        if session is not None:
            session.on_wifi(on)

    def network_delay_s(self, what: str) -> float:
        """One packet's delay under the console's `network delay min:max` (uniform), recorded."""
        lo, hi = self.network.min_delay_ms, self.network.max_delay_ms
        if hi <= 0:
            return 0.0
        delay_ms = self._rng.uniform(lo, hi)
        self.truth.record("delay_applied", what=what, delay_ms=delay_ms)
        return delay_ms / 1000.0

    async def drop_transports(self) -> None:
        for conn in list(self.connections):
            await conn.shutdown()

    async def accept_pending_keys(self) -> int:
        accepted = 0
        for conn in list(self.connections):
            if await conn.accept_pending_key():
                accepted += 1
        # one "Allow" answers the keys waiting now; a later new key asks again (never turns
        # auto-accept on: that is --accept-new-keys only)
        return accepted

    async def stop(self) -> None:
        """Stop serving. Never raises."""
        chatter_task = getattr(self, "_chatter", None)
        if chatter_task is not None:
            chatter_task.cancel()
        for server in self._servers:
            server.close()
        await self.drop_transports()
        if self.console is not None:
            await self.console.stop()
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.debug("%s: waiting for a server to close: %s", self.serial_hint, e)
        self._servers.clear()
        if self.screen.session is not None:
            self.screen.session.end("twin stopped")
        self.screen.stop()
        self.truth.record("twin_stopped")
        self.truth.close()
        self.stopped.set()

    async def power(self, on: bool, adb_after_s: float, boot_completed_after_s: float) -> None:
        """Power from the lab relay: off drops off adb at once; on boots (adb, then boot_completed)."""
        if not on:
            self.truth.record("power_off")
            self.offline = True
            self.props["sys.boot_completed"] = "0"
            self.screen.screen_on = False
            await self.drop_transports()
            return
        t_on = self.truth.record("power_on")
        await asyncio.sleep(max(0.0, t_on + adb_after_s - time.monotonic()))
        self.offline = False
        self.truth.record("adb_up")
        await self.register_with_adb_server()
        await asyncio.sleep(max(0.0, t_on + boot_completed_after_s - time.monotonic()))
        self.props["sys.boot_completed"] = "1"
        self.screen.screen_on = True
        self.screen.changed("booted")
        self.truth.record("boot_completed")

    async def reboot(self, boot_s: float = 1.0, target: str = "") -> None:
        """Drop off adb, stay away boot_s, come back on adb (re-registering as an emulator),
        and set sys.boot_completed BOOT_COMPLETED_LAG_S later still, as a booting device does.
        `reboot bootloader` (or fastboot) leaves adb: the twin stays offline."""
        lag_s = float(self.options.extra.get("boot_completed_lag_s", BOOT_COMPLETED_LAG_S))
        self.truth.record("reboot_begin", boot_s=boot_s, target=target or "system")
        self.offline = True
        self.props["sys.boot_completed"] = "0"
        self.props["dev.bootcomplete"] = "0"
        self.processes.clear()
        await self.drop_transports()
        if target in ("bootloader", "fastboot"):
            self.truth.record("in_bootloader")
            return
        await asyncio.sleep(boot_s)
        self.offline = False
        self.boot_time = time.monotonic()
        self.truth.record("reboot_end")  # adb is back; the system is still booting
        await self.register_with_adb_server()
        await asyncio.sleep(lag_s)
        self.props["sys.boot_completed"] = "1"
        self.props["dev.bootcomplete"] = "1"
        self.log.clear()
        self._log_boot()
        self.truth.record("boot_completed", after_adb_s=lag_s)


def _initial_packages(profile: DeviceProfile) -> dict[str, str]:
    pkgs = {
        "android": "/system/framework/framework-res.apk",
        "com.android.settings": "/system/app/Settings.apk",
        "com.android.systemui": "/system/app/SystemUI.apk",
        "com.android.shell": "/system/app/Shell.apk",
    }
    pkgs.update(
        {  # the harness's own test apps
            "com.mayday.hil.timecode": "/data/app/com.mayday.hil.timecode-1/base.apk",
            "com.mayday.hil.walt": "/data/app/com.mayday.hil.walt-1/base.apk",
            "com.mayday.hil.text": "/data/app/com.mayday.hil.text-1/base.apk",
        }
    )
    if "Fire" in profile.os_name:
        pkgs.update(
            {
                "com.amazon.kindle.otter": "/system/app/Launcher.apk",
                "com.amazon.mayday": "/system/app/Mayday.apk",
                "com.amazon.email": "/system/app/Email.apk",
                "com.amazon.photos": "/system/app/Photos.apk",
            }
        )
    else:
        pkgs.update(
            {
                "com.android.launcher3": "/system/app/Launcher3.apk",
                "com.mayday.support": "/data/app/com.mayday.support-1/base.apk",
                "com.android.email": "/system/app/Email.apk",
                "com.google.android.apps.photos": "/system/app/Photos.apk",
            }
        )
    return pkgs
