"""Run one or more twins in the foreground until interrupted (`hil twin up`)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ProfileError
from harness.profiles import load_profile
from harness.profiles.app import load_app_profile
from harness.twin.backend import (
    AGENT_TOKEN_FILE,
    BackendConfig,
    SupportBackend,
    write_token_file,
)
from harness.twin.camera import LabCamera
from harness.twin.control import ControlServer
from harness.twin.device import Twin, TwinOptions
from harness.twin.lab import TwinLab
from harness.twin.truth import GroundTruth

log = logging.getLogger(__name__)


@dataclass
class TwinSpec:
    profile: str
    port: int = 5555
    count: int = 1
    accept_new_keys: bool = False
    registered: bool = True
    state_dir: Path | None = None
    adb_server_port: int | None = None
    profiles_dir: Path | None = None
    boot_s: float = 1.0
    region: str | None = None
    app: str | None = None  # app profile the support app plays
    locale: str | None = None  # device UI locale
    timezone: str | None = None
    backend: tuple[str, int] | None = None  # an external backend; None: one in this process
    backend_config: BackendConfig | None = None
    camera: bool = (
        False  # a lab camera (MJPEG over HTTP) filming the tablet and the agent's display
    )
    walt: bool = False  # a simulated WALT on a pty, its photodiode on the screen's centre
    relay: bool = False  # a simulated USB power relay on a pty
    adb_after_s: float = 2.0
    boot_completed_after_s: float = 4.0


async def serve(spec: TwinSpec, ready=None) -> int:  # noqa: C901 -- starts every part of a twin process in order, each with its own failure
    """Start spec.count twins on spec.port, spec.port + 2, ...; serve until a signal or `kill`."""
    from harness.native import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread allocates: RSS does not creep per media session
    profile = load_profile(spec.profile, spec.profiles_dir)
    app = load_app_profile(spec.app or profile.app, spec.profiles_dir)
    if app.twin is None:
        raise ProfileError(
            app.file, "twin", "this app profile has no twin section: the twin cannot play it"
        )
    spec.app = app.file
    state_root = Path(spec.state_dir or tempfile.mkdtemp(prefix="hil-twin-"))
    state_root.mkdir(parents=True, exist_ok=True)
    twins: dict[str, Twin] = {}
    backend = None
    backend_addr = spec.backend
    if backend_addr is None:
        backend = SupportBackend(
            spec.backend_config or BackendConfig(),
            GroundTruth(state_root / "backend.jsonl", "backend"),
        )
        backend_addr = ("127.0.0.1", await backend.start())
        write_token_file(state_root / AGENT_TOKEN_FILE, backend.token)
    for i in range(spec.count):
        port = spec.port + 2 * i
        opts = TwinOptions(
            accept_new_keys=spec.accept_new_keys,
            registered=spec.registered,
            adb_server_port=spec.adb_server_port,
            extra={"boot_s": spec.boot_s},
            region=spec.region,
            app=spec.app,
            locale=spec.locale,
            timezone=spec.timezone,
            backend=backend_addr,
        )
        twin = Twin(profile, port, state_root / f"twin-{port}", opts)
        twins[twin.serial_hint] = twin
    control = ControlServer(twins, state_root / "control.sock", backend)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Twin] = []
    labs = {}
    cameras = {}
    try:
        for serial, twin in twins.items():
            await twin.start()
            started.append(twin)
            if spec.walt or spec.relay:
                lab = TwinLab(
                    twin, spec.walt, spec.relay, spec.adb_after_s, spec.boot_completed_after_s
                )
                labs[serial] = (lab, lab.start())
            if spec.camera:
                cam = LabCamera(twin)
                cameras[serial] = (cam, await cam.start())
        await control.start()
        for serial, twin in twins.items():
            line = {
                "ready": True,
                "serial": serial,
                "port": twin.port,
                "console_port": twin.port - 1,
                "profile": profile.name,
                "model": profile.model,
                "api": profile.api_level,
                "state_dir": str(twin.state_dir),
                "truth": str(twin.truth.path),
                "control": str(control.path),
                "backend": list(backend_addr),
                "backend_truth": str(backend.truth.path) if backend else None,
                "agent_token_file": str(state_root / AGENT_TOKEN_FILE) if backend else None,
                **(labs[serial][1] if serial in labs else {}),
                **(
                    {"camera": f"http://127.0.0.1:{cameras[serial][1]}"}
                    if serial in cameras
                    else {}
                ),
            }
            print(json.dumps(line), flush=True)
        if ready is not None:
            ready(twins, control)
        waiters = [asyncio.ensure_future(stop.wait())] + [
            asyncio.ensure_future(t.stopped.wait()) for t in started
        ]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    except OSError as e:
        print(json.dumps({"ready": False, "error": f"cannot listen: {e}"}), flush=True)
        return 2
    finally:
        for lab, _ in labs.values():
            lab.stop()
        for cam, _ in cameras.values():
            await cam.stop()
        for twin in started:
            if not twin.stopped.is_set():
                await twin.stop()
        await control.stop()
        if backend is not None:
            await backend.stop()
            backend.truth.close()
    return 0


def run(spec: TwinSpec) -> int:
    return asyncio.run(serve(spec))
