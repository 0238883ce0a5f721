"""awk (a subset, from API 28): the program's run over records and the `awk` command."""

from __future__ import annotations

import re

from harness.twin.proc import Proc, ShellError
from harness.twin.registry import command
from harness.twin.userland.awkgrammar import AwkProgram
from harness.twin.userland.printf import printf_format
from harness.twin.userland.toolkit import (
    failed_status,
    has_awk,
    inputs,
    split_lines,
)

_AWK_MAX_LOOP = 1_000_000  # awk for/while turns before the twin gives up (a bounded loop)


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
    def __init__(self, prog: AwkProgram, fs: str | None, variables: dict[str, str]):
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


@command("awk", when=has_awk)
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
        prog = AwkProgram(args.pop(0))
    except (ShellError, IndexError):
        await p.eprint("awk: syntax error")
        return 2
    run = _AwkRun(prog, fs, variables)
    try:
        for pattern, action in prog.rules:
            if pattern == "BEGIN":
                run.run_stmts(action)
        if any(pt != "BEGIN" for pt, _ in prog.rules):
            async for _, data in inputs(p, args, "awk"):
                for line in split_lines(data):
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
    return failed_status(p)
