"""The overview at the top of report.html (`id="hil-overview"`): the run's verdict in one line,
skips by reason per device, the device x metric matrix against the budget, one CDF per metric
with every device overlaid, and the worst frames."""

from __future__ import annotations

import base64
import hashlib
import html
from collections import defaultdict

from harness.report.collector import RunReport, readable_test_id
from harness.report.images import thumbnail
from harness.report.record import DEGRADED, FAIL, INCONCLUSIVE, PASS, RECORDED, ResultRecord

METRIC_ORDER = (
    "connect_time_s",
    "queue_wait_s",
    "glass_to_glass_ms",
    "share_latency_ms",
    "share_fps",
    "share_ssim",
    "share_freeze_ms",
    "annotation_error_px",
    "annotation_latency_ms",
    "remote_control_ms",
    "mic_to_agent_ms",
)
_RANK = {PASS: 0, RECORDED: 1, DEGRADED: 2, INCONCLUSIVE: 3, FAIL: 4}
MAX_LINES_PER_CELL = 4
STYLE = """
<style>
#hil-overview{font-family:sans-serif;margin:0 0 1.5em 0;padding:.8em 1em;border:1px solid #ccc;
 border-radius:6px;background:#fafafa}
#hil-overview .hil-verdict{font-size:1.15em;font-weight:bold;margin:.2em 0 .4em 0}
#hil-overview .hil-verdict.bad{color:#b00020}#hil-overview .hil-verdict.good{color:#1b5e20}
#hil-overview ul.hil-skips{margin:.2em 0 .8em 1.2em;padding:0;font-size:.9em;color:#444}
#hil-overview table.hil-matrix{border-collapse:collapse;margin:.5em 0 1em 0}
#hil-overview table.hil-matrix th,#hil-overview table.hil-matrix td{border:1px solid #bbb;
 padding:.3em .5em;font-size:.9em;vertical-align:top;text-align:left;color:#222}
#hil-overview td.PASS{background:#dff0d8}#hil-overview td.FAIL{background:#f2bcbc}
#hil-overview td.INCONCLUSIVE{background:#fcf1c7}#hil-overview td.RECORDED{background:#eef}
#hil-overview td.DEGRADED{background:#fde3cf}
#hil-overview td a{color:inherit;text-decoration:none;display:block}
#hil-overview td a:hover{text-decoration:underline}
#hil-overview .hil-limit{color:#555;font-size:.85em}
#hil-overview img.hil-cdf{width:100%;max-width:1200px;display:block;margin:.4em 0}
#hil-overview .hil-gallery{display:flex;flex-wrap:wrap;gap:.6em}
#hil-overview .hil-gallery figure{margin:0;max-width:320px;font-size:.8em}
#hil-overview .hil-gallery img{max-width:320px;display:block}
#hil-overview table.hil-trend{border-collapse:collapse}
#hil-overview table.hil-trend th,#hil-overview table.hil-trend td{border:1px solid #bbb;
 padding:.25em .5em;font-size:.85em;text-align:left;color:#222}
#hil-overview tr.hil-regression td{background:#f2bcbc}#hil-overview tr.hil-suspected td{background:#fde3c8}#hil-overview tr.hil-too-few td.hil-flag,
#hil-overview tr.hil-unclear td.hil-flag{color:#a15c00}
#hil-overview .hil-method{font-size:.85em;color:#444}
</style>
"""
# pytest-html puts the summary prefix below its environment table: move the overview to the top
_TO_TOP = (
    "<script>(function(){var o=document.getElementById('hil-overview');"
    "if(o&&document.body.firstElementChild!==o){document.body.prepend(o);}})();</script>"
)


def row_anchor(nodeid: str) -> str:
    """The HTML id of a test's row in the results table (set by the plugin's row hook)."""
    return "hil-t-" + hashlib.sha1(nodeid.encode()).hexdigest()[:12]


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _metrics(records: list[ResultRecord]) -> list[str]:
    seen = list(dict.fromkeys(r.metric for r in records))
    return [m for m in METRIC_ORDER if m in seen] + sorted(m for m in seen if m not in METRIC_ORDER)


def _devices(rr: RunReport) -> list[str]:
    serials = [d["serial"] for d in rr.devices]
    return serials + sorted({r.device for r in rr.records} - set(serials))


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def cell_line(r: ResultRecord) -> str:
    """ "p50 7.2 / p95 8.1 s +/- 0.03" for one record."""
    if not r.stats:
        return "no samples"
    unc = f" &plusmn; {_fmt(r.uncertainty)}" if r.uncertainty else ""
    return f"p50 {_fmt(r.stat('p50'))} / p95 {_fmt(r.stat('p95'))} {_esc(r.unit)}{unc}"


def _cell(records: list[ResultRecord], rr: RunReport) -> tuple[str, str]:
    """(verdict class, inner HTML) of one matrix cell: one line per record (test), linked."""
    if not records:
        return "", "-"
    worst = max((r.mark for r in records), key=_RANK.__getitem__)
    lines = []
    for r in sorted(records, key=lambda r: (r.network, r.test))[:MAX_LINES_PER_CELL]:
        label = readable_test_id(r.test, r.device, r.profile)
        limits = ", ".join(f"{c['stat']} {html.escape(c['op'])} {c['limit']:g}" for c in r.limits())
        extra = f" [{_esc(r.network)}]" if r.network else ""
        flag = " (interrupted)" if r.interrupted else ""
        lines.append(
            f"<a href='#{row_anchor(r.test)}' title='{_esc(label)}' class='hil-cell-link'>"
            f"<b>{r.mark}</b>{extra}{flag} {cell_line(r)}"
            + (f"<br><span class='hil-limit'>limit {limits}</span>" if limits else "")
            + "</a>"
        )
    more = len(records) - MAX_LINES_PER_CELL
    if more > 0:
        lines.append(f"<span class='hil-limit'>+{more} more</span>")
    return worst, "".join(lines)


def matrix_html(rr: RunReport) -> str:
    """Device x metric: p50 / p95 (+/- uncertainty) against each limit, coloured by verdict."""
    metrics = _metrics(rr.records)
    if not metrics:
        return "<p class='hil-none'>No measurements yet.</p>"
    by = defaultdict(list)
    for r in rr.records:
        by[(r.device, r.metric)].append(r)
    head = "<tr><th>device</th>" + "".join(f"<th>{_esc(m)}</th>" for m in metrics) + "</tr>"
    rows = []
    for serial in _devices(rr):
        first = next((r for r in rr.records if r.device == serial), None)
        name = rr.device_name(serial, first)
        cells = []
        for m in metrics:
            cls, inner = _cell(by.get((serial, m), []), rr)
            cells.append(f"<td class='{cls}' data-metric='{_esc(m)}'>{inner}</td>")
        rows.append(
            f"<tr class='hil-device-row' data-serial='{_esc(serial)}'>"
            f"<th title='{_esc(serial)}'>{_esc(name)}</th>{''.join(cells)}</tr>"
        )
    return f"<table class='hil-matrix'>{head}{''.join(rows)}</table>"


CDF_REDRAW_GROWTH = 1.1  # during the run, a metric's CDF is redrawn when its samples grew 10 %


def cdf_images(
    rr: RunReport, cache: dict | None = None, final: bool = True
) -> list[tuple[str, str]]:
    """(metric, base64 PNG) per metric: every device's samples overlaid, budget lines drawn.

    Samples measured under a network profile are a series of their own (device / network).
    `cache` keeps images drawn before: reused while their inputs are unchanged, or, during the
    run (`final` False), until the metric's samples grew by CDF_REDRAW_GROWTH (drawing every
    CDF after every test would cost O(n) per test, O(n^2) per run).
    """
    from harness.report.plots import cdf_multi_png

    out = []
    for metric in _metrics(rr.records):
        recs = [r for r in rr.records if r.metric == metric and r.samples]
        if not recs:
            continue
        key = (metric, len(recs), sum(len(r.samples) for r in recs))
        if cache is not None and metric in cache:
            old = cache[metric][0]
            if old == key or (not final and key[2] < old[2] * CDF_REDRAW_GROWTH):
                out.append((metric, cache[metric][1]))
                continue
        series: dict[str, list[float]] = {}
        limits: dict[str, float] = {}
        tests_per_device: dict[str, set[str]] = defaultdict(set)
        for r in recs:
            tests_per_device[r.device].add(r.test.split("[")[0])
        for r in recs:
            label = rr.device_name(r.device, r) + (f" / {r.network}" if r.network else "")
            if len(tests_per_device[r.device]) > 1:  # different tests: different conditions
                label += " / " + r.test.split("[")[0].rsplit("::", 1)[-1].removeprefix("test_")
            series.setdefault(label, []).extend(r.samples)
            for c in r.limits():
                limits[f"{c['stat']} {c['op']} {c['limit']:g}"] = float(c["limit"])
        png = cdf_multi_png(series, recs[0].unit, f"{metric}: CDF per device", list(limits.items()))
        b64 = base64.b64encode(thumbnail(png, "plot")[0]).decode("ascii")
        if cache is not None:
            cache[metric] = (key, b64)
        out.append((metric, b64))
    return out


def overview_html(
    rr: RunReport, cache: dict | None = None, history: str = "", final: bool = True
) -> str:
    """The whole overview section (`history`: the trend section, at the end of the run;
    `final` False: during the run, CDFs redrawn only as they grow, see cdf_images)."""
    c = rr.counts()
    bad = c["failed"] or c["errors"] or c["budget_breaches"] or c["interrupted"]
    skips = "".join(
        f"<li>skipped on <span title='{_esc(d)}'>{_esc(rr.device_name(d))}</span>: "
        f"{_esc(reason)} ({n} test{'s' if n != 1 else ''})</li>"
        for d, reason, n in rr.skips_by_reason()
    )
    cdfs = "".join(
        f"<h4>{_esc(m)}</h4><img class='hil-cdf' alt='{_esc(m)} CDF' "
        f"src='data:image/png;base64,{b64}'>"
        for m, b64 in cdf_images(rr, cache, final)
    )
    gallery = "".join(
        f"<figure><a href='{_esc(f['full']) or '#' + row_anchor(f['test'])}'>"
        f"<img alt='{_esc(f['name'])}' src='data:{f['mime']};base64,{f['b64']}'></a>"
        f"<figcaption><a href='#{row_anchor(f['test'])}'>{_esc(f['name'])}</a><br>"
        f"{_esc(readable_test_id(f['test']))}</figcaption></figure>"
        for f in rr.worst_frames
    )
    return (
        f"{STYLE}<section id='hil-overview'><h2>mayday-hil overview: run {_esc(rr.run_id)}</h2>"
        f"<p class='hil-verdict {'bad' if bad else 'good'}'>{_esc(rr.verdict_line())}</p>"
        + (f"<ul class='hil-skips'>{skips}</ul>" if skips else "")
        + f"<h3>Device x metric (budget verdicts)</h3>{matrix_html(rr)}"
        + (f"<h3>Distributions</h3>{cdfs}" if cdfs else "")
        + (f"<h3>Worst frames</h3><div class='hil-gallery'>{gallery}</div>" if gallery else "")
        + history
        + f"</section>{_TO_TOP}"
    )
