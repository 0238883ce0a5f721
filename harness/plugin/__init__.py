"""The mayday-hil pytest plugin (entry point pytest11: mayday_hil).

Options: --device SERIAL, --all-devices, --profile NAME, --twin PROFILE[xN], --budget NAME,
--profiles-dir DIR, --adb-port P, --hil-reports DIR, --app NAME|PATH, --twin-app NAME[@LOCALE],
--agent NAME, --install PATH.apk. Markers: requires(...), budget(metric), network(profile).
Fixtures: device, profile, capabilities, ui, budget, measure, hil_device, app_profile,
session_driver, agent_bot, live_session.
With pytest-xdist, tests are grouped per device (--dist loadgroup), so a device is driven by
one worker at a time. Reports and results.jsonl are written on the controller only.

Size: pytest finds a plugin's hooks and fixtures in the module it registers; they stay together.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.native import limit_malloc_arenas
from harness.plugin.state import PLUGIN_STATE, WorkerState
from harness.report import images as report_images
from harness.report.collector import REPORT_DEVICE, REPORT_RECORDS, REPORT_RETRIES
from harness.report.junit import junit_properties

log = logging.getLogger("harness.plugin")
# `--twins`: the default twin set of the main job (one per kind of device the harness meets:
# Fire OS 3 on API 17, a tablet that is not eligible (no microphone), a modern Android)
DEFAULT_TWINS = ("fire-hdx-7-2013", "fire-hd-7-2013", "android-emulator-api34")

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
    g.addoption(
        "--twins",
        action="store_true",
        help="the main job on twins: " + ", ".join(DEFAULT_TWINS) + " with their lab instruments "
        "(--twin-lab), one xdist worker each unless -n is given",
    )
    g.addoption(
        "--app",
        default=None,
        metavar="NAME|PATH",
        help="app profile of the support feature (device_profiles/apps; default: the device "
        "profile's `app`, or the twins' --twin-app)",
    )
    g.addoption(
        "--twin-app",
        default=None,
        metavar="NAME[@LOCALE]",
        help="the twins' support app plays this app profile, e.g. helpdesk or mayday@de-DE "
        "(device locale de-DE, support region DE)",
    )
    g.addoption(
        "--agent",
        default=None,
        metavar="NAME",
        help="agent adapter (entry points mayday_hil.agents): twin (default: the twin's "
        "reference bot), none (a human agent: connect time by onset), or an installed one",
    )
    g.addoption(
        "--install",
        action="append",
        default=[],
        metavar="PATH.apk",
        help="install this build of the app on every device before the run (repeatable)",
    )
    g.addoption("--stf", default=None, metavar="URL", help="lease devices from this STF farm")
    g.addoption(
        "--stf-token",
        default=None,
        metavar="TOKEN",
        help="STF access token (default: $STF_TOKEN; never printed or reported)",
    )
    g.addoption(
        "--stf-filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only STF devices with model, sdk, manufacturer or profile = VALUE (repeatable)",
    )
    g.addoption("--stf-count", type=int, default=1, metavar="N", help="STF devices to lease")
    g.addoption(
        "--stf-lease-s", type=float, default=3600.0, metavar="S", help="STF lease time (seconds)"
    )
    g.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="run shard I of N: every Nth device (or test, with one device); merge with hil report merge",
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
        or getattr(o, "stf", None)
        or hasattr(config, "workerinput")
        and "hil" in config.workerinput
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args: list[str]) -> None:
    """Options this plugin implies, set before the command line is parsed (the controller and
    every xdist worker, which parses the same command line, see them alike):
    - `--dist loadgroup` with -n: tests of a device form one xdist group (one device per worker);
    - the ini default `generate_report_on_test = true`: pytest-html rewrites the report after
      every test, so a run killed outright keeps it (unless the ini file or a -o sets it)."""
    ns = early_config.known_args_namespace
    given = list(getattr(ns, "twin", None) or [])
    if getattr(ns, "twins", False) and not all(name in given for name in DEFAULT_TWINS):
        # `--twins` = `--twin` for each of DEFAULT_TWINS, `--twin-lab`, and `-n` one worker
        # per twin unless given; guarded on the twins themselves, so a command line that
        # already holds them (an xdist worker may parse the expanded one) is left alone
        extra = [a for name in DEFAULT_TWINS for a in ("--twin", name)]
        if not getattr(ns, "twin_lab", False):
            extra.append("--twin-lab")
        if getattr(ns, "numprocesses", None) is None:
            extra += ["-n", str(len(DEFAULT_TWINS))]
            ns.numprocesses = len(DEFAULT_TWINS)
        args[:] = [*args, *extra]
        ns.twin = [*given, *DEFAULT_TWINS]
    if not (
        getattr(ns, "twin", None)
        or getattr(ns, "device", None)
        or getattr(ns, "all_devices", False)
        or getattr(ns, "profile", None)
    ):
        return
    if getattr(ns, "numprocesses", None) and getattr(ns, "dist", "no") in ("no", "load"):
        args[:] = [*args, "--dist", "loadgroup"]
    overridden = any(o.startswith("generate_report_on_test=") for o in ns.override_ini or [])
    if "generate_report_on_test" not in early_config.inicfg and not overridden:
        # as if the ini file said so (read by pytest-html only later, at its first report)
        early_config.inicfg["generate_report_on_test"] = "true"


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
    if state.active and _precheck(config):
        # the controller's marker check (precheck_markers): collect and check, start nothing,
        # write nothing (no report, no junit file: the run itself writes them)
        state.is_controller, state.precheck = False, True
        for option in ("htmlpath", "xmlpath", "report_log"):
            if getattr(config.option, option, None):
                setattr(config.option, option, None)
        return
    if state.active:  # before any AgentBot's threads: they share two arenas, RSS stays flat
        limit_malloc_arenas()  # (benchmarks/soak.py; harness/native.py says why)
    if hasattr(config, "workerinput") and state.active:
        # a worker left running by a controller killed outright is stopped by the run's reaper
        import os

        from harness.farm.process import register

        register(os.getpid(), group=False)
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
            _check_app_options(config)
            state.start_run(config)
            _install_builds(config, state)
        except Exception as e:  # noqa: BLE001 -- a failed start is one UsageError naming its cause
            state.stop()
            raise pytest.UsageError(f"mayday-hil: {e}") from None


_TERMINATION_SIGNALS = ("SIGTERM", "SIGHUP")


def _precheck(config: pytest.Config) -> bool:
    """This process is the controller's marker check (a child pytest that only collects)."""
    import os

    from harness.plugin.run import PRECHECK_ENV

    return bool(os.environ.get(PRECHECK_ENV)) and not hasattr(config, "workerinput")


def _check_app_options(config: pytest.Config) -> None:
    """--app, --twin-app and --agent name something that exists: one error before any device."""
    from harness.profiles.app import load_app_profile
    from harness.session.agents import load_agent

    profiles_dir = config.getoption("profiles_dir") or config.getini("hil_profiles_dir") or None
    if config.getoption("app"):
        load_app_profile(config.getoption("app"), profiles_dir)
    twin_app = config.getoption("twin_app")
    if twin_app:
        app = load_app_profile(twin_app.partition("@")[0], profiles_dir)
        if app.twin is None:
            raise ValueError(f"--twin-app {twin_app}: {app.file} has no twin section")
    if config.getoption("agent"):
        load_agent(config.getoption("agent"))
    if config.getoption("install"):
        from harness.session.build import check_apks

        check_apks(config.getoption("install"))


def _install_builds(config: pytest.Config, state: WorkerState) -> None:
    """--install: every APK on every device of the run, before any test (one error naming the
    device and the file)."""
    apks = config.getoption("install")
    if not apks:
        return
    from harness.session.build import check_apks, install_all

    install_all([state.device(spec) for spec in state.devices], check_apks(apks))


def _app_name(config: pytest.Config, state: WorkerState, spec) -> str:
    """The app profile for a device: --app, else (twins) --twin-app, else its device profile's."""
    from harness.profiles.app import DEFAULT_APP

    name = config.getoption("app")
    if not name and spec.twin_control and config.getoption("twin_app"):
        name = config.getoption("twin_app").partition("@")[0]
    if not name:
        profile = state.profile(spec)
        name = profile.app if profile is not None else DEFAULT_APP
    return name


_VERSIONS: dict[str, dict[str, str]] = {}  # serial -> the support app's package versions


def app_versions(config: pytest.Config, state: WorkerState, spec, dev) -> dict[str, str]:
    """The support app's package versions on a device (dumpsys package), read once per run."""
    if spec.serial not in _VERSIONS:
        from harness.profiles.app import load_app_profile
        from harness.session.build import package_versions

        try:
            app = load_app_profile(_app_name(config, state, spec), state.profiles_dir)
            _VERSIONS[spec.serial] = package_versions(dev, app.packages)
        except Exception as e:  # noqa: BLE001 -- facts for the report: never break the run
            _VERSIONS[spec.serial] = {"?": f"unknown ({e})"}
    return _VERSIONS[spec.serial]


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
        for spec in state.devices:
            try:
                versions = app_versions(session.config, state, spec, state.device(spec))
            except Exception as e:  # noqa: BLE001 -- the environment table must never break the run
                versions = {"?": f"unknown ({e})"}
            app = _app_name(session.config, state, spec)
            meta[f"App {spec.serial}"] = f"{app}: " + ", ".join(
                f"{k} {v}" for k, v in versions.items()
            )
        from harness.farm.stf import environment_rows

        meta.update(environment_rows(state.devices))
        if session.config.getoption("shard", None):
            meta["Shard"] = session.config.getoption("shard")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_device" not in metafunc.fixturenames:
        return
    state: WorkerState = metafunc.config.stash[PLUGIN_STATE]
    specs = state.devices
    if state.precheck:  # the marker check: no device is known (none was touched) yet
        metafunc.parametrize("hil_device", [None], ids=["any-device"], scope="session")
        return
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
    if config.stash[PLUGIN_STATE].active:  # the tests' own configuration, before any test runs
        from harness.plugin.run import validate_markers

        try:
            validate_markers(items, config.stash[PLUGIN_STATE].profiles_dir, tuple(_REQUIREMENTS))
        except HarnessError as e:  # a ProfileError naming test, marker and key
            if not hasattr(config, "workeroutput"):
                raise pytest.UsageError(f"mayday-hil: {e}") from None
            # an xdist worker: run nothing; the controller ends the run with this line, exit 4
            config.workeroutput[_USAGE_ERROR] = f"mayday-hil: {e}"
            config.hook.pytest_deselected(items=list(items))
            items[:] = []
            return
    for item in items:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("hil_device")
        if spec is not None:
            item.add_marker(pytest.mark.xdist_group(spec.id))
    state: WorkerState = config.stash[PLUGIN_STATE]
    if (
        config.getoption("shard", None)
        and not config.getoption("stf", None)
        and len(state.devices) == 1
    ):
        # one device: the shard splits the tests (the devices were split when there were more)
        from harness.farm.stf import parse_shard, shard_of

        i, n = parse_shard(config.getoption("shard"))
        device_id = state.devices[0].id  # a twin's port differs per host: not in the key

        def key(it: pytest.Item) -> str:  # nor the rootdir: file name and test id only
            file, sep, rest = it.nodeid.partition("::")
            return file.rsplit("/", 1)[-1] + sep + rest.replace(device_id, "")

        keep = [it for it in items if shard_of(key(it), n) == i]
        dropped = [it for it in items if shard_of(key(it), n) != i]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


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
    from harness.plugin.run import await_device

    waited_s = await_device(hil_device)  # a drop or reboot by the previous test: bounded wait
    if waited_s:
        log.info("%s: back on adb after %.1f s", dev.serial, waited_s)
        request.node.user_properties.append(
            ("hil_device_recovery", {"device": dev.serial, "waited_s": round(waited_s, 2)})
        )
    try:
        dev.shell("logcat -c", timeout_s=5.0)
    except Exception as e:  # noqa: BLE001 -- a device that is gone fails in the test itself, with its own error
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
        try:  # the build under test: the support app's package versions on every measurement
            versions = app_versions(
                request.config, hil_state, hil_device, hil_state.device(hil_device)
            )
            for m in rec.measurements:
                m.meta.setdefault("app_versions", versions)
        except Exception as e:  # noqa: BLE001 -- facts for the report: never lose the measurements
            log.info("app versions: %s", e)
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
def app_profile(request, hil_device, hil_state: WorkerState):
    """The AppProfile of the support feature under test: --app, else (on twins) --twin-app,
    else the device profile's `app`, else the default."""
    from harness.profiles.app import DEFAULT_APP, load_app_profile

    return load_app_profile(
        _app_name(request.config, hil_state, hil_device) or DEFAULT_APP, hil_state.profiles_dir
    )


@pytest.fixture
def agent_name(request) -> str:
    """The agent adapter of this run (--agent; default: the twin's reference bot)."""
    from harness.session.agents import DEFAULT_AGENT

    return request.config.getoption("agent") or DEFAULT_AGENT


@pytest.fixture
def session_driver(device, ui, app_profile, agent_name):
    """The SessionDriver for the device's support feature: timecode mode with a cooperating
    agent, onset mode with `--agent none` (or any adapter that is not cooperative)."""
    from harness.session import SessionDriver
    from harness.session.agents import load_agent

    mode = "timecode" if load_agent(agent_name).cooperative else "onset"
    return SessionDriver(device, ui, app=app_profile, mode=mode)


@pytest.fixture
def agent_bot(request, hil_device, hil_state: WorkerState, media_network, agent_name):
    """The agent (an adapter from --agent; default the reference AgentBot, WebRTC via aiortc)
    joined to the support backend as the agent for this device only; stopped at teardown.
    Skips with `--agent none` (a human agent), and for the twin agent on devices with no twin
    world. With `media_network`, its media crosses the relay and the relay's counters go to the
    report. It holds a media slot (--media-slots) while it lives: live sessions on a small host
    would otherwise starve each other and measure the host instead of the product."""
    from harness.session.agents import AgentContext, load_agent

    cls = load_agent(agent_name)
    if not cls.cooperative:
        pytest.skip(f"--agent {agent_name}: a human agent; this test needs the agent's cooperation")
    if not hil_device.twin_control and agent_name == "twin":
        pytest.skip(
            f"{hil_device.serial}: the reference AgentBot speaks to the twin world's support backend; "
            "a real device needs an adapter for the production support backend (--agent NAME)"
        )
    from harness.farm.control import TwinControl, TwinControlError

    profile = None
    if media_network:
        from harness.network import load_network_profile

        profile = load_network_profile(media_network)  # an unknown name: one clear error
    info = None
    if hil_device.twin_control:
        try:
            info = TwinControl(hil_device.twin_control, hil_device.serial).backend()
        except TwinControlError as e:
            pytest.skip(f"{hil_device.serial}: {e.reason}")
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
    ctx = AgentContext(
        device=hil_device.serial,
        backend=info.address if info else None,
        http=info.http if info else None,
        token=info.token if info else None,
        display_url=monitor,
        media_profile=profile,
        name=f"bot-{uuid.uuid4().hex[:8]}",
    )
    with MediaSlot(hil_state.run_dir, slots, who=hil_device.serial) as slot:
        if slot.waited_s > 0.5:
            request.node.user_properties.append(("hil_media_slot_wait_s", round(slot.waited_s, 1)))
        bot = cls.from_context(ctx)
        request.node.user_properties.append(("hil_agent", agent_name))
        bot.start()
        try:
            yield bot
        finally:
            bot.stop()
            counters = bot.media_counters()
            if counters is not None:
                request.node.user_properties.append(("hil_media_relay", counters.to_dict()))


@pytest.fixture
def live_session(session_driver, agent_bot):
    """A connected support session with the agent: (driver, connect result), the home screen
    in front (the session pane floating over it). Ended at teardown (cleanup never raises)."""
    driver = session_driver
    result = driver.connect(timeout_s=30)
    agent_bot.wait_connected(15)
    if driver.app.open.method != "quick_settings":  # from the support app to the home screen,
        driver.device.shell("input keyevent 3", check=True)  # the session pane floats on
    try:
        yield driver, result
    finally:
        try:
            driver.end(timeout_s=5)
        except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
            log.info("%s: ending the session: %s", driver.device.serial, e)


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
def _hil_stf_lease(request):
    """A leased STF device the farm took back: one error naming it, then its tests skip."""
    if "hil_device" not in request.fixturenames:
        return
    spec = request.getfixturevalue("hil_device")
    if spec is not None and spec.stf:
        from harness.farm.stf import check_lease

        gone = check_lease(spec, spec.adb_port)
        if gone:
            pytest.skip(gone)


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
    _attach_ui_dump(item, call, report)
    dev = item.stash.get(_DEVICE_USED, None)
    state = item.config.stash.get(PLUGIN_STATE, None)
    hil_run = state is not None and state.active  # a run on devices (not a plain pytest run)
    if hil_run and report.when == "call" and report.failed and call.excinfo is not None:
        from harness.plugin.run import infrastructure_error

        spec = item.funcargs.get("hil_device") if hasattr(item, "funcargs") else None
        serial = dev.serial if dev is not None else getattr(spec, "serial", None)
        where = None
        try:  # the test's own line that raised (the step)
            entry = next(
                e for e in reversed(call.excinfo.traceback) if str(e.path) == str(item.path)
            )
            where = f"{item.path.name}:{entry.lineno + 1}"
        except (StopIteration, AttributeError, TypeError):
            pass
        line = infrastructure_error(call.excinfo.value, serial, where)
        if line is not None:  # the lab's fault: a pytest error, not a product failure
            report.hil_infrastructure_error = line
            report.longrepr = line
    if dev is None:
        return
    counts = state.new_retries(dev) if state is not None else {}  # each retry sent once
    if counts:
        setattr(report, REPORT_RETRIES, {"device": dev.serial, "counts": counts})
    if report.failed and report.when in ("setup", "call"):
        from harness.report.extras import failure_extras

        extras = getattr(report, "extras", [])
        extras.extend(failure_extras(dev))
        report.extras = extras


def _attach_ui_dump(item: pytest.Item, call, report) -> None:
    """A selector the app profile names was not on screen: the UI dump that was searched goes
    to the run dir and, as a pytest-html extra, to the report."""
    from harness.session.driver import SelectorNotFound

    exc = getattr(call, "excinfo", None)
    if exc is None or not isinstance(exc.value, SelectorNotFound) or report.when != call.when:
        return
    state = item.config.stash.get(PLUGIN_STATE, None)
    try:
        import re

        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:]
        path = state.run_dir / f"uidump-{safe}.xml" if state is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(exc.value.dump, encoding="utf-8")
        from pytest_html import extras as html

        extras = getattr(report, "extras", [])
        extras.append(html.text(exc.value.dump, name=f"UI dump ({exc.value.selector} not found)"))
        report.extras = extras
        report.user_properties.append(("hil_ui_dump", str(path) if path else ""))
    except Exception as e:  # noqa: BLE001 -- the report must not lose the test's own error
        log.info("attaching the UI dump: %s", e)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config: pytest.Config):
    """An infrastructure fault in a test's call counts as an error (E), like one in setup."""
    if report.when == "call" and getattr(report, "hil_infrastructure_error", None):
        return "error", "E", "ERROR"
    return None


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


_USAGE_ERROR = "hil_usage_error"  # an xdist worker's configuration error, for the controller
_USAGE_ERRORS = pytest.StashKey[list]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: a worker that found a bad marker at collection stops the run (exit 4)."""
    line = getattr(node, "workeroutput", {}).get(_USAGE_ERROR)
    if line:
        errors = node.config.stash.setdefault(_USAGE_ERRORS, [])
        if line not in errors:
            errors.append(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    errors = session.config.stash.get(_USAGE_ERRORS, [])
    if errors:  # as pytest reports a usage error: one line, exit code 4
        import sys

        for line in errors:
            sys.stderr.write(f"ERROR: {line}\n")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    state: WorkerState = session.config.stash.get(PLUGIN_STATE, None)
    if state is not None and state.is_controller and state.active:
        state.write_summary(int(session.exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    state: WorkerState = config.stash.get(PLUGIN_STATE, None)
    if state is not None:
        state.stop()
