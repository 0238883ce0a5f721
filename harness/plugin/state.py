"""Plugin state per process (controller or xdist worker), kept in config.stash."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ProfileError
from harness.measure import Measurement, check
from harness.plugin.run import DeviceSpec, HilRun
from harness.profiles import DEFAULT_PROFILES_DIR, Budget, load_budgets, load_profiles
from harness.report import ResultsWriter

log = logging.getLogger("harness.plugin")
PLUGIN_STATE = pytest.StashKey["WorkerState"]()
_FAILURE_SHELL_TIMEOUT_S = 5.0
_LOGCAT_TAIL_LINES = 200


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


class WorkerState:
    """What one pytest process knows of the run: devices, profiles, budgets, caches."""

    def __init__(
        self,
        config: pytest.Config,
        active: bool,
        is_controller: bool,
        run_dir: Path,
        devices: list[DeviceSpec],
        profiles_dir: Path | None,
    ):
        self.config = config
        self.active = active
        self.is_controller = is_controller
        self.run_dir = run_dir
        self.devices = devices
        self.profiles_dir = profiles_dir
        self.run: HilRun | None = None
        self.results: ResultsWriter | None = None
        self.verdicts: list[dict] = []
        self.retries: dict[str, dict[str, int]] = {}
        self._devices: dict[str, Any] = {}
        self._caps: dict[str, Any] = {}
        self._uis: dict[str, Any] = {}
        self._profiles = None
        self._budgets: dict[str, Budget] | None = None

    # --- construction
    @classmethod
    def from_config(cls, config: pytest.Config, active: bool) -> WorkerState:
        winput = getattr(config, "workerinput", None)
        profiles_dir = config.getoption("profiles_dir") or config.getini("hil_profiles_dir") or None
        profiles_dir = Path(profiles_dir) if profiles_dir else None
        if winput is not None and "hil" in winput:
            data = winput["hil"]
            return cls(
                config,
                True,
                False,
                Path(data["run_dir"]),
                [DeviceSpec(**d) for d in data["devices"]],
                profiles_dir,
            )
        base = Path(
            config.getoption("hil_reports") or config.getini("hil_reports_dir") or "reports"
        )
        if not base.is_absolute():
            base = Path(config.rootpath) / base
        return cls(config, active, winput is None, base / _run_id(), [], profiles_dir)

    def to_workerinput(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "devices": [d.to_dict() for d in self.devices]}

    def start_run(self, config: pytest.Config) -> None:
        """Controller: validate profiles and budgets, start twins, resolve devices, open results."""
        o = config.option
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.results = ResultsWriter(self.run_dir / "results.jsonl")
        self.budgets()  # a malformed budget file stops the run before any device is touched
        self.run = HilRun(self.profiles_dir, "127.0.0.1", o.adb_port)
        if o.shard:
            from harness.farm.stf import parse_shard

            parse_shard(o.shard)  # a malformed --shard: one error before anything starts
        if o.stf and (o.twin or o.device or o.all_devices):
            raise ProfileError(
                "--stf",
                o.stf,
                "leases the run's devices: not with --twin, --device or --all-devices",
            )
        if o.twin:
            self.run.start_twins(o.twin, lab=o.twin_lab)
        if o.stf:
            self.run.lease_stf(
                o.stf,
                o.stf_token or os.environ.get("STF_TOKEN", ""),
                o.stf_filter,
                o.stf_count,
                o.stf_lease_s,
                o.shard,
            )
        self.devices = self.run.resolve(list(o.device), o.profile, o.walt, o.relay, o.camera)
        if self.run.stf is not None and self.run.stf.retries:
            self.retries["stf"] = dict(self.run.stf.retries)  # counted, in the summary
        if o.shard and not o.stf and len(self.devices) > 1:
            from harness.farm.stf import parse_shard, take_shard

            self.devices = take_shard(
                sorted(self.devices, key=lambda d: d.serial), parse_shard(o.shard)
            )
        (self.run_dir / "devices.json").write_text(
            json.dumps([d.to_dict() for d in self.devices], indent=2)
        )

    def stop(self) -> None:
        """Never raises: close results, stop twins and the private adb server by PID."""
        if self.results is not None:
            self.results.close()
        if self.run is not None:
            self.run.stop()

    # --- per-device caches (worker side)
    def device(self, spec: DeviceSpec):
        from harness.device.adb import Device

        if spec.serial not in self._devices:
            self._devices[spec.serial] = Device(spec.serial, host=spec.adb_host, port=spec.adb_port)
        return self._devices[spec.serial]

    def profiles(self):
        if self._profiles is None:
            self._profiles = load_profiles(self.profiles_dir)
        return self._profiles

    def profile(self, spec: DeviceSpec):
        return self.profiles().get(spec.profile) if spec.profile else None

    def capabilities(self, dev):
        from harness.device.probe import probe

        if dev.serial not in self._caps:
            self._caps[dev.serial] = probe(dev)
        return self._caps[dev.serial]

    def ui(self, dev):
        from harness.device.ui import Ui

        if dev.serial not in self._uis:
            self._uis[dev.serial] = Ui.for_device(dev)
        return self._uis[dev.serial]

    def budgets(self) -> dict[str, Budget]:
        if self._budgets is None:
            self._budgets = load_budgets(
                Path(self.profiles_dir or DEFAULT_PROFILES_DIR) / "budgets.yaml"
            )
        return self._budgets

    def budget(self, spec: DeviceSpec) -> Budget:
        override = self.config.getoption("budget") or self.config.getini("hil_budget")
        prof = self.profile(spec)
        name = override or (prof.budget if prof else "default")
        budgets = self.budgets()
        if name not in budgets:
            raise ProfileError(
                str(Path(self.profiles_dir or DEFAULT_PROFILES_DIR) / "budgets.yaml"),
                name,
                f"no such budget; known: {', '.join(sorted(budgets))}",
            )
        return budgets[name]

    def shape(self, spec: DeviceSpec, profile_name: str, approximate: bool = True):
        """A shaper for the device's network: its emulator console (emulators and twins).

        Raises:
            pytest.skip.Exception: a device with no console (shape it on the lab gateway instead).
        """
        from harness.network import load_network_profile
        from harness.network.console import EmulatorConsoleShaper

        profile = load_network_profile(profile_name)
        if spec.console_port is None:
            pytest.skip(
                f"{spec.serial} has no emulator console: shape its Wi-Fi on the lab gateway "
                f"(hil net apply {profile_name} --via netem --dev IFACE)"
            )
        return EmulatorConsoleShaper(
            profile,
            spec.console_port,
            token_file=Path(spec.console_token_file),
            approximate=approximate,
        )

    # --- controller reporting
    def environment_rows(self) -> dict[str, str]:
        rows = {"mayday-hil run": self.run_dir.name}
        for spec in self.devices:
            facts = f"{spec.model}, API {spec.api_level}, profile {spec.profile or 'none'}"
            try:
                caps = self.capabilities(self.device(spec))
                facts += (
                    f"; mic {'yes' if caps.microphone else 'no'}, front cam {'yes' if caps.front_camera else 'no'}"
                    f", back cam {'yes' if caps.back_camera else 'no'}"
                    f", Wi-Fi {'connected' if caps.wifi and caps.wifi.connected else 'not connected'}"
                    f", account {'yes' if caps.account_registered else 'no'}"
                    f", capture {'/'.join(caps.capture_backends)}"
                )
            except Exception as e:  # the environment table must never break the run
                facts += f"; capabilities not probed: {e}"
            rows[f"Device {spec.serial}"] = facts
        return rows

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Registered as a plugin on the controller: every measurement goes to results.jsonl."""
        for key, value in report.user_properties:
            if key == "hil_measurement":
                if self.results is not None:
                    self.results.write(value)
                self.verdicts.append(value)
            elif key == "hil_retries":
                per = self.retries.setdefault(value["device"], {})
                for what, n in value["counts"].items():
                    per[what] = per.get(what, 0) + n

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        """The network matrix in the summary: per device and network profile, connect time and
        the media figures (a cell over its budget says so)."""
        table = network_matrix(self.verdicts)
        if table:
            prefix.append(table)

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.jsonl"

    @property
    def results_count(self) -> int:
        return self.results.count if self.results else 0

    def summary_lines(self) -> list[str]:
        lines = []
        for v in self.verdicts:
            verdict = v.get("verdict") or {}
            mark = (
                "PASS"
                if verdict.get("passed", True)
                else ("INCONCLUSIVE" if verdict.get("inconclusive") else "FAIL")
            )
            stats = v.get("stats") or {}
            lines.append(
                f"{mark} {v['metric']} on {v['device']}: n={stats.get('n')} mean={stats.get('mean', float('nan')):.4g} "
                f"p95={stats.get('p95', float('nan')):.4g} {v.get('unit', '')}"
            )
        for dev, counts in self.retries.items():
            lines.append(f"retries on {dev}: " + ", ".join(f"{k}={n}" for k, n in counts.items()))
        return lines

    def write_summary(self, exitstatus: int) -> None:
        summary = {
            "run": self.run_dir.name,
            "exitstatus": exitstatus,
            "devices": [d.to_dict() for d in self.devices],
            "measurements": len(self.verdicts),
            "failed_verdicts": sum(
                1 for v in self.verdicts if not (v.get("verdict") or {}).get("passed", True)
            ),
            "retries": self.retries,
        }
        try:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        except OSError as e:
            log.warning("could not write summary: %s", e)


class Recorder:
    """The `measure` fixture: measurements of one test, checked against its budget."""

    def __init__(self, nodeid: str, spec: DeviceSpec, budget: Budget):
        self.nodeid = nodeid
        self.spec = spec
        self.budget = budget
        self.measurements: list[Measurement] = []
        self.verdicts: dict[int, Any] = {}

    def __call__(self, name: str, unit: str, **meta) -> Measurement:
        m = Measurement(name, unit, meta=dict(meta))
        self.measurements.append(m)
        return m

    def check(self, m: Measurement, raise_on_fail: bool = True):
        verdict = check(m, self.budget)
        self.verdicts[id(m)] = verdict
        if raise_on_fail:
            verdict.raise_if_failed()
        return verdict

    def records(self) -> list[dict[str, Any]]:
        out = []
        for m in self.measurements:
            if not m.samples:
                continue
            verdict = self.verdicts.get(id(m))
            out.append(
                {
                    "test": self.nodeid,
                    "device": self.spec.serial,
                    "profile": self.spec.profile,
                    "model": self.spec.model,
                    "metric": m.name,
                    "unit": m.unit,
                    "stats": asdict(m.stats()),
                    "uncertainty": m.uncertainty,
                    "samples": [s.value for s in m.samples],
                    "meta": m.meta,
                    "verdict": verdict.to_dict() if verdict else None,
                    "t": time.time(),
                }
            )
        return out


MATRIX_COLUMNS = (  # metric, statistic shown, format
    ("connect_time_s", "mean", "{:.2f} s"),
    ("glass_to_glass_ms", "p50", "{:.0f} ms"),
    ("share_latency_ms", "p50", "{:.0f} ms"),
    ("share_fps", "mean", "{:.1f} fps"),
    ("share_ssim", "mean", "{:.3f}"),
    ("share_freeze_ms", "max", "{:.0f} ms"),
)


def network_matrix(records: list[dict[str, Any]]) -> str:
    """HTML table: one row per (device, network profile), one column per MATRIX_COLUMNS metric,
    from results records whose meta names a network ("" when there are none)."""
    import html

    cells: dict[tuple[str, str], dict[str, str]] = {}
    wanted = {c[0]: c for c in MATRIX_COLUMNS}
    for v in records:
        net = (v.get("meta") or {}).get("network")
        col = wanted.get(v.get("metric"))
        if not net or col is None:
            continue
        value = (v.get("stats") or {}).get(col[1])
        if value is None:
            continue
        verdict = v.get("verdict") or {}
        mark = (
            ""
            if verdict.get("passed", True)
            else (" (inconclusive)" if verdict.get("inconclusive") else " (over budget)")
        )
        cells.setdefault((v["device"], net), {})[col[0]] = col[2].format(value) + mark
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
    return f"<h3>Per network profile</h3><table>{head}{rows}</table>"


def failure_extras(dev) -> list:
    """Screenshot and logcat tail of a device for a failed test; never raises, bounded."""
    from pytest_html import extras

    from harness.report.html import png_b64

    out = []
    try:
        out.append(
            extras.png(
                png_b64(dev.screenshot_png(timeout_s=_FAILURE_SHELL_TIMEOUT_S)),
                f"screen of {dev.serial}",
            )
        )
    except Exception as e:
        out.append(extras.text(f"no screenshot: {e}", name="screenshot"))
    try:
        text = dev.shell("logcat -d -v time", timeout_s=_FAILURE_SHELL_TIMEOUT_S).stdout
        tail = "\n".join(text.splitlines()[-_LOGCAT_TAIL_LINES:])
        out.append(extras.text(tail or "(empty)", name=f"logcat {dev.serial}"))
    except Exception as e:
        out.append(extras.text(f"no logcat: {e}", name="logcat"))
    return out
