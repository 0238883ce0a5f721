"""The rows' images of a self-contained report.html are kept out of pytest-html's JSON
(harness.report.html.LazyMedia), and the overview's history keeps only flagged series open
past OVERVIEW_ROWS (what Chromium would otherwise lay out at load; benchmarks/report_bench.py)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
from pytest_html import extras as html_extras

from harness.measure import Measurement
from harness.report import ResultRecord
from harness.report.history import History
from harness.report.html import LazyMedia
from harness.report.trend import OVERVIEW_ROWS, trend_page, trend_section

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode("ascii")


def test_images_leave_the_extras_for_one_placeholder_where_the_first_was():
    media = LazyMedia()
    verdict = html_extras.html("<div class='hil-verdict-line'>over budget</div>")
    plot = html_extras.png(PNG, "connect_time_s CDF")
    plot["hil_full"] = "images/cdf.png"
    frame = html_extras.image(PNG, "worst frame </script><!-- x", "image/jpeg", "jpg")
    url_image = html_extras.image("https://example.invalid/a.png", "remote")
    text = html_extras.text("log", name="logcat")
    out = media.take([verdict, plot, text, frame, url_image])
    assert out[0] is verdict and out[2] is text and out[3] is url_image and len(out) == 4
    assert out[1]["format_type"] == "html" and "data-hil-media='0'" in out[1]["content"]
    page = media.html()
    (block,) = re.findall(r"<script type='application/json' id='hil-media-0'>(.*?)</script>", page)
    assert "<" not in block  # nothing in the data can end the script element
    images = json.loads(block)
    assert images == [
        {
            "name": "connect_time_s CDF",
            "src": f"data:image/png;base64,{PNG}",
            "full": "images/cdf.png",
        },
        {"name": "worst frame </script><!-- x", "src": f"data:image/jpeg;base64,{PNG}", "full": ""},
    ]
    assert "MutationObserver" in page
    # a test with no images keeps its extras; the next one gets the next block
    assert media.take([text]) == [text]
    assert "data-hil-media='1'" in media.take([plot])[0]["content"]
    assert LazyMedia().html() == ""


def _record(values, name: str) -> ResultRecord:
    m = Measurement("share_latency_ms", "ms")
    for v in values:
        m.add(float(v), uncertainty=2.0)
    return ResultRecord.from_measurement(
        m, test=f"suites/t.py::test_{name}", device="SER1", model="KFTHWI", profile="p"
    )


def test_the_overview_history_keeps_only_flagged_series_open(tmp_path):
    rng = np.random.default_rng(3)
    names = [f"s{k:02d}" for k in range(OVERVIEW_ROWS + 5)]
    with History(tmp_path / "history.sqlite") as h:
        for run in range(6):
            recs = []
            for name in names:
                slow = 1.3 if run == 5 and name == "s07" else 1.0
                recs.append(_record(120 * slow * rng.lognormal(0, 0.05, 30), name))
            h.append_run(f"run-{run}", recs, t=1000.0 + run)
        section = trend_section(h, "run-5")
        page = trend_page(h)
    opened, _, hidden = section.partition("<details class='hil-trend-more'>")
    assert opened.count("hil-trend-row") == 1 and "test_s07" in opened and "REGRESSION" in opened
    assert hidden.count("hil-trend-row") == len(names) - 1
    assert f"{len(names) - 1} more series" in hidden and "REGRESSION" not in hidden
    assert "<details" not in page and page.count("hil-trend-row") == len(names)  # trend.html
