"""`hil report merge`: shards' run directories into one results.jsonl, summary.json and report.html,
duplicates and clashes named (synthetic run directories as the plugin writes them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.report import read_results
from harness.report.merge import merge, write


def _record(test: str, device: str, metric: str, mean: float, passed: bool = True) -> dict:
    return {
        "test": test,
        "device": device,
        "metric": metric,
        "unit": "s",
        "stats": {"n": 3, "mean": mean, "p95": mean * 1.2},
        "samples": [mean] * 3,
        "verdict": {  # a checked budget limit (ResultRecord.mark: PASS / FAIL)
            "passed": passed,
            "checks": [{"stat": "p95", "op": "<=", "limit": 6.5, "passed": passed}],
        },
        "t": 1000.0 + mean,
    }


def _run(
    root: Path, name: str, devices: list[dict], records: list[dict], exitstatus: int = 0
) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (d / "devices.json").write_text(json.dumps(devices))
    (d / "summary.json").write_text(
        json.dumps(
            {
                "run": name,
                "exitstatus": exitstatus,
                "devices": devices,
                "retries": {"stf": {"x": 1}},
            }
        )
    )
    return d


def _dev(adb: str, stf: str | None = None) -> dict:
    out = {"serial": adb, "model": "KFTHWI", "api_level": 17, "profile": "fire-hdx-7-2013"}
    if stf:
        out["stf"] = {"serial": stf, "provider": "p1", "remote_url": adb}
    return out


def test_two_shards_merge_into_one_report(tmp_path):
    a = _run(
        tmp_path,
        "shard1",
        [_dev("127.0.0.1:7401", "TWIN1"), _dev("127.0.0.1:7403", "TWIN3")],
        [
            _record("t.py::c[a]", "127.0.0.1:7401", "connect_time_s", 4.0),
            _record("t.py::c[b]", "127.0.0.1:7403", "connect_time_s", 5.0),
        ],
    )
    b = _run(
        tmp_path,
        "shard2",
        [_dev("127.0.0.1:7401", "TWIN2")],  # the same host:port on another runner: another device
        [_record("t.py::c[c]", "127.0.0.1:7401", "connect_time_s", 20.0, passed=False)],
        exitstatus=1,
    )
    merged = merge([a, b])
    assert merged.clashes == [] and merged.duplicates == []
    assert [d["stf"]["serial"] for d in merged.devices] == ["TWIN1", "TWIN3", "TWIN2"]
    report = write(merged, tmp_path / "out")
    rows = read_results(tmp_path / "out" / "results.jsonl")
    assert sorted((r["test"], r["run"]) for r in rows) == [
        ("t.py::c[a]", "shard1"),
        ("t.py::c[b]", "shard1"),
        ("t.py::c[c]", "shard2"),
    ]
    # a leased device is named by its STF serial: the same host:port on two runners is no clash
    assert sorted((r["device"], r["meta"]["adb_serial"]) for r in rows) == [
        ("TWIN1", "127.0.0.1:7401"),
        ("TWIN2", "127.0.0.1:7401"),
        ("TWIN3", "127.0.0.1:7403"),
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["measurements"], summary["failed_verdicts"], summary["exitstatus"]) == (3, 1, 1)
    assert summary["retries"] == {"stf": {"x": 2}}
    page = report.read_text()
    assert "3 measurements on 3 devices, 1 over budget" in page
    assert page.count("<td>FAIL</td>") == 1 and page.count("<td>PASS</td>") == 2


def test_duplicates_and_clashes_are_named(tmp_path):
    rec = _record("t.py::c[a]", "emulator-5554", "connect_time_s", 4.0)
    a = _run(tmp_path, "r1", [_dev("emulator-5554")], [rec])
    b = _run(
        tmp_path, "r2", [_dev("emulator-5554")], [rec, {**rec, "stats": {"n": 3, "mean": 9.0}}]
    )
    merged = merge([a, b])
    assert merged.duplicates == [
        "connect_time_s of t.py::c[a] on emulator-5554: in runs r1 and r2 (kept once)"
    ]
    assert merged.clashes == [
        "device emulator-5554 used by runs r1 and r2",
        "connect_time_s of t.py::c[a] on emulator-5554: measured by runs r1 and r2 with different results (both kept)",
    ]
    assert len(merged.records) == 2


def test_cli_merge_and_bad_input(tmp_path, capsys):
    a = _run(tmp_path, "r1", [_dev("emulator-5554")], [_record("t::x", "emulator-5554", "m", 1.0)])
    assert main(["report", "merge", str(a), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "merged 1 runs: 1 measurements on 1 devices; 0 clashes, 0 duplicates" in out
    assert (tmp_path / "out" / "report.html").is_file()
    with pytest.raises(HarnessError, match="not a run directory"):
        merge([tmp_path / "nope"])
    assert main(["report", "merge", str(tmp_path / "nope"), "-o", str(tmp_path / "o2")]) == 2
    assert "nope: not a run directory (no results.jsonl)" in capsys.readouterr().err
