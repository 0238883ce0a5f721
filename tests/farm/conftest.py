"""Fixtures of the farm tests: an STF-compatible farm of twins (`hil farm stf`) as a process."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from harness.farm.reaper import Reaper

FARM_READY_TIMEOUT_S = 60.0
FARM_STOP_TIMEOUT_S = 10.0
TOKEN = "tok-farm-user-1"
OTHER_TOKEN = "tok-farm-user-2"


def api(
    url: str, method: str, path: str, token: str | None = TOKEN, body: Any = None
) -> tuple[int, Any]:
    """One call to the farm's API -> (status, JSON)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Farm:
    url: str
    info: dict
    proc: subprocess.Popen

    def state(self) -> dict:
        status, data = api(self.url, "GET", "/_twin/state")
        assert status == 200, data
        return data

    def fault(self, **req: Any) -> None:
        status, data = api(self.url, "POST", "/_twin/faults", body=req)
        assert status == 200, data

    def owners(self) -> dict[str, str | None]:
        return {s: d["owner"] for s, d in self.state()["devices"].items()}


@pytest.fixture(scope="session")
def farm_reaper(tmp_path_factory):
    """Stops the farms of this test session if the session itself is killed."""
    reaper = Reaper(tmp_path_factory.mktemp("farm-reaper") / "ledger").start()
    yield reaper
    reaper.stop()


@pytest.fixture
def start_farm(tmp_path, farm_reaper):
    """start_farm(*twin specs, extra args) -> Farm: `hil farm stf` in its own process group
    (its twins inside it), stopped by its PID at teardown."""
    farms: list[Farm] = []

    def start(*twins: str, args: tuple[str, ...] = ()) -> Farm:
        cmd = [sys.executable, "-m", "harness.cli", "farm", "stf"]
        for t in twins:
            cmd += ["--twins", t]
        cmd += ["--token", TOKEN, "--token", OTHER_TOKEN]
        cmd += ["--state-dir", str(tmp_path / f"farm{len(farms)}"), *args]
        log = open(tmp_path / f"farm{len(farms)}.log", "ab")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        farm_reaper.watch(proc.pid)
        deadline = time.monotonic() + FARM_READY_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                _stop(proc)
                pytest.fail(
                    f"hil farm stf not ready: {(tmp_path / f'farm{len(farms)}.log').read_text()[-500:]}"
                )
            ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                line += chunk
                if not chunk:
                    continue
        info = json.loads(line)
        assert info["ready"], info
        farm = Farm(info["url"], info, proc)
        farms.append(farm)
        return farm

    yield start
    for farm in farms:
        _stop(farm.proc)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(FARM_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(FARM_STOP_TIMEOUT_S)
    except ProcessLookupError:
        pass
    if proc.stdout:
        proc.stdout.close()


def wait_until(cond, timeout_s: float, what: str) -> None:
    """Bounded wait for a condition (polls every 0.1 s)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.1)


@pytest.fixture
def farm_api():
    """api(url, method, path, token=TOKEN, body=None) -> (status, JSON)."""
    return api


@pytest.fixture
def wait():
    """wait(cond, timeout_s, what): bounded polling."""
    return wait_until
