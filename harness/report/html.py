"""Small builders of pytest-html extras: tables of facts, images, text."""

from __future__ import annotations

import base64
import html
import re
from typing import Any


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
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=]{200,}")


def html_report_of(config: Any) -> Any:
    """pytest-html's report data of this session (None without --html)."""
    for plugin in config.pluginmanager.get_plugins():
        data = getattr(plugin, "_report", None)
        if data is not None and hasattr(data, "additional_summary"):
            return data
    return None


def set_prefix(prefix: list, overview: str, matrix: str = "") -> None:
    """Put (or replace) the overview first and the network matrix after it in pytest-html's
    summary prefix; other plugins' entries stay."""
    prefix[:] = [p for p in prefix if not str(p).startswith((_OVERVIEW_MARK, _MATRIX_MARK))]
    ours = [_OVERVIEW_MARK + overview] + ([_MATRIX_MARK + matrix] if matrix else [])
    prefix[0:0] = ours


def row_cells(report: Any, cells: list, anchor: str) -> None:
    """The test id cell carries the anchor the overview's matrix links to."""
    for i, cell in enumerate(cells):
        if 'class="col-testId"' in cell:
            cells[i] = cell.replace('class="col-testId"', f'class="col-testId" id="{anchor}"', 1)


def log_html(report: Any, data: list) -> None:
    """A failed test's log leads with its verdict line (the exception's message: for a budget,
    measured value, limit, uncertainty); the traceback and captured output are one click away,
    with long tokens (base64 images in fixture reprs) cut."""
    if not getattr(report, "failed", False) or not data:
        return
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    verdict = getattr(crash, "message", None) or str(getattr(report, "longrepr", "") or "")
    verdict = verdict.strip().splitlines()[0] if verdict.strip() else "failed"
    body = _LONG_TOKEN.sub(lambda m: f"[{len(m.group(0))} characters cut]", "\n".join(data))
    data[:] = [
        f"<div class='hil-verdict-line'><b>{html.escape(verdict)}</b></div>"
        f"<details class='hil-traceback'><summary>traceback and captured output</summary>"
        f"{body}</details>"
    ]
