"""The poor-Wi-Fi matrix's legibility column, and DEGRADED (not FAIL) where degradation is data."""

from __future__ import annotations

from harness.measure import Measurement, check
from harness.profiles.budget import Budget, Limit
from harness.report import ResultRecord, RunReport
from harness.report.matrix import NO_OCR, NO_TEXT, network_matrix
from harness.report.overview import matrix_html
from harness.report.record import DEGRADATION_IS_DATA, DEGRADED, FAIL
from harness.session.share_quality import NO_TEXT_TRUTH

BUDGET = Budget(
    "default",
    "budgets.yaml",
    (
        Limit("share_ssimulacra2", "p50", ">=", 50.0, ""),
        Limit("share_text_cer", "p95", "<=", 2.0, "%"),
        Limit("share_latency_ms", "p50", "<=", 250.0, "ms"),
    ),
)
NODE = "suites/test_poor_wifi.py::test_media_per_network_profile[emu-1-android-emulator-api34-{}]"


def _rec(metric: str, values, network: str, **meta) -> ResultRecord:
    m = Measurement(metric, "", meta={"network": network, **meta})
    for v in values:
        m.add(v)
    return ResultRecord.from_measurement(
        m, test=NODE.format(network), device="emu-1", verdict=check(m, BUDGET)
    )


def test_legibility_column_ssimulacra2_p50_and_cer_p95_or_why_absent():
    ocr = "OCR not available (ModuleNotFoundError: ...); install it: pip install -e '.[ocr]'"
    html = network_matrix(
        [
            _rec("share_ssimulacra2", [88.0, 90.0, 89.0], "good-wifi", text_cer="measured"),
            _rec("share_text_cer", [0.0, 0.6, 1.2], "good-wifi"),
            _rec("share_ssimulacra2", [41.0, 39.5], "edge", text_cer=ocr),
            _rec("share_ssimulacra2", [70.0], "poor-wifi", text_cer=NO_TEXT_TRUTH),
        ]
    )
    assert "<th>share_ssimulacra2 (p50)</th><th>share_text_cer (p95)</th>" in html
    assert "<th>good-wifi</th><td>89</td><td>1.1 %</td>" in html
    assert f"<th>edge</th><td>40 (over budget)</td><td>{NO_OCR}</td>" in html
    assert f"<th>poor-wifi</th><td>70</td><td>{NO_TEXT}</td>" in html


def test_over_budget_on_a_degraded_profile_is_degraded_not_fail():
    flagged = {DEGRADATION_IS_DATA: True}
    degraded = _rec("share_latency_ms", [900.0, 1200.0], "edge", **flagged)
    failed = _rec("share_latency_ms", [900.0, 1200.0], "edge")
    within = _rec("share_latency_ms", [90.0, 120.0], "edge", **flagged)
    assert (degraded.mark, failed.mark, within.mark) == (DEGRADED, FAIL, "PASS")
    # the record keeps its verdict (the figure is over budget); the word says what it means
    assert degraded.verdict["passed"] is False
    assert "1050 ms (degraded)" in network_matrix([degraded])
    assert "(over budget)" in network_matrix([failed])


def test_degraded_lines_in_the_terminal_summary_and_overview(tmp_path):
    rr = RunReport(tmp_path / "run")
    degraded = _rec("share_latency_ms", [900.0, 1200.0], "edge", **{DEGRADATION_IS_DATA: True})
    rr.records.append(degraded)
    line = rr.record_line(degraded)
    assert line.startswith("DEGRADED share_latency_ms") and "network edge" in line
    assert rr.counts()["budget_breaches"] == 0
    html = matrix_html(rr)
    assert "class='DEGRADED'" in html and "<b>DEGRADED</b>" in html
