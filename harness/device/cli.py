"""`hil devices`: every device on the adb server, the profile it matches, and its eligibility."""

from __future__ import annotations

import argparse
from pathlib import Path


def _devices(args: argparse.Namespace) -> int:
    import adbutils

    from harness.device.adb import Device
    from harness.device.capabilities import eligibility, match_profile
    from harness.device.probe import probe
    from harness.errors import HarnessError
    from harness.farm.adbclient import adb_client
    from harness.farm.hostprotocol import default_adb_port
    from harness.profiles import load_profiles

    port = args.adb_port or default_adb_port()
    profiles = load_profiles(args.profiles_dir)
    try:
        listed = adb_client("127.0.0.1", port, 5.0).list()
    except (adbutils.AdbError, OSError) as e:
        raise HarnessError(f"adb server on 127.0.0.1:{port} unreachable: {e}") from None
    rows = [("SERIAL", "STATE", "MODEL", "API", "PROFILE", "LIVE SUPPORT")]
    for info in listed:
        if info.state != "device":
            rows.append((info.serial, info.state, "-", "-", "-", "-"))
            continue
        dev = Device(info.serial, port=port)
        try:
            props = dev.getprops(timeout_s=args.timeout)
            prof = match_profile(props, profiles)
            verdict = eligibility(prof, probe(dev, timeout_s=args.timeout)) if args.probe else None
        except HarnessError as e:
            rows.append((info.serial, "error", "-", "-", "-", str(e)[:60]))
            continue
        rows.append(
            (
                info.serial,
                info.state,
                props.get("ro.product.model", "?"),
                props.get("ro.build.version.sdk", "?"),
                prof.name if prof else "(no profile)",
                ("eligible" if verdict.eligible else f"no: {verdict.reason}") if verdict else "-",
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print(
            "  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True))
            + "  "
            + str(r[-1])
        )
    if len(rows) == 1:
        print(f"(no devices on the adb server at 127.0.0.1:{port})")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("devices", help="list devices with the profile each matches")
    p.add_argument(
        "--adb-port",
        type=int,
        default=None,
        help="adb server port (default $ANDROID_ADB_SERVER_PORT or 5037)",
    )
    p.add_argument("--profiles-dir", type=Path, default=None)
    p.add_argument(
        "--no-probe", dest="probe", action="store_false", help="skip the capability probe"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="per-command timeout (s)")
    p.set_defaults(func=_devices)
