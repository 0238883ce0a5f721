"""The network matrix: per device and network profile, connect time and the media figures."""

from __future__ import annotations

import html
from collections.abc import Iterable

from harness.report.record import DEGRADED, FAIL, INCONCLUSIVE, ResultRecord

MATRIX_COLUMNS = (  # metric, statistic shown, format
    ("connect_time_s", "mean", "{:.2f} s"),
    ("glass_to_glass_ms", "p50", "{:.0f} ms"),
    ("share_latency_ms", "p50", "{:.0f} ms"),
    ("share_fps", "mean", "{:.1f} fps"),
    ("share_ssim", "mean", "{:.3f}"),
    ("share_freeze_ms", "max", "{:.0f} ms"),
    # legibility: perceptual quality and the text the agent could read
    ("share_ssimulacra2", "p50", "{:.0f}"),
    ("share_text_cer", "p95", "{:.1f} %"),
)
MARKS = {FAIL: " (over budget)", DEGRADED: " (degraded)", INCONCLUSIVE: " (inconclusive)"}
NO_OCR, NO_TEXT = "no OCR", "no text truth"


def _absent_cer(r: ResultRecord) -> str | None:
    """Why a run has no share_text_cer, from its share_ssimulacra2 record's meta `text_cer`."""
    reason = str(r.meta.get("text_cer") or "")
    if not reason or reason == "measured":
        return None
    if "OCR" in reason:
        return NO_OCR
    return NO_TEXT if "text truth" in reason else reason[:40]


def network_matrix(records: Iterable[ResultRecord | dict]) -> str:
    """HTML table: one row per (device, network profile), one column per MATRIX_COLUMNS metric,
    from records whose meta names a network ("" when there are none). Without a CER figure the
    legibility column says why ("no OCR", "no text truth")."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    absent: dict[tuple[str, str], str] = {}
    wanted = {c[0]: c for c in MATRIX_COLUMNS}
    for raw in records:
        r = raw if isinstance(raw, ResultRecord) else ResultRecord.from_dict(raw)
        col = wanted.get(r.metric)
        if not r.network or col is None or col[1] not in r.stats:
            continue
        if r.metric == "share_ssimulacra2" and _absent_cer(r):
            absent[(r.device, r.network)] = _absent_cer(r)
        mark = MARKS.get(r.mark, "")
        cells.setdefault((r.device, r.network), {})[col[0]] = col[2].format(r.stat(col[1])) + mark
    for key, why in absent.items():
        cells[key].setdefault("share_text_cer", why)
    if not cells:
        return ""
    used = [c for c in MATRIX_COLUMNS if any(c[0] in row for row in cells.values())]
    head = (
        "<tr><th>device</th><th>network</th>"
        + "".join(f"<th>{html.escape(m)} ({s})</th>" for m, s, _ in used)
        + "</tr>"
    )
    rows = "".join(
        f"<tr><th>{html.escape(d)}</th><th>{html.escape(n)}</th>"
        + "".join(f"<td>{html.escape(cells[(d, n)].get(m, '-'))}</td>" for m, _, _ in used)
        + "</tr>"
        for d, n in sorted(cells)
    )
    return f"<h3>Per network profile</h3><table class='hil-network-matrix'>{head}{rows}</table>"
