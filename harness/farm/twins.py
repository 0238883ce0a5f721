"""Twins started as processes (`python -m harness.twin twin up ...`), stopped by their PID."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.farm.adbserver import EMULATOR_PORTS, AdbServer, free_port
from harness.farm.control import TwinControl
from harness.farm.process import Child

log = logging.getLogger(__name__)

TWIN_START_TIMEOUT_S = 20.0
TWIN_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TwinInfo:
    serial: str
    port: int
    console_port: int
    profile: str
    model: str
    api: int
    state_dir: Path
    truth: Path
    control: Path
    backend: tuple[str, int] | None = None
    backend_truth: Path | None = None
    walt: str | None = None  # pty of the simulated WALT
    relay: str | None = None  # pty of the simulated power relay
    camera: str | None = None  # base URL of the lab camera


class TwinProcess:
    """One `twin up` process hosting `count` twins of one profile."""

    def __init__(
        self,
        profile: str,
        adb: AdbServer | None = None,
        port: int | None = None,
        count: int = 1,
        accept_new_keys: bool = True,
        registered: bool = True,
        state_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        reaper=None,
    ):
        # the run's reaper stops the twin if the run dies: this one's ledger, else the run's
        self.reaper = reaper
        self.profile = profile
        self.adb = adb
        self.port = port or free_port(pair=True)
        self.count = count
        self.accept_new_keys = accept_new_keys
        self.registered = registered
        self._own_state_dir = state_dir is None  # a dir it made itself, it removes at stop()
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="hil-twin-"))
        self.extra_args = extra_args
        self.child: Child | None = None
        self.twins: list[TwinInfo] = []
        self.log_path = self.state_dir / "twin.log"

    @property
    def discovered_as_emulator(self) -> bool:
        return self.port in EMULATOR_PORTS

    def start(
        self, timeout_s: float = TWIN_START_TIMEOUT_S, connect: bool = True
    ) -> list[TwinInfo]:
        """Start the process, wait for every twin's ready line, and (if not an emulator port)
        `adb connect` each one. Raises HarnessError naming the profile and the reason."""
        cmd = [
            sys.executable,
            "-m",
            "harness.twin",
            "twin",
            "up",
            "--profile",
            self.profile,
            "--port",
            str(self.port),
            "--count",
            str(self.count),
            "--state-dir",
            str(self.state_dir),
        ]
        if self.accept_new_keys:
            cmd.append("--accept-new-keys")
        if not self.registered:
            cmd.append("--unregistered")
        env = dict(self.adb.env) if self.adb else dict(os.environ)
        if self.adb:
            cmd += ["--adb-port", str(self.adb.port)]
        cmd += list(self.extra_args)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        name = f"twin {self.profile} on port {self.port}"
        with open(self.log_path, "ab") as logf:
            self.child = Child(
                name,
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=logf,
                ledger=self.reaper.ledger if self.reaper is not None else None,
            ).spawn()
        deadline = time.monotonic() + timeout_s
        while len(self.twins) < self.count:
            line = self.child.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                if self.child.eof or self.child.poll() is not None:
                    code = self.child.stop(grace_s=TWIN_STOP_TIMEOUT_S)
                    self.child = None
                    raise HarnessError(
                        f"twin {self.profile} exited with {code}: {self._log_tail()}"
                    )
                tail = self._log_tail()
                self.stop()
                raise HarnessError(f"{name}: not ready within {timeout_s:g} s ({tail})")
            info = json.loads(line)
            if not info.get("ready"):
                self.stop()
                raise HarnessError(f"{name}: {info.get('error')}")
            self.twins.append(_twin_info(info))
        if connect and self.adb is not None:
            for twin in self.twins:
                if twin.port in EMULATOR_PORTS:
                    continue
                # an API 17 twin that may not know our key yet: either state is an answer
                state = (
                    "device"
                    if self.accept_new_keys or twin.api > 17
                    else ("device", "unauthorized")
                )
                self.adb.connect(f"127.0.0.1:{twin.port}", state=state)
        return self.twins

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else "(empty log)"
        except OSError:
            return "(no log)"

    def client(self, serial: str | None = None, timeout_s: float = 5.0) -> TwinControl:
        """The typed control client of one twin of this process (default: the first).

        Raises:
            HarnessError: the process is not running.
        """
        if not self.twins:
            raise HarnessError(f"twin {self.profile} is not running")
        return TwinControl(self.twins[0].control, serial or self.twins[0].serial, timeout_s)

    def control(
        self, op: str, serial: str | None = None, timeout_s: float = 5.0, **kw: Any
    ) -> dict[str, Any]:
        """One raw control op (see harness.farm.control.TwinControl for the typed methods).

        Raises:
            TwinControlError: the twin refused or did not answer.
        """
        return self.client(serial, timeout_s).call(op, **kw)

    @property
    def proc(self) -> subprocess.Popen | None:
        """The twin process while it runs (started by start())."""
        return self.child.proc if self.child is not None else None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self) -> None:
        """Stop by PID (SIGTERM, then SIGKILL), disconnect from adb. Never raises."""
        child, self.child = self.child, None
        if self.adb is not None:
            for twin in self.twins:
                if twin.port not in EMULATOR_PORTS:
                    try:
                        self.adb.client(timeout_s=2.0).disconnect(f"127.0.0.1:{twin.port}")
                    except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                        log.info("%s: adb disconnect: %s", twin.serial, e)
        if child is not None:
            child.stop(grace_s=TWIN_STOP_TIMEOUT_S)
            child.close_pipes()
        if self._own_state_dir:
            shutil.rmtree(
                self.state_dir, onerror=lambda _f, p, e: log.info("removing %s: %s", p, e[1])
            )

    def __enter__(self) -> TwinProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _twin_info(info: dict[str, Any]) -> TwinInfo:
    """A twin's ready line (JSON) as a TwinInfo."""
    return TwinInfo(
        serial=info["serial"],
        port=info["port"],
        console_port=info["console_port"],
        profile=info["profile"],
        model=info["model"],
        api=info["api"],
        state_dir=Path(info["state_dir"]),
        truth=Path(info["truth"]),
        control=Path(info["control"]),
        backend=tuple(info["backend"]) if info.get("backend") else None,
        backend_truth=Path(info["backend_truth"]) if info.get("backend_truth") else None,
        walt=info.get("walt"),
        relay=info.get("relay"),
        camera=info.get("camera"),
    )
