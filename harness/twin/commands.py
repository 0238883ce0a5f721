"""The twin's basic device commands (id, sleep, date, getprop, ls, rm, settings, svc, wm, cmd,
...), with the output shapes of the profile's API level; the ones with a module of their own
(input, screencap, dumpsys, pm, ...) are dispatched from here.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import stat as st
import time

from harness.twin.dumpsys import dumpsys
from harness.twin.fs import FsError
from harness.twin.input import run_input
from harness.twin.media import screencap, screenrecord
from harness.twin.packages import am, pm
from harness.twin.proc import Proc
from harness.twin.registry import COMMANDS, command, lookup
from harness.twin.u2server import app_process
from harness.twin.uidump import uiautomator

# echo, exit, cd, export, true, false, sh, test and the other shell builtins live in
# harness.twin.shell; cat, grep, head, tail, which and the rest of the userland in
# harness.twin.userland; harness.twin.commandset registers them all.
_SLEEP_MAX_S = 3600.0


# --- basics ------------------------------------------------------------------------------
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
    kinds = ((st.S_ISDIR, "d"), (st.S_ISLNK, "l"), (st.S_ISCHR, "c"))
    kind = next((ch for test, ch in kinds if test(mode)), "-")
    perms = "".join(
        ch if mode & bit else "-"
        for ch, bit in zip(
            "rwxrwxrwx", (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1), strict=True
        )
    )
    return kind + perms


@command("ls")
async def _ls(p: Proc) -> int:
    """toybox ls on API 23+ (nlink column, `total`, `name:` headers); toolbox's before."""
    flags = "".join(a[1:] for a in p.argv[1:] if a.startswith("-") and len(a) > 1)
    operands = [a for a in p.argv[1:] if not a.startswith("-") or a == "-"]
    long, show_all, as_dir, recurse = ("l" in flags, "a" in flags, "d" in flags, "R" in flags)
    fs = p.twin.fs
    toybox = p.twin.personality.has_toybox
    status = 0
    files: list[tuple[str, object]] = []
    dirs: list[tuple[str, str]] = []
    for path in operands or ["."]:
        full = fs.norm(path, p.shell.cwd)
        node = fs.lookup(full)
        if node is None:
            await p.eprint(f"ls: {path}: No such file or directory")
            status = 1
            continue
        if node.is_dir and not as_dir:
            dirs.append((path, full))
        else:
            files.append((path, fs.lookup(full, follow=False) if long else node))
    headers = recurse or len(operands) > 1
    if toybox:  # toybox sorts its operands: files first, then directories
        files.sort(key=lambda f: f[0])
        dirs.sort()
    if files:
        await _ls_entries(p, files, long, toybox, total=False)
    first = not files
    while dirs:
        path, full = dirs.pop(0)
        entries = [(n, c) for n, c in fs.listdir(full) if show_all or not n.startswith(".")]
        if show_all and toybox:
            entries = [(".", fs.lookup(full)), ("..", fs.lookup(fs.norm("..", full)))] + entries
        if headers:
            await p.print(("" if first else "\n") + f"{path}:")
        first = False
        await _ls_entries(p, entries, long, toybox, total=toybox)
        if recurse:
            sub = [
                (posixpath.join(path, n), posixpath.join(full, n))
                for n, c in entries
                if c is not None and c.is_dir and not c.is_link and n not in (".", "..")
            ]
            dirs = sub + dirs
    return status


def _blocks_k(node) -> int:
    if node.is_link or node.is_chr or node.size == 0:
        return 0
    return 4 * -(-node.size // 4096)


async def _ls_entries(p: Proc, entries: list, long: bool, toybox: bool, total: bool) -> None:
    if not long:
        for name, _ in entries:
            await p.print(name)
        return
    if not toybox:  # toolbox: fixed columns, no link count
        for name, child in entries:
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(child.mtime))
            arrow = f" -> {child.target}" if child.is_link else ""
            await p.print(
                f"{_mode_string(child.mode)} shell    shell    {child.size:>8} {stamp} "
                f"{name}{arrow}"
            )
        return
    rows = []
    for name, child in entries:
        nlink = 2 + sum(1 for c in child.children.values() if c.is_dir) if child.is_dir else 1
        rows.append((child, str(nlink), str(child.size), name))
    if total:
        await p.print(f"total {sum(_blocks_k(c) for c, *_ in rows)}")
    wl = max((len(r[1]) for r in rows), default=1)
    ws = max((len(r[2]) for r in rows), default=1)
    for child, nlink, size, name in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(child.mtime))
        arrow = f" -> {child.target}" if child.is_link else ""
        await p.print(
            f"{_mode_string(child.mode)} {nlink:>{wl}} shell shell {size:>{ws}} {stamp} "
            f"{name}{arrow}"
        )


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
    for path in args or ["-"]:
        try:
            if path == "-":
                data = await p.stdin.read_all()
            else:
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
        await p.print(
            " ".join(sorted(n for n, (_, when) in COMMANDS.items() if when(p.twin.personality)))
        )
        return 0
    func = lookup(p.argv[1], p.twin.personality)
    if func is None:
        await p.eprint(f"toybox: Unknown command {p.argv[1]}")
        return 1
    return await func(Proc(p.shell, p.argv[1:], p.stdin, p.out, p.err, p.env))

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
    return await run_input(p)


@command("screencap")
async def _screencap(p: Proc) -> int:
    return await screencap(p)


@command("screenrecord", when=lambda pers: pers.has_screenrecord)
async def _screenrecord(p: Proc) -> int:
    return await screenrecord(p)


@command("dumpsys")
async def _dumpsys(p: Proc) -> int:
    return await dumpsys(p)


@command("uiautomator")
async def _uiautomator(p: Proc) -> int:
    return await uiautomator(p)


@command("app_process")
async def _app_process(p: Proc) -> int:
    return await app_process(p)


@command("cmd", when=lambda pers: pers.has_cmd)
async def _cmd(p: Proc) -> int:
    """`cmd SERVICE ...` (API 24+): the binder shell commands behind pm, am, wm, input, ..."""
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
