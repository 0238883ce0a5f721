"""`hil power ...` and `hil walt ...`: drive a relay board or a WALT from the shell."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `power` and `walt` on the `hil` parser."""
    power = sub.add_parser("power", help="switch a device's power through a USB relay board")
    power.add_argument("action", choices=("on", "off", "cycle", "state"))
    power.add_argument("--port", required=True, help="relay serial port, e.g. /dev/ttyUSB0")
    power.add_argument("--channel", type=int, default=1, help="relay channel, 1-based (default 1)")
    power.add_argument("--baud", type=int, default=9600, help="baud rate (default 9600)")
    power.add_argument("--off-s", type=float, default=3.0, help="off time of a cycle (default 3 s)")
    power.add_argument("--verify", action="store_true", help="query the board to confirm (0xFF)")
    power.add_argument("--nc", action="store_true", help="device wired through the NC contact")
    power.set_defaults(func=_power)

    walt = sub.add_parser("walt", help="a WALT latency probe on USB serial")
    wsub = walt.add_subparsers(dest="walt_command", required=True, metavar="ACTION")
    find = wsub.add_parser("find", help="list WALT candidates (Teensy USB serial ports)")
    find.set_defaults(func=_walt_find)
    check = wsub.add_parser("check", help="open, check the version, sync and re-measure the clock")
    check.add_argument("--port", help="serial port (default: the only WALT on USB)")
    check.add_argument("--wait-s", type=float, default=2.0, help="time before the drift check")
    check.set_defaults(func=_walt_check)
    sample = wsub.add_parser("sample", help="raw sensor readings ('Q'), to place the probe")
    sample.add_argument("--port", help="serial port (default: the only WALT on USB)")
    sample.add_argument("--count", type=int, default=10)
    sample.set_defaults(func=_walt_sample)


def _power(args: argparse.Namespace) -> int:
    from harness.instruments.power_relay import LcusRelay

    with LcusRelay(
        args.port, channel=args.channel, baud=args.baud, verify=args.verify, normally_closed=args.nc
    ) as relay:
        if args.action == "on":
            relay.on()
        elif args.action == "off":
            relay.off()
        elif args.action == "cycle":
            relay.cycle(args.off_s)
        state = relay.state()
    shown = "unknown" if state is None else ("on" if state else "off")
    how = "" if args.verify or state is None else " (commanded, not read back)"
    print(f"{args.port} channel {args.channel}: {shown}{how}")
    return 0


def _walt_find(args: argparse.Namespace) -> int:
    from harness.instruments.serialport import find_ports
    from harness.instruments.walt import TEENSY_SERIAL_PIDS, TEENSY_VID

    ports = find_ports(TEENSY_VID, TEENSY_SERIAL_PIDS)
    for p in ports:
        print(p)
    if not ports:
        print("no WALT (Teensy 16c0:0483/0485/0487/0489) on USB")
        return 1
    return 0


def _walt_check(args: argparse.Namespace) -> int:
    import time

    from harness.instruments.walt import Walt

    with Walt.open(args.port) as walt:
        assert walt.clock is not None
        print(f"{walt.port}: firmware protocol {walt.version}, ping {walt.ping() * 1e3:.2f} ms")
        print(f"sync:  {walt.clock.describe()}")
        time.sleep(max(0.0, args.wait_s))
        d = walt.check_drift()
        print(f"drift: {d.drift_us:+.0f} us after {args.wait_s:g} s; {walt.clock.describe()}")
    return 0


def _walt_sample(args: argparse.Namespace) -> int:
    import time

    from harness.instruments.walt import Walt

    with Walt.open(args.port, sync=False) as walt:
        for _ in range(max(1, args.count)):
            print(" ".join(f"{k}:{v}" for k, v in walt.sample_all().items()))
            time.sleep(0.1)
    return 0
