"""Small builders of pytest-html extras: tables of facts, images, text."""

from __future__ import annotations

import base64
import html
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
