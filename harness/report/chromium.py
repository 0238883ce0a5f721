"""Headless Chromium for checking the HTML reports in a real browser: tests/report/test_browser.py,
benchmarks/report_bench.py's load times and regression_bench.py's screenshots (docs/report.png).

The OS's chromium and chromedriver only (`Service` is given the path: Selenium Manager never
downloads a driver); chromedriver is stopped by its own PID when the session ends, whatever
`quit()` did. The caller owns the profile dir (fresh per session) and removes it.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = "apt-get install chromium chromium-driver"
PAGE_TIMEOUT_S = 30.0
DRIVER_STOP_S = 5.0  # after SIGKILL
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def executables() -> tuple[str, str] | None:
    """(chromium, chromedriver), or None when either is not installed (INSTALL_HINT)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@contextmanager
def headless_chromium(
    profile: Path,
    *,
    window: tuple[int, int] = (1400, 1000),
    page_timeout_s: float = PAGE_TIMEOUT_S,
    console_log: bool = False,
) -> Iterator[object]:
    """A selenium WebDriver of a headless Chromium with its profile in `profile`; chromedriver
    stopped by PID on exit. console_log: keep the browser's console ("browser" log).

    Raises:
        RuntimeError: Chromium or chromedriver not installed (with INSTALL_HINT).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = executables()
    if found is None:
        raise RuntimeError(f"no Chromium or chromedriver: {INSTALL_HINT}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in (*CHROMIUM_ARGS, f"--window-size={window[0]},{window[1]}"):
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={profile}")
    if console_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=found[1])
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        driver.set_page_load_timeout(page_timeout_s)
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            proc = getattr(service, "process", None)
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(DRIVER_STOP_S)
