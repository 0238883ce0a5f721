"""The mayday-hil pytest plugin (entry point pytest11: mayday_hil).

Options: --device SERIAL, --all-devices, --profile NAME, --twin PROFILE[xN], --budget NAME,
--profiles-dir DIR, --adb-port P, --hil-reports DIR. Markers: requires(...), budget(metric),
network(profile). Fixtures: device, profile, capabilities, ui, budget, measure, hil_device.
With pytest-xdist, tests are grouped per device (--dist loadgroup), so a device is driven by
one worker at a time. Reports and results.jsonl are written on the controller only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.plugin.state import PLUGIN_STATE, WorkerState
from harness.report import images as report_images
from harness.report.collector import REPORT_DEVICE, REPORT_RECORDS, REPORT_RETRIES
from harness.report.junit import junit_properties

log = logging.getLogger("harness.plugin")

_REQUIREMENTS = {
    "microphone": lambda c: c.microphone,
    "front_camera": lambda c: c.front_camera,
    "back_camera": lambda c: c.back_camera,
    "camera": lambda c: c.front_camera or c.back_camera,
    "wifi": lambda c: c.wifi_hardware,
    "wifi_connected": lambda c: bool(c.wifi and c.wifi.connected),
    "account": lambda c: c.account_registered,
    "screenrecord": lambda c: "screenrecord-h264" in c.capture_backends,
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("mayday-hil", "mayday-hil: devices, twins, budgets")
    g.addoption(
        "--device",
        action="append",
        default=[],
        metavar="SERIAL",
        help="run on this attached device (repeatable)",
    )
    g.addoption(
        "--all-devices", action="store_true", help="run on every attached device in `device` state"
    )
    g.addoption(
        "--profile", default=None, metavar="NAME", help="only devices matching this device profile"
    )
    g.addoption(
        "--twin",
        action="append",
        default=[],
        metavar="PROFILE[xN]",
        help="start N device twins of PROFILE for the run",
    )
    g.addoption(
        "--budget",
        default=None,
        metavar="NAME",
        help="budget to check against (default: the profile's)",
    )
    g.addoption(
        "--profiles-dir", default=None, metavar="DIR", help="device profiles and budgets.yaml"
    )
    g.addoption(
        "--adb-port",
        type=int,
        default=None,
        metavar="P",
        help="adb server port for attached devices (default $ANDROID_ADB_SERVER_PORT or 5037)",
    )
    g.addoption(
        "--hil-reports",
        default=None,
        metavar="DIR",
        help="where reports/<run>/ go (default: reports)",
    )
    g.addoption(
        "--network",
        default=None,
        metavar="PROFILE",
        help="network profile for every device test (hil net list)",
    )
    g.addoption(
        "--media-slots",
        type=int,
        default=None,
        metavar="N",
        help="live media sessions at once across workers (default: one per two cores)",
    )
    g.addoption(
        "--walt",
        default=None,
        metavar="PORT",
        help="serial port of the WALT on the device's screen",
    )
    g.addoption(
        "--relay",
        default=None,
        metavar="PORT",
        help="serial port of the USB relay powering the device",
    )
    g.addoption(
        "--camera",
        default=None,
        metavar="URL",
        help="lab camera filming the device and the agent's monitor (dual view)",
    )
    g.addoption(
        "--twin-lab",
        action="store_true",
        help="give each twin a simulated WALT, power relay and lab camera",
    )
    parser.addini("hil_profiles_dir", "device profiles directory", default="")
    parser.addini("hil_reports_dir", "reports directory", default="reports")
    parser.addini("hil_budget", "budget name overriding the profile's", default="")
    parser.addini(
        "hil_media_slots",
        "live media sessions at once across workers (default: one per two cores)",
        default="",
    )


def _active(config: pytest.Config) -> bool:
    o = config.option
    return bool(
        getattr(o, "twin", None)
        or getattr(o, "device", None)
        or getattr(o, "all_devices", False)
        or getattr(o, "profile", None)
        or hasattr(config, "workerinput")
        and "hil" in config.workerinput
    )


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # one device per worker: tests of a device form one xdist group
    if getattr(config.option, "numprocesses", None) and _active(config):
        if getattr(config.option, "dist", "no") in ("no", "load"):
            config.option.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): skip unless the device has them "
        f"({', '.join(sorted(_REQUIREMENTS))}, eligible)",
    )
    config.addinivalue_line("markers", "budget(metric): the budget metric this test measures")
    config.addinivalue_line("markers", "network(profile): the network profile this test runs under")
    state = WorkerState.from_config(config, active=_active(config))
    config.stash[PLUGIN_STATE] = state
    if hasattr(config, "workerinput") and state.active:
        # xdist workers parse the original command line: make them tag the device groups too
        config.option.loadgroup = True
        report_images.configure(state.images_dir)
        from harness.report.interrupt import register_worker

        register_worker(state.run_dir, config.workerinput.get("workerid", "gw"))
    if state.active:  # the report's hooks (results, interrupts); reporting on the controller
        config.pluginmanager.register(state, "mayday-hil-results")
    if state.is_controller and state.active:
        if not config.option.htmlpath:
            config.option.htmlpath = str(state.run_dir / "report.html")
            config.option.self_contained_html = True
            state.images_dir = state.run_dir / "images"  # thumbnails inside, full size beside
        elif not config.option.self_contained_html:
            state.images_dir = Path(config.option.htmlpath).parent / "images"
        # else --html FILE --self-contained-html: full-size images inside the one file
        overridden = any(
            o.startswith("generate_report_on_test=") for o in (config.option.override_ini or [])
        )
        if "generate_report_on_test" not in config.inicfg and not overridden:
            # the HTML report is rewritten during the run (a run killed outright keeps it), on
            # a schedule that keeps the total work linear in the tests (ReportRewriter)
            from harness.report.html import ReportRewriter

            state.rewriter = ReportRewriter(config, before_write=state.refresh_overview)
            config.pluginmanager.register(state.rewriter, "mayday-hil-rewriter")
        report_images.configure(state.images_dir)
        _stop_on_termination(config)
        try:
            state.start_run(config)
        except Exception as e:
            state.stop()
            raise pytest.UsageError(f"mayday-hil: {e}") from None


_TERMINATION_SIGNALS = ("SIGTERM", "SIGHUP")


def _stop_on_termination(config: pytest.Config) -> None:
    """SIGTERM and SIGHUP (a CI job cancelled, a terminal closed) end the run as Ctrl-C does:
    the report, the summary and results.jsonl are written and every process is stopped."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    state: WorkerState = config.stash[PLUGIN_STATE]

    def interrupt(signum, frame):
        name = signal.Signals(signum).name
        state.interrupted_by = state.interrupted_by or name  # before anything can go wrong
        if state.report is not None:
            state.report.interrupted_by = state.interrupted_by
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise KeyboardInterrupt(f"mayday-hil: stopped by {name}")

    previous = {}
    for name in _TERMINATION_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            previous[sig] = signal.signal(sig, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    config.add_cleanup(lambda: [signal.signal(sig, old) for sig, old in previous.items()])


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller -> worker: the run's devices and report dir, as plain data."""
    state: WorkerState = node.config.stash[PLUGIN_STATE]
    if state.active:
        node.workerinput["hil"] = state.to_workerinput()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    state: WorkerState = session.config.stash[PLUGIN_STATE]
    if not (state.is_controller and state.active):
        return
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pragma: no cover - pytest-html depends on it
        return
    meta = session.config.stash.get(metadata_key, None)
    if meta is not None:
        meta.update(state.environment_rows())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_device" not in metafunc.fixturenames:
        return
    state: WorkerState = metafunc.config.stash[PLUGIN_STATE]
    specs = state.devices
    if not specs:
        reason = (
            "no device for this run: pass --twin PROFILE, --device SERIAL, --all-devices or --profile NAME"
            if not state.active
            else "no attached device matches the selection"
        )
        metafunc.parametrize(
            "hil_device",
            [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
            ids=["no-device"],
            scope="session",
        )
        return
    metafunc.parametrize("hil_device", specs, ids=[s.id for s in specs], scope="session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("hil_device")
        if spec is not None:
            item.add_marker(pytest.mark.xdist_group(spec.id))


# --- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def hil_state(pytestconfig) -> WorkerState:
    return pytestconfig.stash[PLUGIN_STATE]


@pytest.fixture(scope="session")
def hil_device(request):
    """The DeviceSpec this test runs on (parametrized over the run's devices)."""
    return request.param


@pytest.fixture
def device(hil_device, hil_state: WorkerState, request):
    """The harness Device (harness.device.adb.Device) for this test; logcat cleared at start."""
    dev = hil_state.device(hil_device)
    request.node.stash[_DEVICE_USED] = dev
    try:
        dev.shell("logcat -c", timeout_s=5.0)
    except Exception as e:  # a device that is gone fails in the test itself, with its own error
        log.info("%s: logcat -c failed: %s", dev.serial, e)
    return dev


@pytest.fixture
def profile(hil_device, hil_state: WorkerState):
    """The matched DeviceProfile, or None for a model no profile describes."""
    return hil_state.profile(hil_device)


@pytest.fixture
def capabilities(device, hil_state: WorkerState):
    """Capabilities probed once per device per worker."""
    return hil_state.capabilities(device)


@pytest.fixture
def ui(device, hil_state: WorkerState):
    """The UI driver (uiautomator2 or dump back end, chosen by probing)."""
    return hil_state.ui(device)


@pytest.fixture
def budget(hil_device, hil_state: WorkerState, request):
    """The Budget for this device (profile's budget, --budget or ini hil_budget overrides)."""
    return hil_state.budget(hil_device)


@pytest.fixture
def measure(request, hil_device, budget, hil_state: WorkerState):
    """measure(name, unit) -> Measurement; measure.check(m) -> Verdict (raises BudgetExceeded).

    Every measurement is sent to the controller's results.jsonl when the test ends, pass or fail;
    a run stopped during the test keeps what was measured until then, marked interrupted.
    """
    from harness.plugin.state import Recorder

    rec = Recorder(request.node.nodeid, hil_device, budget, run=hil_state.run_dir.name)
    hil_state.live[request.node.nodeid] = (request.node, rec)
    try:
        yield rec
    finally:
        hil_state.live.pop(request.node.nodeid, None)
        records = rec.records()
        request.node.stash[_RECORDS] = [r.to_dict() for r in records]
        request.node.user_properties.extend(junit_properties(records))


@pytest.fixture
def media_network():
    """The network profile the AgentBot's media crosses, through the harness's impairment relay
    (every byte of the WebRTC session: delay, jitter, loss, rate, outages). None: direct.
    Parametrize it by name: `@pytest.mark.parametrize("media_network", ["poor-wifi", ...])`."""
    return None


@pytest.fixture
def agent_bot(request, hil_device, hil_state: WorkerState, media_network):
    """The reference AgentBot (WebRTC via aiortc) joined to the twin world's support backend as
    the agent for this device only; stopped at teardown. Skips on devices with no twin world.
    With `media_network`, its media crosses the relay and the relay's counters go to the report.
    It holds a media slot (--media-slots) while it lives: live sessions on a small host would
    otherwise starve each other and measure the host instead of the product."""
    if not hil_device.twin_control:
        pytest.skip(
            f"{hil_device.serial}: the reference AgentBot speaks to the twin world's support backend; "
            "a real device needs an adapter for the production support backend"
        )
    from harness.session.agent import AiortcAgentBot
    from harness.twin.control import control_request

    profile = None
    if media_network:
        from harness.network import load_network_profile

        profile = load_network_profile(media_network)  # an unknown name: one clear error
    info = control_request(hil_device.twin_control, {"op": "backend", "serial": hil_device.serial})
    if not info.get("ok"):
        pytest.skip(f"{hil_device.serial}: {info.get('error')}")
    import uuid

    monitor = (
        hil_device.camera_url.rsplit("/", 1)[0] + "/agent_display"
        if hil_device.camera_url
        else None
    )
    from harness.plugin.slots import MediaSlot, default_slots

    slots = (
        request.config.getoption("media_slots")
        or int(request.config.getini("hil_media_slots") or 0)
        or default_slots()
    )
    with MediaSlot(hil_state.run_dir, slots, who=hil_device.serial) as slot:
        if slot.waited_s > 0.5:
            request.node.user_properties.append(("hil_media_slot_wait_s", round(slot.waited_s, 1)))
        bot = AiortcAgentBot(
            tuple(info["address"]),
            name=f"bot-{uuid.uuid4().hex[:8]}",
            device=hil_device.serial,
            display_url=monitor,
            media_profile=profile,
            http=tuple(info["http"]) if info.get("http") else None,
        )
        bot.start()
        try:
            yield bot
        finally:
            bot.stop()
            counters = bot.media_counters()
            if counters is not None:
                request.node.user_properties.append(("hil_media_relay", counters.to_dict()))


@pytest.fixture
def live_session(device, ui, agent_bot):
    """A connected support session with the AgentBot as the agent: (driver, connect result).
    Ended at teardown (cleanup never raises)."""
    from harness.session import SessionDriver

    driver = SessionDriver(device, ui)
    result = driver.connect(timeout_s=30)
    agent_bot.wait_connected(15)
    try:
        yield driver, result
    finally:
        try:
            driver.end(timeout_s=5)
        except Exception as e:
            log.info("%s: ending the session: %s", device.serial, e)


@pytest.fixture
def network(request, hil_device, hil_state: WorkerState):
    """The network profile of this test (`network` marker, else --network), applied through the
    device's emulator console for the test's duration and always cleared; None when none.
    Parts the console cannot express are approximated and listed in the report."""
    marker = request.node.get_closest_marker("network")
    name = marker.args[0] if marker else request.config.getoption("network")
    if not name:
        yield None
        return
    with hil_state.shape(hil_device, name) as shaper:
        request.node.user_properties.append(
            ("hil_network", {"profile": name, "approximations": shaper.report.approximations})
        )
        yield shaper


@pytest.fixture(autouse=True)
def _hil_network(request):
    if "hil_device" in request.fixturenames and (
        request.node.get_closest_marker("network") or request.config.getoption("network")
    ):
        request.getfixturevalue("network")


@pytest.fixture(autouse=True)
def _hil_requires(request):
    marker = request.node.get_closest_marker("requires")
    if marker is None or "hil_device" not in request.fixturenames:
        return
    caps = request.getfixturevalue("capabilities")
    missing = []
    for name in marker.args:
        if name == "eligible":
            from harness.device.capabilities import eligibility

            verdict = eligibility(request.getfixturevalue("profile"), caps)
            if not verdict.eligible:
                missing.append(f"eligible ({verdict.reason})")
            continue
        check = _REQUIREMENTS.get(name)
        if check is None:
            raise pytest.UsageError(
                f"@requires({name!r}): unknown capability; use {', '.join(sorted(_REQUIREMENTS))}, eligible"
            )
        if not check(caps):
            missing.append(name)
    if missing:
        spec = request.getfixturevalue("hil_device")
        pytest.skip(f"{spec.serial} ({spec.profile or spec.model}) lacks {', '.join(missing)}")


_DEVICE_USED = pytest.StashKey[object]()
_RECORDS = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """The report layer's facts on each test report: the device, the measurements (teardown),
    retries, and a failed test's screenshot and logcat tail."""
    outcome = yield
    report = outcome.get_result()
    spec = getattr(getattr(item, "callspec", None), "params", {}).get("hil_device")
    if spec is not None:
        setattr(report, REPORT_DEVICE, spec.serial)
    if report.when == "teardown" and _RECORDS in item.stash:
        setattr(report, REPORT_RECORDS, item.stash[_RECORDS])
    dev = item.stash.get(_DEVICE_USED, None)
    if dev is None:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        counts = dict(dev.retries.counts)
        if counts:
            setattr(report, REPORT_RETRIES, {"device": dev.serial, "counts": counts})
    if report.failed and report.when in ("setup", "call"):
        from harness.report.extras import failure_extras

        extras = getattr(report, "extras", [])
        extras.extend(failure_extras(dev))
        report.extras = extras


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state: WorkerState = config.stash.get(PLUGIN_STATE, None)
    if state is None or not state.is_controller or not state.active:
        return
    tr = terminalreporter
    tr.section("mayday-hil")
    for spec in state.devices:
        tr.write_line(
            f"device {spec.serial}: {spec.model} (API {spec.api_level}), profile {spec.profile or 'none'}"
        )
    for line in state.summary_lines():
        tr.write_line(line)
    tr.write_line(f"results: {state.results_path} ({state.results_count} measurements)")
    tr.write_line(f"report:  {config.option.htmlpath}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    state: WorkerState = session.config.stash.get(PLUGIN_STATE, None)
    if state is not None and state.is_controller and state.active:
        state.write_summary(int(session.exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    state: WorkerState = config.stash.get(PLUGIN_STATE, None)
    if state is not None:
        state.stop()
