"""`hil twin up`: start device twins in the foreground."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _up(args: argparse.Namespace) -> int:
    from harness.twin.backend import BackendConfig
    from harness.twin.runner import TwinSpec, run

    adb_port = args.adb_port
    if adb_port is None and os.environ.get("ANDROID_ADB_SERVER_PORT"):
        adb_port = int(os.environ["ANDROID_ADB_SERVER_PORT"])
    spec = TwinSpec(
        profile=args.profile,
        port=args.port,
        count=args.count,
        accept_new_keys=args.accept_new_keys,
        registered=not args.unregistered,
        state_dir=args.state_dir,
        adb_server_port=adb_port or 5037,
        profiles_dir=args.profiles_dir,
        boot_s=args.boot_s,
        region=args.region,
        app=args.app,
        locale=args.locale,
        timezone=args.timezone,
        backend=_host_port(args.backend) if args.backend else None,
        backend_config=BackendConfig(
            agents=args.agents, answer_s=args.answer_s, handle_s=args.handle_s, wrap_s=args.wrap_s
        ),
        walt=args.walt,
        relay=args.relay,
        camera=args.camera,
        adb_after_s=args.adb_after_s,
        boot_completed_after_s=args.boot_completed_after_s,
    )
    return run(spec)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _backend(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from harness.twin.backend import BackendConfig, SupportBackend
    from harness.twin.truth import GroundTruth

    async def main() -> int:
        truth = GroundTruth(args.truth, "backend") if args.truth else None
        backend = SupportBackend(
            BackendConfig(
                agents=args.agents,
                answer_s=args.answer_s,
                handle_s=args.handle_s,
                wrap_s=args.wrap_s,
            ),
            truth,
        )
        port = await backend.start(args.port)
        print(
            f'{{"ready": true, "backend": ["127.0.0.1", {port}], "http": ["127.0.0.1", {backend.http_port}]}}',
            flush=True,
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await backend.stop()
        return 0

    return asyncio.run(main())


def _add_backend_args(p) -> None:
    p.add_argument("--agents", type=int, default=2, help="support agents on duty")
    p.add_argument(
        "--answer-s", type=float, default=1.0, help="time from assignment to the agent's video (s)"
    )
    p.add_argument(
        "--handle-s", type=float, default=600.0, help="longest session before the agent ends it (s)"
    )
    p.add_argument(
        "--wrap-s",
        type=float,
        default=0.0,
        help="after-call work before the agent takes the next (s)",
    )


def add_twin_parser(sub) -> None:
    twin = sub.add_parser("twin", help="device twins (a device for adb, with no hardware)")
    tsub = twin.add_subparsers(dest="twin_command", required=True, metavar="COMMAND")
    up = tsub.add_parser("up", help="start twins and serve until interrupted")
    up.add_argument(
        "--profile", required=True, help="device profile name (device_profiles/NAME.yaml) or path"
    )
    up.add_argument(
        "--port",
        type=int,
        default=5555,
        help="adb port of the first twin (5555..5585: found as emulator-<port-1>)",
    )
    up.add_argument("--count", type=int, default=1, help="number of twins, on port, port+2, ...")
    up.add_argument(
        "--accept-new-keys",
        action="store_true",
        help="play the user tapping 'Allow' for new adb keys",
    )
    up.add_argument(
        "--unregistered", action="store_true", help="no account registered on the device"
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where ground truth and keys go (default: a temp dir)",
    )
    up.add_argument(
        "--adb-port",
        type=int,
        default=None,
        help="adb server port to register with (default $ANDROID_ADB_SERVER_PORT or 5037)",
    )
    up.add_argument("--profiles-dir", type=Path, default=None)
    up.add_argument(
        "--boot-s", type=float, default=1.0, help="time a reboot keeps the twin off adb"
    )
    up.add_argument(
        "--region", default=None, help="support region (US, UK, DE); default: the profile's"
    )
    up.add_argument(
        "--app",
        default=None,
        metavar="NAME|PATH",
        help="app profile the support app plays (device_profiles/apps); default: the profile's",
    )
    up.add_argument(
        "--locale", default=None, help="device UI locale (persist.sys.locale), e.g. de-DE"
    )
    up.add_argument(
        "--timezone",
        default=None,
        help="device time zone, e.g. Europe/Berlin; default: the profile's",
    )
    up.add_argument(
        "--backend",
        default=None,
        metavar="HOST:PORT",
        help="a shared support backend (default: one in this process)",
    )
    up.add_argument(
        "--camera",
        action="store_true",
        help="a lab camera: MJPEG over HTTP filming the tablet and the agent's display",
    )
    up.add_argument(
        "--walt",
        action="store_true",
        help="a simulated WALT on a pty (photodiode on the screen's centre)",
    )
    up.add_argument("--relay", action="store_true", help="a simulated USB power relay on a pty")
    up.add_argument("--adb-after-s", type=float, default=2.0, help="power on -> on adb (relay)")
    up.add_argument(
        "--boot-completed-after-s",
        type=float,
        default=4.0,
        help="power on -> sys.boot_completed=1 (relay)",
    )
    _add_backend_args(up)
    up.set_defaults(func=_up)
    be = tsub.add_parser("backend", help="a support backend shared by several twin processes")
    be.add_argument("--port", type=int, default=0)
    be.add_argument("--truth", type=Path, default=None, help="ground-truth file")
    _add_backend_args(be)
    be.set_defaults(func=_backend)


def add_commands(sub) -> None:
    add_twin_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.twin")
    sub = parser.add_subparsers(dest="command", required=True)
    add_twin_parser(sub)
    return parser
