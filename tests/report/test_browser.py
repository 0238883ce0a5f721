"""report.html and trend.html opened in headless Chromium (selenium 4 + the Debian chromedriver):
no console errors, every image decodes, the overview's matrix has one row per device with the
expected cells, the traceback of a failed budget is collapsed under its verdict, and in
trend.html a planted regression is flagged while an unchanged series is not and a starved run
says "not comparable"."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.measure import Measurement
from harness.report import ResultRecord
from harness.report.chromium import INSTALL_HINT, PAGE_TIMEOUT_S, executables, headless_chromium
from harness.report.conditions import rate_health
from harness.report.history import History


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium driven by chromedriver (both stopped at teardown, by PID)."""
    if executables() is None:
        pytest.skip(f"no Chromium: {INSTALL_HINT}")
    pytest.importorskip("selenium.webdriver", reason="pip install -e '.[test]'")
    profile = tmp_path / "chromium-profile"  # fresh, removed with tmp_path
    try:
        with headless_chromium(profile, console_log=True) as driver:
            yield driver
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver, path: Path, ready_js: str) -> list[dict]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.execute_script(ready_js))
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.execute_script(
            "return [...document.images].every(i => !i.getAttribute('src') || i.complete)"
        )
    )
    return driver.get_log("browser")


def _broken_images(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.images].filter(i => i.getAttribute('src'))"
        ".filter(i => !(i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 80))"
    )


def _image_count(driver) -> int:
    return driver.execute_script(
        "return [...document.images].filter(i => i.getAttribute('src')).length"
    )


INNER = textwrap.dedent(
    """
    import numpy as np
    import pytest
    from harness.report.extras import KIND_WORST_FRAME, attach_frame, attach_plots

    @pytest.mark.budget("connect_time_s")
    def test_connect(measure, budget, extras, hil_device):
        slow = hil_device.profile == "android-emulator-api34"
        m = measure("connect_time_s", "s")
        for v in [5.0, 7.0, 21.0] if slow else [5.0, 6.0, 7.0]:
            m.add(v, uncertainty=0.03)
        attach_plots(extras, m, budget, "connect time")
        frame = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
        attach_frame(extras, frame, f"worst frame of {hil_device.serial}", KIND_WORST_FRAME)
        measure.check(m)

    def test_share(measure, hil_device):
        m = measure("share_latency_ms", "ms")
        for v in range(100, 130):
            m.add(float(v), uncertainty=4.0)
    """
)


def test_report_html_in_chromium(browser, pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_inner=INNER)
    reports = tmp_path / "reports"
    result = pytester.runpytest_subprocess(
        "--twin",
        "fire-hdx-7-2013",
        "--twin",
        "android-emulator-api34",
        "--hil-reports",
        str(reports),
        "-p",
        "no:cacheprovider",
        timeout=180,
    )
    result.assert_outcomes(passed=3, failed=1)
    (run,) = [p for p in reports.iterdir() if p.is_dir()]
    devices = {d["serial"]: d for d in json.loads((run / "devices.json").read_text())}
    logs = _open(
        browser,
        run / "report.html",
        "return document.querySelectorAll('#results-table tbody.results-table-row').length >= 4",
    )
    assert [e for e in logs if e["level"] == "SEVERE"] == []
    assert _broken_images(browser) == [] and _image_count(browser) >= 4
    # the overview is the page's first element; one matrix row per device, expected cells
    assert browser.execute_script("return document.body.firstElementChild.id") == "hil-overview"
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#hil-overview tr.hil-device-row')].map(r => ({"
        "serial: r.dataset.serial, name: r.querySelector('th').textContent,"
        "tip: r.querySelector('th').title, cells: Object.fromEntries([...r.querySelectorAll('td')]"
        ".map(c => [c.dataset.metric, {cls: c.className, href: c.querySelector('a')?.getAttribute('href')}]))}))"
    )
    assert sorted(r["serial"] for r in rows) == sorted(devices)
    by_profile = {devices[r["serial"]]["profile"]: r for r in rows}
    hdx, emu = by_profile["fire-hdx-7-2013"], by_profile["android-emulator-api34"]
    assert hdx["name"] == "KFTHWI (fire-hdx-7-2013)" and hdx["tip"] in devices
    assert hdx["cells"]["connect_time_s"]["cls"] == "PASS"
    assert emu["cells"]["connect_time_s"]["cls"] == "FAIL"
    assert hdx["cells"]["share_latency_ms"]["cls"] == "RECORDED"
    for row in rows:  # every cell links to its test's row in pytest-html's table
        for cell in row["cells"].values():
            target = browser.execute_script(
                "const e = document.getElementById(arguments[0]); return e && e.textContent",
                cell["href"][1:],
            )
            assert target and "test_inner.py::test_" in target
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#hil-overview img.hil-cdf').length"
        )
        == 2
    )
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#hil-overview .hil-gallery img').length"
        )
        == 2
    )
    verdict = browser.execute_script(
        "return document.querySelector('#hil-overview .hil-verdict').textContent"
    )
    assert verdict.startswith("2 devices, 4 tests: 3 passed, 1 failed, 1 budget breach")
    # the failed budget: its verdict line first, the traceback collapsed
    failed = browser.execute_script(
        "const b = document.querySelector('tbody.failed');"
        "return {verdict: b.querySelector('.hil-verdict-line').textContent,"
        "open: b.querySelector('details.hil-traceback').open,"
        "leads: !!(b.querySelector('.hil-verdict-line').compareDocumentPosition("
        "b.querySelector('.hil-media img')) & Node.DOCUMENT_POSITION_FOLLOWING)}"
    )
    assert "OVER BUDGET" in failed["verdict"] and failed["open"] is False
    assert failed["leads"]  # the verdict line above the plots and frames
    # the rows' images are not in pytest-html's JSON; a passed row shows its own when opened
    blob = browser.execute_script(
        "return document.getElementById('data-container').dataset.jsonblob"
    )
    assert "base64" not in blob and "hil-media" in blob
    passed = "tbody.passed:has(.hil-media)"
    assert (
        browser.execute_script(
            f"return document.querySelectorAll('{passed} .hil-media img').length"
        )
        == 0
    )
    browser.execute_script(f"document.querySelector('{passed} td.col-result').click()")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, PAGE_TIMEOUT_S).until(
        lambda d: d.execute_script(
            f"const i = [...document.querySelectorAll('{passed} .hil-media img')];"
            "return i.length >= 3 && i.every(x => x.complete)"
        )
    )
    assert _broken_images(browser) == []


def _records(values, series: str, meta: dict | None = None):
    m = Measurement("share_latency_ms", "ms", meta=meta or {})
    for v in values:
        m.add(float(v), uncertainty=2.0)
    return ResultRecord.from_measurement(
        m,
        test=f"suites/test_media.py::test_{series}[127.0.0.1:5555-fire-hdx-7-2013]",
        device="127.0.0.1:5555",
        model="KFTHWI",
        profile="fire-hdx-7-2013",
    )


def test_trend_html_in_chromium_flags_the_planted_regression_only(browser, tmp_path):
    rng = np.random.default_rng(11)
    with History(tmp_path / "history.sqlite") as h:
        for k in range(7):
            last = k == 6
            # +30 % in the last two runs: the first suspected, the second confirms it
            planted = 120 * rng.lognormal(0, 0.1, 30) * (1.3 if k >= 5 else 1.0)
            # +30 % in the last run only: suspected, not (yet) a regression
            oneoff = 120 * rng.lognormal(0, 0.1, 30) * (1.3 if last else 1.0)
            unchanged = 120 * rng.lognormal(0, 0.1, 30)
            # a third series whose last run the host starved: a third of its frames, twice
            # as slow; not judged ("not comparable"), never flagged
            starved = 120 * rng.lognormal(0, 0.1, 30) * (2.0 if last else 1.0)
            health = rate_health(20 if last else 60, 15.0, 4.0, "share frames")
            h.append_run(
                f"run-{k}",
                [
                    _records(planted, "planted"),
                    _records(oneoff, "oneoff"),
                    _records(unchanged, "unchanged"),
                    _records(starved, "starved", health),
                ],
                t=1000.0 + k,
            )
    out = tmp_path / "trend.html"
    assert main(["report", "trend", "--reports", str(tmp_path), "-o", str(out)]) == 0
    logs = _open(browser, out, "return !!document.getElementById('hil-trend')")
    assert [e for e in logs if e["level"] == "SEVERE"] == []
    # four series' sparklines, and the grid's one cell (one device x one metric) shows the
    # worst
    assert _broken_images(browser) == [] and _image_count(browser) == 5
    grid = browser.execute_script(
        "return [...document.querySelectorAll('tr.hil-grid-row')].map(r => ({device: "
        "r.dataset.device, cells: [...r.querySelectorAll('td.hil-grid-cell')].map(c => "
        "({metric: c.dataset.metric, verdict: c.dataset.verdict, target: document."
        "getElementById(c.querySelector('a').getAttribute('href').slice(1))?.children[2]"
        ".textContent}))}))"
    )
    assert grid == [
        {
            "device": "KFTHWI/fire-hdx-7-2013",
            "cells": [
                {
                    "metric": "share_latency_ms",
                    "verdict": "REGRESSION",
                    "target": "test_media.py::test_planted",
                }
            ],
        }
    ]
    flags = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('tr.hil-trend-row')]"
        ".map(r => [r.children[2].textContent, r.querySelector('.hil-flag').textContent]))"
    )
    assert flags.pop("test_media.py::test_starved").startswith(
        "not comparable: starved (health 33% < 80%: 20 of 60 share frames"
    )
    assert flags == {
        "test_media.py::test_planted": "REGRESSION",
        "test_media.py::test_oneoff": "suspected (the next run confirms it or not)",
        "test_media.py::test_unchanged": "ok",
    }
    rows = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('tr.hil-trend-row')]"
        ".map(r => [r.children[2].textContent, getComputedStyle(r.children[0]).backgroundColor]))"
    )
    red, orange = "rgb(242, 188, 188)", "rgb(253, 227, 200)"
    assert rows["test_media.py::test_planted"] == red
    assert rows["test_media.py::test_oneoff"] == orange
