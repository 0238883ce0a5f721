"""Report size and speed at 50, 200 and 500 synthetic tests on 20 devices, against pytest-html's
default (the peer, measured in the same run): `--html FILE --self-contained-html`, full-size
PNGs inside its JSON, written once at the end (`--peer-rewrite`: rewritten after every test,
pytest-html's `generate_report_on_test`, quadratic).

    .venv/bin/python benchmarks/report_bench.py [--tests 50,200,500] [--peer-max 500] [--loads 5]
                                                [--peer-rewrite] [--json OUT]

Each size runs a real pytest (one twin for the plugin to start; 19 more device entries are
added to the run so that rows spread over 20 devices; the tests never touch a device). Every
test measures a connect time (5 samples) and a share latency (30 samples) through the `measure`
fixture, attaches three plots and one sent|received worst-frame pair (1280x720 each) through
harness.report.extras, and 1 in 10 breaks its budget. Figures: pytest wall time, report.html
size, the images beside it, and Chromium's load time: headless, selenium + chromedriver, a fresh
profile per page, the median of --loads loads of navigation start -> load event end and
navigation start -> "rendered" (every test's row in the table and every image in the page
decoded: an observer installed before the page's own scripts checks on each animation frame).
Also the regression detector's false-alarm and detection rates on simulated series (1,000
each) by samples per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.report.chromium import INSTALL_HINT, executables, headless_chromium  # noqa: E402
from harness.report.regression import BASELINE_RUNS, baseline_p95, compare  # noqa: E402

DEVICES = 20
LOADS = 5
RUN_TIMEOUT_S = 3600
PAGE_TIMEOUT_S = 180
# installed before the page's scripts: notes when every row is in the table and every image
# of the page is decoded, checked on each animation frame
RENDERED_JS = """(function(){var want=WANT;function tick(){
var rows=document.querySelectorAll('#results-table tbody.results-table-row').length;
if(rows>=want&&[...document.images].every(function(i){return !i.getAttribute('src')||i.complete})){
window.__hilRendered=performance.now();return;}requestAnimationFrame(tick);}
requestAnimationFrame(tick);})();"""
CONFTEST = textwrap.dedent(
    """
    import dataclasses
    import pytest
    from harness.plugin.state import PLUGIN_STATE

    @pytest.hookimpl(trylast=True)
    def pytest_configure(config):
        state = config.stash[PLUGIN_STATE]
        if state.is_controller and state.devices:
            real = state.devices[0]
            state.devices += [
                dataclasses.replace(real, serial=f"bench-{k:02d}", model=f"Model{k:02d}",
                                    profile=None, twin_control=None, console_port=None)
                for k in range(1, DEVICES)
            ]
            state.report.devices = [d.to_dict() for d in state.devices]

    def pytest_collection_modifyitems(config, items):
        keep = TOTAL
        if len(items) > keep:
            config.hook.pytest_deselected(items=items[keep:])
            del items[keep:]
    """
).replace("DEVICES", str(DEVICES))
TESTS = textwrap.dedent(
    """
    import numpy as np
    import pytest
    from harness.report.extras import KIND_WORST_FRAME, attach_frame, attach_plots
    from harness.report.plots import side_by_side_png

    import cv2

    RNG = np.random.default_rng(5)  # a screen-like frame: smooth, some texture (PNG ~190 KB)
    FRAME = cv2.GaussianBlur(
        np.clip(RNG.normal(128, 50, (720, 1280, 3)), 0, 255).astype(np.uint8), (9, 9), 3
    )

    @pytest.mark.parametrize("k", range(PER_DEVICE))
    def test_session(k, measure, budget, extras, hil_device):
        idx = int(hil_device.serial.split("-")[-1]) if hil_device.serial.startswith("bench-") else 0
        rng = np.random.default_rng(k * 100 + idx)
        slow = 3.0 if (k * 20 + idx) % 10 == 9 else 1.0  # 1 in 10 over budget
        connect = measure("connect_time_s", "s")
        for v in rng.lognormal(1.6, 0.2, 5) * slow:
            connect.add(float(v), uncertainty=0.03)
        share = measure("share_latency_ms", "ms")
        for v in rng.lognormal(4.8, 0.2, 30):
            share.add(float(v), uncertainty=4.0)
        attach_plots(extras, connect, budget, "connect time")
        attach_plots(extras, share, budget, "share latency", kinds=("cdf",))
        attach_frame(extras, side_by_side_png(FRAME, FRAME, f"frame {k}: sent | received"),
                     f"worst frame {k}", KIND_WORST_FRAME)
        measure.check(share, raise_on_fail=False)
        measure.check(connect)
    """
)


def _run(tests: int, peer: bool, work: Path, peer_rewrite: bool = False) -> dict:
    d = work / f"{'peer' if peer else 'ours'}-{tests}"
    d.mkdir(parents=True)
    (d / "conftest.py").write_text(CONFTEST.replace("TOTAL", str(tests)))
    per_device = -(-tests // DEVICES)  # the extra ones deselected: `tests` tests in all
    (d / "test_bench.py").write_text(TESTS.replace("PER_DEVICE", str(per_device)))
    reports = d / "reports"
    args = [sys.executable, "-m", "pytest", "--twin", "android-emulator-api34"]
    args += ["--hil-reports", str(reports), "-q", "-p", "no:cacheprovider", "test_bench.py"]
    html = None
    if peer:
        html = d / "peer.html"
        args += ["--html", str(html), "--self-contained-html"]
        args += ["-o", f"generate_report_on_test={'true' if peer_rewrite else 'false'}"]
    t = time.perf_counter()
    proc = subprocess.run(
        args, cwd=d, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    wall = time.perf_counter() - t
    run = next(p for p in reports.iterdir() if p.is_dir())
    html = html or run / "report.html"
    images = sum(f.stat().st_size for f in (run / "images").glob("*")) if not peer else 0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return {
        "tests": tests,
        "mode": ("pytest-html default (peer)" if peer else "mayday-hil")
        + (", rewritten per test" if peer and peer_rewrite else ""),
        "wall_s": round(wall, 1),
        "report_mb": round(html.stat().st_size / 1e6, 2),
        "images_beside_mb": round(images / 1e6, 2),
        "outcome": tail,
        "html": str(html),
    }


def _load_times(pages: list[dict], loads: int = LOADS) -> None:
    """Chromium's load and rendered times of each page (median of `loads`), in place."""
    if executables() is None:
        print(f"no Chromium ({INSTALL_HINT}): load times skipped")
        return
    from selenium.common.exceptions import TimeoutException

    for page in pages:
        profile = Path(tempfile.mkdtemp(prefix="hil-bench-chromium-"))  # fresh per page
        try:
            with headless_chromium(profile, page_timeout_s=PAGE_TIMEOUT_S) as driver:
                _time_loads(driver, page, loads)
        except TimeoutException:
            page["chromium_rendered_s"] = f"> {PAGE_TIMEOUT_S}"
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def _time_loads(driver, page: dict, loads: int) -> None:
    """Load `page` `loads` times in one browser; medians (and the range) into `page`."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": RENDERED_JS.replace("WANT", str(int(page["tests"])))},
    )
    load, rendered = [], []
    for _ in range(loads):
        driver.get("about:blank")
        driver.get(Path(page["html"]).as_uri())
        WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.05).until(
            lambda d: d.execute_script("return window.__hilRendered || 0")
        )
        t = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return [n.loadEventEnd, window.__hilRendered]"
        )
        load.append(t[0] / 1000)
        rendered.append(t[1] / 1000)
    page["chromium_load_s"] = round(statistics.median(load), 2)
    page["chromium_rendered_s"] = round(statistics.median(rendered), 2)
    page["chromium_rendered_range_s"] = [round(min(rendered), 2), round(max(rendered), 2)]


SIM_SAMPLES = (3, 5, 8, 10, 15, 20, 30)
SIM_SIGMAS = (0.1, 0.25)  # log-sd of a series' samples: 0.1 a steady one, 0.25 a noisy one


def _detector(runs: int = 1000, seed: int = 0) -> list[dict]:
    """The detector's rule on simulated series (lognormal samples, baseline = BASELINE_RUNS
    runs of the same size, its p95 the median of theirs), 1,000 trials per case: an unchanged
    run flagged (suspected) and confirmed by a second unchanged one (a false alarm); a planted
    +30 % (every sample 1.3x) flagged at once (suspected) and confirmed by the next planted run."""
    rng = np.random.default_rng(seed)
    out = []
    for sigma in SIM_SIGMAS:
        for n in SIM_SAMPLES:
            sus = fa = seen = det = 0
            for _ in range(runs):
                base_runs = [120 * rng.lognormal(0, sigma, n) for _ in range(BASELINE_RUNS)]
                base, bp95 = np.concatenate(base_runs), baseline_p95(base_runs)

                def flagged(scale: float, sigma=sigma, n=n, base=base, bp95=bp95) -> bool:
                    today = 120 * scale * rng.lognormal(0, sigma, n)
                    return compare(today, base, uncertainty=4.0, base_p95=bp95)[3]

                first = flagged(1.0)
                sus += first
                fa += first and flagged(1.0)
                first = flagged(1.3)
                seen += first
                det += first and flagged(1.3)
            out.append(
                {
                    "sigma_log": sigma,
                    "n": n,
                    "suspected": sus,
                    "false_alarms": fa,
                    "flagged_at_once": seen,
                    "detected": det,
                    "of": runs,
                }
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", default="50,200,500")
    ap.add_argument("--peer-max", type=int, default=500, help="largest size the peer runs")
    ap.add_argument("--peer-rewrite", action="store_true", help="peer rewrites after every test")
    ap.add_argument("--loads", type=int, default=LOADS, help="Chromium loads per page (median)")
    ap.add_argument("--no-detector", action="store_true", help="skip the detector simulation")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hil-report-bench-"))
    rows = []
    try:
        for n in [int(x) for x in args.tests.split(",")]:
            for peer in (False, True):
                if peer and n > args.peer_max:
                    continue
                rows.append(_run(n, peer, work, args.peer_rewrite))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "html"}), flush=True)
        _load_times(rows, max(1, args.loads))
        print(
            "\n| tests | mode | pytest wall s | report.html MB | images beside MB "
            f"| Chromium load event s | Chromium rendered s (median of {args.loads}, range) |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            rng_s = r.get("chromium_rendered_range_s")
            print(
                f"| {r['tests']} | {r['mode']} | {r['wall_s']} | {r['report_mb']} | "
                f"{r['images_beside_mb']} | {r.get('chromium_load_s', '-')} | "
                f"{r.get('chromium_rendered_s', '-')}"
                + (f" ({rng_s[0]}-{rng_s[1]})" if rng_s else "")
                + " |"
            )
        det = [] if args.no_detector else _detector()
        if det:
            print(f"\nregression detector (simulated, baseline = {BASELINE_RUNS} runs):")
        for d in det:
            print(
                f"  sigma(log) {d['sigma_log']}, {d['n']} samples/run: unchanged suspected "
                f"{d['suspected']}/{d['of']}, false alarms (confirmed) {d['false_alarms']}/"
                f"{d['of']}; +30 % suspected at once {d['flagged_at_once']}/{d['of']}, "
                f"confirmed by the next run {d['detected']}/{d['of']}"
            )
        if args.json:
            Path(args.json).write_text(json.dumps({"runs": rows, "detector": det}, indent=2))
    finally:
        if os.environ.get("HIL_BENCH_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
