"""A test cut short by Ctrl-C, SIGTERM or SIGHUP: its reports, so that what it measured reaches
results.jsonl and the HTML report, marked interrupted.

pytest re-raises KeyboardInterrupt out of the running test: no call or teardown report is ever
made for it, and its fixtures are torn down only after the reports are written. These reports
stand in for them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.report.collector import REPORT_DEVICE, REPORT_INTERRUPTED, REPORT_RECORDS


def interrupted_reports(
    item: pytest.Item, records: list[dict[str, Any]], by: str, serial: str | None
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
