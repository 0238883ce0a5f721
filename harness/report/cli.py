"""`hil report`: reports built from what runs left behind (history.sqlite, results.jsonl).

`hil report trend [--reports DIR] [--last N] [--baseline RUN_ID] [--run RUN_ID] -o trend.html`
`hil report merge RUN_DIR... -o DIR`: one report from the run directories of many shards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError


def add_commands(sub) -> None:
    """Add the `report` command group to the `hil` parser."""
    rep = sub.add_parser("report", help="reports from past runs: trends and regressions")
    rsub = rep.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    p = rsub.add_parser(
        "trend", help="trend.html: every series over the last N runs, regressions flagged"
    )
    p.add_argument("--reports", default="reports", metavar="DIR", help="reports directory")
    p.add_argument("--last", type=_positive, default=20, metavar="N", help="runs shown (20)")
    p.add_argument("--baseline", default=None, metavar="RUN_ID", help="compare with this run only")
    p.add_argument("--run", default=None, metavar="RUN_ID", help="run compared (the newest)")
    p.add_argument("-o", "--output", default="trend.html", metavar="FILE", help="HTML written")
    p.set_defaults(func=_trend)
    m = rsub.add_parser(
        "merge", help="merge the run directories of shards into one report, results and summary"
    )
    m.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    m.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    m.set_defaults(func=_merge)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def _trend(args: argparse.Namespace) -> int:
    from harness.report.history import HISTORY_FILE, History
    from harness.report.trend import trend_page

    path = Path(args.reports) / HISTORY_FILE
    if not path.is_file():
        raise HarnessError(f"{path}: no history (runs write it; pass --reports DIR)")
    with History(path) as history:
        page = trend_page(history, last=args.last, baseline_run=args.baseline, run_id=args.run)
    out = Path(args.output)
    out.write_text(page, encoding="utf-8")
    print(f"trend: {out} ({out.stat().st_size // 1024} KiB)")
    return 0


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
