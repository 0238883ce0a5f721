"""The twin's everyday userland: toybox on API 23+, toolbox with its gaps before.

Which command exists at which level (`when=` of each `@command`):
- Android 4.2.2 (API 17) toolbox (AOSP system/core/toolbox/Android.mk, jb-mr1): ls mount cat ps
  kill ln insmod rmmod lsmod ifconfig rm mkdir rmdir reboot getevent sendevent date wipe sync
  umount start stop notify cmp dmesg route hd dd df getprop setprop watchprops log sleep renice
  printenv smd chmod chown newfs_msdos netstat ioctl mv schedtop top iftop id uptime vmstat
  nandread ionice touch lsof du md5 clear and the SELinux tools. So on API 17 there is no cp,
  grep, head, tail, wc, sed, awk, find, stat, uname, tr, cut, sort, uniq, tee, xargs, basename,
  dirname, seq, printf, expr, env, readlink, pidof, which, yes: each answers
  `/system/bin/sh: <cmd>: not found` (127). mksh builtins (echo, test/[, pwd, read, ...) exist.
- cp, grep and readlink joined toolbox after 4.2 (NetBSD imports; the twin gives them from API 18,
  an estimate: no 4.3 device was checked).
- toybox arrived with Android 6.0 (API 23): everything above except awk, which Android ships
  (one-true-awk) from 9.0 (API 28).
Output shapes follow toybox (e.g. `wc -l` with one count prints no padding; `stat -c`); the
awk here is a subset: `-F`, `-v`, BEGIN/END, `/re/` and expression patterns, `print`,
`printf`, `if/else`, `for`, `while`, `next`, `$N`, `NF`, `NR`, `FS`/`OFS`, variables,
`+ - * / %`, comparisons, `~`, string concatenation, `+=`, `++`, `length substr index toupper
tolower int sprintf`. Anything outside it answers `awk: syntax error` (status 2).

Size: a table of independent commands (sed, awk, find, ...); each should become its own module
(issue 17's next step); kept as one table for now.
"""

from __future__ import annotations

import asyncio
import fnmatch
import posixpath
import re
import stat as st
import time

from harness.twin.commands import _COMMANDS, command, lookup
from harness.twin.fs import FsError
from harness.twin.personality import Personality
from harness.twin.shell import IO, Proc, ShellError, Source, UsageError, _echo_escapes
from harness.twin.shell import _b_test as _test_builtin

_YES_CHUNK_LINES = 4096
_XARGS_MAX_ARGS = 5000
_AWK_MAX_LOOP = 1_000_000  # awk for/while turns before the twin gives up (a bounded loop)


def _fallback(name: str, when):
    """Register `name` unless another module already did (the process commands' own module
    gives a richer pidof; this one only reads twin.processes)."""

    def deco(func):
        return func if name in _COMMANDS else command(name, when=when)(func)

    return deco


def _toybox(pers: Personality) -> bool:
    return pers.has_toybox


def _toolbox_18(pers: Personality) -> bool:
    return pers.api >= 18


def _awk(pers: Personality) -> bool:
    return pers.api >= 28


# --- helpers ------------------------------------------------------------------------------
def _opts(argv: list[str], flags: str, valued: str = "") -> tuple[dict[str, str | bool], list[str]]:
    """Parse `-abc -n 3 -n3` options anywhere among the operands (toybox permutes); `--` ends
    them. Raises ShellError for an unknown option (the shell prints `<tool>: ...`, status 1)."""
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i + 1 :])
            break
        if (
            a.startswith("-")
            and len(a) > 1
            and not a[1:].lstrip("-").isdigit()
            or (a.startswith("-") and len(a) > 1 and a[1] in valued)
        ):
            j = 1
            while j < len(a):
                c = a[j]
                if c in valued:
                    val = a[j + 1 :] or (argv[i + 1] if i + 1 < len(argv) else "")
                    if not a[j + 1 :]:
                        i += 1
                    opts[c] = val
                    break
                if c in flags:
                    opts[c] = True
                else:
                    raise UsageError(f"Unknown option '{c}'")
                j += 1
            i += 1
            continue
        rest.append(a)
        i += 1
    return opts, rest


async def _read_file(p: Proc, name: str) -> bytes:
    if name == "-":
        return await p.stdin.read_all()
    path = p.path(name)
    if path == "/dev/zero":
        raise FsError(name, "File too large")
    node = p.twin.fs.lookup(path)
    if node is not None and node.is_dir:
        raise FsError(name, "Is a directory")
    return p.twin.fs.read(path)


def _open_file(p: Proc, name: str) -> Source:
    node = p.twin.fs.lookup(p.path(name))
    if node is not None and node.is_dir:
        raise FsError(name, "Is a directory")
    return p.shell.open_in(name)


async def _inputs(p: Proc, files: list[str], tool: str):
    """(name, data) for each file operand, or stdin; errors printed as toybox does."""
    if not files:
        yield "-", await p.stdin.read_all()
        return
    for name in files:
        try:
            yield name, await _read_file(p, name)
        except FsError as e:
            await p.eprint(f"{tool}: {name}: {e.reason}")
            p.env["__status"] = "1"


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def _failed(p: Proc) -> int:
    return 1 if p.env.pop("__status", None) else 0


async def _usage(p: Proc, tool: str, why: str) -> int:
    """toybox's usage error: `<tool>: <why> (see "<tool> --help")`, status 1."""
    await p.eprint(f'{tool}: {why} (see "{tool} --help")')
    return 1


async def _guard(p: Proc, coro) -> int:
    try:
        return await coro
    except ShellError as e:
        await p.eprint(f"{p.argv[0]}: {e}")
        return 1


# --- toybox's own echo/true/false/pwd/test (`/system/bin/echo`; plain `echo` is mksh's) ----
@command("echo", when=_toybox)
async def _echo(p: Proc) -> int:
    args = p.argv[1:]
    newline, escapes = True, False  # toybox echo: no escapes unless -e
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] if "E" not in args[0] else False
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = _echo_escapes(text)
        newline = newline and not stop
    await p.out.write((text + ("\n" if newline else "")).encode())
    return 0


@command("true", when=_toybox)
async def _true(p: Proc) -> int:
    return 0


@command("false", when=_toybox)
async def _false(p: Proc) -> int:
    return 1


@command("pwd", when=_toybox)
async def _pwd(p: Proc) -> int:
    await p.print(p.shell.cwd)
    return 0


@command("test", "[", when=_toybox)
async def _test(p: Proc) -> int:
    return await _test_builtin(p.shell, p.argv, IO(p.stdin, p.out, p.err))


# --- files --------------------------------------------------------------------------------
@command("cat")
async def _cat(p: Proc) -> int:
    files = [a for a in p.argv[1:] if a != "-u"] or ["-"]
    status = 0
    for name in files:
        if name == "-":
            src: Source = p.stdin
        else:
            try:
                node = p.twin.fs.lookup(p.path(name))
                if node is not None and node.is_dir:
                    raise FsError(name, "Is a directory")
                src = p.shell.open_in(name)
            except FsError as e:
                await p.eprint(f"cat: {name}: {e.reason}")
                status = 1
                continue
        while chunk := await src.read():
            await p.out.write(chunk)
    return status


@command("cp", when=_toolbox_18)
async def _cp(p: Proc) -> int:
    return await _guard(p, _cp_mv(p, move=False))


@command("mv")
async def _mv(p: Proc) -> int:
    return await _guard(p, _cp_mv(p, move=True))


async def _cp_mv(p: Proc, move: bool) -> int:
    tool = p.argv[0]
    opts, args = _opts(p.argv[1:], "rRpfinvaHLPd")
    if len(args) < 2:
        return await _usage(p, tool, "Needs 2 arguments")
    fs = p.twin.fs
    *srcs, dst = args
    dst_path = p.path(dst)
    dst_node = fs.lookup(dst_path)
    if len(srcs) > 1 and (dst_node is None or not dst_node.is_dir):
        return await _usage(p, tool, f"'{dst}' not directory")
    status = 0
    for src in srcs:
        src_path = p.path(src)
        node = fs.lookup(src_path)
        target = dst_path
        if dst_node is not None and dst_node.is_dir:
            target = posixpath.join(dst_path, posixpath.basename(src_path.rstrip("/")))
        if node is None:
            await p.eprint(f"{tool}: bad '{src}': No such file or directory")
            status = 1
            continue
        try:
            if move:
                fs.rename(src_path, target)
            elif node.is_dir:
                if not (opts.get("r") or opts.get("R") or opts.get("a")):
                    await p.eprint(
                        f"{tool}: {src}: Is a directory"
                        if p.twin.personality.has_toybox
                        else f"cp: omitting directory '{src}'"
                    )
                    status = 1
                    continue
                _copy_tree(fs, src_path, target)
            else:
                fs.write(target, fs.read(src_path), mode=node.mode if opts.get("p") else None)
        except FsError as e:
            await p.eprint(f"{tool}: {e.path}: {e.reason}")
            status = 1
    return status


def _copy_tree(fs, src: str, dst: str) -> None:
    if fs.lookup(dst) is None:
        fs.mkdir(dst)
    for name, child in fs.listdir(src):
        s, d = posixpath.join(src, name), posixpath.join(dst, name)
        if child.is_dir:
            _copy_tree(fs, s, d)
        else:
            fs.write(d, fs.read(s))


@command("rmdir")
async def _rmdir(p: Proc) -> int:
    status = 0
    for name in (a for a in p.argv[1:] if not a.startswith("-")):
        node = p.twin.fs.lookup(p.path(name))
        try:
            if node is None:
                raise FsError(name, "No such file or directory")
            if not node.is_dir:
                raise FsError(name, "Not a directory")
            if node.children:
                raise FsError(name, "Directory not empty")
            p.twin.fs.remove(p.path(name), recursive=True)
        except FsError as e:
            await p.eprint(
                f"rmdir: {name}: {e.reason}"
                if p.twin.personality.has_toybox
                else f"rmdir failed for {name}, {e.reason}"
            )
            status = 1
    return status


@command("ln")
async def _ln(p: Proc) -> int:
    opts, args = _opts(p.argv[1:], "sfnv")
    if len(args) != 2:
        return await _usage(p, "ln", "Needs 2 arguments")
    target, link = args
    fs = p.twin.fs
    path = p.path(link)
    node = fs.lookup(path)
    if node is not None and node.is_dir and not opts.get("n"):
        path = posixpath.join(path, posixpath.basename(target))
    try:
        if opts.get("f") and fs.lookup(path, follow=False) is not None:
            fs.remove(path)
        if opts.get("s"):
            fs.symlink(target, path)
        else:
            src = fs.lookup(p.path(target))
            if src is None:
                raise FsError(target, "No such file or directory")
            fs.write(path, fs.read(p.path(target)))
    except FsError as e:
        kind = "symbolic link" if opts.get("s") else "hard link"
        await p.eprint(
            f"ln: cannot create {kind} from '{target}' to '{link}': {e.reason}"
            if p.twin.personality.has_toybox
            else f"link failed {e.reason}"
        )
        return 1
    return 0


@command("readlink", when=_toolbox_18)
async def _readlink(p: Proc) -> int:
    opts, args = _opts(p.argv[1:], "fenqmv")
    status = 0
    for name in args:
        fs = p.twin.fs
        path = p.path(name)
        if opts.get("f") or opts.get("e") or opts.get("m"):
            if opts.get("e") and fs.lookup(path) is None:
                status = 1
                continue
            await p.print(fs.realpath(path))
            continue
        node = fs.lookup(path, follow=False)
        if node is None or not node.is_link:
            status = 1
            continue
        await p.print(node.target or "")
    return status


@command("basename", when=_toybox)
async def _basename(p: Proc) -> int:
    args = p.argv[1:]
    if not args:
        return await _usage(p, "basename", "Needs 1 argument")
    name = args[0].rstrip("/") or "/"
    base = posixpath.basename(name) or "/"
    if len(args) > 1 and base != args[1] and base.endswith(args[1]):
        base = base[: -len(args[1])]
    await p.print(base)
    return 0


@command("dirname", when=_toybox)
async def _dirname(p: Proc) -> int:
    if len(p.argv) < 2:
        return await _usage(p, "dirname", "Needs 1 argument")
    name = p.argv[1].rstrip("/") or "/"
    await p.print(posixpath.dirname(name) or ".")
    return 0


@command("find", when=_toybox)
async def _find(p: Proc) -> int:  # noqa: C901 -- find's expression language: one branch per primary
    args = p.argv[1:]
    roots: list[str] = []
    while args and not args[0].startswith("-") and args[0] not in ("(", "!"):
        roots.append(args.pop(0))
    roots = roots or ["."]
    tests: list[tuple[str, str]] = []
    maxdepth, mindepth = 1 << 30, 0
    while args:
        a = args.pop(0)
        if a in ("-print", "-print0"):
            continue
        if a in ("-name", "-iname", "-type", "-path", "-maxdepth", "-mindepth", "-newer", "-size"):
            if not args:
                await p.eprint(f"find: '{a}' needs 1 arg")
                return 1
            v = args.pop(0)
            if a == "-maxdepth":
                maxdepth = int(v)
            elif a == "-mindepth":
                mindepth = int(v)
            else:
                tests.append((a, v))
        else:
            await p.eprint(f"find: bad arg '{a}'")
            return 1
    fs = p.twin.fs
    status = 0

    def matches(shown: str, node, depth: int) -> bool:
        if depth < mindepth:
            return False
        name = posixpath.basename(shown.rstrip("/")) or shown
        for t, v in tests:
            if t == "-name" and not fnmatch.fnmatchcase(name, v):
                return False
            if t == "-iname" and not fnmatch.fnmatchcase(name.lower(), v.lower()):
                return False
            if t == "-path" and not fnmatch.fnmatchcase(shown, v):
                return False
            if t == "-type":
                kind = "l" if node.is_link else "d" if node.is_dir else "c" if node.is_chr else "f"
                if kind != v:
                    return False
        return True

    async def walk(shown: str, real: str, depth: int) -> None:
        node = fs.lookup(real, follow=depth == 0)
        if node is None:
            return
        if matches(shown, node, depth):
            await p.print(shown)
        if node.is_dir and depth < maxdepth:
            for name, _ in fs.listdir(real):
                await walk(posixpath.join(shown, name), posixpath.join(real, name), depth + 1)

    for root in roots:
        real = p.path(root)
        if fs.lookup(real) is None:
            await p.eprint(f"find: '{root}': No such file or directory")
            status = 1
            continue
        await walk(root, real, 0)
    return status


def _perm_string(mode: int) -> str:
    kind = (
        "d" if st.S_ISDIR(mode) else "l" if st.S_ISLNK(mode) else "c" if st.S_ISCHR(mode) else "-"
    )
    bits = "rwxrwxrwx"
    return kind + "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate(bits))


@command("stat", when=_toybox)
async def _stat(p: Proc) -> int:
    opts, args = _opts(p.argv[1:], "LftT", valued="c")
    if not args:
        return await _usage(p, "stat", "Needs 1 argument")
    fmt = opts.get("c")
    fs = p.twin.fs
    status = 0
    for name in args:
        node = fs.lookup(p.path(name), follow=bool(opts.get("L")))
        if node is None:
            await p.eprint(f"stat: '{name}': No such file or directory")
            status = 1
            continue
        kind = (
            "directory"
            if node.is_dir
            else "symbolic link"
            if node.is_link
            else "character special file"
            if node.is_chr
            else "regular file"
            if node.size
            else "regular empty file"
        )
        fields = {
            "s": str(node.size),
            "n": name,
            "a": f"{st.S_IMODE(node.mode):o}",
            "A": _perm_string(node.mode),
            "Y": str(int(node.mtime)),
            "X": str(int(node.mtime)),
            "Z": str(int(node.mtime)),
            "F": kind,
            "U": "shell",
            "G": "shell",
            "u": "2000",
            "g": "2000",
            "h": "1",
            "i": str(id(node) % 1000003),
            "b": str((node.size + 511) // 512),
            "B": "512",
            "f": f"{node.mode:x}",
            "%": "%",
        }
        if isinstance(fmt, str):
            await p.print(re.sub(r"%(.)", lambda m, f=fields: f.get(m.group(1), "?"), fmt))
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000", time.gmtime(node.mtime))
            await p.print(
                f"  File: `{name}'\n  Size: {node.size}\t Blocks: {fields['b']}\t IO Blocks: 512\t"
                f"{kind}\nDevice: fd00h/64768d\t Inode: {fields['i']}\t Links: 1\n"
                f"Access: ({fields['a'].zfill(4)}/{fields['A']})\tUid: ( 2000/   shell)\t"
                f"Gid: ( 2000/   shell)\nAccess: {when}\nModify: {when}\nChange: {when}"
            )
    return status


@command("du")
async def _du(p: Proc) -> int:
    opts, args = _opts(p.argv[1:], "skhacxHLlm")
    fs = p.twin.fs
    status = 0

    def usage(node) -> int:
        if node.is_dir:
            return 4 + sum(usage(c) for c in node.children.values())
        return (node.size + 1023) // 1024 if not node.is_link else 0

    for name in args or ["."]:
        node = fs.lookup(p.path(name))
        if node is None:
            await p.eprint(f"du: {name}: No such file or directory")
            status = 1
            continue
        if not opts.get("s") and node.is_dir:
            for child, cnode in fs.listdir(p.path(name)):
                if cnode.is_dir:
                    await p.print(f"{usage(cnode)}\t{posixpath.join(name, child)}")
        await p.print(f"{usage(node)}\t{name}")
    return status


_DF_ROWS = (
    ("/dev/block/dm-0", "/system", 3_000_000, 2_800_000),
    ("/dev/block/dm-5", "/data", 6_000_000, 1_200_000),
    ("/dev/fuse", "/storage/emulated", 6_000_000, 1_200_000),
)


@command("df")
async def _df(p: Proc) -> int:
    if p.twin.personality.has_toybox:
        await p.print("Filesystem       1K-blocks    Used Available Use% Mounted on")
        for dev, mnt, size, used in _DF_ROWS:
            await p.print(
                f"{dev:<16} {size:>9} {used:>7} {size - used:>9} {used * 100 // size:>3}% {mnt}"
            )
    else:
        await p.print("Filesystem             Size   Used   Free   Blksize")
        for _, mnt, size, used in _DF_ROWS:
            await p.print(
                f"{mnt:<22} {size / 1048576:.1f}G  {used / 1048576:.1f}G  "
                f"{(size - used) / 1048576:.1f}G   4096"
            )
    return 0


# --- text ---------------------------------------------------------------------------------
def _bre_to_re(pattern: str, extended: bool, fixed: bool) -> str:
    if fixed:
        return re.escape(pattern)
    if extended:
        return pattern
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            out.append(n if n in "(){}|+?" else "\\" + n)
            i += 2
            continue
        out.append("\\" + c if c in "(){}|+?" else c)
        i += 1
    return "".join(out)


@command("grep", "egrep", "fgrep", when=_toolbox_18)
async def _grep(p: Proc) -> int:  # noqa: C901 -- grep's options, one branch each, as toybox grep
    try:
        opts, args = _opts(p.argv[1:], "ivcnqlEFwxosrRhHZ", valued="em")
    except ShellError as e:
        await p.eprint(f"grep: {e}")
        return 2
    patterns = [opts["e"]] if isinstance(opts.get("e"), str) else []
    if not patterns:
        if not args:
            await p.eprint(
                "usage: grep [-EFHabhinorsvwclqZz] [-ABC NUM] [-m MAX] PATTERN [FILE...]"
            )
            return 2
        patterns = [args.pop(0)]
    extended = bool(opts.get("E")) or p.argv[0] == "egrep"
    fixed = bool(opts.get("F")) or p.argv[0] == "fgrep"
    rx_text = "|".join(f"(?:{_bre_to_re(pt, extended, fixed)})" for pt in patterns)
    if opts.get("w"):
        rx_text = rf"\b(?:{rx_text})\b"
    if opts.get("x"):
        rx_text = rf"^(?:{rx_text})$"
    try:
        rx = re.compile(rx_text, re.I if opts.get("i") else 0)
    except re.error:
        await p.eprint(f"grep: bad regex '{patterns[0]}'")
        return 2
    invert = bool(opts.get("v"))
    show_name = (len(args) > 1 or opts.get("H")) and not opts.get("h")
    limit = int(opts["m"]) if isinstance(opts.get("m"), str) else None
    hits_total = 0
    status_err = False
    files = args or ["-"]
    for name in files:
        hits = 0
        if name == "-":
            lines_iter = p.stdin.lines()
        else:
            try:
                data = await _read_file(p, name)
            except FsError as e:
                if not opts.get("s"):
                    await p.eprint(f"grep: {name}: {e.reason}")
                status_err = True
                continue

            async def gen(data=data):
                for ln in _lines(data):
                    yield ln

            lines_iter = gen()
        n = 0
        async for line in lines_iter:
            n += 1
            m = rx.search(line)
            if bool(m) == invert:
                continue
            hits += 1
            if opts.get("q"):
                return 0
            if opts.get("l"):
                break
            if not opts.get("c"):
                prefix = (f"{name}:" if show_name else "") + (f"{n}:" if opts.get("n") else "")
                if opts.get("o") and m:
                    for mm in rx.finditer(line):
                        await p.print(prefix + mm.group())
                else:
                    await p.print(prefix + line)
            if limit is not None and hits >= limit:
                break
        if opts.get("c"):
            await p.print((f"{name}:" if show_name else "") + str(hits))
        if opts.get("l") and hits:
            await p.print(name if name != "-" else "(standard input)")
        hits_total += hits
    if status_err and not hits_total:
        return 2
    return 0 if hits_total else 1


async def _head_tail(p: Proc, head: bool) -> int:  # noqa: C901 -- head/tail options of both toolbox and toybox
    argv = [("-n" + a[1:]) if re.fullmatch(r"-\d+", a) else a for a in p.argv[1:]]
    opts, files = _opts(argv, "qvf", valued="nc")
    count_s = str(opts.get("n", "10"))
    status = 0
    for k, name in enumerate(files or ["-"]):
        if len(files) > 1:
            await p.print(("\n" if k else "") + f"==> {name} <==")
        if head:
            try:
                src = p.stdin if name == "-" else _open_file(p, name)
            except FsError as e:
                await p.eprint(f"head: {name}: {e.reason}")
                status = 1
                continue
            if "c" in opts:
                left = int(str(opts["c"]))
                while left > 0 and (chunk := await src.read(min(left, 65536))):
                    await p.out.write(chunk)
                    left -= len(chunk)
            else:
                batch = bytearray()
                for _ in range(max(int(count_s), 0)):
                    line = await src.readline()
                    if not line:
                        break
                    batch += line
                    if len(batch) >= 65536 or not src.buffered():  # next line would wait
                        await p.out.write(bytes(batch))
                        batch.clear()
                if batch:
                    await p.out.write(bytes(batch))
            if name == "-":
                p.stdin.close()
            continue
        try:
            data = await _read_file(p, name)
        except FsError as e:
            await p.eprint(f"{p.argv[0]}: {name}: {e.reason}")
            status = 1
            continue
        if "c" in opts:
            k = int(str(opts["c"]))
            await p.out.write(data[:k] if head else data[-k:] if k else b"")
            continue
        lines = data.splitlines(keepends=True)
        if head:
            chosen = lines[: int(count_s)]
        elif count_s.startswith("+"):
            chosen = lines[int(count_s[1:]) - 1 :]
        else:
            k = abs(int(count_s))
            chosen = lines[-k:] if k else []
        await p.out.write(b"".join(chosen))
    return status


@command("head", when=_toybox)
async def _head(p: Proc) -> int:
    return await _guard(p, _head_tail(p, True))


@command("tail", when=_toybox)
async def _tail(p: Proc) -> int:
    return await _guard(p, _head_tail(p, False))


@command("wc", when=_toybox)
async def _wc(p: Proc) -> int:
    opts, files = _opts(p.argv[1:], "lwcm")
    chosen = [k for k in "lwc" if opts.get(k)] or ["l", "w", "c"]
    if opts.get("m"):
        chosen = [k if k != "c" else "m" for k in chosen] if "c" in chosen else chosen + ["m"]
    totals = dict.fromkeys("lwcm", 0)
    rows = []
    async for name, data in _inputs(p, files, "wc"):
        counts = {
            "l": data.count(b"\n"),
            "w": len(data.split()),
            "c": len(data),
            "m": len(data.decode("utf-8", "replace")),
        }
        for k in counts:
            totals[k] += counts[k]
        rows.append((name, counts))
    if len(rows) > 1:
        rows.append(("total", totals))
    for name, counts in rows:
        nums = [str(counts[k]) for k in chosen]
        if len(rows) > 1:  # toybox pads only when it lists several files
            nums = [n.rjust(7) for n in nums]
        text = " ".join(nums)
        await p.print(text + (f" {name}" if name != "-" else ""))
    return _failed(p)


def _tr_set(spec: str) -> list[str]:
    classes = {
        "[:upper:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "[:lower:]": "abcdefghijklmnopqrstuvwxyz",
        "[:digit:]": "0123456789",
        "[:space:]": " \t\n\r\f\v",
        "[:blank:]": " \t",
        "[:alpha:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "[:alnum:]": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "[:punct:]": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    }
    out: list[str] = []
    i = 0
    esc = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(spec):
        cls = next((c for c in classes if spec.startswith(c, i)), None)
        if cls:
            out.extend(classes[cls])
            i += len(cls)
            continue
        c = spec[i]
        if c == "\\" and i + 1 < len(spec):
            c = esc.get(spec[i + 1], spec[i + 1])
            i += 1
        if i + 2 < len(spec) and spec[i + 1] == "-":
            end = spec[i + 2]
            out.extend(chr(k) for k in range(ord(c), ord(end) + 1))
            i += 3
            continue
        out.append(c)
        i += 1
    return out


@command("tr", when=_toybox)
async def _tr(p: Proc) -> int:
    opts, args = _opts(p.argv[1:], "dscC")
    if not args:
        return await _usage(p, "tr", "Needs 1 argument")
    set1 = _tr_set(args[0])
    set2 = _tr_set(args[1]) if len(args) > 1 else []
    text = (await p.stdin.read_all()).decode("utf-8", "replace")
    if opts.get("d"):
        drop = set(set1)
        if opts.get("c") or opts.get("C"):
            text = "".join(c for c in text if c in drop)
        else:
            text = "".join(c for c in text if c not in drop)
    elif set2:
        table = {c: set2[min(k, len(set2) - 1)] for k, c in enumerate(set1)}
        text = "".join(table.get(c, c) for c in text)
    if opts.get("s"):
        squeeze = set(set2 or set1)
        text = re.sub(
            "|".join(f"{re.escape(c)}{re.escape(c)}+" for c in squeeze) or "(?!)",
            lambda m: m.group()[0],
            text,
        )
    await p.out.write(text.encode())
    return 0


def _ranges(spec: str) -> list[tuple[int, int]]:
    out = []
    for part in spec.split(","):
        a, dash, b = part.partition("-")
        lo = int(a) if a else 1
        hi = (int(b) if b else 1 << 30) if dash else lo
        out.append((lo, hi))
    return out


@command("cut", when=_toybox)
async def _cut(p: Proc) -> int:
    opts, files = _opts(p.argv[1:], "s", valued="dfcb")
    delim = str(opts.get("d", "\t"))
    spec = opts.get("f") or opts.get("c") or opts.get("b")
    if not isinstance(spec, str):
        return await _usage(p, "cut", "Needs -fcb")
    ranges = _ranges(spec)

    def pick(n: int) -> bool:
        return any(lo <= n <= hi for lo, hi in ranges)

    async for _, data in _inputs(p, files, "cut"):
        for line in _lines(data):
            if "f" in opts:
                if delim not in line:
                    if not opts.get("s"):
                        await p.print(line)
                    continue
                fields = line.split(delim)
                await p.print(delim.join(f for k, f in enumerate(fields, 1) if pick(k)))
            else:
                await p.print("".join(c for k, c in enumerate(line, 1) if pick(k)))
    return _failed(p)


@command("sort", when=_toybox)
async def _sort(p: Proc) -> int:
    opts, files = _opts(p.argv[1:], "nrufbsd", valued="kto")
    lines: list[str] = []
    async for _, data in _inputs(p, files, "sort"):
        lines.extend(_lines(data))
    sep = opts.get("t") if isinstance(opts.get("t"), str) else None
    key_spec = opts.get("k") if isinstance(opts.get("k"), str) else None

    def key_of(line: str):
        text = line
        if key_spec:
            k = int(key_spec.split(",")[0].split(".")[0]) - 1
            parts = line.split(sep) if sep else line.split()
            text = parts[k] if k < len(parts) else ""
        if opts.get("f"):
            text = text.lower()
        if opts.get("n"):
            m = re.match(r"\s*-?\d+(\.\d+)?", text)
            return (float(m.group()) if m else 0.0, line)
        return text

    if p.env.get("__status"):  # an unreadable file: sort gives up with status 2
        p.env.pop("__status")
        return 2
    lines.sort(key=key_of, reverse=bool(opts.get("r")))
    if opts.get("u"):
        seen: set = set()
        lines = [ln for ln in lines if not (key_of(ln) in seen or seen.add(key_of(ln)))]
    await p.out.write("".join(ln + "\n" for ln in lines).encode())
    return _failed(p)


@command("uniq", when=_toybox)
async def _uniq(p: Proc) -> int:
    opts, files = _opts(p.argv[1:], "cdui")
    data = b""
    async for _, chunk in _inputs(p, files[:1], "uniq"):
        data = chunk
    groups: list[list[str]] = []
    for line in _lines(data):
        same = groups and (
            groups[-1][0].lower() == line.lower() if opts.get("i") else groups[-1][0] == line
        )
        if same:
            groups[-1].append(line)
        else:
            groups.append([line])
    for grp in groups:
        if opts.get("d") and len(grp) < 2 or opts.get("u") and len(grp) > 1:
            continue
        await p.print(f"{len(grp):>7} {grp[0]}" if opts.get("c") else grp[0])
    return _failed(p)


@command("tee", when=_toybox)
async def _tee(p: Proc) -> int:
    opts, files = _opts(p.argv[1:], "ai")
    fs = p.twin.fs
    paths = [p.path(f) for f in files]
    status = 0
    for path in list(paths):
        try:
            if not opts.get("a") or fs.lookup(path) is None:
                fs.write(path, b"")
        except FsError as e:
            await p.eprint(f"tee: {e.path}: {e.reason}")
            paths.remove(path)
            status = 1
    while chunk := await p.stdin.read():
        for path in paths:
            fs.write(path, chunk, append=True)
        await p.out.write(chunk)
    return status


@command("seq", when=_toybox)
async def _seq(p: Proc) -> int:
    opts, args = _opts(p.argv[1:], "w", valued="sf")
    try:
        nums = [float(a) for a in args]
    except ValueError:
        return await _usage(p, "seq", f"not a number '{args}'")
    if not 1 <= len(nums) <= 3:
        return await _usage(p, "seq", "Needs 1 argument" if not nums else "Max 3 arguments")
    first, inc, last = (
        (1.0, 1.0, nums[0])
        if len(nums) == 1
        else ((nums[0], 1.0, nums[1]) if len(nums) == 2 else (nums[0], nums[1], nums[2]))
    )
    integral = all(float(x).is_integer() for x in nums)
    sep = str(opts.get("s", "\n"))
    out = []
    x = first
    count = 0
    width = max(len(str(int(v))) for v in (first, last)) if opts.get("w") and integral else 0
    while (inc > 0 and x <= last) or (inc < 0 and x >= last):
        out.append(str(int(x)).zfill(width) if integral else f"{x:g}")
        x = first + inc * (count := count + 1)
        if len(out) >= 4096:
            await p.out.write((sep.join(out) + sep).encode())
            out = []
        if inc == 0:
            break
    if out:
        await p.out.write((sep.join(out) + "\n").encode())
    elif count:
        await p.out.write(b"\n")
    return 0


@command("yes", when=_toybox)
async def _yes(p: Proc) -> int:
    line = ((" ".join(p.argv[1:]) or "y") + "\n").encode()
    chunk = line * _YES_CHUNK_LINES
    while True:  # ends when the reader goes (BrokenPipe) or the stream is closed (cancel)
        await p.out.write(chunk)
        await asyncio.sleep(0)


# printf
_PRINTF_SPEC = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([diouxXeEfFgGcsb%])")


def _printf_escapes(text: str) -> str:
    out, _ = _echo_escapes(text.replace("\\c", "\\\\c"))
    return out


class _PrintfBad(Exception):
    """A numeric conversion got a non-number (printf prints 0, complains, exits 1)."""


def _printf_num(v: str, bad: list[str] | None = None) -> int:
    v = v.strip()
    if v[:1] in "'\"" and len(v) > 1:
        return ord(v[1])
    try:
        return int(v, 0) if v.lower().startswith(("0x", "-0x")) else int(v or "0")
    except ValueError:
        if re.fullmatch(r"-?\d+\.\d*", v):
            return int(float(v))
        if bad is not None:
            bad.append(v)
        return 0


def printf_format(fmt: str, args: list[str], bad: list[str] | None = None) -> str:  # noqa: C901 -- printf conversions, one branch each
    """printf(1): the format is reused while arguments remain; non-numbers for numeric
    conversions are collected in `bad`."""
    fmt = _printf_escapes(fmt)
    out = []
    args = list(args)
    while True:
        used = False

        def repl(m: re.Match) -> str:
            nonlocal used
            flags, width, prec, conv = m.groups()
            if conv == "%":
                return "%"
            if width == "*":
                width = str(_printf_num(args.pop(0))) if args else "0"
            if prec == "*":
                prec = str(_printf_num(args.pop(0))) if args else "0"
            used = True
            arg = args.pop(0) if args else ""
            spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
            if conv in "diouxX":
                c = "d" if conv in "iu" else conv
                wrong: list[str] = []
                value = _printf_num(arg, wrong)
                if wrong and bad is not None:
                    bad.append(f"%{conv} {arg}")
                return (spec + c) % value
            if conv in "eEfFgG":
                try:
                    return (spec + conv) % float(arg or 0)
                except ValueError:
                    return (spec + conv) % 0.0
            if conv == "c":
                return (spec + "s") % (arg[:1])
            if conv == "b":
                return (spec + "s") % _printf_escapes(arg)
            return (spec + "s") % arg

        out.append(_PRINTF_SPEC.sub(repl, fmt))
        if not args or not used:
            break
    return "".join(out)


@command("printf", when=_toybox)
async def _printf(p: Proc) -> int:
    if len(p.argv) < 2:
        return await _usage(p, "printf", "Needs 1 argument")
    bad: list[str] = []
    await p.out.write(printf_format(p.argv[1], p.argv[2:], bad).encode())
    for v in bad:
        await p.eprint(f"printf: bad {v}")
    return 1 if bad else 0


@command("expr", when=_toybox)
async def _expr(p: Proc) -> int:  # noqa: C901 -- expr operators, one branch each
    args = p.argv[1:]
    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(args):
            raise ShellError("syntax error")
        a = args[pos]
        pos += 1
        if a == "(":
            v = orexp()
            pos += 1
            return v
        if a == "length" and pos < len(args):
            pos += 1
            return len(args[pos - 1])
        return int(a) if re.fullmatch(r"-?\d+", a) else a

    def match():
        nonlocal pos
        v = atom()
        while pos < len(args) and args[pos] == ":":
            pos += 1
            rx = args[pos]
            pos += 1
            m = re.match(_bre_to_re(rx, False, False), str(v))
            if m and m.groups():
                v = m.group(1) or ""
            else:
                v = len(m.group()) if m else 0
        return v

    def mul():
        nonlocal pos
        v = match()
        while pos < len(args) and args[pos] in ("*", "/", "%"):
            op = args[pos]
            pos += 1
            r = match()
            a, b = int(v), int(r)
            if op != "*" and b == 0:
                raise ShellError("division by zero")
            v = a * b if op == "*" else int(a / b) if op == "/" else a - int(a / b) * b
        return v

    def add():
        nonlocal pos
        v = mul()
        while pos < len(args) and args[pos] in ("+", "-"):
            op = args[pos]
            pos += 1
            r = mul()
            try:
                v = int(v) + int(r) if op == "+" else int(v) - int(r)
            except ValueError:
                raise ShellError("non-integer argument") from None
        return v

    def cmp():
        nonlocal pos
        v = add()
        while pos < len(args) and args[pos] in ("=", "==", "!=", "<", "<=", ">", ">="):
            op = args[pos]
            pos += 1
            r = add()
            a, b = (v, r) if isinstance(v, int) and isinstance(r, int) else (str(v), str(r))
            v = int(
                {
                    "=": a == b,
                    "==": a == b,
                    "!=": a != b,
                    "<": a < b,
                    "<=": a <= b,
                    ">": a > b,
                    ">=": a >= b,
                }[op]
            )
        return v

    def andexp():
        nonlocal pos
        v = cmp()
        while pos < len(args) and args[pos] == "&":
            pos += 1
            r = cmp()
            v = v if (v not in (0, "") and r not in (0, "")) else 0
        return v

    def orexp():
        nonlocal pos
        v = andexp()
        while pos < len(args) and args[pos] == "|":
            pos += 1
            r = andexp()
            v = v if v not in (0, "") else r
        return v

    try:
        result = orexp()
        if pos != len(args):
            raise ShellError("syntax error")
    except (ShellError, ValueError, IndexError) as e:
        await p.eprint(f"expr: {e if isinstance(e, ShellError) else 'syntax error'}")
        return 2
    await p.print(str(result))
    return 0 if result not in (0, "") else 1


@command("env", when=_toybox)
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


@command("xargs", when=_toybox)
async def _xargs(p: Proc) -> int:
    opts, cmd = _opts(p.argv[1:], "0rtx", valued="nIEs")
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


@_fallback("pidof", when=_toybox)
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


@command("uname", when=_toybox)
async def _uname(p: Proc) -> int:
    opts, _ = _opts(p.argv[1:], "asnrvmpio")
    pers = p.twin.personality
    release, version = _UNAME[min(_UNAME, key=lambda a: abs(a - pers.api))]
    abi = p.twin.props.get("ro.product.cpu.abi", "arm64-v8a")
    machine = {"x86_64": "x86_64", "x86": "i686", "armeabi-v7a": "armv7l"}.get(abi, "aarch64")
    host = "localhost"
    vals = {"s": "Linux", "n": host, "r": release, "v": version, "m": machine, "o": "Toybox"}
    chosen = "snrvmo" if opts.get("a") else "".join(k for k in "snrvmo" if opts.get(k)) or "s"
    await p.print(" ".join(vals[k] for k in chosen))
    return 0


@command("which", when=_toybox)
async def _which(p: Proc) -> int:
    status = 0
    for name in p.argv[1:]:
        if lookup(name, p.twin.personality) or name in ("sh", "mksh"):
            await p.print(f"/system/bin/{name}")
        else:
            status = 1
    return status


# --- sed ----------------------------------------------------------------------------------
class _SedCmd:
    def __init__(self, addr1, addr2, neg, cmd, arg):
        self.addr1, self.addr2, self.neg, self.cmd, self.arg = addr1, addr2, neg, cmd, arg
        self.active = False


def _sed_parse(script: str, extended: bool) -> list[_SedCmd]:  # noqa: C901 -- sed's command language: one branch per command
    cmds = []
    i = 0
    n = len(script)

    def addr():
        nonlocal i
        if i < n and script[i].isdigit():
            m = re.match(r"\d+", script[i:])
            i += m.end()
            return int(m.group())
        if i < n and script[i] == "$":
            i += 1
            return "$"
        if i < n and script[i] in "/\\":
            delim = "/"
            if script[i] == "\\":
                i += 1
                delim = script[i]
            i += 1
            start = i
            while i < n and script[i] != delim:
                i += 2 if script[i] == "\\" else 1
            rx = re.compile(_bre_to_re(script[start:i], extended, False))
            i += 1
            return rx
        return None

    while i < n:
        while i < n and script[i] in " \t\n;":
            i += 1
        if i >= n:
            break
        a1 = addr()
        a2 = None
        if i < n and script[i] == ",":
            i += 1
            a2 = addr()
        while i < n and script[i] == " ":
            i += 1
        neg = False
        if i < n and script[i] == "!":
            neg = True
            i += 1
        if i >= n:
            raise ShellError("bad command")
        c = script[i]
        i += 1
        if c in "pdqnNPD=":
            cmds.append(_SedCmd(a1, a2, neg, c, None))
        elif c in "s":
            delim = script[i]
            i += 1
            parts = []
            for _ in range(2):
                start = i
                buf = []
                while i < n and script[i] != delim:
                    if script[i] == "\\" and i + 1 < n:
                        buf.append(script[i : i + 2] if script[i + 1] != delim else delim)
                        i += 2
                        continue
                    buf.append(script[i])
                    i += 1
                if i >= n:
                    raise ShellError("unterminated `s' command")
                parts.append("".join(buf))
                i += 1
                del start
            m = re.match(r"[gpiI0-9]*", script[i:])
            flags = m.group()
            i += m.end()
            rx = re.compile(
                _bre_to_re(parts[0], extended, False), re.I if "i" in flags.lower() else 0
            )
            rep = re.sub(
                r"\\(\d)", r"\\g<\1>", parts[1].replace("&", "\\g<0>").replace("\\\\g<0>", "&")
            )
            cmds.append(_SedCmd(a1, a2, neg, "s", (rx, rep, flags)))
        elif c in "aic":
            text = script[i:].lstrip("\\").lstrip("\n").lstrip()
            end = text.find("\n")
            text = text if end < 0 else text[:end]
            i = n if end < 0 else script.index(text, i) + len(text)
            cmds.append(_SedCmd(a1, a2, neg, c, text))
        elif c == "y":
            delim = script[i]
            src, dst, _rest = script[i + 1 :].split(delim, 2)
            i = n - len(_rest)
            cmds.append(_SedCmd(a1, a2, neg, "y", str.maketrans(src, dst)))
        else:
            raise ShellError(f"Unknown command '{c}'")
    return cmds


def _sed_match(cmd: _SedCmd, lineno: int, last: bool, line: str) -> bool:
    def hit(a) -> bool:
        if a is None:
            return True
        if a == "$":
            return last
        if isinstance(a, int):
            return lineno == a
        return bool(a.search(line))

    if cmd.addr2 is None:
        ok = hit(cmd.addr1)
    elif cmd.active:
        ok = True
        end = cmd.addr2
        if (isinstance(end, int) and lineno >= end) or (not isinstance(end, int) and hit(end)):
            cmd.active = False
    elif hit(cmd.addr1):
        ok = True
        cmd.active = not (isinstance(cmd.addr2, int) and lineno >= cmd.addr2)
    else:
        ok = False
    return ok != cmd.neg


def _sed_run(cmds: list[_SedCmd], text: str, quiet: bool) -> str:  # noqa: C901 -- sed's command language: one branch per command
    if not text:
        return ""
    out: list[str] = []
    lines = text.split("\n")
    trailing = text.endswith("\n")
    if trailing:
        lines.pop()
    for idx, line in enumerate(lines):
        lineno = idx + 1
        last = idx == len(lines) - 1
        deleted = False
        after: list[str] = []
        quit_now = False
        for cmd in cmds:
            if not _sed_match(cmd, lineno, last, line):
                continue
            c = cmd.cmd
            if c == "p":
                out.append(line + "\n")
            elif c == "d":
                deleted = True
                break
            elif c == "q":
                quit_now = True
                break
            elif c == "=":
                out.append(f"{lineno}\n")
            elif c == "s":
                rx, rep, flags = cmd.arg
                count = 0 if "g" in flags else 1
                nth = re.search(r"\d+", flags)
                if nth:
                    k = int(nth.group())
                    seen = 0

                    def one(m, k=k, rep=rep):
                        nonlocal seen
                        seen += 1
                        return m.expand(rep) if seen == k else m.group()

                    new = rx.sub(one, line)
                else:
                    new = rx.sub(rep, line, count=count)
                if new != line or rx.search(line):
                    line = new
                    if "p" in flags:
                        out.append(line + "\n")
            elif c == "y":
                line = line.translate(cmd.arg)
            elif c == "a":
                after.append(cmd.arg + "\n")
            elif c == "i":
                out.append(cmd.arg + "\n")
            elif c == "c":
                deleted = True
                out.append(cmd.arg + "\n")
                break
        if not deleted and not quiet:
            out.append(line + ("\n" if (not last or trailing) else ""))
        out.extend(after)
        if quit_now:
            break
    return "".join(out)


@command("sed", when=_toybox)
async def _sed(p: Proc) -> int:  # noqa: C901 -- sed's options, one branch each
    args = p.argv[1:]
    scripts: list[str] = []
    files: list[str] = []
    quiet = inplace = extended = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-e" and i + 1 < len(args):
            scripts.append(args[i + 1])
            i += 2
            continue
        if a.startswith("-i"):
            inplace = True
        elif a == "-n":
            quiet = True
        elif a in ("-E", "-r"):
            extended = True
        elif a.startswith("-") and len(a) > 1 and set(a[1:]) <= set("nErs"):
            quiet = quiet or "n" in a
            extended = extended or "E" in a or "r" in a
        elif not scripts and not files:
            scripts.append(a)
        else:
            files.append(a)
        i += 1
    if not scripts:
        return await _usage(p, "sed", "Needs 1 argument")
    try:
        cmds = _sed_parse("\n".join(scripts), extended)
    except (ShellError, re.error, ValueError, IndexError) as e:
        await p.eprint(f"sed: bad pattern: {e}")
        return 1
    if inplace:
        status = 0
        for name in files:
            try:
                text = p.twin.fs.read(p.path(name)).decode("utf-8", "replace")
            except FsError as e:
                await p.eprint(f"sed: {name}: {e.reason}")
                status = 1
                continue
            p.twin.fs.write(p.path(name), _sed_run(cmds, text, quiet).encode())
        return status
    text = ""
    async for _, data in _inputs(p, files, "sed"):
        text += data.decode("utf-8", "replace")
    await p.out.write(_sed_run(cmds, text, quiet).encode())
    return _failed(p)


# --- awk (a subset) -----------------------------------------------------------------------
_AWK_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?)|\"((?:[^\"\\]|\\.)*)\"|/((?:[^/\\]|\\.)+)/|([A-Za-z_][A-Za-z0-9_]*)|"
    r"(\+\+|--|\+=|-=|\*=|/=|==|!=|<=|>=|&&|\|\||!~|[-+*/%<>!~=(),;{}$?:]))"
)


class _AwkProgram:
    """BEGIN/END/pattern-action rules over records; expressions evaluated by a small parser."""

    def __init__(self, src: str):  # noqa: C901 -- awk's lexer state per token kind
        self.toks: list[tuple[str, str]] = []
        pos = 0
        src = src.strip()
        while pos < len(src):
            if src[pos] in " \t":
                pos += 1
                continue
            if src[pos] == "\n":
                self.toks.append(("op", ";"))
                pos += 1
                continue
            prev = self.toks[-1] if self.toks else ("op", "(")
            m = _AWK_TOKEN.match(src, pos)
            if not m or m.end() == pos:
                raise ShellError("syntax error")
            num, string, regex, name, op = m.groups()
            if regex is not None and not (
                prev[0] == "op" and prev[1] in "(,;{}!~&|" or prev[1] in ("~", "!~", "&&", "||")
            ):
                # a division, not a regex
                op, regex = "/", None
                m2 = re.compile(r"\s*/").match(src, pos)
                self.toks.append(("op", "/"))
                pos = m2.end()
                continue
            if num is not None:
                self.toks.append(("num", num))
            elif string is not None:
                self.toks.append(("str", bytes(string, "utf-8").decode("unicode_escape")))
            elif regex is not None:
                self.toks.append(("re", regex))
            elif name is not None:
                self.toks.append(("name", name))
            else:
                self.toks.append(("op", op))
            pos = m.end()
        self.i = 0
        self.rules: list[tuple[str | object, list]] = []
        while self.i < len(self.toks):
            if self.peek() == ("op", ";"):
                self.i += 1
                continue
            kind, val = self.peek()
            if kind == "name" and val in ("BEGIN", "END"):
                self.i += 1
                self.rules.append((val, self.block()))
                continue
            pattern = None if self.peek() == ("op", "{") else self.expr()
            action = self.block() if self.peek() == ("op", "{") else [("print", [])]
            self.rules.append((pattern, action))

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def expect(self, op: str) -> None:
        if self.peek() != ("op", op):
            raise ShellError("syntax error")
        self.i += 1

    def block(self) -> list:
        self.expect("{")
        stmts = []
        while self.peek() != ("op", "}"):
            if self.peek()[0] == "end":
                raise ShellError("syntax error")
            if self.peek() == ("op", ";"):
                self.i += 1
                continue
            stmts.append(self.statement())
        self.i += 1
        return stmts

    def statement(self):
        kind, val = self.peek()
        if kind == "name" and val in ("print", "printf"):
            self.i += 1
            args = []
            paren = self.peek() == ("op", "(")
            if paren:
                self.i += 1
            while self.peek() not in (("op", ";"), ("op", "}"), ("end", "")) and not (
                paren and self.peek() == ("op", ")")
            ):
                args.append(self.expr())
                if self.peek() == ("op", ","):
                    self.i += 1
            if paren:
                self.expect(")")
            return (val, args)
        if kind == "name" and val == "if":
            self.i += 1
            self.expect("(")
            cond = self.expr()
            self.expect(")")
            then = self.block() if self.peek() == ("op", "{") else [self.statement()]
            other = []
            while self.peek() == ("op", ";"):
                self.i += 1
            if self.peek() == ("name", "else"):
                self.i += 1
                other = self.block() if self.peek() == ("op", "{") else [self.statement()]
            return ("if", cond, then, other)
        if kind == "name" and val == "for":
            self.i += 1
            self.expect("(")
            init = None if self.peek() == ("op", ";") else self.expr()
            self.expect(";")
            cond = None if self.peek() == ("op", ";") else self.expr()
            self.expect(";")
            step = None if self.peek() == ("op", ")") else self.expr()
            self.expect(")")
            body = self.block() if self.peek() == ("op", "{") else [self.statement()]
            return ("for", init, cond, step, body)
        if kind == "name" and val == "while":
            self.i += 1
            self.expect("(")
            cond = self.expr()
            self.expect(")")
            body = self.block() if self.peek() == ("op", "{") else [self.statement()]
            return ("for", None, cond, None, body)
        if kind == "name" and val == "next":
            self.i += 1
            return ("next",)
        return ("expr", self.expr())

    # expressions -> nested tuples
    def expr(self):
        return self.assign()

    def assign(self):
        left = self.ternary()
        kind, op = self.peek()
        if kind == "op" and op in ("=", "+=", "-=", "*=", "/=") and left[0] in ("var", "field"):
            self.i += 1
            return ("assign", op, left, self.assign())
        return left

    def ternary(self):
        cond = self.or_()
        if self.peek() == ("op", "?"):
            self.i += 1
            a = self.ternary()
            self.expect(":")
            b = self.ternary()
            return ("?", cond, a, b)
        return cond

    def or_(self):
        v = self.and_()
        while self.peek() == ("op", "||"):
            self.i += 1
            v = ("||", v, self.and_())
        return v

    def and_(self):
        v = self.match()
        while self.peek() == ("op", "&&"):
            self.i += 1
            v = ("&&", v, self.match())
        return v

    def match(self):
        v = self.compare()
        while self.peek() in (("op", "~"), ("op", "!~")):
            op = self.peek()[1]
            self.i += 1
            v = (op, v, self.compare())
        return v

    def compare(self):
        v = self.concat()
        if self.peek()[0] == "op" and self.peek()[1] in ("<", "<=", ">", ">=", "==", "!="):
            op = self.peek()[1]
            self.i += 1
            v = ("cmp", op, v, self.concat())
        return v

    def concat(self):
        v = self.additive()
        while True:
            kind, val = self.peek()
            if (
                kind in ("num", "str")
                or (kind == "name" and val not in ("in",))
                or (kind == "op" and val in ("$", "(", "!", "-", "++", "--"))
                and kind != "op"
                or (kind == "op" and val in ("$", "("))
            ):
                v = ("concat", v, self.additive())
            else:
                return v

    def additive(self):
        v = self.mul()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.peek()[1]
            self.i += 1
            v = ("arith", op, v, self.mul())
        return v

    def mul(self):
        v = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            op = self.peek()[1]
            self.i += 1
            v = ("arith", op, v, self.unary())
        return v

    def unary(self):
        kind, val = self.peek()
        if kind == "op" and val in ("-", "+", "!"):
            self.i += 1
            return ("neg" if val == "-" else "not" if val == "!" else "pos", self.unary())
        if kind == "op" and val in ("++", "--"):
            self.i += 1
            target = self.primary()
            return ("assign", "+=" if val == "++" else "-=", target, ("num", 1.0))
        v = self.primary()
        kind, val = self.peek()
        if kind == "op" and val in ("++", "--") and v[0] in ("var", "field"):
            self.i += 1
            return ("post", val, v)
        return v

    def primary(self):
        kind, val = self.peek()
        self.i += 1
        if kind == "num":
            return ("num", float(val))
        if kind == "str":
            return ("str", val)
        if kind == "re":
            return ("re", re.compile(val))
        if kind == "op" and val == "$":
            return ("field", self.primary())
        if kind == "op" and val == "(":
            v = self.expr()
            self.expect(")")
            return v
        if kind == "name":
            if self.peek() == ("op", "(") and val in (
                "length",
                "substr",
                "index",
                "toupper",
                "tolower",
                "int",
                "sprintf",
                "split",
            ):
                self.i += 1
                args = []
                while self.peek() != ("op", ")"):
                    args.append(self.expr())
                    if self.peek() == ("op", ","):
                        self.i += 1
                self.i += 1
                return ("call", val, args)
            if val == "length":
                return ("call", "length", [])
            return ("var", val)
        raise ShellError("syntax error")


def _awk_num(v) -> float:
    if isinstance(v, float):
        return v
    m = re.match(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", str(v))
    return float(m.group()) if m else 0.0


def _awk_str(v) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.6g}"
    return str(v)


def _looks_numeric(v) -> bool:
    return isinstance(v, float) or bool(
        re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", str(v))
    )


class _AwkNext(Exception):
    pass


class _AwkRun:
    def __init__(self, prog: _AwkProgram, fs: str | None, variables: dict[str, str]):
        self.prog = prog
        self.vars: dict[str, object] = {
            "NR": 0.0,
            "NF": 0.0,
            "FS": fs or " ",
            "OFS": " ",
            "ORS": "\n",
        }
        self.vars.update(variables)
        self.fields: list[str] = [""]
        self.out: list[str] = []

    def set_record(self, line: str) -> None:
        fs = str(self.vars.get("FS", " "))
        if fs == " ":
            parts = line.split()
        elif len(fs) == 1 and fs != "\\":
            parts = line.split(fs)
        else:
            parts = re.split(fs, line)
        self.fields = [line] + parts
        self.vars["NF"] = float(len(parts))

    def get_field(self, k: int) -> str:
        return self.fields[k] if 0 <= k < len(self.fields) else ""

    def set_field(self, k: int, v: str) -> None:
        while len(self.fields) <= k:
            self.fields.append("")
        self.fields[k] = v
        if k == 0:
            self.set_record(v)
        else:
            self.fields[0] = str(self.vars.get("OFS", " ")).join(self.fields[1:])
            self.vars["NF"] = float(len(self.fields) - 1)

    def ev(self, node):  # noqa: C901 -- awk's expression evaluator: one branch per node type
        t = node[0]
        if t == "num":
            return node[1]
        if t == "str":
            return node[1]
        if t == "re":
            return float(bool(node[1].search(self.fields[0])))
        if t == "field":
            return self.get_field(int(_awk_num(self.ev(node[1]))))
        if t == "var":
            return self.vars.get(node[1], "")
        if t == "assign":
            _, op, target, rhs = node
            val = self.ev(rhs)
            if op != "=":
                cur = _awk_num(self.ev(target))
                val = {
                    "+=": cur + _awk_num(val),
                    "-=": cur - _awk_num(val),
                    "*=": cur * _awk_num(val),
                    "/=": cur / (_awk_num(val) or float("nan")),
                }[op]
            self.store(target, val)
            return val
        if t == "post":
            cur = _awk_num(self.ev(node[2]))
            self.store(node[2], cur + (1 if node[1] == "++" else -1))
            return cur
        if t == "?":
            return self.ev(node[2]) if self.truth(self.ev(node[1])) else self.ev(node[3])
        if t == "||":
            return float(self.truth(self.ev(node[1])) or self.truth(self.ev(node[2])))
        if t == "&&":
            return float(self.truth(self.ev(node[1])) and self.truth(self.ev(node[2])))
        if t in ("~", "!~"):
            rx = node[2]
            pat = rx[1] if rx[0] == "re" else re.compile(_awk_str(self.ev(rx)))
            hit = bool(pat.search(_awk_str(self.ev(node[1]))))
            return float(hit if t == "~" else not hit)
        if t == "cmp":
            a, b = self.ev(node[2]), self.ev(node[3])
            if _looks_numeric(a) and _looks_numeric(b):
                a, b = _awk_num(a), _awk_num(b)
            else:
                a, b = _awk_str(a), _awk_str(b)
            return float(
                {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[
                    node[1]
                ]
            )
        if t == "concat":
            return _awk_str(self.ev(node[1])) + _awk_str(self.ev(node[2]))
        if t == "arith":
            a, b = _awk_num(self.ev(node[2])), _awk_num(self.ev(node[3]))
            if node[1] in "/%" and b == 0:
                raise ShellError("division by zero")
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / (b or 1), "%": a % (b or 1)}[
                node[1]
            ]
        if t == "neg":
            return -_awk_num(self.ev(node[1]))
        if t == "pos":
            return _awk_num(self.ev(node[1]))
        if t == "not":
            return float(not self.truth(self.ev(node[1])))
        if t == "call":
            name, args = node[1], [self.ev(a) for a in node[2]]
            if name == "length":
                return float(len(_awk_str(args[0]) if args else self.fields[0]))
            if name == "substr":
                s = _awk_str(args[0])
                start = int(_awk_num(args[1])) - 1
                n = int(_awk_num(args[2])) if len(args) > 2 else len(s)
                return s[max(start, 0) : max(start, 0) + max(n + min(start, 0), 0)]
            if name == "index":
                return float(_awk_str(args[0]).find(_awk_str(args[1])) + 1)
            if name == "toupper":
                return _awk_str(args[0]).upper()
            if name == "tolower":
                return _awk_str(args[0]).lower()
            if name == "int":
                return float(int(_awk_num(args[0])))
            if name == "sprintf":
                return printf_format(_awk_str(args[0]), [_awk_str(a) for a in args[1:]])
        raise ShellError("syntax error")

    def store(self, target, val) -> None:
        if target[0] == "field":
            self.set_field(int(_awk_num(self.ev(target[1]))), _awk_str(val))
        else:
            self.vars[target[1]] = val

    @staticmethod
    def truth(v) -> bool:
        if isinstance(v, float):
            return v != 0
        return v != "" and not (_looks_numeric(v) and _awk_num(v) == 0)

    def run_stmts(self, stmts) -> None:
        for s in stmts:
            kind = s[0]
            if kind == "print":
                vals = [_awk_str(self.ev(a)) for a in s[1]] or [self.fields[0]]
                self.out.append(str(self.vars["OFS"]).join(vals) + str(self.vars["ORS"]))
            elif kind == "printf":
                vals = [_awk_str(self.ev(a)) for a in s[1]]
                if vals:
                    self.out.append(printf_format(vals[0].replace("\\", "\\\\"), vals[1:]))
            elif kind == "if":
                self.run_stmts(s[2] if self.truth(self.ev(s[1])) else s[3])
            elif kind == "for":
                _, init, cond, step, body = s
                if init is not None:
                    self.ev(init)
                for _turn in range(_AWK_MAX_LOOP):
                    if cond is not None and not self.truth(self.ev(cond)):
                        break
                    self.run_stmts(body)
                    if step is not None:
                        self.ev(step)
                else:
                    raise ShellError(f"loop ran {_AWK_MAX_LOOP} times")
            elif kind == "next":
                raise _AwkNext()
            else:
                self.ev(s[1])


@command("awk", when=_awk)
async def _awk_cmd(p: Proc) -> int:  # noqa: C901 -- awk's options and program sources
    args = p.argv[1:]
    fs = None
    variables: dict[str, str] = {}
    while args and args[0].startswith("-") and len(args[0]) > 1:
        a = args.pop(0)
        if a.startswith("-F"):
            fs = a[2:] or (args.pop(0) if args else " ")
            fs = "\t" if fs == "\\t" else fs
        elif a.startswith("-v"):
            k, _, v = (a[2:] or (args.pop(0) if args else "")).partition("=")
            variables[k] = v
        elif a == "--":
            break
    if not args:
        await p.eprint("usage: awk [-F sepstring] [-v assignment]... program [argument...]")
        return 2
    try:
        prog = _AwkProgram(args.pop(0))
    except (ShellError, IndexError):
        await p.eprint("awk: syntax error")
        return 2
    run = _AwkRun(prog, fs, variables)
    try:
        for pattern, action in prog.rules:
            if pattern == "BEGIN":
                run.run_stmts(action)
        if any(pt != "BEGIN" for pt, _ in prog.rules):
            async for _, data in _inputs(p, args, "awk"):
                for line in _lines(data):
                    run.vars["NR"] = _awk_num(run.vars["NR"]) + 1
                    run.set_record(line)
                    try:
                        for pattern, action in prog.rules:
                            if pattern in ("BEGIN", "END"):
                                continue
                            if pattern is None or run.truth(run.ev(pattern)):
                                run.run_stmts(action)
                    except _AwkNext:
                        pass
                    if len(run.out) > 256:
                        await p.out.write("".join(run.out).encode())
                        run.out.clear()
            for pattern, action in prog.rules:
                if pattern == "END":
                    run.run_stmts(action)
    except (ShellError, IndexError, KeyError) as e:
        await p.out.write("".join(run.out).encode())
        await p.eprint(f"awk: {e or 'syntax error'}")
        return 2
    await p.out.write("".join(run.out).encode())
    return _failed(p)


__all__ = ["printf_format"]
