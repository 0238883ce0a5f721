"""Text: grep egrep fgrep head tail wc tr cut sort uniq tee seq yes."""

from __future__ import annotations

import asyncio
import re

from harness.twin.fs import FsError
from harness.twin.proc import Proc, ShellError
from harness.twin.registry import command
from harness.twin.userland.toolkit import (
    bre_to_re,
    failed_status,
    guarded,
    has_toolbox_18,
    has_toybox,
    inputs,
    open_file,
    parse_opts,
    read_file,
    split_lines,
    usage_error,
)

_YES_CHUNK_LINES = 4096


# --- text ---------------------------------------------------------------------------------
@command("grep", "egrep", "fgrep", when=has_toolbox_18)
async def _grep(p: Proc) -> int:  # noqa: C901 -- grep's options, one branch each, as toybox grep
    try:
        opts, args = parse_opts(p.argv[1:], "ivcnqlEFwxosrRhHZ", valued="em")
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
    rx_text = "|".join(f"(?:{bre_to_re(pt, extended, fixed)})" for pt in patterns)
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
                data = await read_file(p, name)
            except FsError as e:
                if not opts.get("s"):
                    await p.eprint(f"grep: {name}: {e.reason}")
                status_err = True
                continue

            async def gen(data=data):
                for ln in split_lines(data):
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
    opts, files = parse_opts(argv, "qvf", valued="nc")
    count_s = str(opts.get("n", "10"))
    status = 0
    for k, name in enumerate(files or ["-"]):
        if len(files) > 1:
            await p.print(("\n" if k else "") + f"==> {name} <==")
        if head:
            try:
                src = p.stdin if name == "-" else open_file(p, name)
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
            data = await read_file(p, name)
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


@command("head", when=has_toybox)
async def _head(p: Proc) -> int:
    return await guarded(p, _head_tail(p, True))


@command("tail", when=has_toybox)
async def _tail(p: Proc) -> int:
    return await guarded(p, _head_tail(p, False))


@command("wc", when=has_toybox)
async def _wc(p: Proc) -> int:
    opts, files = parse_opts(p.argv[1:], "lwcm")
    chosen = [k for k in "lwc" if opts.get(k)] or ["l", "w", "c"]
    if opts.get("m"):
        chosen = [k if k != "c" else "m" for k in chosen] if "c" in chosen else chosen + ["m"]
    totals = dict.fromkeys("lwcm", 0)
    rows = []
    async for name, data in inputs(p, files, "wc"):
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
    return failed_status(p)


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


@command("tr", when=has_toybox)
async def _tr(p: Proc) -> int:
    opts, args = parse_opts(p.argv[1:], "dscC")
    if not args:
        return await usage_error(p, "tr", "Needs 1 argument")
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


@command("cut", when=has_toybox)
async def _cut(p: Proc) -> int:
    opts, files = parse_opts(p.argv[1:], "s", valued="dfcb")
    delim = str(opts.get("d", "\t"))
    spec = opts.get("f") or opts.get("c") or opts.get("b")
    if not isinstance(spec, str):
        return await usage_error(p, "cut", "Needs -fcb")
    ranges = _ranges(spec)

    def pick(n: int) -> bool:
        return any(lo <= n <= hi for lo, hi in ranges)

    async for _, data in inputs(p, files, "cut"):
        for line in split_lines(data):
            if "f" in opts:
                if delim not in line:
                    if not opts.get("s"):
                        await p.print(line)
                    continue
                fields = line.split(delim)
                await p.print(delim.join(f for k, f in enumerate(fields, 1) if pick(k)))
            else:
                await p.print("".join(c for k, c in enumerate(line, 1) if pick(k)))
    return failed_status(p)


@command("sort", when=has_toybox)
async def _sort(p: Proc) -> int:
    opts, files = parse_opts(p.argv[1:], "nrufbsd", valued="kto")
    lines: list[str] = []
    async for _, data in inputs(p, files, "sort"):
        lines.extend(split_lines(data))
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
    return failed_status(p)


@command("uniq", when=has_toybox)
async def _uniq(p: Proc) -> int:
    opts, files = parse_opts(p.argv[1:], "cdui")
    data = b""
    async for _, chunk in inputs(p, files[:1], "uniq"):
        data = chunk
    groups: list[list[str]] = []
    for line in split_lines(data):
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
    return failed_status(p)


@command("tee", when=has_toybox)
async def _tee(p: Proc) -> int:
    opts, files = parse_opts(p.argv[1:], "ai")
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


@command("seq", when=has_toybox)
async def _seq(p: Proc) -> int:
    opts, args = parse_opts(p.argv[1:], "w", valued="sf")
    try:
        nums = [float(a) for a in args]
    except ValueError:
        return await usage_error(p, "seq", f"not a number '{args}'")
    if not 1 <= len(nums) <= 3:
        return await usage_error(p, "seq", "Needs 1 argument" if not nums else "Max 3 arguments")
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


@command("yes", when=has_toybox)
async def _yes(p: Proc) -> int:
    line = ((" ".join(p.argv[1:]) or "y") + "\n").encode()
    chunk = line * _YES_CHUNK_LINES
    while True:  # ends when the reader goes (BrokenPipe) or the stream is closed (cancel)
        await p.out.write(chunk)
        await asyncio.sleep(0)


# printf
