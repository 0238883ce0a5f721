"""One report from many runs: the shards of a suite run on several hosts (`--shard I/N`).

`hil report merge RUN_DIR... -o DIR` reads each run directory's results.jsonl, devices.json and
summary.json and writes DIR/results.jsonl, DIR/summary.json and DIR/report.html. A record met
twice (the same line in two runs) is a duplicate: kept once, named. The same test, device and
metric measured differently in two runs is a clash: both kept, named; so is a device that two
runs both used. A leased STF device is named by its STF serial (its remote adb address, kept
as meta.adb_serial, is only one run's name for it).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.record import FAIL, INCONCLUSIVE, ResultRecord
from harness.report.results import read_results


@dataclass
class MergedRun:
    """What a merge produced; also written to DIR/summary.json."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)
    retries: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "merged_from": self.runs,
            "exitstatus": max((r.get("exitstatus") or 0 for r in self.runs), default=0),
            "devices": self.devices,
            "measurements": len(self.records),
            # as the live run's summary.json counts them: FAIL and INCONCLUSIVE records
            "failed_verdicts": sum(1 for r in self.records if mark(r) in (FAIL, INCONCLUSIVE)),
            "retries": self.retries,
            "duplicates": self.duplicates,
            "clashes": self.clashes,
        }


def mark(rec: dict[str, Any]) -> str:
    """A merged record's verdict word: the live report's (ResultRecord.mark), so a shaped
    profile's over-budget figure reads DEGRADED and an unchecked figure RECORDED here too."""
    return ResultRecord.from_dict(rec).mark


def device_name(dev: dict[str, Any]) -> str:
    """A device's identity across hosts: its STF serial when leased, else its adb serial."""
    return (dev.get("stf") or {}).get("serial") or dev["serial"]


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise HarnessError(f"{path}: unreadable ({e})") from None


def merge(run_dirs: list[Path]) -> MergedRun:  # noqa: C901 -- one branch per kind of duplicate and clash it names
    """Merge run directories (in the order given).

    Raises:
        HarnessError: a directory that is not a run directory (no results.jsonl), or unreadable.
    """
    out = MergedRun()
    seen: dict[str, str] = {}  # record line -> run
    measured: dict[
        tuple[str, str, str], tuple[str, str]
    ] = {}  # (test, device, metric) -> run, line
    used_by: dict[str, str] = {}  # device -> run
    for d in run_dirs:
        d = Path(d)
        results = d / "results.jsonl"
        if not results.is_file():
            raise HarnessError(f"{d}: not a run directory (no results.jsonl)")
        try:
            records = read_results(results)
        except (OSError, ValueError) as e:
            raise HarnessError(f"{results}: unreadable ({e})") from None
        summary = _read_json(d / "summary.json", {})
        devices = _read_json(d / "devices.json", summary.get("devices", []))
        name = d.name
        out.runs.append(
            {
                "dir": str(d),
                "run": summary.get("run", name),
                "exitstatus": summary.get("exitstatus"),
                "measurements": len(records),
                "devices": [device_name(dev) for dev in devices],
            }
        )
        for dev in devices:
            key = device_name(dev)
            if key in used_by:
                if used_by[key] != name:
                    out.clashes.append(f"device {key} used by runs {used_by[key]} and {name}")
                continue
            used_by[key] = name
            out.devices.append({**dev, "run": name})
        alias = {dev["serial"]: device_name(dev) for dev in devices if "serial" in dev}
        for rec in records:
            if rec.get("device") in alias and alias[rec["device"]] != rec["device"]:
                # an STF device: its remote adb address is only this run's name for it
                meta = {**(rec.get("meta") or {}), "adb_serial": rec["device"]}
                rec = {**rec, "device": alias[rec["device"]], "meta": meta}
            line = json.dumps(rec, sort_keys=True)
            if line in seen:
                out.duplicates.append(
                    f"{rec.get('metric')} of {rec.get('test')} on {rec.get('device')}: "
                    f"in runs {seen[line]} and {name} (kept once)"
                )
                continue
            seen[line] = name
            key = (str(rec.get("test")), str(rec.get("device")), str(rec.get("metric")))
            if key in measured and measured[key][0] != name:
                out.clashes.append(
                    f"{key[2]} of {key[0]} on {key[1]}: measured by runs {measured[key][0]} and {name} "
                    "with different results (both kept)"
                )
            measured.setdefault(key, (name, line))
            out.records.append({**rec, "run": name})
        for dev, counts in (summary.get("retries") or {}).items():
            per = out.retries.setdefault(dev, {})
            for what, n in counts.items():
                per[what] = per.get(what, 0) + n
    return out


def write(merged: MergedRun, out_dir: Path) -> Path:
    """DIR/results.jsonl, DIR/summary.json, DIR/report.html; returns the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as f:
        for rec in merged.records:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(merged.summary(), indent=2))
    report = out_dir / "report.html"
    report.write_text(render_html(merged))
    return report


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else "-"


def render_html(merged: MergedRun) -> str:
    """A self-contained page: runs, devices, every measurement with its verdict, and what
    clashed or was duplicated."""
    s = merged.summary()
    runs = _table(
        ["run", "directory", "exit status", "measurements", "devices"],
        [
            [r["run"], r["dir"], r["exitstatus"], r["measurements"], ", ".join(r["devices"])]
            for r in merged.runs
        ],
    )
    devices = _table(
        ["device", "adb serial", "model", "API", "profile", "STF provider", "run"],
        [
            [
                device_name(d),
                d.get("serial"),
                d.get("model"),
                d.get("api_level"),
                d.get("profile") or "none",
                (d.get("stf") or {}).get("provider", "-"),
                d["run"],
            ]
            for d in merged.devices
        ],
    )
    rows = []
    for r in sorted(
        merged.records,
        key=lambda r: (str(r.get("metric")), str(r.get("device")), str(r.get("test"))),
    ):
        st = r.get("stats") or {}
        rows.append(
            [
                r.get("metric"),
                r.get("device"),
                r.get("test"),
                st.get("n", "-"),
                _num(st.get("mean")),
                _num(st.get("p95")),
                r.get("unit", ""),
                mark(r),
                r["run"],
            ]
        )
    measurements = _table(
        ["metric", "device", "test", "n", "mean", "p95", "unit", "verdict", "run"], rows
    )
    issues = "".join(
        f"<h2>{title}</h2><ul>{''.join(f'<li>{html.escape(x)}</li>' for x in items)}</ul>"
        for title, items in (("Clashes", merged.clashes), ("Duplicates", merged.duplicates))
        if items
    )
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mayday-hil merged report</title>"
        f"<style>{style}</style></head><body><h1>mayday-hil: {len(merged.runs)} runs merged</h1>"
        f"<p id='hil-merge-summary'>{s['measurements']} measurements on {len(merged.devices)} devices,"
        f" {s['failed_verdicts']} over budget; {len(merged.clashes)} clashes,"
        f" {len(merged.duplicates)} duplicates; worst exit status {s['exitstatus']}</p>"
        f"<h2>Runs</h2>{runs}<h2>Devices</h2>{devices}{issues}<h2>Measurements</h2>{measurements}"
        "</body></html>"
    )
