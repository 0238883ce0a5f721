"""Trends and regressions as HTML: a section of the overview, and trend.html (`hil report trend`),
built from reports/history.sqlite alone."""

from __future__ import annotations

import base64
import html
import math
import time

from harness.report.history import (
    ALPHA,
    BASELINE_RUNS,
    MIN_DELTA,
    MIN_P95_CHANGE,
    MIN_SAMPLES,
    TREND_RUNS,
    Comparison,
    History,
    regressions,
    series_label,
    trend,
)
from harness.report.images import thumbnail
from harness.report.plots import sparkline_png

STYLE = """
<style>
body{font-family:sans-serif;margin:1.2em;color:#222}
table.hil-trend{border-collapse:collapse;margin:.5em 0 1em 0}
table.hil-trend th,table.hil-trend td{border:1px solid #bbb;padding:.25em .5em;font-size:.88em;
 text-align:left;vertical-align:middle;color:#222}
tr.hil-regression td{background:#f2bcbc}tr.hil-regression td.hil-flag{font-weight:bold;color:#b00020}
tr.hil-unchanged td.hil-flag{color:#1b5e20}
tr.hil-too-few td.hil-flag,tr.hil-unclear td.hil-flag{color:#a15c00}
.hil-method{font-size:.85em;color:#444;max-width:70em}
</style>
"""


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _num(x: float) -> str:
    return (
        "-" if x is None or not math.isfinite(x) else (f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}")
    )


def method_note(baseline_run: str | None = None) -> str:
    base = (
        f"run {baseline_run}"
        if baseline_run
        else f"the last {BASELINE_RUNS} runs of the same test, device, metric, network and app build"
    )
    return (
        f"<p class='hil-method'>Regression: today's samples against the baseline ({_esc(base)}) "
        f"with a one-sided Mann-Whitney U test (ranks only: latency samples are skewed, few and "
        f"have outliers; no normality assumed). Flagged when p &lt; {ALPHA:g}, Cliff's delta "
        f"&ge; {MIN_DELTA:g} (today worse in most pairs) and p95 worse by more than "
        f"{MIN_P95_CHANGE:.0%} plus the figures' uncertainty. A run with fewer than "
        f"{MIN_SAMPLES} samples in a series says &quot;too few samples&quot; instead of ok: "
        f"it would miss a +30 % p95 in most runs (docs/report.md); &quot;within "
        f"uncertainty&quot;: the test and effect size say worse, but the p95 change is inside "
        f"the figures' own uncertainty. Sparklines: p50 blue, "
        f"p95 orange, oldest left.</p>"
    )


OVERVIEW_ROWS = 20  # series shown open in report.html's history; the others one click away


def _rows(
    history: History, comps: dict[str, Comparison], last: int, open_rows: int | None = None
) -> str:
    """The trend table; with `open_rows`, when there are more series than that, the flagged
    ones stay open and the others go into a collapsed <details> (a table of a thousand rows,
    500 tests x 2 metrics, costs Chromium most of a second to lay out at load)."""
    rows, quiet = [], []
    for series, points in trend(history, last).items():
        lab = series_label(series)
        c = comps.get(series)
        png = sparkline_png(
            [p["p50"] if p["p50"] is not None else math.nan for p in points],
            [p["p95"] if p["p95"] is not None else math.nan for p in points],
            flagged_last=bool(c and c.regression),
        )
        spark = base64.b64encode(thumbnail(png, "plot")[0]).decode("ascii")
        if c is None:
            cls, flag, figures = "", "no baseline", "<td>-</td>" * 4
        else:
            flag = c.verdict
            cls = {
                "REGRESSION": "hil-regression",
                "ok": "hil-unchanged",
                "within uncertainty": "hil-unclear",
            }.get(flag, "hil-too-few")
            if c.within_uncertainty:
                flag = f"{flag} (&plusmn; {_num(c.uncertainty)} {_esc(c.unit)})"
            elif flag != "ok" and not c.regression:
                flag = f"{flag} ({c.n_today} &lt; {MIN_SAMPLES})"
            figures = (
                f"<td>{_num(c.today_p95)} vs {_num(c.base_p95)} {_esc(c.unit)}</td>"
                f"<td>{c.p95_change:+.0%}</td><td>{c.cliffs_delta:+.2f}</td>"
                f"<td>{c.p_value:.2g} ({c.n_today} vs {c.n_base}, {c.base_runs} runs)</td>"
            )
        row = (
            f"<tr class='hil-trend-row {cls}' data-metric='{_esc(lab['metric'])}' "
            f"data-device='{_esc(lab['device'])}'>"
            f"<td>{_esc(lab['device'])}</td><td>{_esc(lab['metric'])}</td>"
            f"<td>{_esc(lab['test'])}</td><td>{_esc(lab['network'] or '-')}</td>"
            f"<td><img alt='trend' src='data:image/png;base64,{spark}'></td>"
            f"<td>{len(points)}</td>{figures}<td class='hil-flag'>{flag}</td></tr>"
        )
        (rows if c is not None and c.regression else quiet).append(row)
    if open_rows is None or len(rows) + len(quiet) <= open_rows:
        rows, quiet = rows + quiet, []
    head = (
        "<tr><th>device</th><th>metric</th><th>test</th><th>network</th><th>trend</th>"
        "<th>runs</th><th>p95 today vs baseline</th><th>p95 change (+ worse)</th><th>Cliff's delta (+ worse)</th>"
        "<th>Mann-Whitney U p (n)</th><th>verdict</th></tr>"
    )
    table = f"<table class='hil-trend'>{head}{''.join(rows)}</table>" if rows else ""
    if not quiet:
        return table
    return (
        f"{table}<details class='hil-trend-more'><summary>{len(quiet)} more series "
        f"(not flagged)</summary><table class='hil-trend'>{head}{''.join(quiet)}</table></details>"
    )


def trend_section(
    history: History,
    run_id: str,
    *,
    last: int = TREND_RUNS,
    baseline_run: str | None = None,
    open_rows: int | None = OVERVIEW_ROWS,
) -> str:
    """Trends of the last `last` runs and today's regressions (a section of the overview:
    past `open_rows` series, only the flagged ones open; None: all)."""
    comps = {c.series: c for c in regressions(history, run_id, baseline_run=baseline_run)}
    flagged = sum(c.regression for c in comps.values())
    few = sum(c.verdict == "too few samples" for c in comps.values())
    unclear = sum(c.within_uncertainty for c in comps.values())
    line = (
        f"{flagged} regression{'s' if flagged != 1 else ''} in run {_esc(run_id)} "
        f"({len(comps)} series with a baseline"
        + (
            f"; {few} with too few samples to see one: fewer than {MIN_SAMPLES} in this run"
            if few
            else ""
        )
        + (f"; {unclear} worse within the figures' uncertainty" if unclear else "")
        + ")"
    )
    return (
        f"<h3>History: last {last} runs</h3><p class='hil-regressions'>{line}</p>"
        f"{method_note(baseline_run)}{_rows(history, comps, last, open_rows)}"
    )


def trend_page(
    history: History,
    *,
    last: int = TREND_RUNS,
    baseline_run: str | None = None,
    run_id: str | None = None,
) -> str:
    """trend.html: every series over the last `last` runs, the newest (or `run_id`) compared
    with its baseline."""
    runs = history.runs(last)
    run_id = run_id or (runs[-1][0] if runs else None)
    body = (
        trend_section(history, run_id, last=last, baseline_run=baseline_run, open_rows=None)
        if run_id
        else "<p>No runs in the history yet.</p>"
    )
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mayday-hil trend</title>"
        f"{STYLE}</head><body><section id='hil-trend'><h1>mayday-hil: trends and regressions"
        f"</h1><p>{_esc(history.path)}, {len(runs)} runs shown, generated {when}</p>{body}"
        "</section></body></html>"
    )
