"""The Twin: one impersonated device with its adbd, console, state and ground truth."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.profiles import DeviceProfile
from harness.twin.auth import KeyStore
from harness.twin.fs import FileSystem
from harness.twin.personality import Personality, personality_for
from harness.twin.truth import GroundTruth

log = logging.getLogger(__name__)

EMULATOR_PORTS = range(5555, 5586, 2)
_REGISTER_TIMEOUT_S = 2.0


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
    extra: dict = field(default_factory=dict)


class Twin:
    """A device as the adb server sees it. Start with `await twin.start()`."""

    def __init__(
        self, profile: DeviceProfile, port: int, state_dir: Path, options: TwinOptions | None = None
    ):
        from harness.twin.screen import Screen
        from harness.twin.services import ServiceTable

        self.profile = profile
        self.port = port
        self.options = options or TwinOptions()
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.personality: Personality = personality_for(profile)
        self.serial_hint = f"emulator-{port - 1}" if port in EMULATOR_PORTS else f"127.0.0.1:{port}"
        self.truth = GroundTruth(self.state_dir / "groundtruth.jsonl", twin=self.serial_hint)
        self.keys = KeyStore(self.state_dir / "adb_keys")
        self.accept_new_keys = self.options.accept_new_keys
        self.fs = FileSystem()
        self.props = self._initial_props()
        self.settings: dict[str, dict[str, str]] = {
            "system": {"screen_brightness": "102", "screen_off_timeout": "600000"},
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
        self.screen = Screen(self)
        self.services = ServiceTable(self)
        self.logcat: list[str] = []
        self.connections: set = set()
        self.boot_time = time.monotonic()
        self.camera_clients: list[tuple[int, str]] = []
        self.recording_clients: list[tuple[str, str]] = []
        self.processes: dict[int, str] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self.console = None
        self.offline = False
        self.stopped = asyncio.Event()
        import random

        self._rng = random.Random(port)
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
        return props

    def banner(self) -> str:
        props = self.props
        parts = [f"ro.product.{k}={props[f'ro.product.{k}']}" for k in ("name", "model", "device")]
        text = "device::" + "".join(f"{part};" for part in parts)
        if self.personality.features:
            text += "features=" + ",".join(self.personality.features)
        return text

    def log_event(self, tag: str, msg: str, level: str = "I") -> None:
        stamp = time.strftime("%m-%d %H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        self.logcat.append(f"{stamp} {level}/{tag}(  612): {msg}")
        if len(self.logcat) > 5000:
            del self.logcat[:1000]

    # --- lifecycle
    async def start(self) -> None:
        from harness.twin.console import ConsoleServer

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
        self.log_event("ActivityManager", "Start proc com.amazon.kindle.otter for activity")
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
        from harness.twin.transport import AdbConnection

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
        self.log_event("WifiService", f"setWifiEnabled: {str(on).lower()}")
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
        self.accept_new_keys = True
        return accepted

    async def stop(self) -> None:
        """Stop serving. Never raises."""
        for server in self._servers:
            server.close()
        await self.drop_transports()
        if self.console is not None:
            await self.console.stop()
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except (TimeoutError, Exception):
                pass
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

    async def reboot(self, boot_s: float = 1.0) -> None:
        """Drop off adb, stay away boot_s, then come back (re-registering as an emulator)."""
        self.truth.record("reboot_begin", boot_s=boot_s)
        self.offline = True
        self.props["sys.boot_completed"] = "0"
        await self.drop_transports()
        await asyncio.sleep(boot_s)
        self.offline = False
        self.props["sys.boot_completed"] = "1"
        self.boot_time = time.monotonic()
        self.truth.record("reboot_end")
        await self.register_with_adb_server()


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
