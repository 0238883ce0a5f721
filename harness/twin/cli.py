"""`hil twin up`: start device twins in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from harness.errors import ProfileError
from harness.profiles import REGIONS, load_profile, valid_timezone
from harness.twin.backend import (
    BackendConfig,
    SupportBackend,
    new_agent_token,
    write_token_file,
)
from harness.twin.truth import GroundTruth


def _up(args: argparse.Namespace) -> int:
    # the runner imports the whole twin (OpenCV, aiortc, ...): only `hil twin up` pays for it,
    # not `hil --help` nor the other commands (harness/cli.py imports every room's cli)
    from harness.twin.runner import TwinSpec, run

    last = args.port + 2 * (args.count - 1)
    if last > 65535:
        print(
            f"hil twin up: error: --port {args.port} --count {args.count}: the last twin would"
            f" need port {last} (> 65535)",
            file=sys.stderr,
        )
        return 2
    try:
        load_profile(args.profile, args.profiles_dir)  # before anything listens
    except ProfileError as e:
        print(f"hil twin up: error: --profile: {e}", file=sys.stderr)
        return 2

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
        backend=args.backend,
        backend_config=BackendConfig(
            agents=args.agents, answer_s=args.answer_s, handle_s=args.handle_s, wrap_s=args.wrap_s
        ),
        walt=args.walt,
        relay=args.relay,
        camera=args.camera,
        adb_after_s=args.adb_after_s,
        boot_completed_after_s=args.boot_completed_after_s,
    )
    if args.state_dir is not None:
        return run(spec)
    spec.state_dir = Path(tempfile.mkdtemp(prefix="hil-twin-"))  # its own: it removes it
    code = run(spec)
    if code == 0 and not args.keep_state:
        shutil.rmtree(
            spec.state_dir,
            onerror=lambda _f, path, e: logging.getLogger(__name__).info(
                "removing %s: %s", path, e[1]
            ),
        )
    else:
        print(f"hil twin up: state kept in {spec.state_dir}", file=sys.stderr)
    return code


MAX_TWINS = 64  # per process: ports, cores, patience


def _int_in(lo: int, hi: int, what: str):
    """An argparse type: an integer in lo..hi (one clear line, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo}..{hi}, got {value}")
        return value

    return parse


def _number(lo: float = 0.0, what: str = "value"):
    """An argparse type: a finite number >= lo (NaN, inf and negatives refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a number, got {text!r}") from None
        if not math.isfinite(value) or value < lo:
            raise argparse.ArgumentTypeError(f"must be a finite number >= {lo:g}, got {text}")
        return value

    return parse


def add_seconds(p: argparse.ArgumentParser, flag: str, default: float | None, help: str) -> None:
    """A duration option in seconds (a finite number >= 0): a bad value is one error naming
    the option. Used by `hil twin up`, `hil twin backend` and `hil farm stf`."""
    p.add_argument(flag, type=_number(what=flag), default=default, help=help)


def _host_port(text: str) -> tuple[str, int]:
    """HOST:PORT on loopback (the twin world binds and speaks 127.0.0.1 only)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port 1..65535, got {text!r}")
    host = host or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        raise argparse.ArgumentTypeError(
            f"the twin world is loopback only: use 127.0.0.1:PORT, got {text!r}"
        )
    return "127.0.0.1", int(port)


def _region(text: str) -> str:
    if text not in REGIONS:
        raise argparse.ArgumentTypeError(f"unknown region {text!r}; known: {', '.join(REGIONS)}")
    return text


def _timezone(text: str) -> str:
    if not valid_timezone(text):
        raise argparse.ArgumentTypeError(f"not an IANA time zone: {text!r}")
    return text


def _backend(args: argparse.Namespace) -> int:
    own_dir = None if args.token_file else Path(tempfile.mkdtemp(prefix="hil-backend-"))
    try:
        return _serve_backend(args, args.token_file or own_dir / "agent_token")
    finally:  # its own temp dir goes at exit (a token file the user named stays)
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _serve_backend(args: argparse.Namespace, token_file: Path) -> int:
    if token_file.exists() and token_file.read_text().strip():
        token = token_file.read_text().strip()
        os.chmod(token_file, 0o600)
    else:
        token = new_agent_token()
        write_token_file(token_file, token)

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
            token=token,
        )
        port = await backend.start(args.port)
        ready = {
            "ready": True,
            "backend": ["127.0.0.1", port],
            "http": ["127.0.0.1", backend.http_port],
            "agent_token_file": str(token_file),
        }
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before the ready line: a stop right
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)  # after it is clean
        print(json.dumps(ready), flush=True)
        await stop.wait()
        await backend.stop()
        return 0

    return asyncio.run(main())


def _add_backend_args(p) -> None:
    p.add_argument(
        "--agents", type=_int_in(0, 10000, "--agents"), default=2, help="support agents on duty"
    )
    add_seconds(p, "--answer-s", 1.0, "time from assignment to the agent's video (s)")
    add_seconds(p, "--handle-s", 600.0, "longest session before the agent ends it (s)")
    add_seconds(p, "--wrap-s", 0.0, "after-call work before the agent takes the next (s)")


def add_twin_parser(sub) -> None:
    twin = sub.add_parser("twin", help="device twins (a device for adb, with no hardware)")
    tsub = twin.add_subparsers(dest="twin_command", required=True, metavar="COMMAND")
    up = tsub.add_parser("up", help="start twins and serve until interrupted")
    up.add_argument(
        "--profile", required=True, help="device profile name (device_profiles/NAME.yaml) or path"
    )
    up.add_argument(
        "--port",
        type=_int_in(2, 65533, "--port"),  # the console takes port - 1, the next twin port + 2
        default=5555,
        help="adb port of the first twin (5555..5585: found as emulator-<port-1>)",
    )
    up.add_argument(
        "--count",
        type=_int_in(1, MAX_TWINS, "--count"),
        default=1,
        help=f"number of twins (1..{MAX_TWINS}), on port, port+2, ...",
    )
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
        help="where ground truth, keys and the control socket go (default: a new temp dir"
        " /tmp/hil-twin-*, named by the ready line, removed at a clean exit unless --keep-state)",
    )
    up.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the default temp state dir (its ground truth) at exit",
    )
    up.add_argument(
        "--adb-port",
        type=_int_in(1, 65535, "--adb-port"),
        default=None,
        help="adb server port to register with (default $ANDROID_ADB_SERVER_PORT or 5037)",
    )
    up.add_argument("--profiles-dir", type=Path, default=None)
    add_seconds(up, "--boot-s", 1.0, "time a reboot keeps the twin off adb")
    up.add_argument(
        "--region",
        type=_region,
        default=None,
        help="support region (US, UK, DE); default: the profile's",
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
        type=_timezone,
        default=None,
        help="device time zone, e.g. Europe/Berlin; default: the profile's",
    )
    up.add_argument(
        "--backend",
        type=_host_port,
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
    add_seconds(up, "--adb-after-s", 2.0, "power on -> on adb (relay)")
    add_seconds(up, "--boot-completed-after-s", 4.0, "power on -> sys.boot_completed=1 (relay)")
    _add_backend_args(up)
    up.set_defaults(func=_up)
    be = tsub.add_parser("backend", help="a support backend shared by several twin processes")
    be.add_argument("--port", type=_int_in(0, 65535, "--port"), default=0, help="0: any free port")
    be.add_argument("--truth", type=Path, default=None, help="ground-truth file")
    be.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="the agents' credential (mode 0600): read if it exists, else a new one is written"
        " (default: a new private temp dir, removed at exit; the ready line names the file)",
    )
    _add_backend_args(be)
    be.set_defaults(func=_backend)


def add_commands(sub) -> None:
    add_twin_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.twin")
    sub = parser.add_subparsers(dest="command", required=True)
    add_twin_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.twin twin up ...`: the same commands as `hil twin ...`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)
