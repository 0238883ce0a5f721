"""The report's network matrix: one row per device and profile, one column per figure."""

from __future__ import annotations

from harness.report.matrix import network_matrix


def _rec(device, net, metric, stat, value, passed=True, inconclusive=False):
    return {
        "device": device,
        "metric": metric,
        "meta": {"network": net},
        "stats": {stat: value},
        "verdict": {"passed": passed, "inconclusive": inconclusive},
    }


def test_rows_per_device_and_profile_columns_per_figure_over_budget_marked():
    html = network_matrix(
        [
            _rec("emu-1", "good-wifi", "connect_time_s", "mean", 4.21),
            _rec(
                "emu-1",
                "good-wifi",
                "glass_to_glass_ms",
                "p50",
                160.0,
                passed=False,
                inconclusive=True,
            ),
            _rec("emu-1", "edge", "connect_time_s", "mean", 9.9),
            _rec("emu-1", "edge", "glass_to_glass_ms", "p50", 1784.0, passed=False),
            _rec("emu-1", "edge", "share_ssim", "mean", 0.9944),
            {
                "device": "emu-1",
                "metric": "share_psnr_db",
                "meta": {"network": "edge"},
                "stats": {"mean": 38.0},
            },
            {
                "device": "emu-1",
                "metric": "connect_time_s",
                "meta": {},
                "stats": {"mean": 1.0},
            },  # no network
        ]
    )
    assert html.count("<tr>") == 3  # header + two rows
    assert (
        "<th>emu-1</th><th>edge</th><td>9.90 s</td><td>1784 ms (over budget)</td><td>0.994</td>"
        in html
    )
    assert (
        "<th>emu-1</th><th>good-wifi</th><td>4.21 s</td><td>160 ms (inconclusive)</td><td>-</td>"
        in html
    )
    assert (
        "share_psnr_db" not in html and "share_latency_ms" not in html
    )  # only columns with figures


def test_no_network_figures_no_table():
    assert (
        network_matrix(
            [{"device": "d", "metric": "connect_time_s", "meta": {}, "stats": {"mean": 1}}]
        )
        == ""
    )
