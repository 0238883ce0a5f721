"""Plugin state per process (controller or xdist worker), kept in config.stash."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError, ProfileError
from harness.farm.devices import DeviceSpec, HilRun
from harness.measure import Measurement, check
from harness.profiles import DEFAULT_PROFILES_DIR, Budget, load_budgets, load_profiles
from harness.report import ResultRecord, RunReport, environment_rows, network_matrix
from harness.report.extras import full_size_links
from harness.report.html import (
    LazyMedia,
    html_report_of,
    log_html,
    row_cells,
    set_prefix,
    verdict_extra,
)
from harness.report.overview import overview_html, row_anchor

log = logging.getLogger("harness.plugin")
PLUGIN_STATE = pytest.StashKey["WorkerState"]()


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
        self.report: RunReport | None = None  # controller only
        self.live: dict[str, tuple[pytest.Item, Recorder]] = {}  # tests measuring right now
        self.interrupted_by: str | None = None
        self.precheck = False  # a child pytest checking the markers only (precheck_markers)
        self._cdf_cache: dict = {}
        self.media = LazyMedia()  # the rows' images of a self-contained report.html
        self._history_done = False
        self.images_dir: Path | None = None  # full-size report images (None: embedded)
        self.rewriter: Any = None  # harness.report.html.ReportRewriter when the run has one
        self._devices: dict[str, Any] = {}
        self._retries_sent: dict[str, dict[str, int]] = {}  # serial -> counts already reported
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
            state = cls(
                config,
                True,
                False,
                Path(data["run_dir"]),
                [DeviceSpec(**d) for d in data["devices"]],
                profiles_dir,
            )
            state.images_dir = Path(data["images_dir"]) if data.get("images_dir") else None
            return state
        base = Path(
            config.getoption("hil_reports") or config.getini("hil_reports_dir") or "reports"
        )
        if not base.is_absolute():
            base = Path(config.rootpath) / base
        return cls(config, active, winput is None, base / _run_id(), [], profiles_dir)

    def to_workerinput(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "devices": [d.to_dict() for d in self.devices],
            "images_dir": str(self.images_dir) if self.images_dir else None,
        }

    def start_run(self, config: pytest.Config) -> None:
        """Controller: validate profiles and budgets, start twins, resolve devices, open results."""
        o = config.option
        from harness.plugin.run import validate_run

        validate_run(  # every option and file, before any device is touched (exit 4 if bad)
            o,
            self.profiles_dir,
            o.budget or config.getini("hil_budget") or None,
            o.media_slots if o.media_slots is not None else config.getini("hil_media_slots"),
        )
        self.report = RunReport(self.run_dir)
        self.report.open()
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
        stf_token = (o.stf_token or os.environ.get("STF_TOKEN", "")) if o.stf else ""
        if o.stf:
            from harness.farm.reaper import STF_TOKEN_ENV

            self.run.start_reaper(env={STF_TOKEN_ENV: stf_token})
        else:
            self.run.start_reaper()
        if o.twin or o.device or o.all_devices or o.profile or o.stf:
            from harness.plugin.run import may_carry_markers, precheck_markers

            # the tests' markers, before any device is touched (the run's own collection finds
            # a bad one only after the twins started): one line, exit 4
            args, cwd = config.invocation_params.args, Path(config.invocation_params.dir)
            bad = None
            if may_carry_markers(list(config.args), cwd, Path(config.rootpath)):
                bad = precheck_markers(args, cwd, config.pluginmanager.hasplugin("xdist"))
            if bad:
                raise HarnessError(bad.removeprefix("mayday-hil: "))
        if o.twin:
            from harness.profiles.app import twin_app_args

            self.run.start_twins(
                o.twin, lab=o.twin_lab, extra_args=twin_app_args(getattr(o, "twin_app", None))
            )
        if o.stf:
            self.run.lease_stf(o.stf, stf_token, o.stf_filter, o.stf_count, o.stf_lease_s, o.shard)
        run = self.run

        def props_of(serial: str) -> dict[str, str]:
            from harness.device.adb import Device

            return Device(serial, host=run.adb_host, port=run.adb_port).getprops()

        self.devices = self.run.resolve(
            list(o.device), o.profile, o.walt, o.relay, o.camera, props_of=props_of
        )
        if self.run.stf is not None and self.run.stf.retries:
            self.report.retries["stf"] = dict(self.run.stf.retries)  # counted, in the summary
        if o.shard and not o.stf and len(self.devices) > 1:
            from harness.farm.stf import parse_shard, take_shard

            self.devices = take_shard(
                sorted(self.devices, key=lambda d: d.serial), parse_shard(o.shard)
            )
        self.report.devices = [d.to_dict() for d in self.devices]
        (self.run_dir / "devices.json").write_text(json.dumps(self.report.devices, indent=2))

    def stop(self) -> None:
        """Never raises: close results, stop twins and the private adb server by PID."""
        if self.report is not None:
            self.report.close()
        if self.run is not None:
            self.run.stop()

    # --- per-device caches (worker side)
    def device(self, spec: DeviceSpec):
        from harness.device.adb import Device

        if spec.serial not in self._devices:
            self._devices[spec.serial] = Device(spec.serial, host=spec.adb_host, port=spec.adb_port)
        return self._devices[spec.serial]

    def new_retries(self, dev) -> dict[str, int]:
        """The device's retries since the last call, by kind (empty: none). The Device keeps a
        running total for the whole run; the report adds up what each test report carries, so
        each test sends only what is new: every retry is counted once."""
        total = {what: int(n) for what, n in dev.retries.counts.items()}
        sent = self._retries_sent.get(dev.serial, {})
        self._retries_sent[dev.serial] = total
        return {what: n - sent.get(what, 0) for what, n in total.items() if n > sent.get(what, 0)}

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

    # --- controller reporting (wired to harness.report)
    def environment_rows(self) -> dict[str, str]:
        devices = []
        for spec in self.devices:
            try:
                caps = self.capabilities(self.device(spec))
            except Exception as e:  # noqa: BLE001 -- the environment table must never break the run
                caps = e
            devices.append((spec.to_dict(), caps))
        return environment_rows(self.run_dir.name, devices)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Registered as a plugin: on the controller every measurement goes to results.jsonl,
        and the overview is refreshed before pytest-html rewrites the report after the test."""
        if self.report is None or not self.is_controller:
            return
        extras = list(getattr(report, "extras", None) or [])
        if report.failed and report.when in ("setup", "call"):
            extras.insert(0, verdict_extra(report))
        links = full_size_links(extras)
        if links or report.failed:
            report.extras = [*extras, *links]
        self.report.add(report)
        if extras and getattr(self.config.option, "self_contained_html", False):
            report.extras = self.media.take(list(report.extras))  # out of pytest-html's JSON
        if report.when == "teardown" and self.rewriter is None:
            self.refresh_overview()  # pytest-html rewrites after every test itself

    def refresh_overview(self) -> None:
        """The overview in pytest-html's summary, for the next write of report.html."""
        data = html_report_of(self.config)
        if data is not None and self.report is not None:
            self._set_summary(data.additional_summary["prefix"])

    def _set_summary(self, prefix: list, final: bool = False) -> None:
        history = self._history_section() if final else ""
        try:
            overview = overview_html(self.report, self._cdf_cache, history, final)
        except Exception as e:  # noqa: BLE001 -- the overview must never break the run
            log.warning("overview not drawn: %s", e)
            overview = f"<section id='hil-overview'><p>overview not drawn: {e}</p></section>"
        set_prefix(prefix, overview, network_matrix(self.report.records), self.media.html())

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        """The overview first, then the network matrix (per device and network profile)."""
        if self.report is not None and self.is_controller:
            self.append_history(int(session.exitstatus))
            self._set_summary(prefix, final=True)

    def append_history(self, exitstatus: int) -> None:
        """This run's measurements into reports/history.sqlite (once). Never raises."""
        if self._history_done or self.report is None:
            return
        self._history_done = True
        from harness.report.history import HISTORY_FILE, History

        if self.report.interrupted_by and exitstatus == 0:
            exitstatus = 2
        try:
            with History(self.run_dir.parent / HISTORY_FILE) as h:
                h.append_run(
                    self.run_dir.name,
                    self.report.records,
                    exitstatus=exitstatus,
                    app_build=os.environ.get("HIL_APP_BUILD", ""),
                    interrupted_by=self.report.interrupted_by,
                )
        except Exception as e:  # noqa: BLE001 -- the history must never break the run: it logs
            log.warning("history not written: %s", e)

    def _history_section(self) -> str:
        from harness.report.history import HISTORY_FILE, History
        from harness.report.trend import trend_section

        try:
            with History(self.run_dir.parent / HISTORY_FILE) as h:
                if not h.has_run(self.run_dir.name):
                    return ""
                return trend_section(h, self.run_dir.name)
        except Exception as e:  # noqa: BLE001 -- the overview must never break the run
            log.warning("history not shown: %s", e)
            return f"<p>history not shown: {e}</p>"

    def pytest_html_results_table_row(self, report, cells) -> None:
        row_cells(report, cells, row_anchor(report.nodeid))

    def pytest_html_results_table_html(self, report, data) -> None:
        log_html(report, data)

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo) -> None:
        """Ctrl-C, SIGTERM, SIGHUP: each test measuring right now hands over what it measured,
        marked interrupted, as reports of its own (results.jsonl, the HTML report). Never
        raises."""
        from harness.report import interrupt

        self.interrupted_by = self.interrupted_by or "SIGINT"
        if self.report is not None:
            self.report.interrupted_by = self.interrupted_by
        live, self.live = list(self.live.values()), {}
        worker_id = getattr(self.config, "workerinput", {}).get("workerid")
        spilled = []
        for item, rec in live:
            try:
                records = [r.to_dict() for r in rec.records(interrupted=True)]
                if worker_id is not None:  # xdist: the controller takes it from a file
                    spilled.append(
                        {
                            "nodeid": item.nodeid,
                            "location": list(item.location),
                            "keywords": [str(k) for k in item.keywords],
                            "device": rec.spec.serial,
                            "records": records,
                        }
                    )
                    continue
                reports = interrupt.interrupted_reports(
                    item, records, self.interrupted_by, rec.spec.serial
                )
                for report in reports:
                    item.ihook.pytest_runtest_logreport(report=report)
            except Exception as e:  # noqa: BLE001 -- cleanup never raises
                log.warning("%s: measurements not flushed: %s", item.nodeid, e)
        if worker_id is not None:
            interrupt.spill(self.run_dir, worker_id, spilled)
        elif self.is_controller and self.report is not None:
            for entry in interrupt.ask_workers(self.run_dir, self.interrupted_by):
                try:
                    for report in interrupt.spilled_reports(entry, self.interrupted_by):
                        self.config.hook.pytest_runtest_logreport(report=report)
                except Exception as e:  # noqa: BLE001 -- cleanup never raises
                    log.warning("%s: measurements not merged: %s", entry.get("nodeid"), e)

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.jsonl"

    @property
    def results_count(self) -> int:
        return self.report.writer.count if self.report and self.report.writer else 0

    @property
    def verdicts(self) -> list[ResultRecord]:
        return self.report.records if self.report else []

    def summary_lines(self) -> list[str]:
        return self.report.summary_lines() if self.report else []

    def write_summary(self, exitstatus: int) -> None:
        """summary.json and the history store (controller)."""
        if self.report is not None:
            self.report.write_summary(exitstatus)
            self.append_history(exitstatus)


class Recorder:
    """The `measure` fixture: measurements of one test, checked against its budget."""

    def __init__(self, nodeid: str, spec: DeviceSpec, budget: Budget, run: str = ""):
        self.nodeid = nodeid
        self.spec = spec
        self.budget = budget
        self.run = run
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

    def records(self, interrupted: bool = False) -> list[ResultRecord]:
        """One ResultRecord per measurement with samples (`interrupted`: the run was stopped
        while measuring; the samples are those measured until then)."""
        return [
            ResultRecord.from_measurement(
                m,
                test=self.nodeid,
                device=self.spec.serial,
                model=self.spec.model,
                profile=self.spec.profile,
                verdict=self.verdicts.get(id(m)),
                interrupted=interrupted,
                run=self.run,
            )
            for m in list(self.measurements)
            if m.samples
        ]
