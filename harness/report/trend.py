"""Trends and regressions as HTML: a section of the overview, and trend.html (`hil report trend`),
built from reports/history.sqlite alone."""

from __future__ import annotations

import base64
import hashlib
import html
import math
import time

from harness.report.conditions import LOAD_RATIO, MIN_HEALTH, PRESSURE_BAND_PCT
from harness.report.history import TREND_RUNS, History, series_label, trend
from harness.report.images import thumbnail
from harness.report.plots import sparkline_png
from harness.report.regression import (
    ALPHA,
    BASELINE_RUNS,
    MIN_DELTA,
    MIN_P95_CHANGE,
    MIN_SAMPLES,
    Comparison,
    regressions,
)

STYLE = """
<style>
body{font-family:sans-serif;margin:1.2em;color:#222}
table.hil-trend{border-collapse:collapse;margin:.5em 0 1em 0}
table.hil-trend th,table.hil-trend td{border:1px solid #bbb;padding:.25em .5em;font-size:.88em;
 text-align:left;vertical-align:middle;color:#222}
tr.hil-regression td{background:#f2bcbc}tr.hil-regression td.hil-flag{font-weight:bold;color:#b00020}
tr.hil-suspected td{background:#fde3c8}tr.hil-suspected td.hil-flag{font-weight:bold;color:#a14500}
tr.hil-unchanged td.hil-flag{color:#1b5e20}
tr.hil-too-few td.hil-flag,tr.hil-unclear td.hil-flag{color:#a15c00}
tr.hil-not-comparable td.hil-flag{color:#37474f}
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
        else f"the last {BASELINE_RUNS} runs of the same test, device, metric, network and app "
        "build measured under comparable conditions"
    )
    return (
        f"<p class='hil-method'>Regression: today's samples against the baseline ({_esc(base)}) "
        f"with a one-sided Mann-Whitney U test (ranks only: latency samples are skewed, few and "
        f"have outliers; no normality assumed). Flagged when p &lt; {ALPHA:g}, Cliff's delta "
        f"&ge; {MIN_DELTA:g} (today worse in most pairs) and p95 worse by more than "
        f"{MIN_P95_CHANGE:.0%} plus the figures' uncertainty; the baseline's p95 is the median "
        f"of its runs' own p95s. A first flagged run is &quot;suspected&quot;; the next run "
        f"flagged as well confirms it (REGRESSION; with a chosen baseline run one flag is the "
        f"verdict). Flagged runs stay out of the baselines: a one-off for good, a regression "
        f"while it lasts; {BASELINE_RUNS} flagged in a row become the norm. A run with fewer than "
        f"{MIN_SAMPLES} samples in a series says &quot;too few samples&quot; instead of ok: "
        f"it would miss a +30 % p95 in most runs (docs/report.md); &quot;within "
        f"uncertainty&quot;: the test and effect size say worse, but the p95 change is inside "
        f"the figures' own uncertainty. Like with like: a baseline holds only runs of "
        f"comparable conditions (same CPU count, load per CPU within {LOAD_RATIO:g}x, CPU "
        f"pressure within {PRESSURE_BAND_PCT:g} points, not starved); a run whose measurement got less than {MIN_HEALTH:.0%} of its nominal "
        f"samples (starved), or with no comparable earlier run, says &quot;not "
        f"comparable&quot; and why (hover for its conditions): not judged, never flagged. "
        f"Sparklines: p50 blue, "
        f"p95 orange, oldest left.</p>"
    )


GRID_STYLE = """<style>
table.hil-trend-grid{border-collapse:collapse;margin:.5em 0 1em 0}
table.hil-trend-grid th,table.hil-trend-grid td{border:1px solid #bbb;padding:.25em .4em;
 font-size:.85em;text-align:left;vertical-align:top;color:#222}
table.hil-trend-grid td a{color:inherit;text-decoration:none;display:block}
table.hil-trend-grid td a:hover{text-decoration:underline}
table.hil-trend-grid td img{display:block;width:160px;height:auto}
td.hil-g-regression{background:#f2bcbc}td.hil-g-regression .hil-grid-flag{color:#b00020}
td.hil-g-suspected{background:#fde3c8}td.hil-g-suspected .hil-grid-flag{color:#a14500}
td.hil-g-unclear,td.hil-g-few{background:#fcf1c7}td.hil-g-ok{background:#dff0d8}
td.hil-g-none{background:#f4f4f4}td.hil-g-nc{background:#e3e8f0}.hil-grid-n{color:#555;font-size:.9em}
</style>"""
OVERVIEW_ROWS = 20  # series shown open in report.html's history; the others one click away
_VERDICT_RANK = {
    "no baseline": 0,
    "ok": 1,
    "not comparable": 2,
    "too few samples": 3,
    "within uncertainty": 4,
    "suspected": 5,
    "REGRESSION": 6,
}
_GRID_CLASS = {
    "REGRESSION": "hil-g-regression",
    "suspected": "hil-g-suspected",
    "within uncertainty": "hil-g-unclear",
    "too few samples": "hil-g-few",
    "ok": "hil-g-ok",
    "not comparable": "hil-g-nc",
    "no baseline": "hil-g-none",
}


def series_anchor(series: str) -> str:
    """The HTML id of a series' row in the trend table (the grid's cells link to it)."""
    return "hil-s-" + hashlib.sha1(series.encode()).hexdigest()[:12]


def _items(history: History, comps: dict[str, Comparison], last: int) -> list[dict]:
    """Per series over the last `last` runs: its label, comparison, sparkline (base64 PNG),
    verdict and table row."""
    items = []
    for series, points in trend(history, last).items():
        lab = series_label(series)
        c = comps.get(series)
        png = sparkline_png(
            [p["p50"] if p["p50"] is not None else math.nan for p in points],
            [p["p95"] if p["p95"] is not None else math.nan for p in points],
            flagged_last=bool(c and c.regression),
        )
        spark = base64.b64encode(thumbnail(png, "plot")[0]).decode("ascii")
        verdict = c.verdict if c is not None else "no baseline"
        if c is None:
            cls, flag, figures = "", "no baseline", "<td>-</td>" * 4
        else:
            flag = c.verdict
            cls = {
                "REGRESSION": "hil-regression",
                "suspected": "hil-suspected",
                "ok": "hil-unchanged",
                "within uncertainty": "hil-unclear",
                "not comparable": "hil-not-comparable",
            }.get(flag, "hil-too-few")
            if not c.comparable:
                flag = f"{flag}: {_esc(c.not_comparable)}"
            elif c.within_uncertainty:
                flag = f"{flag} (&plusmn; {_num(c.uncertainty)} {_esc(c.unit)})"
            elif c.suspected:
                flag = f"{flag} (the next run confirms it or not)"
            elif flag != "ok" and not c.regression:
                flag = f"{flag} ({c.n_today} &lt; {MIN_SAMPLES})"
            figures = (
                f"<td>{_num(c.today_p95)} vs {_num(c.base_p95)} {_esc(c.unit)}</td>"
                f"<td>{c.p95_change:+.0%}</td><td>{c.cliffs_delta:+.2f}</td>"
                f"<td>{c.p_value:.2g} ({c.n_today} vs {c.n_base}, {c.base_runs} runs)</td>"
            )
        row = (
            f"<tr id='{series_anchor(series)}' class='hil-trend-row {cls}' "
            f"data-metric='{_esc(lab['metric'])}' data-device='{_esc(lab['device'])}'>"
            f"<td>{_esc(lab['device'])}</td><td>{_esc(lab['metric'])}</td>"
            f"<td>{_esc(lab['test'])}</td><td>{_esc(lab['network'] or '-')}</td>"
            f"<td><img alt='trend' src='data:image/png;base64,{spark}'></td>"
            f"<td>{len(points)}</td>{figures}<td class='hil-flag' "
            f"title='{_esc(c.conditions if c else '')}'>{flag}</td></tr>"
        )
        items.append(
            {
                "series": series,
                "label": lab,
                "comparison": c,
                "verdict": verdict,
                "spark": spark,
                "row": row,
                "change": c.p95_change if c is not None else -math.inf,
            }
        )
    return items


def grid_html(items: list[dict]) -> str:
    """Device x metric: per cell the sparkline of its worst series (flagged first, then the
    largest p95 change), the cell's worst verdict and how many series it holds (tests and
    network profiles), linking to that series' row in the table below."""
    from harness.report.overview import METRIC_ORDER

    if not items:
        return ""
    cells: dict[tuple[str, str], list[dict]] = {}
    for it in items:
        cells.setdefault((it["label"]["device"], it["label"]["metric"]), []).append(it)
    seen = list(dict.fromkeys(it["label"]["metric"] for it in items))
    metrics = [m for m in METRIC_ORDER if m in seen] + sorted(
        m for m in seen if m not in METRIC_ORDER
    )
    devices = sorted({it["label"]["device"] for it in items})
    head = "<tr><th>device</th>" + "".join(f"<th>{_esc(m)}</th>" for m in metrics) + "</tr>"
    rows = []
    for dev in devices:
        tds = []
        for m in metrics:
            its = cells.get((dev, m))
            if not its:
                tds.append(f"<td data-metric='{_esc(m)}'>-</td>")
                continue
            worst = max(its, key=lambda it: (_VERDICT_RANK[it["verdict"]], it["change"]))
            counts: dict[str, int] = {}
            for it in its:
                counts[it["verdict"]] = counts.get(it["verdict"], 0) + 1
            flagged = counts.get("REGRESSION", 0)
            suspected = counts.get("suspected", 0)
            summary = (
                f"{len(its)} series"
                + (f", {flagged} flagged" if flagged else "")
                + (f", {suspected} suspected" if suspected else "")
                if len(its) > 1
                else ""
            )
            c = worst["comparison"]
            change = f" {c.p95_change:+.0%} p95" if c is not None else ""
            tip = "; ".join(
                f"{it['label']['test']}"
                + (f" [{it['label']['network']}]" if it["label"]["network"] else "")
                + f": {it['verdict']}"
                + (
                    f" ({it['comparison'].not_comparable})"
                    if it["comparison"] is not None and not it["comparison"].comparable
                    else ""
                )
                for it in its
            )
            tds.append(
                f"<td class='hil-grid-cell {_GRID_CLASS[worst['verdict']]}' "
                f"data-metric='{_esc(m)}' data-verdict='{_esc(worst['verdict'])}' "
                f"title='{_esc(tip)}'><a href='#{series_anchor(worst['series'])}'>"
                f"<img alt='trend' src='data:image/png;base64,{worst['spark']}'><br>"
                f"<b class='hil-grid-flag'>{_esc(worst['verdict'])}</b>{_esc(change)}"
                + (f"<br><span class='hil-grid-n'>{_esc(summary)}</span>" if summary else "")
                + "</a></td>"
            )
        rows.append(
            f"<tr class='hil-grid-row' data-device='{_esc(dev)}'><th>{_esc(dev)}</th>"
            f"{''.join(tds)}</tr>"
        )
    return f"{GRID_STYLE}<table class='hil-trend-grid'>{head}{''.join(rows)}</table>"


def _rows(items: list[dict], open_rows: int | None = None) -> str:
    """The trend table, one row per series; with `open_rows`, when there are more series than
    that, the flagged ones stay open and the others go into a collapsed <details> (a table of
    a thousand rows, 500 tests x 2 metrics, costs Chromium most of a second to lay out at
    load; a grid cell's link to a collapsed row opens it: Chromium expands a <details> on
    fragment navigation)."""
    loud = ("REGRESSION", "suspected")
    rows = [it["row"] for it in items if it["verdict"] in loud]
    quiet = [it["row"] for it in items if it["verdict"] not in loud]
    if open_rows is None or len(rows) + len(quiet) <= open_rows:
        rows, quiet = [it["row"] for it in items], []
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
        f"(not flagged nor suspected)</summary><table class='hil-trend'>{head}{''.join(quiet)}</table></details>"
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
    suspected = sum(c.suspected for c in comps.values())
    few = sum(c.verdict == "too few samples" for c in comps.values())
    unclear = sum(c.within_uncertainty for c in comps.values())
    apart = sum(not c.comparable for c in comps.values())
    line = (
        f"{flagged} regression{'s' if flagged != 1 else ''} in run {_esc(run_id)} "
        f"({len(comps)} series with a baseline"
        + (
            f"; {suspected} suspected: flagged in this run only, the next run confirms it or not"
            if suspected
            else ""
        )
        + (
            f"; {few} with too few samples to see one: fewer than {MIN_SAMPLES} in this run"
            if few
            else ""
        )
        + (f"; {unclear} worse within the figures' uncertainty" if unclear else "")
        + (
            f"; {apart} not comparable (a starved run, or no earlier run of comparable "
            "conditions: not judged)"
            if apart
            else ""
        )
        + ")"
    )
    items = _items(history, comps, last)
    return (
        f"<h3>History: last {last} runs</h3><p class='hil-regressions'>{line}</p>"
        f"{grid_html(items)}{method_note(baseline_run)}"
        f"<h4>Series (test, device, metric, network)</h4>{_rows(items, open_rows)}"
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
