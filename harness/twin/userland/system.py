"""Processes and environment: env printenv xargs pidof uname which."""

from __future__ import annotations

from harness.twin.proc import IO, Proc
from harness.twin.registry import command, lookup
from harness.twin.userland.toolkit import (
    fallback_command,
    has_toybox,
    parse_opts,
)

_XARGS_MAX_ARGS = 5000


@command("env", when=has_toybox)
async def _env(p: Proc) -> int:
    args = p.argv[1:]
    env = {} if args[:1] == ["-i"] else dict(p.env)
    if args[:1] == ["-i"]:
        args = args[1:]
    while args and "=" in args[0] and not args[0].startswith("="):
        k, _, v = args.pop(0).partition("=")
        env[k] = v
    if not args:
        for k in sorted(env):
            await p.print(f"{k}={env[k]}")
        return 0
    child = p.shell.subprocess()
    child.vars = dict(env)
    child.vars.setdefault("IFS", " \t\n")
    child.exported = set(env)
    return await child.call(args, IO(p.stdin, p.out, p.err))


@command("printenv")
async def _printenv(p: Proc) -> int:
    env = p.env
    if len(p.argv) > 1:
        status = 0
        for name in p.argv[1:]:
            if name in env:
                await p.print(env[name])
            else:
                status = 1
        return status
    for k in sorted(env):
        await p.print(f"{k}={env[k]}")
    return 0


@command("xargs", when=has_toybox)
async def _xargs(p: Proc) -> int:
    opts, cmd = parse_opts(p.argv[1:], "0rtx", valued="nIEs")
    data = (await p.stdin.read_all()).decode("utf-8", "replace")
    items = data.split("\0") if opts.get("0") else data.split()
    items = [i for i in items if i][:_XARGS_MAX_ARGS]
    cmd = cmd or ["echo"]
    io = IO(p.stdin, p.out, p.err)
    status = 0
    if not items and opts.get("r"):
        return 0
    if isinstance(opts.get("I"), str):
        rep = str(opts["I"])
        for line in (ln for ln in data.splitlines() if ln):
            status = await p.shell.call([a.replace(rep, line) for a in cmd], io) or status
        return 123 if status else 0
    n = int(str(opts["n"])) if isinstance(opts.get("n"), str) else len(items) or 1
    for k in range(0, max(len(items), 1), max(n, 1)):
        rc = await p.shell.call(cmd + items[k : k + n], io)
        if rc == 127:
            return 127
        status = status or rc
    return 123 if status else 0


@fallback_command("pidof", when=has_toybox)
async def _pidof(p: Proc) -> int:
    procs = getattr(p.twin, "processes", {}) or {}
    pids = [
        str(pid)
        for pid, name in sorted(procs.items(), reverse=True)
        if any(name == a or name.rsplit("/", 1)[-1] == a for a in p.argv[1:])
    ]
    if not pids:
        return 1
    await p.print(" ".join(pids))
    return 0


_UNAME = {
    # api: (release, version)
    17: ("3.4.0-perf-g4f9b1f1", "#1 SMP PREEMPT Thu Apr 3 01:29:38 UTC 2014"),
    19: ("3.4.0+", "#1 SMP PREEMPT Fri Oct 10 20:02:28 UTC 2014"),
    30: ("4.14.190-20973144", "#1 SMP PREEMPT Wed Aug 4 16:12:05 KST 2021"),
    34: (
        "6.1.23-android14-4-00257-g7e35917775b8-ab9964412",
        "#1 SMP PREEMPT Mon Apr 17 20:50:58 UTC 2023",
    ),
}


@command("uname", when=has_toybox)
async def _uname(p: Proc) -> int:
    opts, _ = parse_opts(p.argv[1:], "asnrvmpio")
    pers = p.twin.personality
    release, version = _UNAME[min(_UNAME, key=lambda a: abs(a - pers.api))]
    abi = p.twin.props.get("ro.product.cpu.abi", "arm64-v8a")
    machine = {"x86_64": "x86_64", "x86": "i686", "armeabi-v7a": "armv7l"}.get(abi, "aarch64")
    host = "localhost"
    vals = {"s": "Linux", "n": host, "r": release, "v": version, "m": machine, "o": "Toybox"}
    chosen = "snrvmo" if opts.get("a") else "".join(k for k in "snrvmo" if opts.get(k)) or "s"
    await p.print(" ".join(vals[k] for k in chosen))
    return 0


@command("which", when=has_toybox)
async def _which(p: Proc) -> int:
    status = 0
    for name in p.argv[1:]:
        if lookup(name, p.twin.personality) or name in ("sh", "mksh"):
            await p.print(f"/system/bin/{name}")
        else:
            status = 1
    return status
