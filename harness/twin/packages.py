"""Packages and processes of a twin: `pm`, `am`, `monkey`, `ps`, `pidof`, `kill`, `ime`, `cmd`,
and `dumpsys package|activity`, in the output shapes of the profile's API level (AOSP
PackageManagerShellCommand, ActivityManagerShellCommand, toolbox/toybox ps); `pm list features`
from the profile's hardware.

Size: one package/process model answering pm, am, ps and dumpsys package over the same state."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.twin.registry import command

if TYPE_CHECKING:
    from harness.twin.device import Twin
    from harness.twin.proc import Proc

# the pids of the twin's system processes (plausible for a freshly booted device)
PID_SYSTEM_SERVER = 612
PID_SYSTEMUI = 901
PID_WIFI = 612
INSTALL_TIME = "2024-01-01 00:00:00"  # when the system image's apps were "installed"
_DANGEROUS = (
    "android.permission.CAMERA",
    "android.permission.RECORD_AUDIO",
    "android.permission.ACCESS_FINE_LOCATION",
    "android.permission.READ_EXTERNAL_STORAGE",
    "android.permission.WRITE_EXTERNAL_STORAGE",
    "android.permission.POST_NOTIFICATIONS",
    "android.permission.READ_CONTACTS",
)
# (pid, ppid, user, name) of the processes every booted device has
_SYSTEM_PROCESSES = (
    (1, 0, "root", "init"),
    (2, 0, "root", "kthreadd"),
    (180, 1, "logd", "logd"),
    (290, 1, "root", "zygote"),
    (PID_SYSTEM_SERVER - 8, 1, "shell", "adbd"),
    (PID_SYSTEM_SERVER, 290, "system", "system_server"),
    (901, 290, "u0_a45", "com.android.systemui"),
)
_IMES = ("com.android.inputmethod.latin/.LatinIME",)


@dataclass
class PackageInfo:
    """What the package manager knows of one package."""

    name: str
    path: str
    version_code: int = 1
    version_name: str = "1.0"
    uid: int = 10000
    requested: tuple[str, ...] = ()
    granted: set[str] = field(default_factory=set)
    first_install: str = INSTALL_TIME
    last_update: str = INSTALL_TIME
    activity: str = ".MainActivity"

    @property
    def system(self) -> bool:
        return self.path.startswith("/system/")


def package_info(twin: Twin, name: str) -> PackageInfo | None:
    """The PackageInfo of an installed package (made on first use for the image's own)."""
    path = twin.packages.get(name)
    if path is None:
        twin.package_meta.pop(name, None)
        return None
    info = twin.package_meta.get(name)
    if info is None or info.path != path:
        api = twin.personality.api
        system = path.startswith("/system/")
        info = PackageInfo(
            name=name,
            path=path,
            version_code=api if system else 1,
            version_name=twin.profile.props.get("ro.build.version.release", "1.0")
            if system
            else "1.0",
            uid=1000 if name in ("android", "com.android.settings") else 10000 + len(name) * 7,
            requested=("android.permission.INTERNET",)
            + (
                ("android.permission.CAMERA", "android.permission.RECORD_AUDIO")
                if not system
                else ()
            ),
            activity=".Launcher" if name == twin.screen.launcher else ".MainActivity",
        )
        twin.package_meta[name] = info
    return info


def app_pid(twin: Twin, pkg: str, start: bool = True) -> int:
    """The pid of a running app; with start, start its process first (logged like AM does)."""
    for pid, name in twin.processes.items():
        if name == pkg:
            return pid
    if not start or pkg not in twin.packages:
        return 0
    pid = twin.alloc_pid()
    twin.processes[pid] = pkg
    info = package_info(twin, pkg)
    comp = f"{pkg}/{info.activity if info else '.MainActivity'}"
    if twin.personality.api >= 24:
        msg = f"Start proc {pid}:{pkg}/u0a{(info.uid if info else 10000) - 10000} for top-activity {{{comp}}}"
    else:
        msg = f"Start proc {pkg} for activity {comp}: pid={pid} uid={info.uid if info else 10000} gids={{50000, 3003}}"
    twin.log_event("ActivityManager", msg)
    uid = info.uid if info else 10000
    twin.log_event(
        "am_proc_start",
        f"[0,{pid},{uid},{pkg},activity,{comp}]",
        pid=PID_SYSTEM_SERVER,
        buffer="events",
    )
    return pid


def stop_app(twin: Twin, pkg: str, reason: str) -> None:
    """Kill an app's process (force-stop, pm clear, uninstall)."""
    for pid, name in list(twin.processes.items()):
        if name == pkg:
            del twin.processes[pid]
            twin.log_event("ActivityManager", f"Force stopping {pkg} appid=0 user=0: {reason}")
            twin.log_event("ActivityManager", f"Killing {pid}:{pkg}/u0a0 (adj 0): stop {pkg}")
    twin.screen.stop_package(pkg)


def _focus_activity(twin: Twin) -> tuple[str, str]:
    sc = twin.screen
    pkg = sc.focus_package
    info = package_info(twin, pkg)
    return pkg, info.activity if info else ".MainActivity"


# --- pm -----------------------------------------------------------------------------------
async def _pm_list_packages(p: Proc, args: list[str]) -> int:
    flags = {a for a in args if a.startswith("-")}
    needle = next((a for a in args if not a.startswith("-")), "")
    for name in sorted(p.twin.packages):
        info = package_info(p.twin, name)
        if "-3" in flags and info.system or "-s" in flags and not info.system:
            continue
        if needle and needle not in name:
            continue
        line = f"package:{info.path}={name}" if "-f" in flags else f"package:{name}"
        if "-U" in flags:
            line += f" uid:{info.uid}"
        await p.print(line)
    return 0


def features_lines(twin: Twin) -> list[str]:
    """`pm list features` of the profile's hardware, in its API level's shape
    (shared/reference/adb-wire-facts.md section 6)."""
    hw = twin.profile.hardware
    api = twin.personality.api
    names = [
        "android.hardware.touchscreen",
        "android.hardware.touchscreen.multitouch",
        "android.hardware.screen.landscape",
        "android.hardware.usb.accessory",
        "android.software.live_wallpaper",
    ]
    if hw.microphone:
        names.append("android.hardware.microphone")
    if hw.wifi:
        names.append("android.hardware.wifi")
    if hw.front_camera:
        names.append("android.hardware.camera.front")
    if hw.back_camera:
        names += ["android.hardware.camera", "android.hardware.camera.autofocus"]
    if hw.front_camera or hw.back_camera:
        names.append("android.hardware.camera.any")
    if api >= 24:
        lines = ["feature:reqGlEsVersion=0x30000"]
        versioned = {"android.hardware.vulkan.version": "4198400"} if api >= 28 else {}
        lines += [f"feature:{n}" for n in sorted(names)] + [
            f"feature:{k}={v}" for k, v in versioned.items()
        ]
        return lines
    return [f"feature:{n}" for n in sorted(names)]


async def pm(p: Proc) -> int:  # noqa: C901 -- one branch per `pm` subcommand, as Android's pm
    """`pm` (and `cmd package`)."""
    twin = p.twin
    api = twin.personality.api
    args = p.argv[1:]
    verb = args[0] if args else ""
    if args[:2] == ["list", "features"]:
        for line in features_lines(twin):
            await p.print(line)
        return 0
    if args[:2] == ["list", "packages"]:
        return await _pm_list_packages(p, args[2:])
    if verb == "path" and len(args) > 1:
        info = package_info(twin, args[-1])
        if info is None:
            return 1
        await p.print(f"package:{info.path}")
        return 0
    if verb == "install":
        from harness.twin.apk import install_from_path

        return await install_from_path(p, args[1:])
    if verb in ("clear", "uninstall") and len(args) > 1:
        name = args[-1]
        info = package_info(twin, name)
        if info is None or (verb == "uninstall" and info.system):
            await p.print("Failed" if verb == "clear" else "Failure [DELETE_FAILED_INTERNAL_ERROR]")
            return 1
        stop_app(twin, name, "clear data" if verb == "clear" else "uninstall pkg")
        if verb == "uninstall":
            del twin.packages[name]
            twin.package_meta.pop(name, None)
            twin.log_event("PackageManager", f"Removing package {name}")
        else:
            info.granted.clear()
        await p.print("Success")
        return 0
    if verb in ("grant", "revoke") and len(args) >= 3:
        name, perm = args[-2], args[-1]
        info = package_info(twin, name)
        if info is None:
            await p.eprint(f"Exception occurred while executing '{verb}':")
            await p.eprint(f"java.lang.IllegalArgumentException: Unknown package: {name}")
            return 255
        if perm not in info.requested:
            await p.eprint(f"Exception occurred while executing '{verb}':")
            await p.eprint(
                f"java.lang.SecurityException: Package {name} has not requested permission {perm}"
            )
            return 255
        if perm not in _DANGEROUS:
            await p.eprint(f"Exception occurred while executing '{verb}':")
            await p.eprint(
                f"java.lang.SecurityException: Permission {perm} requested by {name} is not a changeable permission type"
            )
            return 255
        (info.granted.add if verb == "grant" else info.granted.discard)(perm)
        if verb == "revoke":
            stop_app(twin, name, "permissions revoked")
        return 0
    if api < 24:
        await p.eprint("usage: pm list packages [-f] [-d] [-e] [-s] [-3] [-i] [-u] [FILTER]")
        return 1
    await p.eprint(f"Unknown command: {verb}" if verb else "Package manager (package) commands:")
    return 255


@command("pm")
async def _pm(p: Proc) -> int:
    return await pm(p)


# --- am / monkey ---------------------------------------------------------------------------
def _parse_intent(args: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    intent: dict[str, str] = {}
    extras: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-a", "-d", "-n", "-t", "-c", "-f") and i + 1 < len(args):
            intent[a] = args[i + 1]
            i += 2
        elif a in ("--es", "--ei", "--ez", "--el", "--ef") and i + 2 < len(args):
            extras[args[i + 1]] = args[i + 2]
            i += 3
        elif a in ("-W", "-S", "-R", "--user", "-P", "--activity-clear-task") or a.startswith("--"):
            i += 2 if a in ("--user", "-R", "-P") else 1
        else:
            intent.setdefault("pkg", a)
            i += 1
    return intent, extras


def _intent_text(intent: dict[str, str]) -> str:
    parts = []
    if "-a" in intent:
        parts.append(f"act={intent['-a']}")
    if "-d" in intent:
        parts.append(f"dat={intent['-d']}")
    if "-n" in intent:
        parts.append(f"cmp={intent['-n']}")
    return "Intent { " + " ".join(parts) + " }"


async def am(p: Proc) -> int:  # noqa: C901 -- one branch per `am` subcommand, as Android's am
    twin = p.twin
    args = p.argv[1:]
    verb = args[0] if args else ""
    if verb in ("start", "start-activity"):
        intent, extras = _parse_intent(args[1:])
        await p.print(f"Starting: {_intent_text(intent)}")
        comp = intent.get("-n", "")
        if comp:
            pkg = comp.split("/", 1)[0]
        elif intent.get("-a") == "android.intent.action.VIEW" and intent.get("-d", "").startswith(
            "http"
        ):
            pkg = "com.android.chrome" if "com.android.chrome" in twin.packages else ""
            if not pkg:
                pkg = twin.screen.focus_package  # a device without a browser: nothing resolves
        else:
            pkg = ""
        if comp and pkg not in twin.packages:
            await p.eprint(f"Error type 3\nError: Activity class {{{comp}}} does not exist.")
            return 1
        t0 = time.monotonic()
        cold = pkg and app_pid(twin, pkg, start=False) == 0
        if pkg and pkg in twin.packages:
            app_pid(twin, pkg)
            twin.screen.open_package(pkg)
            twin.log_event(
                "ActivityTaskManager" if twin.personality.api >= 29 else "ActivityManager",
                f"START u0 {{{_intent_text(intent)[9:-2]}}} from uid 2000",
            )
        if "-W" in args:
            total = int((time.monotonic() - t0) * 1000) + (420 if cold else 85)
            await p.print("Status: ok")
            if twin.personality.api >= 29:
                await p.print(f"LaunchState: {'COLD' if cold else 'WARM'}")
            focus = "/".join(_focus_activity(twin))
            await p.print(f"Activity: {focus}")
            if twin.personality.api < 29:
                await p.print(f"ThisTime: {total}")
            await p.print(f"TotalTime: {total}")
            if twin.personality.api >= 21:
                await p.print(f"WaitTime: {total + 6}")
            await p.print("Complete")
        return 0
    if verb == "force-stop" and len(args) > 1:
        stop_app(twin, args[-1], "from pid 0")
        return 0
    if verb == "broadcast":
        intent, extras = _parse_intent(args[1:])
        action = intent.get("-a", "")
        if action == "com.mayday.hil.DRAW" and "--ez" in args:
            white = args[args.index("--ez") + 2].lower() == "true"
            twin.screen.walt_draw(white)
        await p.print(f"Broadcasting: {_intent_text(intent)}\nBroadcast completed: result=0")
        return 0
    await p.eprint("usage: am [start|force-stop|broadcast] ...")
    return 1


@command("am")
async def _am(p: Proc) -> int:
    return await am(p)


@command("monkey")
async def _monkey(p: Proc) -> int:
    if "-p" in p.argv:
        pkg = p.argv[p.argv.index("-p") + 1]
        if pkg not in p.twin.packages:
            await p.print(
                f"  bash arg: -p\n  bash arg: {pkg}\n** No activities found to run, monkey aborted."
            )
            return 252
        app_pid(p.twin, pkg)
        p.twin.screen.open_package(pkg)
        await p.print(
            "Events injected: 1\n## Network stats: elapsed time=12ms (0ms mobile, 0ms wifi, 12ms not connected)"
        )
    return 0


# --- processes -----------------------------------------------------------------------------
def _process_table(twin: Twin) -> list[tuple[int, int, str, str]]:
    focus = twin.screen.focus_package
    if focus in twin.packages:
        app_pid(twin, focus)  # what is in front runs
    launcher = twin.screen.launcher
    if launcher in twin.packages:
        app_pid(twin, launcher)
    rows = [(pid, ppid, user, name) for pid, ppid, user, name in _SYSTEM_PROCESSES]
    for pid, name in sorted(twin.processes.items()):
        info = package_info(twin, name)
        user = f"u0_a{info.uid - 10000}" if info and info.uid >= 10000 else "system"
        rows.append((pid, 290, user, name))
    return rows


@command("ps")
async def _ps(p: Proc) -> int:
    twin = p.twin
    api = twin.personality.api
    rows = _process_table(twin)
    args = p.argv[1:]
    if api >= 26:
        me = twin.alloc_pid()
        if not any(a in ("-A", "-e", "-ef") or a.startswith("-A") for a in args):
            rows = [(me - 1, 1, "shell", "sh"), (me, me - 1, "shell", "ps")]
        else:
            rows.append((me, 1, "shell", "ps"))
        names = [a for a in args if not a.startswith("-")]
        if names:
            rows = [r for r in rows if r[3] in names or str(r[0]) in names]
        await p.print(
            "USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME                       "
        )
        for pid, ppid, user, name in rows:
            await p.print(
                f"{user:<12s}{pid:>6d}{ppid:>6d}{2_000_000 + pid:>8d}{9000 + pid % 997:>7d} "
                f"{'do_epoll_wait':<16s}    0 S {name}"
            )
        return 0
    # toolbox ps (before O): -t -x -P -p -c -Z are flags, a number is a pid, anything else a
    # name prefix (so `ps -A` prints only the header, as uiautomator2 expects)
    for a in args:
        if a in ("-t", "-x", "-P", "-p", "-c", "-Z"):
            continue
        if a.isdigit():
            rows = [r for r in rows if r[0] == int(a)]
        else:
            shown = {"init": "/init", "adbd": "/sbin/adbd"} if api < 24 else {}
            rows = [r for r in rows if shown.get(r[3], r[3]).startswith(a)]
    if api >= 24:
        await p.print("USER      PID   PPID  VSIZE  RSS   WCHAN            PC  NAME")
        for pid, ppid, user, name in rows:
            await p.print(
                f"{user:<9s} {pid:<5d} {ppid:<5d} {900000 + pid:<6d} {9000 + pid % 997:<5d} "
                f"SyS_epoll_ 0000000000 S {name}"
            )
        return 0
    await p.print("USER     PID   PPID  VSIZE  RSS     WCHAN    PC         NAME")
    for pid, ppid, user, name in rows:
        shown = "/init" if name == "init" else ("/sbin/adbd" if name == "adbd" else name)
        await p.print(
            f"{user:<8s} {pid:<5d} {ppid:<5d} {300000 + pid:<6d} {9000 + pid % 997:<7d} "
            f"ffffffff 00000000 S {shown}"
        )
    return 0


@command("pidof", when=lambda pers: pers.has_toybox)
async def _pidof(p: Proc) -> int:
    wanted = [a for a in p.argv[1:] if not a.startswith("-")]
    pids = [str(pid) for pid, _, _, name in _process_table(p.twin) if name in wanted]
    if not pids:
        return 1
    await p.print(" ".join(pids))
    return 0


def kill_pid(twin: Twin, pid: int) -> str | None:
    """What `kill PID` from the shell user does to a device process: None when it may kill it,
    else the error text (app and system processes belong to other users)."""
    if pid in twin.processes or any(pid == r[0] for r in _SYSTEM_PROCESSES):
        return "Operation not permitted"
    return "No such process"


async def kill(p: Proc) -> int:
    """`kill [-SIG] PID...` against device processes (the shell's own jobs are the shell's)."""
    status = 0
    for arg in p.argv[1:]:
        if arg.startswith("-"):
            continue
        if not arg.isdigit():
            await p.eprint(f"/system/bin/sh: kill: {arg}: arguments must be process or job IDs")
            return 1
        err = kill_pid(p.twin, int(arg))
        if err is not None:
            await p.eprint(f"/system/bin/sh: kill: {arg}: {err}")
            status = 1
    return status


# --- ime -----------------------------------------------------------------------------------
@command("ime")
async def _ime(p: Proc) -> int:
    twin = p.twin
    args = p.argv[1:]
    enabled: set[str] = (
        twin.settings["secure"].setdefault("enabled_input_methods", _IMES[0]).split(":")
    )
    if args[:1] == ["list"]:
        shown = _IMES if "-a" in args else [i for i in _IMES if i in enabled]
        for ime in shown:
            pkg, _, cls = ime.partition("/")
            if "-s" in args:
                await p.print(ime)
            else:
                await p.print(
                    f"{ime}:\n  mId={ime} mSettingsActivity=com.android.inputmethod.latin.settings.SettingsActivity"
                )
        return 0
    if args[:1] in (["enable"], ["disable"], ["set"]) and len(args) > 1:
        ime = args[-1]
        if ime not in _IMES:
            await p.eprint(f"Unknown input method {ime} cannot be {args[0]}d for user #0")
            return 255 if twin.personality.api >= 24 else 0
        if args[0] == "enable":
            await p.print(
                f"Input method {ime}: {'already enabled' if ime in enabled else 'now enabled'}"
            )
            enabled = sorted(set(enabled) | {ime})
        elif args[0] == "disable":
            await p.print(f"Input method {ime}: now disabled")
            enabled = [i for i in enabled if i != ime]
        else:
            twin.settings["secure"]["default_input_method"] = ime
            await p.print(f"Input method {ime} selected for user #0")
        twin.settings["secure"]["enabled_input_methods"] = ":".join(enabled)
        return 0
    await p.eprint("ime <command>:\n  list [-a] [-s]\n  enable ID\n  disable ID\n  set ID")
    return 255 if twin.personality.api >= 24 else 0


# --- dumpsys package / activity ------------------------------------------------------------
def _hid(text: str) -> str:
    """A stable identity-hash-like hex id (as Java prints object ids)."""
    return f"{zlib.crc32(text.encode()) | 0x10000000:08x}"


def dumpsys_package(twin: Twin, args: list[str]) -> str:
    name = next((a for a in args if not a.startswith("-")), "")
    info = package_info(twin, name) if name else None
    if info is None:
        return (
            ""
            if twin.personality.api < 24
            else "Dexopt state:\n  Unable to find package: " + name + "\n"
        )
    api = twin.personality.api
    flags = ("SYSTEM " if info.system else "") + "HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP"
    if api < 21:
        code_path = info.path
    elif info.path.endswith("/base.apk"):
        code_path = info.path.rsplit("/", 1)[0]
    else:
        code_path = info.path.removesuffix(".apk")  # /system/app/Settings(/Settings.apk)
    sig = _hid(info.name + "sig")
    lines = [
        "Packages:",
        f"  Package [{info.name}] ({_hid(info.name + 'p')}):",
        f"    userId={info.uid}",
        f"    pkg=Package{{{_hid(info.name + 'k')} {info.name}}}",
        f"    codePath={code_path}",
        f"    resourcePath={code_path}",
    ]
    if api >= 24:
        lines.append(f"    versionCode={info.version_code} minSdk=21 targetSdk={api}")
    else:
        lines.append(f"    versionCode={info.version_code} targetSdk={api}")
    lines += [
        f"    versionName={info.version_name}",
        f"    flags=[ {flags} ]",
        f"    dataDir=/data/{'user/0' if api >= 24 else 'data'}/{info.name}",
        f"    timeStamp={info.last_update}",
        f"    firstInstallTime={info.first_install}",
        f"    lastUpdateTime={info.last_update}",
    ]
    if api >= 28:
        lines.append(
            f"    signatures=PackageSignatures{{{sig} version:2, signatures:[{sig[::-1]}], past signatures:[]}}"
        )
    else:
        lines.append(f"    signatures=PackageSignatures{{{sig} [{sig[::-1]}]}}")
    lines.append(f"    pkgFlags=[ {flags} ]")
    lines.append("    requested permissions:")
    lines += [f"      {perm}" for perm in info.requested]
    if api >= 23:
        install = [perm for perm in info.requested if perm not in _DANGEROUS]
        lines.append("    install permissions:")
        lines += [f"      {perm}: granted=true" for perm in install]
        lines.append(
            "    User 0: ceDataInode=0 installed=true hidden=false suspended=false stopped=false "
            "notLaunched=false enabled=0 instant=false virtual=false"
        )
        runtime = [perm for perm in info.requested if perm in _DANGEROUS]
        if runtime:
            lines.append("      runtime permissions:")
            lines += [
                f"        {perm}: granted={'true' if perm in info.granted else 'false'}"
                for perm in runtime
            ]
    else:
        lines.append("    User 0:  installed=true stopped=false notLaunched=false enabled=0")
        lines.append("    grantedPermissions:")
        lines += [f"      {perm}" for perm in info.requested]
    return "\n".join(lines) + "\n"


def dumpsys_activity(twin: Twin, args: list[str]) -> str:
    what = args[0] if args else "activities"
    pkg, act = _focus_activity(twin)
    pid = app_pid(twin, pkg) if pkg in twin.packages else 0
    token = _hid(pkg + act)
    record = f"ActivityRecord{{{token} u0 {pkg}/{act} t{12 + pid % 50}}}"
    if what == "top":
        return (
            "TASK 12 id=12\n"
            f"  ACTIVITY {pkg}/{act} {token} pid={pid}\n"
            "    Local Activity 1 State:\n      mResumed=true mStopped=false mFinished=false\n"
        )
    if what in ("activities", "a"):
        resumed = "mResumedActivity" if twin.personality.api < 29 else "ResumedActivity"
        return (
            "ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n"
            "Display #0 (activities from top to bottom):\n"
            f"  * Task{{{token} #12 type=standard A=10045:{pkg} U=0 visible=true mode=fullscreen}}\n"
            f"      * Hist #0: {record}\n"
            f"        packageName={pkg} processName={pkg}\n"
            f"        app=ProcessRecord{{{token} {pid}:{pkg}/u0a45}}\n\n"
            f"  {resumed}: {record}\n"
            f"  mResumedActivity: {record}\n"
            f"  mFocusedActivity: {record}\n"
        )
    return f"Bad activity command, or no activities match: {what}\n"
