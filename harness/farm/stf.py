"""Devices leased from a DeviceFarmer STF farm over its REST API v1, reached with `adb connect`.

The flow: list devices (`GET /api/v1/devices`; free = present, ready, no owner), claim
(`POST /api/v1/user/devices` {serial, timeout(ms)}), `POST .../{serial}/remoteConnect` ->
remoteConnectUrl, `adb connect` on the run's private adb server, a health check (a remote adb
shows "offline" for a while after connect on real farms: bounded reconnects, counted), and
release (`DELETE .../remoteConnect`, `DELETE /api/v1/user/devices/{serial}`) in every ending.
Each lease is recorded in the run's reaper ledger, so a run killed outright is released too.

The token is sent only in the Authorization header: it is never logged, printed, or written.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import HarnessError, ProfileError

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
GET_ATTEMPTS = 3  # idempotent reads only
RETRY_PAUSE_S = 0.5
CONNECT_ATTEMPTS = 5  # `adb connect` + wait for `device`, per leased device
HEALTH_WAIT_S = 3.0  # per attempt
FILTER_KEYS = ("model", "sdk", "manufacturer", "profile")


class StfError(HarnessError):
    """The STF farm refused or did not answer (the message names the URL and the call)."""

    def __init__(self, msg: str, status: int | None = None):
        self.status = status
        super().__init__(msg)


@dataclass(frozen=True)
class StfLease:
    """One leased device: what the report's environment shows."""

    serial: str  # STF's serial of the device
    provider: str
    model: str
    manufacturer: str
    sdk: str
    remote_url: str  # host:port for `adb connect`; the adb serial during the run
    leased_at: float  # wall clock
    lease_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_filters(values: list[str]) -> dict[str, str]:
    """ "model=KFTHWI", "sdk=17" ... -> dict. Raises ProfileError naming --stf-filter."""
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        key = key.strip()
        if not sep or key not in FILTER_KEYS or not value.strip():
            raise ProfileError(
                "--stf-filter", v, f"expected key=value with key one of {', '.join(FILTER_KEYS)}"
            )
        out[key] = value.strip()
    return out


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """ "2/3" -> (2, 3); None -> None. Raises ProfileError naming --shard."""
    if not value:
        return None
    i, sep, n = value.partition("/")
    if not sep or not i.isdigit() or not n.isdigit() or not 1 <= int(i) <= int(n):
        raise ProfileError("--shard", value, "expected I/N with 1 <= I <= N")
    return int(i), int(n)


def shard_of(key: str, n: int) -> int:
    """The shard (1..n) a test belongs to: stable across hosts and Python runs."""
    return zlib.crc32(key.encode()) % n + 1


def take_shard(items: list, shard: tuple[int, int] | None) -> list:
    """Items at positions I-1, I-1+N, ... (the caller sorts them the same way on every host)."""
    if shard is None:
        return list(items)
    i, n = shard
    return list(items[i - 1 :: n])


class StfClient:
    """DeviceFarmer STF REST API v1, with bearer-token auth; never shows the token."""

    def __init__(self, url: str, token: str, timeout_s: float = REQUEST_TIMEOUT_S):
        if not url.startswith(("http://", "https://")):
            raise ProfileError("--stf", url, "expected the farm's base URL, http(s)://host[:port]")
        if not token:
            raise ProfileError("--stf-token", "-", "no token: pass --stf-token or set STF_TOKEN")
        self.url = url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self.retries: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"StfClient({self.url!r}, token=***)"

    def _count(self, what: str) -> None:
        self.retries[what] = self.retries.get(what, 0) + 1

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict[str, Any]]:
        """One API call -> (status, JSON). GETs retry a bounded number of times on connection
        errors and 5xx (counted in self.retries). 401 raises StfError at once."""
        attempts = GET_ATTEMPTS if method == "GET" else 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                self._count(f"stf {method} {path.split('?')[0]}")
                time.sleep(RETRY_PAUSE_S * attempt)
            req = urllib.request.Request(
                self.url + path,
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    status, raw = resp.status, resp.read()
            except urllib.error.HTTPError as e:
                status, raw = e.code, e.read()
            except (urllib.error.URLError, OSError) as e:
                last = f"no answer ({getattr(e, 'reason', e)})"
                log.info("STF %s %s: %s (attempt %d/%d)", method, path, last, attempt + 1, attempts)
                continue
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {"description": raw[:120].decode(errors="replace")}
            if status == 401:
                raise StfError(
                    f"STF {self.url}: 401 {data.get('description', '')}: check --stf-token or STF_TOKEN",
                    401,
                )
            if status >= 500:
                last = f"HTTP {status} {data.get('description', '')}".strip()
                log.info("STF %s %s: %s (attempt %d/%d)", method, path, last, attempt + 1, attempts)
                continue
            return status, data
        raise StfError(f"STF {self.url}: {method} {path}: {last}")

    def _ok(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        status, data = self.call(method, path, body)
        if status != 200 or not data.get("success", False):
            raise StfError(
                f"STF {self.url}: {method} {path}: {status} {data.get('description', '')}", status
            )
        return data

    def devices(self) -> list[dict[str, Any]]:
        return self._ok("GET", "/api/v1/devices")["devices"]

    def device(self, serial: str) -> dict[str, Any]:
        return self._ok("GET", f"/api/v1/devices/{serial}")["device"]

    def user(self) -> dict[str, Any]:
        return self._ok("GET", "/api/v1/user")["user"]

    def user_devices(self) -> list[dict[str, Any]]:
        return self._ok("GET", "/api/v1/user/devices")["devices"]

    def claim(self, serial: str, timeout_ms: int) -> bool:
        """True when leased; False when the farm says it is taken or unavailable (403)."""
        status, data = self.call(
            "POST", "/api/v1/user/devices", {"serial": serial, "timeout": timeout_ms}
        )
        if status == 403:
            return False
        if status != 200 or not data.get("success", False):
            raise StfError(
                f"STF {self.url}: claim {serial}: {status} {data.get('description', '')}", status
            )
        return True

    def remote_connect(self, serial: str) -> str:
        return self._ok("POST", f"/api/v1/user/devices/{serial}/remoteConnect")["remoteConnectUrl"]

    def remote_disconnect(self, serial: str) -> None:
        self._ok("DELETE", f"/api/v1/user/devices/{serial}/remoteConnect")

    def release(self, serial: str) -> None:
        self._ok("DELETE", f"/api/v1/user/devices/{serial}")


def matches(dev: dict[str, Any], filters: dict[str, str], profiles: dict | None = None) -> bool:
    """Does an STF device (its JSON) pass every --stf-filter? A profile filter applies the
    profile's getprop matchers to what STF tells (model, manufacturer, sdk, release)."""
    for key, want in filters.items():
        if key == "profile":
            prof = (profiles or {}).get(want)
            if prof is None:
                raise ProfileError(
                    "--stf-filter",
                    f"profile={want}",
                    f"unknown profile; known: {', '.join(sorted(profiles or {}))}",
                )
            told = {
                "ro.product.model": dev.get("model"),
                "ro.product.manufacturer": dev.get("manufacturer"),
                "ro.build.version.sdk": str(dev.get("sdk", "")),
                "ro.build.version.release": dev.get("version"),
            }
            known = {k: v for k, v in told.items() if v}
            import fnmatch

            for prop, patterns in prof.match:
                if prop in known and not any(fnmatch.fnmatchcase(known[prop], p) for p in patterns):
                    return False
        elif str(dev.get(key, "")) != want:
            return False
    return True


@dataclass
class StfLeaser:
    """Leases `count` devices for a run and releases them, whatever happens.

    adb_server: the run's private harness.farm.AdbServer; reaper: its harness.farm.reaper.Reaper.
    """

    client: StfClient
    adb_server: Any
    reaper: Any = None
    filters: dict[str, str] = field(default_factory=dict)
    count: int = 1
    lease_s: float = 3600.0
    profiles: dict | None = None
    shard: tuple[int, int] | None = None
    leases: list[StfLease] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # serial -> lease-to-ready seconds

    def _count(self, what: str) -> None:
        self.retries[what] = self.retries.get(what, 0) + 1

    def acquire(self) -> list[StfLease]:
        """List, claim, remote-connect and health-check up to `count` devices.

        Raises:
            StfError: no device could be leased (the message says what the farm has).
        """
        listed = self.client.devices()
        present = sorted(
            (d for d in listed if d.get("present") and matches(d, self.filters, self.profiles)),
            key=lambda d: d["serial"],
        )
        mine = take_shard(present, self.shard)
        free = [d for d in mine if d.get("ready") and not d.get("using") and not d.get("owner")]
        errors = []
        for dev in free:
            if len(self.leases) >= self.count:
                break
            try:
                lease = self._lease(dev)
            except HarnessError as e:
                errors.append(str(e))
                log.warning("STF device %s not used: %s", dev["serial"], e)
                continue
            if lease is not None:
                self.leases.append(lease)
        if not self.leases:
            what = f"{len(present)} present match {self.filters or 'no filter'}"
            if self.shard:
                what += f", {len(mine)} in shard {self.shard[0]}/{self.shard[1]}"
            raise StfError(
                f"STF {self.client.url}: no device leased ({what}, {len(free)} free)"
                + (f": {'; '.join(errors)}" if errors else "")
            )
        if len(self.leases) < self.count:
            log.warning(
                "STF %s: leased %d of %d devices", self.client.url, len(self.leases), self.count
            )
        return self.leases

    def _lease(self, dev: dict[str, Any]) -> StfLease | None:
        serial = dev["serial"]
        t0 = time.monotonic()
        if not self.client.claim(serial, int(self.lease_s * 1000)):
            self._count("stf claim refused (taken meanwhile)")
            return None
        leased_at = time.time()
        if self.reaper is not None:
            self.reaper.watch_stf_lease(self.client.url, serial)
        try:
            url = self.client.remote_connect(serial)
            lease = StfLease(
                serial=serial,
                provider=(dev.get("provider") or {}).get("name", ""),
                model=dev.get("model", ""),
                manufacturer=dev.get("manufacturer", ""),
                sdk=str(dev.get("sdk", "")),
                remote_url=url,
                leased_at=leased_at,
                lease_s=self.lease_s,
            )
            self._connect(lease)
        except Exception:
            self._release_remote(serial, None)
            raise
        self.timings[serial] = time.monotonic() - t0
        return lease

    def _connect(self, lease: StfLease) -> None:
        """`adb connect` until the device is in `device` state: bounded, each retry counted."""
        last = "?"
        for attempt in range(CONNECT_ATTEMPTS):
            if attempt:
                self._count("stf adb offline after connect")
                try:
                    self.adb_server.client(timeout_s=2.0).disconnect(lease.remote_url)
                except Exception as e:  # noqa: BLE001 -- a reconnect's first step: the connect after it tells
                    log.info("adb disconnect %s: %s", lease.remote_url, e)
            try:
                self.adb_server.client(timeout_s=HEALTH_WAIT_S).connect(
                    lease.remote_url, timeout=HEALTH_WAIT_S
                )
            except Exception as e:  # noqa: BLE001 -- counted as a failed attempt, retried (bounded)
                last = f"adb connect: {e}"
                continue
            deadline = time.monotonic() + HEALTH_WAIT_S
            while time.monotonic() < deadline:
                last = self.adb_server.states().get(lease.remote_url, "absent")
                if last == "device":
                    return
                time.sleep(0.1)
        raise StfError(
            f"STF device {lease.serial} ({lease.provider}) at {lease.remote_url}: {last} after "
            f"{CONNECT_ATTEMPTS} connects of {HEALTH_WAIT_S:g} s"
        )

    def _release_remote(self, serial: str, remote_url: str | None) -> None:
        """adb disconnect, DELETE remoteConnect, DELETE the lease. Never raises."""
        if remote_url:
            try:
                self.adb_server.client(timeout_s=2.0).disconnect(remote_url)
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.info("adb disconnect %s: %s", remote_url, e)
        for what, call in (
            ("remoteConnect", self.client.remote_disconnect),
            ("lease", self.client.release),
        ):
            try:
                call(serial)
            except Exception as e:  # noqa: BLE001 -- cleanup never raises (a lease the farm took back: 403)
                log.info("STF release %s of %s: %s", what, serial, e)
        if self.reaper is not None:
            self.reaper.forget_stf_lease(self.client.url, serial)

    def release_all(self) -> None:
        """Release every lease. Never raises."""
        leases, self.leases = self.leases, []
        for lease in leases:
            self._release_remote(lease.serial, lease.remote_url)


def environment_rows(devices: list) -> dict[str, str]:
    """Report environment rows for the STF devices of a run (DeviceSpec with .stf)."""
    rows = {}
    for spec in devices:
        info = getattr(spec, "stf", None)
        if not info:
            continue
        leased = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info["leased_at"]))
        until = time.strftime("%H:%M:%S UTC", time.gmtime(info["leased_at"] + info["lease_s"]))
        rows[f"STF {info['serial']}"] = (
            f"provider {info['provider']}, adb {info['remote_url']}, leased {leased} until {until}"
        )
    return rows


_GONE: set[str] = set()


def check_lease(spec, adb_port: int) -> str | None:
    """Before a test on an STF device: is it still on adb? The first test that finds it gone
    errors naming it (StfError); for later ones this returns the reason to skip. None: go on
    (also for a device with no STF lease)."""
    info = getattr(spec, "stf", None)
    if not info:
        return None
    if spec.serial in _GONE:
        return f"STF device {info['serial']} was taken back by the farm mid-run"
    from harness.farm.adbserver import host_query, parse_devices

    try:
        states = parse_devices(host_query(adb_port, "host:devices", timeout_s=5.0))
    except Exception as e:  # noqa: BLE001 -- the adb server itself: not this device's fault
        log.info("adb server on %s: %s", adb_port, e)
        return None
    state = states.get(spec.serial, "absent")
    if state != "device":
        _GONE.add(spec.serial)
        raise StfError(
            f"STF device {info['serial']} ({info['provider']}) was taken back by the farm mid-run: "
            f"{spec.serial} is {state}"
        )
    return None
