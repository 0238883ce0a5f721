"""`hil`: the command line. Each layer adds its own sub-commands through `add_commands(sub)`.

Layers register in harness/<layer>/cli.py; heavy imports (OpenCV, PyAV) stay inside the
command functions so that `hil --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from harness.errors import HarnessError

_COMMAND_MODULES = (
    "harness.twin.cli",
    "harness.device.cli",
    "harness.vision.cli",
    "harness.network.cli",
    "harness.instruments.cli",
    "harness.twin.stf.cli",
    "harness.report.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil", description="mayday-hil: live-support test harness"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that layer has no commands yet
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except HarnessError as e:
        print(f"hil: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
