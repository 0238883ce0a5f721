"""The result record, results.jsonl, the verdict words and the run's collector."""

from __future__ import annotations

import json
from types import SimpleNamespace

from harness.measure import Measurement, check
from harness.profiles.budget import Budget, Limit
from harness.report import ResultRecord, ResultsWriter, RunReport, read_records, readable_test_id
from harness.report.junit import junit_properties

BUDGET = Budget("default", "budgets.yaml", (Limit("connect_time_s", "p95", "<=", 15.0, "s"),))
NODE = "suites/test_connect.py::test_connect_time_within_budget[127.0.0.1:5555-fire-hdx-7-2013]"


def _measured(name: str, values, unc: float = 0.0) -> Measurement:
    m = Measurement(name, "s", meta={"network": "edge"})
    for v in values:
        m.add(v, uncertainty=unc)
    return m


def _record(m: Measurement, checked: bool = True, **kw) -> ResultRecord:
    return ResultRecord.from_measurement(
        m,
        test=NODE,
        device="127.0.0.1:5555",
        model="KFTHWI",
        profile="fire-hdx-7-2013",
        verdict=check(m, BUDGET) if checked else None,
        **kw,
    )


def test_the_verdict_word_an_unchecked_figure_is_recorded_not_pass():
    assert _record(_measured("connect_time_s", [5, 7, 8])).mark == "PASS"
    assert _record(_measured("connect_time_s", [5, 7, 21], unc=0.03)).mark == "FAIL"
    assert _record(_measured("connect_time_s", [15.1, 15.1, 15.1], unc=0.2)).mark == "INCONCLUSIVE"
    # never checked (busiest day's connect time), or checked against a budget without a limit
    assert _record(_measured("connect_time_s", [5]), checked=False).mark == "RECORDED"
    assert _record(_measured("queue_wait_s", [5])).mark == "RECORDED"


def test_written_and_read_back_as_the_same_record_and_old_lines_upgrade(tmp_path):
    rec = _record(_measured("connect_time_s", [5, 7, 21], unc=0.033), interrupted=True, run="r1")
    w = ResultsWriter(tmp_path / "results.jsonl")
    w.write(rec)
    old = {  # a version-0 line: no version, no model, a key this version does not know
        "test": "t",
        "device": "d",
        "metric": "m",
        "unit": "ms",
        "samples": [1, 2],
        "stats": {"p95": 2.0},
        "verdict": {"passed": True, "checks": []},
        "legacy": 3,
    }
    w.write(old)
    w.close()
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write('{"test": "torn')  # a run killed mid-write
    back = read_records(tmp_path / "results.jsonl")
    assert back[0] == rec and back[0].version == 1 and back[0].interrupted
    assert back[0].stat("p95") == rec.stats["p95"] and back[0].mark == "FAIL"
    assert back[1].version == 0 and back[1].samples == [1.0, 2.0] and back[1].meta == {"legacy": 3}
    assert back[1].mark == "RECORDED" and len(back) == 2


def test_readable_test_ids_drop_the_device_parameter():
    assert readable_test_id(NODE, "127.0.0.1:5555", "fire-hdx-7-2013") == (
        "test_connect.py::test_connect_time_within_budget"
    )
    assert (
        readable_test_id(
            "suites/test_poor_wifi.py::test_c[127.0.0.1:5555-fire-hdx-7-2013-edge]",
            "127.0.0.1:5555",
            "fire-hdx-7-2013",
        )
        == "test_poor_wifi.py::test_c[edge]"
    )
    assert readable_test_id("tests/x.py::test_y[a-b]") == "x.py::test_y[a-b]"


def _report(nodeid, when, outcome, device, longrepr=None, **attrs):
    return SimpleNamespace(
        nodeid=nodeid,
        when=when,
        outcome=outcome,
        passed=outcome == "passed",
        failed=outcome == "failed",
        skipped=outcome == "skipped",
        longrepr=longrepr,
        longreprtext=longrepr if isinstance(longrepr, str) else "",
        duration=0.5,
        hil_device=device,
        **attrs,
    )


def test_run_report_counts_outcomes_skips_per_reason_per_device_and_writes_summary(tmp_path):
    rr = RunReport(tmp_path / "run-1")
    rr.devices = [
        {"serial": "s1", "model": "KFTHWI", "profile": "fire-hdx-7-2013", "api_level": 19},
        {"serial": "s2", "model": "KFSOWI", "profile": "fire-hd-7-2013", "api_level": 17},
    ]
    rr.open()
    over = _record(_measured("connect_time_s", [5, 7, 21], unc=0.03))
    unchecked = _record(_measured("connect_time_s", [5.0]), checked=False)
    for rep in [
        _report("a[s1]", "call", "passed", "s1"),
        _report("a[s1]", "teardown", "passed", "s1", hil_records=[over.to_dict()]),
        _report("b[s1]", "setup", "failed", "s1", "E   AdbError: s1: device offline"),
        _report("b[s1]", "teardown", "passed", "s1", hil_records=[unchecked.to_dict()]),
    ]:
        rr.add(rep)
    for n in range(3):  # three tests skipped on s2 for one reason: one line
        rr.add(
            _report(
                f"m{n}[s2]",
                "setup",
                "skipped",
                "s2",
                ("f", 1, "Skipped: s2 (fire-hd-7-2013) lacks microphone"),
            )
        )
    rr.add(_report("e[s2]", "setup", "skipped", "s2", ("f", 1, "Skipped: s2 is eligible")))
    rr.add(
        SimpleNamespace(
            **{
                **vars(_report("r[s1]", "call", "passed", "s1")),
                "hil_retries": {"device": "s1", "counts": {"shell": 2}},
            }
        )
    )
    rr.close()
    c = rr.counts()
    assert (c["tests"], c["passed"], c["errors"], c["skipped"]) == (7, 2, 1, 4)
    assert (c["budget_breaches"], c["recorded"], c["measurements"]) == (1, 1, 2)
    assert rr.skips_by_reason() == [("s2", "is eligible", 1), ("s2", "lacks microphone", 3)]
    assert rr.verdict_line().startswith(
        "2 devices, 7 tests: 2 passed, 0 failed, 1 budget breach, 0 inconclusive, "
        "1 infrastructure error, 4 skipped"
    )
    lines = rr.summary_lines()
    assert lines[0].startswith("FAIL connect_time_s p50=7 p95=19.6 s (n=3)")
    assert (
        "test_connect.py::test_connect_time_within_budget on KFTHWI (fire-hdx-7-2013), network edge"
        in lines[0]
    )
    assert (
        lines[1].startswith("RECORDED connect_time_s")
        and lines[2] == "retries on KFTHWI (fire-hdx-7-2013): shell=2"
    )
    assert [r.samples for r in read_records(rr.results_path)] == [[5, 7, 21], [5.0]]
    rr.write_summary(0)
    s = json.loads((rr.run_dir / "summary.json").read_text())
    assert (
        s["exitstatus"] == 0 and s["counts"]["budget_breaches"] == 1 and s["failed_verdicts"] == 1
    )
    rr.interrupted_by = "SIGTERM"  # pytest lost the status (second signal): the run says so
    rr.write_summary(0)
    assert json.loads((rr.run_dir / "summary.json").read_text())["exitstatus"] == 2


def test_junit_properties_flat_per_measurement():
    props = dict(junit_properties([_record(_measured("connect_time_s", [5, 7, 21], unc=0.03))]))
    assert props["hil.model"] == "KFTHWI" and props["hil.connect_time_s.p95"] == "19.6"
    assert props["hil.connect_time_s.verdict"] == "FAIL"
    assert props["hil.connect_time_s.limit.p95"] == "<= 15"
    assert props["hil.connect_time_s.network"] == "edge"


def test_report_rewrites_stay_linear_in_the_tests():
    from harness.report.html import ReportRewriter

    now = [0.0]
    rw = ReportRewriter(config=None, clock=lambda: now[0])
    written = []
    rw.rewrite = lambda: (written.append(rw.done), setattr(rw, "written_at", rw.done))
    for _ in range(500):
        rw.done += 1
        now[0] += 0.01
        if rw.due():
            rw.rewrite()
    assert written[:10] == list(range(1, 11))  # every test of a small run
    assert len(written) < 60  # not 500
    # rows serialised in all (each rewrite writes every row so far): linear, not quadratic
    assert sum(written) < 12 * 500
    assert all(b - a <= max(1, 0.1 * a) + 1 for a, b in zip(written, written[1:], strict=False))
    now[0] += 31.0  # a slow test after a long gap: written although the fraction is not reached
    rw.done += 1
    assert rw.due()


def test_thumbnails_are_small_and_full_size_files_sit_beside(tmp_path):
    import base64

    import cv2
    import numpy as np

    from harness.report import images
    from harness.report.extras import KIND_WORST_FRAME, attach_frame, attach_plots, full_size_links
    from harness.report.plots import side_by_side_png

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(
        np.clip(rng.normal(128, 40, (800, 1280, 3)), 0, 255).astype(np.uint8), (9, 9), 3
    )
    m = _measured("connect_time_s", [5, 7, 8])
    images.configure(tmp_path / "images")
    try:
        extras: list = []
        attach_plots(extras, m, BUDGET, "connect", kinds=("cdf",))
        pair = side_by_side_png(frame, frame, "sent | received")
        attach_frame(extras, pair, "worst frame 1", KIND_WORST_FRAME)
    finally:
        images.configure(None)
    plot, photo = extras
    assert plot["mime_type"] == "image/png" and photo["mime_type"] == "image/jpeg"
    for e in extras:
        full = (tmp_path / e["hil_full"]).read_bytes()
        small = base64.b64decode(e["content"])
        assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR) is not None
        assert len(small) * 3 < len(full), (e["name"], len(small), len(full))
    assert full == pair  # the full-size file is the original image
    links = full_size_links(extras)
    assert [x["content"] for x in links] == [plot["hil_full"], photo["hil_full"]]
    # no files dir: the full-size PNG goes in (self-contained mode)
    extras = []
    attach_plots(extras, m, BUDGET, "connect", kinds=("cdf",))
    assert "hil_full" not in extras[0] and base64.b64decode(extras[0]["content"])[:4] == b"\x89PNG"
