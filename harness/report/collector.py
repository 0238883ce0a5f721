"""What the report knows of a run, gathered on the controller from each test's reports.

`RunReport` receives pytest's test reports (the plugin forwards `pytest_runtest_logreport`),
writes every measurement to results.jsonl as it arrives, counts outcomes, skips by reason and
retries, keeps the worst frames for the overview, and writes summary.json. It runs only on the
xdist controller (or the single pytest process).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.record import FAIL, INCONCLUSIVE, RECORDED, ResultRecord
from harness.report.results import ResultsWriter

log = logging.getLogger(__name__)

# attribute names the plugin sets on pytest's TestReport (they survive xdist serialisation)
REPORT_RECORDS = "hil_records"  # list of ResultRecord dicts (teardown report)
REPORT_DEVICE = "hil_device"  # serial of the device the test ran on
REPORT_RETRIES = "hil_retries"  # {"device": serial, "counts": {what: n}}
REPORT_INTERRUPTED = "hil_interrupted"  # the run was stopped during this test
INTERRUPTED_EXIT = 2  # pytest.ExitCode.INTERRUPTED
MAX_WORST_FRAMES = 24


@dataclass
class TestOutcome:
    """How one test ended, as the overview counts it."""

    nodeid: str
    device: str | None
    outcome: str  # passed, failed, error, skipped, interrupted
    reason: str = ""
    duration_s: float = 0.0


@dataclass
class RunReport:
    """The controller's view of the run: devices, records, outcomes, retries, worst frames."""

    run_dir: Path
    devices: list[dict[str, Any]] = field(default_factory=list)
    records: list[ResultRecord] = field(default_factory=list)
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    retries: dict[str, dict[str, int]] = field(default_factory=dict)
    device_recoveries: dict[str, int] = field(default_factory=dict)  # waits before a test
    worst_frames: list[dict[str, str]] = field(default_factory=list)
    interrupted_by: str | None = None
    writer: ResultsWriter | None = None

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.jsonl"

    def open(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = ResultsWriter(self.results_path)

    def close(self) -> None:
        """Never raises."""
        if self.writer is not None:
            self.writer.close()

    # --- devices
    def device(self, serial: str | None) -> dict[str, Any]:
        for d in self.devices:
            if d.get("serial") == serial:
                return d
        return {"serial": serial or "", "model": "", "profile": None}

    def device_name(self, serial: str | None, record: ResultRecord | None = None) -> str:
        """A device as people name it: model and profile ("KFTHWI (fire-hdx-7-2013)"); a
        device not in the run's list is named from the record."""
        d = self.device(serial)
        model = d.get("model") or (record.model if record else "") or serial or "no device"
        profile = d.get("profile") or (record.profile if record else None)
        return f"{model} ({profile})" if profile else model

    # --- intake
    def add(self, report: Any) -> None:
        """Take one pytest TestReport (setup, call or teardown) of a test."""
        device = getattr(report, REPORT_DEVICE, None)
        for raw in getattr(report, REPORT_RECORDS, None) or []:
            record = ResultRecord.from_dict(raw) if isinstance(raw, dict) else raw
            record.run = record.run or self.run_id
            self.records.append(record)
            if self.writer is not None:
                self.writer.write(record)
        for key, value in getattr(report, "user_properties", None) or []:
            if key == "hil_device_recovery" and report.when == "setup":  # once per test
                dev = value["device"]
                self.device_recoveries[dev] = self.device_recoveries.get(dev, 0) + 1
        retries = getattr(report, REPORT_RETRIES, None)
        if retries:
            per = self.retries.setdefault(retries["device"], {})
            for what, n in retries["counts"].items():
                per[what] = per.get(what, 0) + n
        for extra in getattr(report, "extras", None) or []:
            if extra.get("hil_kind") == "worst_frame" and len(self.worst_frames) < MAX_WORST_FRAMES:
                self.worst_frames.append(
                    {
                        "test": report.nodeid,
                        "name": extra.get("name") or "",
                        "b64": extra["content"],
                        "mime": extra.get("mime_type") or "image/png",
                        "full": extra.get("hil_full") or "",
                    }
                )
        self._outcome(report, device)

    def _outcome(self, report: Any, device: str | None) -> None:
        prev = self.outcomes.get(report.nodeid)
        duration = (prev.duration_s if prev else 0.0) + float(getattr(report, "duration", 0.0))
        if getattr(report, REPORT_INTERRUPTED, False):
            outcome, reason = "interrupted", f"stopped by {self.interrupted_by or 'interrupt'}"
        elif report.skipped:
            outcome, reason = "skipped", _skip_reason(report)
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
            reason = _first_line(getattr(report, "longreprtext", "") or "")
        else:
            outcome, reason = "passed", ""
        if prev is not None and prev.outcome != "passed" and outcome == "passed":
            outcome, reason = prev.outcome, prev.reason  # a passed teardown after a failed call
        self.outcomes[report.nodeid] = TestOutcome(
            report.nodeid, device or (prev.device if prev else None), outcome, reason, duration
        )

    # --- figures
    def counts(self) -> dict[str, int]:
        """Tests per outcome, budget breaches (FAIL records), inconclusive records."""
        c = Counter(o.outcome for o in self.outcomes.values())
        marks = Counter(r.mark for r in self.records)
        return {
            "tests": len(self.outcomes),
            "passed": c["passed"],
            "failed": c["failed"],
            "errors": c["error"],
            "skipped": c["skipped"],
            "interrupted": c["interrupted"],
            "budget_breaches": marks[FAIL],
            "inconclusive": marks[INCONCLUSIVE],
            "recorded": marks[RECORDED],
            "measurements": len(self.records),
        }

    def skips_by_reason(self) -> list[tuple[str | None, str, int]]:
        """(device serial, reason, tests) for every distinct skip reason on every device."""
        c = Counter(
            (o.device, _strip_device(o.reason, o.device))
            for o in self.outcomes.values()
            if o.outcome == "skipped"
        )
        return [
            (d, r, n) for (d, r), n in sorted(c.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
        ]

    def verdict_line(self) -> str:
        """The run in one line: devices, tests, budget breaches, inconclusive, errors, skips."""
        c = self.counts()
        parts = [
            f"{len(self.devices)} device{'s' if len(self.devices) != 1 else ''}",
            f"{c['tests']} tests: {c['passed']} passed, {c['failed']} failed",
            f"{c['budget_breaches']} budget breach{'es' if c['budget_breaches'] != 1 else ''}",
            f"{c['inconclusive']} inconclusive",
            f"{c['errors']} infrastructure error{'s' if c['errors'] != 1 else ''}",
            f"{c['skipped']} skipped",
        ]
        if c["interrupted"] or self.interrupted_by:
            parts.append(f"{c['interrupted']} interrupted (stopped by {self.interrupted_by})")
        return ", ".join(parts)

    def record_line(self, r: ResultRecord) -> str:
        """One terminal line per measurement: verdict, figure, test, device model and network."""
        where = (
            f"{readable_test_id(r.test, r.device, r.profile)} on {self.device_name(r.device, r)}"
        )
        if r.network:
            where += f", network {r.network}"
        figure = (
            f"p50={r.stat('p50'):.4g} p95={r.stat('p95'):.4g} {r.unit} (n={int(r.stat('n'))})"
            if r.stats
            else "no samples"
        )
        flag = " [interrupted]" if r.interrupted else ""
        return f"{r.mark} {r.metric} {figure}: {where}{flag}"

    def summary_lines(self) -> list[str]:
        lines = [self.record_line(r) for r in self.records]
        for dev, counts in self.retries.items():
            lines.append(
                f"retries on {self.device_name(dev)}: "
                + ", ".join(f"{k}={n}" for k, n in counts.items())
            )
        for dev, n in self.device_recoveries.items():
            lines.append(
                f"device recoveries on {self.device_name(dev)}: {n} "
                "(waited for it before the next test)"
            )
        return lines

    def write_summary(self, exitstatus: int) -> None:
        """summary.json. A run that was interrupted says so (exit status 2) whatever pytest
        passed down: a second Ctrl-C during the first one's handling leaves pytest's session
        status at 0. Never raises."""
        if self.interrupted_by and exitstatus == 0:
            exitstatus = INTERRUPTED_EXIT
        c = self.counts()
        summary = {
            "run": self.run_id,
            "exitstatus": int(exitstatus),
            "interrupted_by": self.interrupted_by,
            "devices": self.devices,
            "measurements": len(self.records),
            "failed_verdicts": c["budget_breaches"] + c["inconclusive"],
            "counts": c,
            "skips": [{"device": d, "reason": r, "tests": n} for d, r, n in self.skips_by_reason()],
            "retries": self.retries,
            "device_recoveries": self.device_recoveries,
        }
        try:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        except OSError as e:
            log.warning("could not write summary: %s", e)


def environment_rows(run_id: str, devices: list[tuple[dict[str, Any], Any]]) -> dict[str, str]:
    """pytest-html's environment rows: the run, and each device with its probed capabilities
    (a Capabilities, or the exception that prevented probing)."""
    rows = {"mayday-hil run": run_id}
    for spec, caps in devices:
        facts = f"{spec['model']}, API {spec['api_level']}, profile {spec.get('profile') or 'none'}"
        if isinstance(caps, BaseException) or caps is None:
            facts += f"; capabilities not probed: {caps}"
        else:
            facts += (
                f"; mic {'yes' if caps.microphone else 'no'}"
                f", front cam {'yes' if caps.front_camera else 'no'}"
                f", back cam {'yes' if caps.back_camera else 'no'}"
                f", Wi-Fi {'connected' if caps.wifi and caps.wifi.connected else 'not connected'}"
                f", account {'yes' if caps.account_registered else 'no'}"
                f", capture {'/'.join(caps.capture_backends)}"
            )
        rows[f"Device {spec['serial']}"] = facts
    return rows


def readable_test_id(nodeid: str, serial: str | None = None, profile: str | None = None) -> str:
    """A test id people read: file name and test, the device's parameter id removed.

    "suites/test_poor_wifi.py::test_connect[127.0.0.1:5555-fire-hdx-7-2013-edge]"
    -> "test_poor_wifi.py::test_connect[edge]".
    """
    nodeid = re.sub(r"@[^\[\]/]*$", "", nodeid)  # xdist loadgroup's "@group" suffix
    path, _, rest = nodeid.partition("::")
    name = f"{path.rsplit('/', 1)[-1]}::{rest}" if rest else path.rsplit("/", 1)[-1]
    m = re.match(r"^(.*?)\[(.*)\]$", name)
    if not m or not serial:
        return name
    params = m.group(2)
    for dev_id in (f"{serial}-{profile or 'unknown'}", serial):
        if dev_id in params:
            params = params.replace(dev_id, "").replace("--", "-").strip("-")
            break
    return f"{m.group(1)}[{params}]" if params else m.group(1)


def _skip_reason(report: Any) -> str:
    lr = report.longrepr
    text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr or "")
    return text.removeprefix("Skipped: ").strip()


def _strip_device(reason: str, serial: str | None) -> str:
    if serial and reason.startswith(serial):
        reason = reason[len(serial) :].lstrip(" :")
        reason = re.sub(r"^\([^)]*\)\s*", "", reason)  # "(fire-hd-7-2013) lacks microphone"
    return reason


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("E "):
            return line[2:].strip()
    lines = [x for x in text.splitlines() if x.strip()]
    return lines[-1].strip() if lines else ""
