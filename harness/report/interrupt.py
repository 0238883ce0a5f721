"""A test cut short by Ctrl-C, SIGTERM or SIGHUP: its reports, so that what it measured reaches
results.jsonl and the HTML report, marked interrupted.

pytest re-raises KeyboardInterrupt out of the running test: no call or teardown report is ever
made for it, and its fixtures are torn down only after the reports are written. These reports
stand in for them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.report.collector import REPORT_DEVICE, REPORT_INTERRUPTED, REPORT_RECORDS

log = logging.getLogger(__name__)


def interrupted_reports(
    item: Any, records: list[dict[str, Any]], by: str, serial: str | None
) -> list[pytest.TestReport]:
    """A failed call report (the test did not finish) and a teardown report carrying the
    test's measurements so far (each record marked interrupted)."""
    now = time.time()
    message = (
        f"interrupted: the run was stopped by {by} during this test; "
        f"{len(records)} measurement(s) kept, marked interrupted"
    )
    common: dict[str, Any] = {
        "nodeid": item.nodeid,
        "location": item.location,
        "keywords": {k: 1 for k in item.keywords},
        "start": now,
        "stop": now,
        "user_properties": list(item.user_properties),
        REPORT_DEVICE: serial,
        REPORT_INTERRUPTED: True,
    }
    call = pytest.TestReport(outcome="failed", longrepr=message, when="call", **common)
    teardown = pytest.TestReport(
        outcome="passed", longrepr=None, when="teardown", **{**common, REPORT_RECORDS: records}
    )
    return [call, teardown]


# --- xdist: a worker's interrupted test reaches the controller through a spill file
SPILL_DIR = "interrupted"
WORKER_FLUSH_S = 5.0  # how long the controller waits for the workers' spill files


def register_worker(run_dir: Path, worker_id: str) -> None:
    """A worker notes its PID so that the controller, stopped by SIGTERM/SIGHUP, can ask it to
    hand over its running test's samples (SIGINT). Never raises."""
    try:
        d = Path(run_dir) / SPILL_DIR
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{worker_id}.pid").write_text(str(os.getpid()))
    except OSError as e:
        log.warning("worker %s: pid not noted: %s", worker_id, e)


def spill(run_dir: Path, worker_id: str, entries: list[dict[str, Any]]) -> None:
    """A worker's interrupted tests (nodeid, location, device, records), written atomically.
    Never raises."""
    d = Path(run_dir) / SPILL_DIR
    try:
        tmp = d / f"{worker_id}.json.tmp"
        tmp.write_text(json.dumps(entries))
        tmp.replace(d / f"{worker_id}.json")
    except OSError as e:
        log.warning("worker %s: interrupted measurements not spilled: %s", worker_id, e)


def ask_workers(run_dir: Path, by: str) -> list[dict[str, Any]]:
    """Controller: SIGINT every worker that noted its PID (unless the stop was a SIGINT, which a
    terminal sends to the workers too), wait (bounded) for their spill files, and return the
    interrupted tests they handed over."""
    d = Path(run_dir) / SPILL_DIR
    pids = {}
    for f in d.glob("*.pid") if d.is_dir() else []:
        try:
            pids[f.stem] = int(f.read_text())
        except (OSError, ValueError):
            continue
    if not pids:
        return []
    if by != "SIGINT":
        for wid, pid in pids.items():
            try:
                os.kill(pid, signal.SIGINT)
            except OSError as e:
                log.info("worker %s (pid %d) not signalled: %s", wid, pid, e)
    deadline = time.monotonic() + WORKER_FLUSH_S
    while time.monotonic() < deadline:
        if all((d / f"{w}.json").exists() or not _alive(p) for w, p in pids.items()):
            break
        time.sleep(0.05)
    out = []
    for w in pids:
        try:
            out += json.loads((d / f"{w}.json").read_text())
        except (OSError, ValueError):
            continue
    return out


def spilled_reports(entry: dict[str, Any], by: str) -> list[pytest.TestReport]:
    """The controller's stand-in reports for a worker's interrupted test."""
    item = SimpleNamespace(
        nodeid=entry["nodeid"],
        location=tuple(entry["location"]),
        keywords={k: 1 for k in entry.get("keywords", [])},
        user_properties=[],
    )
    return interrupted_reports(item, entry["records"], by, entry.get("device"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
