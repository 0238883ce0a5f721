"""`hil report merge` marks each record as the live report does (ResultRecord.mark): a shaped
profile's over-budget figure is DEGRADED, an unchecked figure RECORDED, not FAIL / PASS."""

from __future__ import annotations

import json

from harness.measure import Measurement, check
from harness.profiles.budget import Budget, Limit
from harness.report import ResultRecord, ResultsWriter
from harness.report.merge import merge, write
from harness.report.record import DEGRADATION_IS_DATA

BUDGET = Budget("default", "budgets.yaml", (Limit("share_text_cer", "p95", "<=", 2.0, "%"),))


def _record(metric: str, values: list[float], *, shaped: bool, checked: bool = True):
    meta = {"network": "poor-wifi", DEGRADATION_IS_DATA: True} if shaped else {}
    m = Measurement(metric, "%", meta=meta)
    for v in values:
        m.add(v)
    return ResultRecord.from_measurement(
        m,
        test=f"suites/test_media.py::test_share[{metric}-{shaped}]",
        device="127.0.0.1:5555",
        verdict=check(m, BUDGET) if checked else None,
        run="r1",
    )


def test_merged_marks_are_the_live_reports(tmp_path):
    records = [
        _record("share_text_cer", [9.0, 12.0, 15.0], shaped=True),  # over budget, shaped
        _record("share_text_cer", [9.0, 12.0, 15.0], shaped=False),  # over budget, unshaped
        _record("share_text_cer", [0.5, 1.0, 1.2], shaped=False),  # within
        _record("share_fps", [20.0], shaped=False, checked=False),  # a figure, no budget
    ]
    live = [r.mark for r in records]
    assert live == ["DEGRADED", "FAIL", "PASS", "RECORDED"]
    run = tmp_path / "r1"
    run.mkdir()
    w = ResultsWriter(run / "results.jsonl")
    for r in records:
        w.write(r)
    w.close()
    (run / "summary.json").write_text(json.dumps({"run": "r1", "exitstatus": 1, "devices": []}))

    merged = merge([run])
    page = write(merged, tmp_path / "out").read_text()
    cells = [
        m
        for m in ("DEGRADED", "FAIL", "PASS", "RECORDED")
        for _ in range(page.count(f"<td>{m}</td>"))
    ]
    assert sorted(cells) == sorted(live), cells
    # the count the live summary.json gives: FAIL and INCONCLUSIVE records, not DEGRADED
    assert merged.summary()["failed_verdicts"] == 1
    assert "1 over budget" in page
