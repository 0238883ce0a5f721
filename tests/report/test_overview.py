"""The overview section: verdict line, one matrix row per device, cells per metric coloured by
verdict and linked to their test, CDFs and the worst frames."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np

from harness.measure import Measurement, check
from harness.profiles.budget import Budget, Limit
from harness.report import ResultRecord, RunReport
from harness.report.extras import KIND_WORST_FRAME, attach_frame, attach_plots
from harness.report.html import log_html, row_cells, set_prefix
from harness.report.overview import overview_html, row_anchor

BUDGET = Budget(
    "default",
    "budgets.yaml",
    (
        Limit("connect_time_s", "p95", "<=", 15.0, "s"),
        Limit("share_latency_ms", "p95", "<=", 300.0, "ms"),
    ),
)
DEVICES = [
    {"serial": "127.0.0.1:5555", "model": "KFTHWI", "profile": "fire-hdx-7-2013", "api_level": 17},
    {"serial": "127.0.0.1:5557", "model": "sdk_gphone64", "profile": "emu-34", "api_level": 34},
]


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.imgs: list[str] = []
        self._in_matrix = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("class") == "hil-matrix":
            self._in_matrix = True
        elif tag == "tr" and a.get("class") == "hil-device-row":
            self.rows.append({"serial": a["data-serial"], "cells": {}})
        elif tag == "th" and self.rows and self._in_matrix and "title" in a:
            self.rows[-1]["title"] = a["title"]
        elif tag == "td" and self.rows and self._in_matrix:
            self.rows[-1]["cells"][a["data-metric"]] = {"class": a.get("class"), "links": []}
            self._cell = self.rows[-1]["cells"][a["data-metric"]]
        elif tag == "a" and self._in_matrix and self.rows:
            self._cell["links"].append(a["href"])
        elif tag == "img":
            self.imgs.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_matrix = False


def _rec(serial, metric, values, test, unc=0.0, checked=True):
    m = Measurement(metric, "s" if metric.endswith("_s") else "ms")
    for v in values:
        m.add(v, uncertainty=unc)
    dev = next(d for d in DEVICES if d["serial"] == serial)
    return ResultRecord.from_measurement(
        m,
        test=f"suites/test_x.py::{test}[{serial}-{dev['profile']}]",
        device=serial,
        model=dev["model"],
        profile=dev["profile"],
        verdict=check(m, BUDGET) if checked else None,
    )


def _run(tmp_path) -> RunReport:
    rr = RunReport(tmp_path / "run-7")
    rr.devices = DEVICES
    extras: list = []
    attach_frame(extras, np.full((40, 60, 3), 128, np.uint8), "worst frame 12", KIND_WORST_FRAME)
    recs = [
        _rec("127.0.0.1:5555", "connect_time_s", [5, 7, 21], "test_connect", unc=0.03),
        _rec("127.0.0.1:5557", "connect_time_s", [4, 5, 6], "test_connect"),
        _rec("127.0.0.1:5557", "share_latency_ms", [120, 150, 180], "test_share"),
    ]
    for r in recs:
        rr.add(
            SimpleNamespace(
                nodeid=r.test,
                when="teardown",
                passed=True,
                failed=False,
                skipped=False,
                duration=0.1,
                hil_device=r.device,
                hil_records=[r.to_dict()],
                extras=extras if r.metric == "share_latency_ms" else [],
            )
        )
    return rr


def test_matrix_one_row_per_device_cells_coloured_and_linked(tmp_path):
    rr = _run(tmp_path)
    page = overview_html(rr)
    assert "id='hil-overview'" in page
    assert "2 devices, 3 tests: 3 passed, 0 failed, 1 budget breach" in page
    p = _Cells()
    p.feed(page)
    assert [r["serial"] for r in p.rows] == ["127.0.0.1:5555", "127.0.0.1:5557"]
    hdx, emu = p.rows
    assert hdx["title"] == "127.0.0.1:5555"  # named by model + profile, serial in the tooltip
    assert "KFTHWI (fire-hdx-7-2013)" in page
    assert hdx["cells"]["connect_time_s"]["class"] == "FAIL"
    assert hdx["cells"]["share_latency_ms"]["class"] == ""  # not measured there
    assert emu["cells"]["connect_time_s"]["class"] == "PASS"
    assert emu["cells"]["share_latency_ms"]["links"] == [
        "#" + row_anchor("suites/test_x.py::test_share[127.0.0.1:5557-emu-34]")
    ]
    assert "p50 7 / p95 19.6 s &plusmn; 0.03" in page and "limit p95 &lt;= 15" in page
    # one CDF per metric, the worst frame in the gallery; every image decodes
    assert len(p.imgs) == 3
    for src in p.imgs:
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_overview_replaces_itself_in_the_summary_and_rows_get_anchors():
    prefix = ["<p>someone else's</p>"]
    set_prefix(prefix, "<section>one</section>", "<table>m</table>")
    set_prefix(prefix, "<section>two</section>")
    assert len(prefix) == 2 and prefix[0].endswith("<section>two</section>")
    assert prefix[1] == "<p>someone else's</p>"
    cells = ['<td class="col-result">Passed</td>', '<td class="col-testId">t</td>']
    row_cells(None, cells, "hil-t-1")
    assert cells[1] == '<td class="col-testId" id="hil-t-1">t</td>'


def test_failed_budget_leads_with_its_verdict_the_traceback_collapsed():
    crash = SimpleNamespace(
        message="harness.errors.BudgetExceeded: budget 'default': connect_time_s p95 = 19.6 s "
        "(limit <= 15 s): OVER BUDGET"
    )
    report = SimpleNamespace(failed=True, longrepr=SimpleNamespace(reprcrash=crash))
    data = ["def test(extras=[{'content': '" + "iVBOR" * 100 + "'}]):\n", "E   BudgetExceeded"]
    log_html(report, data)
    assert len(data) == 1
    assert data[0].index("OVER BUDGET") < data[0].index("<details")
    assert "[500 characters cut]" in data[0] and "iVBORiVBOR" not in data[0]


def test_attach_plots_one_helper_for_every_plot_kind():
    m = Measurement("connect_time_s", "s")
    for i, v in enumerate([5.0, 7.0, 8.0]):
        m.add(v, t=float(i))
    extras: list = []
    attach_plots(extras, m, BUDGET, "connect", kinds=("cdf", "hist", "series"))
    assert [e["name"] for e in extras] == [
        "connect_time_s CDF",
        "connect_time_s histogram",
        "connect_time_s over time",
    ]
    assert all(base64.b64decode(e["content"])[:4] == b"\x89PNG" for e in extras)
    attach_plots(extras, Measurement("x", "s"), BUDGET, "none")  # no samples: no plot
    assert len(extras) == 3
