"""The run's devices (moved: finding and leasing devices is the farm's job, harness.farm.devices)
and the run's configuration check (validate_run: every option and file, before any device).
"""

from __future__ import annotations

import logging
import re
from itertools import islice
from pathlib import Path

from harness.errors import ProfileError
from harness.farm.devices import MAX_TWINS, PORT_RANGE, DeviceSpec, HilRun, parse_twin_option
from harness.profiles import load_profile, load_profiles

log = logging.getLogger(__name__)

__all__ = [
    "MAX_TWINS",
    "DeviceSpec",
    "HilRun",
    "parse_twin_option",
    "precheck_markers",
    "validate_markers",
    "validate_run",
]


def validate_run(  # noqa: C901 -- one check per option and file, in the order a user reads them
    options, profiles_dir: Path | None, budget_override: str | None = None, media_slots=None
) -> None:
    """Check every piece of the run's configuration at start-up, before any device is touched:
    device profiles, budgets (and each profile's budget), --budget, --profile, --twin (known
    profile, count 1..MAX_TWINS), --network (a known, valid profile), --adb-port, --media-slots.

    Args:
        options: pytest's config.option (the mayday-hil options).
        profiles_dir: the profiles directory (None: the stock one).
        budget_override: --budget or the hil_budget ini value.
        media_slots: --media-slots or the hil_media_slots ini value.

    Raises:
        ProfileError: one line naming the file or option and the key at fault.
    """
    from harness.network.profiles import load_network_profile
    from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets

    directory = Path(profiles_dir or DEFAULT_PROFILES_DIR)
    if profiles_dir is not None and not directory.is_dir():
        raise ProfileError("--profiles-dir", str(profiles_dir), "not a directory")
    profiles = load_profiles(profiles_dir)
    budgets = load_budgets(directory / "budgets.yaml")
    for prof in profiles.values():
        if prof.budget not in budgets:
            raise ProfileError(
                prof.file,
                "support.budget",
                f"unknown budget {prof.budget!r}; {directory / 'budgets.yaml'} has:"
                f" {', '.join(sorted(budgets))}",
            )
    if budget_override and budget_override not in budgets:
        raise ProfileError(
            "--budget", budget_override, f"unknown budget; known: {', '.join(sorted(budgets))}"
        )
    if getattr(options, "profile", None) and options.profile not in profiles:
        raise ProfileError(
            "--profile", options.profile, f"unknown profile; known: {', '.join(sorted(profiles))}"
        )
    for spec in getattr(options, "twin", None) or []:
        name, _ = parse_twin_option(spec)
        try:
            load_profile(name, profiles_dir)
        except ProfileError as e:
            raise ProfileError("--twin", spec, e.msg) from None
    network = getattr(options, "network", None)
    if network:
        try:
            load_network_profile(network)
        except ProfileError as e:
            raise ProfileError(f"--network {network}", e.key, f"{e.msg} (in {e.file})") from None
    adb_port = getattr(options, "adb_port", None)
    if adb_port is not None and adb_port not in PORT_RANGE:
        raise ProfileError("--adb-port", str(adb_port), "a port is 1..65535")
    if media_slots not in (None, ""):
        try:
            slots = int(media_slots)
        except (TypeError, ValueError):
            slots = 0
        if slots < 1:
            raise ProfileError("--media-slots", str(media_slots), "must be a whole number >= 1")


def validate_markers(  # noqa: C901 -- one check per marker and argument
    items, profiles_dir: Path | None, requirements: tuple[str, ...]
) -> None:
    """Check the configuration that tests carry, at collection, before any test runs:
    `@network(profile)` (a known, valid network profile: finite delay >= 0, loss 0..100, ...),
    the `media_network` parameter (the same), `@budget(metric)` (a metric some budget in
    budgets.yaml limits) and `@requires(*capabilities)` (known names).

    Args:
        items: the collected pytest items.
        profiles_dir: the profiles directory (None: the stock one); its budgets.yaml.
        requirements: the capability names `@requires` knows ("eligible" is always known).

    Raises:
        ProfileError: one line naming the test, the marker and the key at fault.
    """
    from harness.network.profiles import load_network_profile
    from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets

    networks: dict[str, str | None] = {}  # profile name -> why it is bad (None: good)

    def network_error(name: object) -> str | None:
        if not isinstance(name, str) or not name:
            return f"a network profile name, got {name!r}"
        if name not in networks:
            try:
                load_network_profile(name)
                networks[name] = None
            except ProfileError as e:
                networks[name] = f"{e.key}: {e.msg} (in {e.file})"
        return networks[name]

    metrics: set[str] | None = None
    known_caps = (*requirements, "eligible")
    for item in items:
        where = item.nodeid
        for marker in item.iter_markers("network"):
            if len(marker.args) != 1 or marker.kwargs:
                raise ProfileError(where, "@network", "takes one network profile name")
            bad = network_error(marker.args[0])
            if bad:
                raise ProfileError(where, f"@network({marker.args[0]!r})", bad)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("media_network") is not None:
            bad = network_error(params["media_network"])
            if bad:
                raise ProfileError(where, f"media_network={params['media_network']!r}", bad)
        for marker in item.iter_markers("budget"):
            if len(marker.args) != 1 or marker.kwargs:
                raise ProfileError(where, "@budget", "takes one metric name")
            if metrics is None:
                path = Path(profiles_dir or DEFAULT_PROFILES_DIR) / "budgets.yaml"
                metrics = {m for b in load_budgets(path).values() for m in b.metrics}
            if marker.args[0] not in metrics:
                raise ProfileError(
                    where,
                    f"@budget({marker.args[0]!r})",
                    f"no budget limits this metric; known: {', '.join(sorted(metrics))}",
                )
        for marker in item.iter_markers("requires"):
            if marker.kwargs:
                raise ProfileError(where, "@requires", "takes capability names only")
            for name in marker.args:
                if name not in known_caps:
                    raise ProfileError(
                        where,
                        f"@requires({name!r})",
                        f"unknown capability; use {', '.join(sorted(known_caps))}",
                    )


PRECHECK_ENV = "HIL_MARKER_PRECHECK"  # set: the plugin only collects and checks markers
PRECHECK_TIMEOUT_S = 120.0  # the child collection; past it the run goes on (and checks later)
_PRECHECK_STOP_GRACE_S = 5.0


_PRECHECK_WORDS = re.compile(rb"network|budget|requires")  # the markers validate_markers checks
_PRECHECK_MAX_FILES = 5000  # a tree larger than this is checked without looking


def may_carry_markers(args: list[str], cwd: Path, rootpath: Path) -> bool:
    """Whether the run's test files (config.args: its paths, testpaths or its directory) and their
    conftest.py files mention a marker validate_markers checks (`network`, `media_network`,
    `budget`, `requires`): if none does, the child collection (about a second of CPU) is skipped.
    A marker that no file names (made by a plugin from elsewhere) is still caught at the run's
    own collection, before any test runs."""
    files: list[Path] = []
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        path = path if path.is_absolute() else cwd / path
        if path.is_dir():
            files.extend(islice(path.rglob("*.py"), _PRECHECK_MAX_FILES + 1))
        else:
            files.append(path)
        for parent in [path, *path.parents]:  # conftest.py files above it, up to the rootdir
            if parent.is_dir() and (parent / "conftest.py").is_file():
                files.append(parent / "conftest.py")
            if parent == rootpath:
                break
        if len(files) > _PRECHECK_MAX_FILES:
            return True
    for file in files:
        try:
            if _PRECHECK_WORDS.search(file.read_bytes()):
                return True
        except OSError:
            continue
    return False


def precheck_markers(
    args: tuple[str, ...] | list[str], cwd: Path, xdist: bool, timeout_s: float = PRECHECK_TIMEOUT_S
) -> str | None:
    """The controller's check of the tests' markers before any device is touched: the run's
    command line collected (never run) by a child pytest, in-process (`-n 0`), with the plugin
    starting nothing ($HIL_MARKER_PRECHECK): validate_markers at its collection, as the run's
    own would do later (after twins were started, on the xdist workers).

    Args:
        args: the run's command line (config.invocation_params.args).
        cwd: the directory the run was started in.
        xdist: pytest-xdist is loaded (then `-n 0` keeps the collection in the child).
        timeout_s: bound on the child; past it (or on any other failure) None is returned and
            the run goes on: its own collection checks the markers again.

    Returns:
        The child's one-line marker error ("mayday-hil: <test>: <marker>: <why>"), else None.
    """
    import os
    import subprocess
    import sys

    from harness.farm.process import Child

    cmd = [sys.executable, "-m", "pytest", *args, "--collect-only", "-q"]
    if xdist:
        cmd += ["-n", "0"]
    child = Child(
        "marker check (pytest --collect-only)",
        cmd,
        env={**os.environ, PRECHECK_ENV: "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    try:
        child.spawn()
        _, err = child.communicate(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("marker check: no answer within %g s; the run's collection checks", timeout_s)
        return None
    except OSError as e:
        log.warning("marker check: %s; the run's collection checks", e)
        return None
    finally:  # also on Ctrl-C / SIGTERM meanwhile: it does not outlive the check
        if child.alive():
            child.stop(grace_s=_PRECHECK_STOP_GRACE_S)
        child.close_pipes()
    if child.poll() != 4:  # pytest.ExitCode.USAGE_ERROR; anything else is the run's to report
        return None
    for line in err.splitlines():
        if line.startswith("ERROR: mayday-hil: "):
            return line.removeprefix("ERROR: ")
    return None


RECOVERY_TIMEOUT_S = 60.0  # a device dropped or rebooting by the previous test: back by then
_RECOVERY_POLL_S = 0.25
_RECONNECT_EVERY_S = 2.0  # `adb connect` again (a device reached over TCP) this often
_HARD_STATES = ("unauthorized", "no permissions")  # waiting does not fix these


def await_device(spec: DeviceSpec, timeout_s: float = RECOVERY_TIMEOUT_S) -> float:
    """Before a test: wait (bounded) until the device is `device` on its adb server again, after
    a drop or reboot left it offline or gone; a TCP device (HOST:PORT) is `adb connect`ed again
    every few seconds meanwhile. Raw host services only: nothing here can make adbutils start
    an adb server of its own.

    Returns:
        Seconds waited: 0.0 when the device was ready (no recovery), else the recovery's time.

    Raises:
        DeviceError: the adb server is gone, the device is unauthorized, or it was not back
            within timeout_s (one line naming the device and its last state).
    """
    import time

    from harness.errors import DeviceError
    from harness.farm.hostprotocol import host_query, parse_devices

    if spec.adb_host not in ("127.0.0.1", "localhost"):
        return 0.0  # a remote adb server (a farm): its own leasing checks the device
    t0 = time.monotonic()
    last_connect = t0 - _RECONNECT_EVERY_S
    first = True
    while True:
        try:
            states = parse_devices(host_query(spec.adb_port, "host:devices", timeout_s=2.0))
        except OSError as e:
            raise DeviceError(
                spec.serial, f"before the test: adb server 127.0.0.1:{spec.adb_port} is gone ({e})"
            ) from None
        state = states.get(spec.serial, "absent")
        now = time.monotonic()
        if state == "device":
            return 0.0 if first else now - t0
        first = False
        if state in _HARD_STATES:
            raise DeviceError(spec.serial, f"before the test: the device is {state}")
        if now - t0 > timeout_s:
            raise DeviceError(
                spec.serial,
                f"before the test: not back on adb within {timeout_s:g} s after a drop or"
                f" reboot (state {state})",
            )
        if ":" in spec.serial and now - last_connect >= _RECONNECT_EVERY_S:
            last_connect = now
            try:
                reply = host_query(spec.adb_port, f"host:connect:{spec.serial}", timeout_s=5.0)
                log.info("%s: %s (state %s): %s", spec.serial, "adb connect", state, reply)
            except OSError as e:
                log.info("%s: adb connect: %s", spec.serial, e)
        time.sleep(_RECOVERY_POLL_S)


def infrastructure_error(
    exc: BaseException, serial: str | None, where: str | None = None
) -> str | None:
    """One line for an exception that is the lab's fault, not the product's (an adb or device
    fault, a shaper, an instrument, a profile; a raw socket error of a lost adb server; or an
    error caused by one of these), None for anything else (assertions, budgets, session and
    measurement outcomes stay test failures). The line names the device and the step (the
    command, or `where`: the test's line that raised)."""
    from harness.errors import (
        AdbError,
        DeviceError,
        InstrumentError,
        NetworkShaperError,
        ProfileError,
        UiError,
    )

    infra = (AdbError, NetworkShaperError, InstrumentError, ProfileError, OSError)
    try:
        import adbutils

        infra = (*infra, adbutils.AdbError)
    except ImportError:  # pragma: no cover - adbutils is a dependency
        pass
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:  # bounded: a cycle of causes cannot hang us
        if isinstance(cause, AssertionError):
            return None
        if isinstance(cause, infra) or (
            type(cause) is DeviceError and not isinstance(cause, UiError)
        ):
            break
        cause = cause.__cause__ or cause.__context__
        seen += 1
    else:
        return None
    text = " ".join(str(exc).split()) or type(exc).__name__
    if serial and f"[{serial}]" not in text:
        text = f"[{serial}] {text}"
    kind = type(cause).__name__
    if cause is not exc:
        kind = f"{type(exc).__name__} <- {kind}"
    at = f" at {where}" if where else ""
    return f"infrastructure error ({kind}){at}: {text}"
