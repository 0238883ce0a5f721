"""`hil farm stf`: an STF-compatible farm of device twins, in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.twin.cli import add_seconds


def _stf(args: argparse.Namespace) -> int:
    # the farm runner imports the whole twin (OpenCV, aiortc, ...): only `hil farm stf` pays
    from harness.twin.stf.runner import FarmRunner, serve

    runner = FarmRunner(
        args.twins,
        args.token,
        port=args.port,
        state_dir=args.state_dir,
        profiles_dir=args.profiles_dir,
        lease_s=args.lease_s,
        offline_after_connect_s=args.offline_after_connect_s,
        provider=args.provider,
    )
    return serve(runner, max_s=args.max_s)


def add_commands(sub) -> None:
    farm = sub.add_parser("farm", help="device farms of twins (an STF-compatible API)")
    fsub = farm.add_subparsers(dest="farm_command", required=True, metavar="COMMAND")
    stf = fsub.add_parser(
        "stf",
        help="twins behind DeviceFarmer STF's REST API v1 (lease, remote adb connect)",
        description="Serve until interrupted; prints one JSON ready line with the URL and devices.",
    )
    stf.add_argument(
        "--twins",
        action="append",
        required=True,
        metavar="PROFILE[xN]",
        help="N twins of a device profile (repeatable)",
    )
    stf.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (0: a free one)")
    stf.add_argument(
        "--token",
        action="append",
        required=True,
        metavar="T",
        help="an access token (repeatable: each token is one user)",
    )
    add_seconds(stf, "--lease-s", 900.0, "lease when a claim gives no timeout")
    add_seconds(
        stf,
        "--offline-after-connect-s",
        0.0,
        "remote adb shows offline this long after each connect (real farms: ~1 s)",
    )
    stf.add_argument("--provider", default="twin-provider-1", help="provider name of the devices")
    stf.add_argument("--state-dir", type=Path, default=None, help="twins' state and stf.jsonl")
    stf.add_argument("--profiles-dir", type=Path, default=None)
    add_seconds(stf, "--max-s", None, "stop after this long")
    stf.set_defaults(func=_stf)
