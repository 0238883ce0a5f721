"""Small builders of pytest-html extras: tables of facts, images, text."""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import time
from typing import Any

import pytest

log = logging.getLogger(__name__)


def facts_table(title: str, facts: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(k))}</th>"
        f"<td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in facts.items()
    )
    return f"<div class='hil-facts'><h4>{html.escape(title)}</h4><table>{rows}</table></div>"


def png_b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple, set, frozenset)):
        return ", ".join(map(str, v)) if v else "-"
    if v is None:
        return "not probed"
    return str(v)


# --- pytest-html wiring: the overview in the summary prefix, row anchors, collapsed traceback
_OVERVIEW_MARK = "<!--hil-overview-->"
_MATRIX_MARK = "<!--hil-network-matrix-->"
_MEDIA_MARK = "<!--hil-media-->"
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=]{200,}")


def html_report_of(config: Any) -> Any:
    """pytest-html's report data of this session (None without --html)."""
    for plugin in config.pluginmanager.get_plugins():
        data = getattr(plugin, "_report", None)
        if data is not None and hasattr(data, "additional_summary"):
            return data
    return None


def set_prefix(prefix: list, overview: str, matrix: str = "", media: str = "") -> None:
    """Put (or replace) the overview first, the network matrix after it and the rows' images
    (LazyMedia) last in pytest-html's summary prefix; other plugins' entries stay."""
    marks = (_OVERVIEW_MARK, _MATRIX_MARK, _MEDIA_MARK)
    prefix[:] = [p for p in prefix if not str(p).startswith(marks)]
    ours = [_OVERVIEW_MARK + overview] + ([_MATRIX_MARK + matrix] if matrix else [])
    prefix[0:0] = ours
    if media:
        prefix.append(_MEDIA_MARK + media)


def row_cells(report: Any, cells: list, anchor: str) -> None:
    """The test id cell carries the anchor the overview's matrix links to."""
    for i, cell in enumerate(cells):
        if 'class="col-testId"' in cell:
            cells[i] = cell.replace('class="col-testId"', f'class="col-testId" id="{anchor}"', 1)


def verdict_of(report: Any) -> str:
    """The first line of a failed report's exception message (a budget's verdict line)."""
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    verdict = getattr(crash, "message", None) or str(getattr(report, "longrepr", "") or "")
    return verdict.strip().splitlines()[0] if verdict.strip() else "failed"


def verdict_extra(report: Any) -> dict[str, Any]:
    """An HTML extra with the verdict line: placed first, it leads the test's details (above
    its plots and frames; the traceback comes last, collapsed)."""
    from pytest_html import extras as html_extras

    return html_extras.html(
        f"<div class='hil-verdict-line' style='font-weight:bold;color:#b00020;margin:.3em 0'>"
        f"{html.escape(verdict_of(report))}</div>"
    )


def log_html(report: Any, data: list) -> None:
    """A failed test's log leads with its verdict line (the exception's message: for a budget,
    measured value, limit, uncertainty); the traceback and captured output are one click away,
    with long tokens (base64 images in fixture reprs) cut."""
    if not getattr(report, "failed", False) or not data:
        return
    verdict = verdict_of(report)
    body = _LONG_TOKEN.sub(lambda m: f"[{len(m.group(0))} characters cut]", "\n".join(data))
    data[:] = [
        f"<div class='hil-verdict-line'><b>{html.escape(verdict)}</b></div>"
        f"<details class='hil-traceback'><summary>traceback and captured output</summary>"
        f"{body}</details>"
    ]


_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")
MEDIA_STYLE = (
    "<style>.hil-media{display:flex;flex-wrap:wrap;gap:.6em;margin:.4em 0}"
    ".hil-media figure{margin:0;font-size:.85em}.hil-media img{max-width:480px;display:block;"
    "border:1px solid #ccc}</style>"
)
# Fills each image placeholder of a row whose details are shown (failed rows at load, a passed
# row when clicked open); pytest-html redraws its table on every click, sort and filter by
# replacing it, so the filling runs again on each replacement (a child of <body>).
MEDIA_SCRIPT = """<script>(function(){
function fill(){
 document.querySelectorAll('#results-table .hil-media:not([data-filled])').forEach(function(p){
  var row=p.closest('.extras-row'); if(row&&row.classList.contains('hidden')){return;}
  var d=document.getElementById('hil-media-'+p.dataset.hilMedia); if(!d){return;}
  p.dataset.filled='1';
  JSON.parse(d.textContent).forEach(function(m){
   var f=document.createElement('figure'),a=document.createElement('a'),
       i=document.createElement('img'),c=document.createElement('figcaption');
   a.href=m.full||m.src; a.target='_blank'; i.src=m.src; i.alt=m.name; c.textContent=m.name;
   a.appendChild(i); f.appendChild(a); f.appendChild(c); p.appendChild(f);
  });
 });
}
new MutationObserver(fill).observe(document.body,{childList:true});
document.addEventListener('DOMContentLoaded',fill);
})();</script>"""


class LazyMedia:
    """The image extras of a self-contained report, kept out of pytest-html's JSON.

    pytest-html puts every image of every row, base64, into one JSON attribute that its
    script parses and turns into rows at load, hidden rows included: at 500 tests that is
    most of Chromium's load time. Here each test's images go into a `<script
    type="application/json">` block of their own (raw text: the HTML parser skips it, nothing
    decodes it) and the row gets a placeholder that MEDIA_SCRIPT fills when the row's details
    are shown. Images that are not base64 (a URL, a file) stay with pytest-html.
    """

    def __init__(self) -> None:
        self.blocks: list[str] = []

    def take(self, extras: list) -> list:
        """The extras with their base64 images replaced by one placeholder (an HTML extra at
        the place of the first image); the images kept for html()."""
        from pytest_html import extras as html_extras

        images, out, at = [], [], None
        for e in extras:
            content = e.get("content") if isinstance(e, dict) else None
            if (
                isinstance(content, str)
                and e.get("format_type") == html_extras.FORMAT_IMAGE
                and _BASE64.fullmatch(content)
            ):
                at = len(out) if at is None else at
                images.append(
                    {
                        "name": e.get("name") or "image",
                        "src": f"data:{e.get('mime_type') or 'image/png'};base64,{content}",
                        "full": e.get("hil_full") or "",
                    }
                )
            else:
                out.append(e)
        if not images:
            return extras
        k = len(self.blocks)
        data = json.dumps(images).replace("<", "\\u003c")  # no "</script>" or "<!--" inside
        self.blocks.append(f"<script type='application/json' id='hil-media-{k}'>{data}</script>")
        out.insert(at, html_extras.html(f"<div class='hil-media' data-hil-media='{k}'></div>"))
        return out

    def html(self) -> str:
        """The images' blocks and the script that shows them ("" with none)."""
        if not self.blocks:
            return ""
        return MEDIA_STYLE + "".join(self.blocks) + MEDIA_SCRIPT


REWRITE_FRACTION = 0.1  # rewrite when the tests done grew by this fraction since the last write
REWRITE_INTERVAL_S = 30.0  # ... or this long passed with a test finished since


class ReportRewriter:
    """Rewrites report.html during the run (crash safety) on a geometric schedule: after tests
    1..10, then whenever the finished tests grew by REWRITE_FRACTION, or REWRITE_INTERVAL_S
    passed. Each rewrite costs O(n) (pytest-html serialises every row), so rewriting after every
    test costs O(n^2) over a run; this schedule keeps the total O(n) (~11x the final report's
    size written in all) while a run killed outright loses at most the last 10 % of rows or
    30 s from the HTML (results.jsonl keeps every line). Registered on the controller."""

    def __init__(self, config: Any, clock: Any = None, before_write: Any = None):
        self.config = config
        self.before_write = before_write  # e.g. refresh the overview, only when writing
        self.clock = clock or time.monotonic
        self.done = 0
        self.written_at = 0
        self.written_t = self.clock()
        self.rewrites = 0

    def due(self) -> bool:
        grown = self.done - self.written_at >= max(1.0, REWRITE_FRACTION * self.written_at)
        stale = self.done > self.written_at and self.clock() - self.written_t >= REWRITE_INTERVAL_S
        return grown or stale

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionstart(self, session: Any):
        """A report exists from the start (a run killed during its first test keeps one)."""
        yield
        self.rewrite()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: Any):
        """After pytest-html took the test's teardown report: rewrite when due."""
        yield
        if report.when != "teardown":
            return
        self.done += 1
        if self.due():
            self.rewrite()

    def rewrite(self) -> None:
        """Write report.html now. Never raises (logs)."""
        plugin = html_plugin_of(self.config)
        if plugin is None:
            return
        try:
            if self.before_write is not None:
                self.before_write()
            plugin._generate_report()
        except Exception as e:  # noqa: BLE001 -- the report must never break the run
            log.warning("report.html not rewritten: %s", e)
            return
        self.written_at, self.written_t = self.done, self.clock()
        self.rewrites += 1


def html_plugin_of(config: Any) -> Any:
    """pytest-html's plugin object of this session (None without --html)."""
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "_generate_report") and hasattr(plugin, "_report"):
            return plugin
    return None
