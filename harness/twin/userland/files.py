"""Files: cat cp mv rm rmdir ln readlink basename dirname find stat du df, and toybox's own
echo true false pwd test (`/system/bin/echo`; plain `echo` is mksh's).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import stat as st
import time

from harness.twin.fs import FsError
from harness.twin.proc import IO, Proc, Source
from harness.twin.registry import command
from harness.twin.shell.builtins import echo_escapes
from harness.twin.shell.condition import test_builtin
from harness.twin.userland.toolkit import (
    guarded,
    has_toolbox_18,
    has_toybox,
    parse_opts,
    usage_error,
)


# --- toybox's own echo/true/false/pwd/test (`/system/bin/echo`; plain `echo` is mksh's) ----
@command("echo", when=has_toybox)
async def _echo(p: Proc) -> int:
    args = p.argv[1:]
    newline, escapes = True, False  # toybox echo: no escapes unless -e
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] if "E" not in args[0] else False
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = echo_escapes(text)
        newline = newline and not stop
    await p.out.write((text + ("\n" if newline else "")).encode())
    return 0


@command("true", when=has_toybox)
async def _true(p: Proc) -> int:
    return 0


@command("false", when=has_toybox)
async def _false(p: Proc) -> int:
    return 1


@command("pwd", when=has_toybox)
async def _pwd(p: Proc) -> int:
    await p.print(p.shell.cwd)
    return 0


@command("test", "[", when=has_toybox)
async def _test(p: Proc) -> int:
    return await test_builtin(p.shell, p.argv, IO(p.stdin, p.out, p.err))


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


@command("cp", when=has_toolbox_18)
async def _cp(p: Proc) -> int:
    return await guarded(p, _cp_mv(p, move=False))


@command("mv")
async def _mv(p: Proc) -> int:
    return await guarded(p, _cp_mv(p, move=True))


async def _cp_mv(p: Proc, move: bool) -> int:
    tool = p.argv[0]
    opts, args = parse_opts(p.argv[1:], "rRpfinvaHLPd")
    if len(args) < 2:
        return await usage_error(p, tool, "Needs 2 arguments")
    fs = p.twin.fs
    *srcs, dst = args
    dst_path = p.path(dst)
    dst_node = fs.lookup(dst_path)
    if len(srcs) > 1 and (dst_node is None or not dst_node.is_dir):
        return await usage_error(p, tool, f"'{dst}' not directory")
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
    opts, args = parse_opts(p.argv[1:], "sfnv")
    if len(args) != 2:
        return await usage_error(p, "ln", "Needs 2 arguments")
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


@command("readlink", when=has_toolbox_18)
async def _readlink(p: Proc) -> int:
    opts, args = parse_opts(p.argv[1:], "fenqmv")
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


@command("basename", when=has_toybox)
async def _basename(p: Proc) -> int:
    args = p.argv[1:]
    if not args:
        return await usage_error(p, "basename", "Needs 1 argument")
    name = args[0].rstrip("/") or "/"
    base = posixpath.basename(name) or "/"
    if len(args) > 1 and base != args[1] and base.endswith(args[1]):
        base = base[: -len(args[1])]
    await p.print(base)
    return 0


@command("dirname", when=has_toybox)
async def _dirname(p: Proc) -> int:
    if len(p.argv) < 2:
        return await usage_error(p, "dirname", "Needs 1 argument")
    name = p.argv[1].rstrip("/") or "/"
    await p.print(posixpath.dirname(name) or ".")
    return 0


@command("find", when=has_toybox)
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


@command("stat", when=has_toybox)
async def _stat(p: Proc) -> int:
    opts, args = parse_opts(p.argv[1:], "LftT", valued="c")
    if not args:
        return await usage_error(p, "stat", "Needs 1 argument")
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
    opts, args = parse_opts(p.argv[1:], "skhacxHLlm")
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
