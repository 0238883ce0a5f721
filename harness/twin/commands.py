"""The twin's shell commands, with the output shapes of the profile's API level."""

from __future__ import annotations

import asyncio
import hashlib
import stat as st
import time
from collections.abc import Awaitable, Callable

from harness.twin.fs import FsError
from harness.twin.personality import Personality
from harness.twin.shell import BufferSink, Proc

CommandFunc = Callable[[Proc], Awaitable[int]]
_COMMANDS: dict[str, tuple[CommandFunc, Callable[[Personality], bool]]] = {}
_SLEEP_MAX_S = 3600.0


def command(*names: str, when: Callable[[Personality], bool] = lambda p: True):
    def deco(func: CommandFunc) -> CommandFunc:
        for name in names:
            _COMMANDS[name] = (func, when)
        return func

    return deco


def lookup(name: str, pers: Personality) -> CommandFunc | None:
    entry = _COMMANDS.get(name)
    if entry is None or not entry[1](pers):
        return None
    return entry[0]


# --- basics ------------------------------------------------------------------------------
@command("echo")
async def _echo(p: Proc) -> int:
    args = p.argv[1:]
    newline = True
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    await p.print(" ".join(args), end="\n" if newline else "")
    return 0


@command("exit")
async def _exit(p: Proc) -> int:
    from harness.twin.shell import ShellExit

    try:
        status = int(p.argv[1]) if len(p.argv) > 1 else int(p.env.get("?", "0"))
    except ValueError:
        status = 2
    raise ShellExit(status & 0xFF)


@command("cd")
async def _cd(p: Proc) -> int:
    target = p.twin.fs.norm(p.argv[1] if len(p.argv) > 1 else "/", p.shell.cwd)
    node = p.twin.fs.lookup(target)
    if node is None or not node.is_dir:
        await p.eprint(f"/system/bin/sh: cd: {p.argv[1]}: No such file or directory")
        return 2
    p.shell.cwd = target
    return 0


@command("export")
async def _export(p: Proc) -> int:
    for arg in p.argv[1:]:
        name, _, value = arg.partition("=")
        p.shell.env[name] = value
    return 0


@command("true")
async def _true(p: Proc) -> int:
    return 0


@command("false")
async def _false(p: Proc) -> int:
    return 1


@command("id")
async def _id(p: Proc) -> int:
    await p.print(
        "uid=2000(shell) gid=2000(shell) groups=1003(graphics),1004(input),1007(log),1009(mount),1011(adb),1015(sdcard_rw),1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet)"
    )
    return 0


@command("sleep")
async def _sleep(p: Proc) -> int:
    try:
        seconds = float(p.argv[1]) if len(p.argv) > 1 else 0.0
    except ValueError:
        await p.eprint(f"sleep: invalid number '{p.argv[1]}'")
        return 1
    await asyncio.sleep(min(max(seconds, 0.0), _SLEEP_MAX_S))
    return 0


@command("date")
async def _date(p: Proc) -> int:
    if len(p.argv) > 1 and p.argv[1] == "+%s":
        await p.print(str(int(time.time())))
    else:
        await p.print(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()))
    return 0


@command("which")
async def _which(p: Proc) -> int:
    status = 0
    for name in p.argv[1:]:
        if lookup(name, p.twin.personality):
            await p.print(f"/system/bin/{name}")
        else:
            status = 1
    return status


@command("sh")
async def _sh(p: Proc) -> int:
    if len(p.argv) >= 3 and p.argv[1] == "-c":
        return await p.shell.run(p.argv[2], p.out, p.err, p.stdin)
    return 0


@command("getprop")
async def _getprop(p: Proc) -> int:
    props = p.twin.props
    if len(p.argv) > 1:
        await p.print(props.get(p.argv[1], p.argv[2] if len(p.argv) > 2 else ""))
    else:
        for key in sorted(props):
            await p.print(f"[{key}]: [{props[key]}]")
    return 0


@command("setprop")
async def _setprop(p: Proc) -> int:
    if len(p.argv) != 3:
        await p.eprint("usage: setprop <key> <value>")
        return 1
    if p.argv[1].startswith("ro.") and p.argv[1] in p.twin.props:
        await p.eprint("setprop: failed to set property")
        return 1
    p.twin.props[p.argv[1]] = p.argv[2]
    return 0


# --- files ---------------------------------------------------------------------------------
def _mode_string(mode: int) -> str:
    kind = "d" if st.S_ISDIR(mode) else "-"
    perms = "".join(
        ch if mode & bit else "-"
        for ch, bit in zip(
            "rwxrwxrwx", (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1), strict=True
        )
    )
    return kind + perms


@command("ls")
async def _ls(p: Proc) -> int:
    long = any(a.startswith("-") and "l" in a for a in p.argv[1:])
    paths = [a for a in p.argv[1:] if not a.startswith("-")] or [p.shell.cwd]
    status = 0
    for path in paths:
        full = p.twin.fs.norm(path, p.shell.cwd)
        node = p.twin.fs.lookup(full)
        if node is None:
            await p.eprint(f"ls: {path}: No such file or directory")
            status = 1
            continue
        entries = p.twin.fs.listdir(full) if node.is_dir else [(path, node)]
        for name, child in entries:
            if long:
                stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(child.mtime))
                await p.print(
                    f"{_mode_string(child.mode)} shell    shell    {child.size:>8} {stamp} {name}"
                )
            else:
                await p.print(name)
    return status


@command("cat")
async def _cat(p: Proc) -> int:
    if len(p.argv) == 1:
        await p.out.write(p.stdin)
        return 0
    status = 0
    for path in p.argv[1:]:
        try:
            await p.out.write(p.twin.fs.read(p.twin.fs.norm(path, p.shell.cwd)))
        except FsError as e:
            await p.eprint(f"cat: {path}: {e.reason}")
            status = 1
    return status


@command("rm")
async def _rm(p: Proc) -> int:
    flags = "".join(a[1:] for a in p.argv[1:] if a.startswith("-"))
    status = 0
    for path in (a for a in p.argv[1:] if not a.startswith("-")):
        try:
            p.twin.fs.remove(
                p.twin.fs.norm(path, p.shell.cwd), recursive="r" in flags or "R" in flags
            )
        except FsError as e:
            if "f" not in flags:
                await p.eprint(f"rm: {path}: {e.reason}")
                status = 1
    return status


@command("mkdir")
async def _mkdir(p: Proc) -> int:
    parents = "-p" in p.argv
    status = 0
    for path in (a for a in p.argv[1:] if not a.startswith("-")):
        try:
            p.twin.fs.mkdir(p.twin.fs.norm(path, p.shell.cwd), parents=parents)
        except FsError as e:
            await p.eprint(f"mkdir: '{path}': {e.reason}")
            status = 1
    return status


@command("touch")
async def _touch(p: Proc) -> int:
    for path in (a for a in p.argv[1:] if not a.startswith("-")):
        full = p.twin.fs.norm(path, p.shell.cwd)
        if p.twin.fs.lookup(full) is None:
            p.twin.fs.write(full, b"")
    return 0


@command("chmod")
async def _chmod(p: Proc) -> int:
    if len(p.argv) < 3:
        await p.eprint("Usage: chmod <MODE> <FILE>")
        return 1
    try:
        mode = int(p.argv[1], 8)
    except ValueError:
        await p.eprint(f"Bad mode {p.argv[1]}")
        return 10
    for path in p.argv[2:]:
        node = p.twin.fs.lookup(p.twin.fs.norm(path, p.shell.cwd))
        if node is None:
            await p.eprint(f"Unable to chmod {path}: No such file or directory")
            return 10
        node.mode = st.S_IFMT(node.mode) | mode
    return 0


async def _md5(p: Proc, args: list[str]) -> int:
    status = 0
    for path in args:
        try:
            data = p.twin.fs.read(p.twin.fs.norm(path, p.shell.cwd))
        except FsError as e:
            await p.eprint(f"md5sum: {path}: {e.reason}")
            status = 1
            continue
        await p.print(f"{hashlib.md5(data).hexdigest()}  {path}")
    return status


@command("md5sum", when=lambda pers: pers.has_toybox)
async def _md5sum(p: Proc) -> int:
    return await _md5(p, p.argv[1:])


@command("md5", when=lambda pers: not pers.has_toybox)
async def _md5_toolbox(p: Proc) -> int:
    return await _md5(p, p.argv[1:])


@command("toybox", when=lambda pers: pers.has_toybox)
async def _toybox(p: Proc) -> int:
    if len(p.argv) < 2:
        await p.print("md5sum ls cat echo rm mkdir sleep id which")
        return 0
    func = lookup(p.argv[1], p.twin.personality)
    if func is None:
        await p.eprint(f"toybox: Unknown command {p.argv[1]}")
        return 1
    return await func(Proc(p.shell, p.argv[1:], p.stdin, p.out, p.err, p.env))


@command("grep")
async def _grep(p: Proc) -> int:
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    ignore_case = "-i" in p.argv
    if not args:
        await p.eprint("usage: grep PATTERN [FILE]")
        return 2
    pattern = args[0].lower() if ignore_case else args[0]
    hit = False
    for line in p.stdin.decode("utf-8", "replace").splitlines():
        if pattern in (line.lower() if ignore_case else line):
            await p.print(line)
            hit = True
    return 0 if hit else 1


@command("head", "tail")
async def _head(p: Proc) -> int:
    count = 10
    for i, a in enumerate(p.argv):
        if a == "-n" and i + 1 < len(p.argv):
            count = int(p.argv[i + 1])
    lines = p.stdin.decode("utf-8", "replace").splitlines()
    chosen = lines[:count] if p.argv[0] == "head" else lines[-count:]
    for line in chosen:
        await p.print(line)
    return 0


# --- network -------------------------------------------------------------------------------
@command("svc")
async def _svc(p: Proc) -> int:
    if len(p.argv) >= 3 and p.argv[1] == "wifi" and p.argv[2] in ("enable", "disable"):
        on = p.argv[2] == "enable"
        p.twin.set_wifi(on)
        return 0
    await p.print("Control the Wi-Fi manager\n\nusage: svc wifi [enable|disable]")
    return 0


@command("ifconfig")
async def _ifconfig(p: Proc) -> int:
    iface = p.argv[1] if len(p.argv) > 1 else "wlan0"
    w = p.twin.wifi
    if iface != "wlan0":
        await p.eprint(f"{iface}: No such device")
        return 1
    if p.twin.personality.api <= 19:
        ip = w.ip if w.enabled else "0.0.0.0"
        await p.print(
            f"wlan0: ip {ip} mask 255.255.255.0 flags [{'up broadcast running multicast' if w.enabled else 'down'}]"
        )
    else:
        await p.print("wlan0     Link encap:Ethernet  HWaddr 02:00:00:44:55:66")
        if w.enabled:
            await p.print(f"          inet addr:{w.ip}  Bcast:10.0.2.255  Mask:255.255.255.0")
        await p.print(
            f"          {'UP BROADCAST RUNNING MULTICAST' if w.enabled else 'BROADCAST MULTICAST'}  MTU:1500  Metric:1"
        )
    return 0


@command("ip")
async def _ip(p: Proc) -> int:
    w = p.twin.wifi
    if p.argv[1:3] in (["addr", "show"], ["address", "show"], ["a", "show"]) or p.argv[1:2] in (
        ["addr"],
        ["a"],
    ):
        state = "UP" if w.enabled else "DOWN"
        await p.print(
            f"3: wlan0: <BROADCAST,MULTICAST{',UP,LOWER_UP' if w.enabled else ''}> mtu 1500 qdisc mq state {state} group default qlen 1000"
        )
        await p.print("    link/ether 02:00:00:44:55:66 brd ff:ff:ff:ff:ff:ff")
        if w.enabled:
            await p.print(f"    inet {w.ip}/24 brd 10.0.2.255 scope global wlan0")
            await p.print("       valid_lft forever preferred_lft forever")
        return 0
    await p.eprint(
        'Object "%s" is unknown, try "ip help".' % (p.argv[1] if len(p.argv) > 1 else "")
    )
    return 255


# --- settings and packages ----------------------------------------------------------------
@command("settings")
async def _settings(p: Proc) -> int:
    args = [a for a in p.argv[1:] if not a.startswith("--")]
    if len(args) < 2 or args[1] not in p.twin.settings:
        await p.eprint(
            "usage:  settings [--user NUM] get namespace key\n        settings [--user NUM] put namespace key value"
        )
        return 1
    verb, ns = args[0], p.twin.settings[args[1]]
    if verb == "get" and len(args) == 3:
        await p.print(ns.get(args[2], "null"))
        return 0
    if verb == "put" and len(args) >= 4:
        ns[args[2]] = args[3]
        if args[1] == "global" and args[2] == "wifi_on":
            p.twin.set_wifi(args[3] == "1")
        return 0
    if verb == "list":
        for k in sorted(ns):
            await p.print(f"{k}={ns[k]}")
        return 0
    await p.eprint(f"Invalid command: {verb}")
    return 1


@command("wm", when=lambda pers: pers.has_wm_size)
async def _wm(p: Proc) -> int:
    d = p.twin.profile.display
    if p.argv[1:2] == ["size"]:
        await p.print(f"Physical size: {d.width}x{d.height}")
        return 0
    if p.argv[1:2] == ["density"]:
        await p.print(f"Physical density: {d.density}")
        return 0
    await p.eprint("usage: wm [size|density]")
    return 1


@command("input")
async def _input(p: Proc) -> int:
    from harness.twin.input import run_input

    return await run_input(p)


@command("screencap")
async def _screencap(p: Proc) -> int:
    from harness.twin.media import screencap

    return await screencap(p)


@command("screenrecord", when=lambda pers: pers.has_screenrecord)
async def _screenrecord(p: Proc) -> int:
    from harness.twin.media import screenrecord

    return await screenrecord(p)


@command("dumpsys")
async def _dumpsys(p: Proc) -> int:
    from harness.twin.dumpsys import dumpsys

    return await dumpsys(p)


@command("uiautomator")
async def _uiautomator(p: Proc) -> int:
    from harness.twin.uidump import uiautomator

    return await uiautomator(p)


@command("app_process")
async def _app_process(p: Proc) -> int:
    from harness.twin.u2server import app_process

    return await app_process(p)


@command("cmd", when=lambda pers: pers.has_cmd)
async def _cmd(p: Proc) -> int:
    """`cmd SERVICE ...` (API 24+): the binder shell commands behind pm, am, wm, input, ..."""
    from harness.twin.packages import am, pm

    service = p.argv[1] if len(p.argv) > 1 else ""
    if p.argv[1:3] == ["wifi", "status"] and p.twin.personality.api >= 30:
        w = p.twin.wifi
        await p.print("Wifi is enabled" if w.enabled else "Wifi is disabled")
        if w.enabled:
            await p.print(f'Wifi is connected to "{w.ssid}"')
        return 0
    delegate = {"package": ("pm", pm), "activity": ("am", am)}.get(service)
    if delegate is not None:
        p.argv = [delegate[0], *p.argv[2:]]
        return await delegate[1](p)
    if service in ("input", "wm", "settings"):
        entry = lookup(service, p.twin.personality)
        if entry is not None:
            p.argv = [service, *p.argv[2:]]
            return await entry(p)
    if service == "-l":
        for name in ("activity", "input", "package", "settings", "wifi", "window"):
            await p.print(name)
        return 0
    await p.eprint(f"cmd: Can't find service: {service}")
    return 20


# device commands of their own modules register on import (logcat, packages, processes)
from harness.twin import android  # noqa: E402,F401

__all__ = ["BufferSink", "command", "lookup"]
