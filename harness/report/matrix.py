"""The network matrix: per device and network profile, connect time and the media figures."""

from __future__ import annotations

import html
from collections.abc import Iterable

from harness.report.record import FAIL, INCONCLUSIVE, ResultRecord

MATRIX_COLUMNS = (  # metric, statistic shown, format
    ("connect_time_s", "mean", "{:.2f} s"),
    ("glass_to_glass_ms", "p50", "{:.0f} ms"),
    ("share_latency_ms", "p50", "{:.0f} ms"),
    ("share_fps", "mean", "{:.1f} fps"),
    ("share_ssim", "mean", "{:.3f}"),
    ("share_freeze_ms", "max", "{:.0f} ms"),
)


def network_matrix(records: Iterable[ResultRecord | dict]) -> str:
    """HTML table: one row per (device, network profile), one column per MATRIX_COLUMNS metric,
    from records whose meta names a network ("" when there are none)."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    wanted = {c[0]: c for c in MATRIX_COLUMNS}
    for raw in records:
        r = raw if isinstance(raw, ResultRecord) else ResultRecord.from_dict(raw)
        col = wanted.get(r.metric)
        if not r.network or col is None or col[1] not in r.stats:
            continue
        mark = {FAIL: " (over budget)", INCONCLUSIVE: " (inconclusive)"}.get(r.mark, "")
        cells.setdefault((r.device, r.network), {})[col[0]] = col[2].format(r.stat(col[1])) + mark
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
