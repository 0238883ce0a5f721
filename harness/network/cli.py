"""`hil net ...`: network profiles and shapers for manual lab work.

    hil net list
    hil net show PROFILE
    hil net apply PROFILE --via console|netem [--serial S | --dev IFACE] [--dry-run]
    hil net clear --via console|netem [--serial S | --dev IFACE] [--dry-run]
    hil net relay --listen HOST:PORT --to HOST:PORT --profile NAME [--seed N] [--udp|--tcp]

`apply` leaves the profile in place when it returns; `clear` undoes it (for the console, back to
the state journalled before the first apply). `relay` runs in the foreground until Ctrl-C or
SIGTERM (or --duration) and prints its counters.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time

_MAX_RELAY_S = 86_400.0
_RELAY_POLL_S = 0.5


def add_commands(sub) -> None:
    """Add the `net` command group to the `hil` parser."""
    net = sub.add_parser("net", help="network profiles and shapers (console, netem, relay)")
    nsub = net.add_subparsers(dest="net_command", required=True, metavar="COMMAND")

    p = nsub.add_parser("list", help="the profile library, with sources")
    _profiles_arg(p)
    p.set_defaults(func=_list)

    p = nsub.add_parser("show", help="one profile, and which shaper can express which part of it")
    p.add_argument("profile", help="library name, FILE.yaml or FILE.yaml#NAME")
    _profiles_arg(p)
    p.set_defaults(func=_show)

    p = nsub.add_parser("apply", help="apply a profile and leave it applied (undo with `clear`)")
    p.add_argument("profile", help="library name, FILE.yaml or FILE.yaml#NAME")
    _target_args(p)
    p.add_argument(
        "--approximate",
        action="store_true",
        help="leave out what the shaper cannot express (with a warning) instead of refusing",
    )
    _profiles_arg(p)
    p.set_defaults(func=_apply)

    p = nsub.add_parser("clear", help="undo shaping on a console or an interface")
    _target_args(p)
    p.set_defaults(func=_clear)

    p = nsub.add_parser("relay", help="run the impairment relay in the foreground")
    p.add_argument(
        "--listen", required=True, metavar="HOST:PORT", help="where media is sent (port 0: any)"
    )
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="where the relay forwards it")
    p.add_argument("--profile", required=True, help="library name, FILE.yaml or FILE.yaml#NAME")
    p.add_argument("--seed", type=int, default=0, help="seed of every random decision (default 0)")
    proto = p.add_mutually_exclusive_group()
    proto.add_argument(
        "--udp", dest="protocol", action="store_const", const="udp", help="UDP (default)"
    )
    proto.add_argument("--tcp", dest="protocol", action="store_const", const="tcp", help="TCP")
    p.add_argument(
        "--forward",
        choices=("up", "down"),
        default="up",
        help="profile direction of listen -> to traffic (default up)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help=f"stop after S seconds (default: when interrupted, at most {_MAX_RELAY_S:g})",
    )
    p.add_argument(
        "--approximate", action="store_true", help="TCP: leave out loss etc. with a warning"
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON line when listening and one with the counters"
    )
    _profiles_arg(p)
    p.set_defaults(func=_relay, protocol="udp")


def _profiles_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profiles",
        action="append",
        default=[],
        metavar="FILE",
        help="extra profile file(s) (also $HIL_NETWORK_PROFILES)",
    )


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--via", choices=("console", "netem"), required=True, help="which shaper")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--serial", help="console: emulator serial (emulator-5554) or console port")
    who.add_argument(
        "--dev", help="netem: the interface (on a gateway: the one facing the devices)"
    )
    p.add_argument("--device-ip", help="netem: shape only this device's traffic")
    p.add_argument(
        "--egress",
        choices=("down", "up"),
        default="down",
        help="netem: profile direction of the interface's egress (default down)",
    )
    p.add_argument("--ifb", help="netem: IFB device for the ingress direction (default ifb-<dev>)")
    p.add_argument(
        "--runner",
        default="",
        metavar="PREFIX",
        help="netem: run commands through this prefix, e.g. 'ssh farm-gw'",
    )
    p.add_argument(
        "--token-file", help="console: auth token file (default ~/.emulator_console_auth_token)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the exact commands, run nothing")


def _load(args: argparse.Namespace, name: str):
    from harness.network.profiles import load_network_profile

    return load_network_profile(name, tuple(args.profiles))


def _list(args: argparse.Namespace) -> int:
    from harness.network.profiles import network_profiles

    for name, prof in network_profiles(*args.profiles).items():
        print(f"{name:18} {prof.description}")
        print(f"{'':18} source: {prof.source}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from harness.network.profiles import FEATURES

    prof = _load(args, args.profile)
    print(prof.describe())
    features = prof.features()
    table = _capability_table()
    print("\nfeature            " + " ".join(f"{k:>9}" for k in table))
    for f in FEATURES:
        if f in features:
            print(
                f"{f:18} "
                + " ".join(f"{'yes' if f in caps else 'NO':>9}" for caps in table.values())
            )
    return 0


def _capability_table() -> dict[str, set[str]]:
    """Which features each shaper can express (the shapers' own tables)."""
    from harness.network import console, impairment, netem, wifi

    return {
        "console": set(console.CAPABILITIES),
        "netem": set(netem.CAPABILITIES),
        "wifi": set(wifi.CAPABILITIES),
        "relay-udp": set(impairment.UDP_CAPABILITIES),
        "relay-tcp": set(impairment.TCP_CAPABILITIES),
    }


def _apply(args: argparse.Namespace) -> int:
    prof = _load(args, args.profile)
    shaper = _shaper(args, prof)
    if args.via == "netem" and args.dry_run:
        print(shaper.dry_run_text(), end="")
        return 0
    if args.dry_run:
        from harness.network.console import console_network_for

        net = console_network_for(shaper.profile)
        for w in shaper.report.approximations:
            print(f"# approximated: {w}")
        print(f"network speed {net.speed_arg()}\nnetwork delay {net.delay_arg()}")
        return 0
    for w in shaper.report.approximations:
        print(f"warning: {w}", file=sys.stderr)
    shaper.apply()
    shaper.detach()
    print(
        f"applied {prof.name} via {args.via} on {shaper.target};"
        f" undo with: hil net clear --via {args.via} "
        + (f"--serial {args.serial}" if args.via == "console" else f"--dev {args.dev}")
    )
    return 0


def _shaper(args: argparse.Namespace, prof):
    from harness.errors import NetworkShaperError

    if args.via == "console":
        from harness.network.console import EmulatorConsoleShaper

        if not args.serial:
            raise NetworkShaperError(
                "--via console needs --serial (emulator-5554 or a console port)"
            )
        return EmulatorConsoleShaper(
            prof, args.serial, token_file=args.token_file, approximate=args.approximate
        )
    from harness.network.netem import NetemShaper
    from harness.network.runner import CommandRunner

    if not args.dev:
        raise NetworkShaperError("--via netem needs --dev IFACE")
    runner = CommandRunner(prefix=shlex.split(args.runner), dry_run=args.dry_run)
    return NetemShaper(
        prof,
        args.dev,
        device_ip=args.device_ip,
        ifb=args.ifb,
        egress=args.egress,
        runner=runner,
        approximate=args.approximate,
    )


def _clear(args: argparse.Namespace) -> int:
    from harness.errors import NetworkShaperError

    if args.via == "console":
        from harness.network.console import clear_console

        if not args.serial:
            raise NetworkShaperError(
                "--via console needs --serial (emulator-5554 or a console port)"
            )
        if args.dry_run:
            print("network speed <journalled or full>\nnetwork delay <journalled or 0:0>")
            return 0
        state = clear_console(args.serial, token_file=args.token_file)
        print(f"console {args.serial}: speed {state.speed_arg()}, delay {state.delay_arg()}")
        return 0
    from harness.network.netem import clear_interface
    from harness.network.runner import CommandRunner

    if not args.dev:
        raise NetworkShaperError("--via netem needs --dev IFACE")
    runner = CommandRunner(prefix=shlex.split(args.runner), dry_run=args.dry_run)
    left = clear_interface(runner, args.dev, args.ifb)
    if left:
        print(f"still shaped on {args.dev}: {left}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"{args.dev}: no shaping left")
    return 0


def _relay(args: argparse.Namespace) -> int:
    from harness.network.impairment import RelayShaper, parse_hostport

    prof = _load(args, args.profile)
    shaper = RelayShaper(
        prof,
        parse_hostport(args.to),
        listen=parse_hostport(args.listen),
        protocol=args.protocol,
        seed=args.seed,
        forward=args.forward,
        approximate=args.approximate,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    duration = min(args.duration if args.duration is not None else _MAX_RELAY_S, _MAX_RELAY_S)
    try:
        for w in shaper.report.approximations:
            print(f"warning: {w}", file=sys.stderr)
        with shaper:
            host, port = shaper.address
            if args.json:
                print(
                    json.dumps(
                        {
                            "event": "listening",
                            "listen": [host, port],
                            "to": list(parse_hostport(args.to)),
                            "protocol": args.protocol,
                            "profile": prof.name,
                            "seed": args.seed,
                        }
                    ),
                    flush=True,
                )
            else:
                print(
                    f"relay {args.protocol} {host}:{port} -> {args.to}, profile {prof.name},"
                    f" seed {args.seed}"
                    " (Ctrl-C stops and prints the counters)",
                    flush=True,
                )
            deadline = time.monotonic() + duration
            while not stop.is_set() and time.monotonic() < deadline:
                stop.wait(min(_RELAY_POLL_S, max(0.0, deadline - time.monotonic())))
                error = getattr(shaper.relay, "error", None)
                if error is not None:
                    print(f"relay failed: {error}", file=sys.stderr)
                    break
        counters = shaper.counters()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        print(json.dumps({"event": "stopped", "counters": counters.to_dict()}), flush=True)
    else:
        print(counters.describe(), flush=True)
    return 0
