"""Per-test extras of the HTML report: a measurement's plots, worst frames, the detection frame,
the failure screenshot and logcat tail.

Suites call `attach_plots` for a measurement and `attach_frame` for a frame; the plugin calls
`failure_extras` for a failed test. Each image extra is tagged (`hil_kind`) so that the overview
can gather the worst frames of the run.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from harness.measure import Measurement
from harness.profiles import Budget

log = logging.getLogger(__name__)

FAILURE_SHELL_TIMEOUT_S = 5.0
LOGCAT_TAIL_LINES = 200
PLOT_KINDS = ("cdf", "hist", "series")
# image kinds the overview gathers
KIND_PLOT, KIND_WORST_FRAME, KIND_DETECTION, KIND_SCREEN = (
    "plot",
    "worst_frame",
    "detection_frame",
    "screenshot",
)


def limit_lines(budget: Budget | None, metric: str) -> list[tuple[str, float]]:
    """The budget's limits of a metric as plot lines: ("p95 <= 15", 15.0)."""
    if budget is None:
        return []
    return [(f"{lim.stat} {lim.op} {lim.value:g}", lim.value) for lim in budget.for_metric(metric)]


def image_extra(png: bytes, name: str, kind: str = KIND_PLOT) -> dict[str, Any]:
    """A pytest-html image extra from PNG bytes, tagged with its kind.

    With a files directory configured (harness.report.images), the extra is a compressed
    thumbnail and carries `hil_full` (the full-size file beside the report); otherwise the
    full-size PNG itself.
    """
    from pytest_html import extras as html

    from harness.report import images

    full = images.save_full_size(png, name)
    if full is None:
        extra = html.png(base64.b64encode(png).decode("ascii"), name)
    else:
        small, mime, ext = images.thumbnail(png, kind)
        extra = html.image(base64.b64encode(small).decode("ascii"), name, mime, ext)
        extra["hil_full"] = full
    extra["hil_kind"] = kind
    return extra


def full_size_links(extras: list) -> list[dict[str, Any]]:
    """URL extras ("full size: NAME") for the image extras that have a full-size file."""
    from pytest_html import extras as html

    return [
        html.url(e["hil_full"], name=f"full size: {e.get('name') or 'image'}")
        for e in extras
        if isinstance(e, dict) and e.get("hil_full")
    ]


def attach_plots(
    extras: list,
    measurement: Measurement,
    budget: Budget | None,
    title: str,
    kinds: Iterable[str] = ("cdf", "hist"),
    *,
    beside: Measurement | None = None,
    shaded: Iterable[tuple[float, float, str]] = (),
) -> None:
    """Attach a measurement's plots with its budget lines: "cdf", "hist" (distribution) and
    "series" (value over the samples' host time). A measurement with no samples attaches none.

    Args:
        beside: for "series", another measurement over the same time drawn in a panel above
            (e.g. share_ssim per frame above share_ssimulacra2 per second).
        shaded: for "series", (start s, duration s, kind) of stretches to shade (blank,
            loading, hidden by the app: harness.vision.stretches).

    Raises:
        ValueError: an unknown plot kind.
    """
    from harness.report.plots import cdf_png, hist_png, quality_series_png, series_png

    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in PLOT_KINDS]
    if unknown:
        raise ValueError(f"unknown plot kind {unknown[0]!r}; use {', '.join(PLOT_KINDS)}")
    values = measurement.values
    if not values:
        return
    lines = limit_lines(budget, measurement.name)
    unit = measurement.unit
    for kind in kinds:
        if kind == "cdf":
            png = cdf_png(values, unit, f"{title}: CDF", lines)
            name = f"{measurement.name} CDF"
        elif kind == "hist":
            png = hist_png(values, unit, f"{title}: histogram", lines)
            name = f"{measurement.name} histogram"
        elif beside is not None or shaded:
            other = beside if beside is not None and beside.values else measurement
            png = quality_series_png(
                (_times(other), other.values, other.name, limit_lines(budget, other.name)),
                (_times(measurement), values, measurement.name, lines),
                f"{title}: over time",
                list(shaded),
            )
            name = f"{measurement.name} and {other.name} over time"
        else:
            png = series_png(_times(measurement), values, unit, f"{title}: over time", lines)
            name = f"{measurement.name} over time"
        extras.append(image_extra(png, name, KIND_PLOT))


def _times(m: Measurement) -> list[float]:
    return [s.t if s.t is not None else float(i) for i, s in enumerate(m.samples)]


def attach_frame(
    extras: list,
    image: np.ndarray | bytes,
    caption: str,
    kind: str = KIND_WORST_FRAME,
) -> None:
    """Attach a frame (BGR array, or PNG bytes of a composed image) as a thumbnail: a worst frame
    (`KIND_WORST_FRAME`, gathered in the overview's gallery) or the frame where the agent was
    detected (`KIND_DETECTION`)."""
    from harness.report.plots import thumbnail_png

    png = image if isinstance(image, bytes) else thumbnail_png(image)
    extras.append(image_extra(png, caption, kind))


def failure_extras(dev: Any) -> list[dict[str, Any]]:
    """Screenshot and logcat tail of a device for a failed test; never raises, bounded."""
    from pytest_html import extras as html

    out: list[dict[str, Any]] = []
    try:
        png = dev.screenshot_png(timeout_s=FAILURE_SHELL_TIMEOUT_S)
        out.append(image_extra(png, f"screen of {dev.serial}", KIND_SCREEN))
    except Exception as e:  # noqa: BLE001 -- a failure report collects what it can: it never raises
        out.append(html.text(f"no screenshot: {e}", name="screenshot"))
    try:
        text = dev.shell("logcat -d -v time", timeout_s=FAILURE_SHELL_TIMEOUT_S).stdout
        tail = "\n".join(text.splitlines()[-LOGCAT_TAIL_LINES:])
        out.append(html.text(tail or "(empty)", name=f"logcat {dev.serial}"))
    except Exception as e:  # noqa: BLE001 -- a failure report collects what it can: it never raises
        out.append(html.text(f"no logcat: {e}", name="logcat"))
    return out
