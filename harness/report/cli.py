"""`hil report merge RUN_DIR... -o DIR`: one report from the run directories of many shards."""

from __future__ import annotations

import argparse
from pathlib import Path


def _merge(args: argparse.Namespace) -> int:
    from harness.report.merge import merge, write

    merged = merge(args.run_dirs)
    report = write(merged, args.output)
    s = merged.summary()
    print(
        f"merged {len(merged.runs)} runs: {s['measurements']} measurements on "
        f"{len(merged.devices)} devices; {len(merged.clashes)} clashes, "
        f"{len(merged.duplicates)} duplicates"
    )
    for line in merged.clashes:
        print(f"clash: {line}")
    for line in merged.duplicates:
        print(f"duplicate: {line}")
    print(f"report: {report}")
    return 0


def add_commands(sub) -> None:
    report = sub.add_parser("report", help="reports of runs")
    rsub = report.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    m = rsub.add_parser(
        "merge", help="merge the run directories of shards into one report, results and summary"
    )
    m.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    m.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    m.set_defaults(func=_merge)
