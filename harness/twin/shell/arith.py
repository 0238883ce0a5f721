"""mksh arithmetic (`$((...))`, `(( ))`, `let`, test's numbers): 32-bit signed, `010` is ten."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from harness.twin.proc import (
    ShellError,
)

if TYPE_CHECKING:
    from harness.twin.shell.interpreter import Shell

_ARITH_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|"
    r"(<<=|>>=|\+\+|--|\+=|-=|\*=|/=|%=|&=|\^=|\|=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&^|!~?:=(),]))"
)
_BINARY = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


class Arith:
    """mksh arithmetic: 32-bit signed integers, C operators, variables by name (no `**`)."""

    def __init__(self, text: str, shell: Shell):
        self.text = text
        self.shell = shell
        self.toks: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _ARITH_TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                self.fail(f"unexpected '{stripped[pos:].strip()[:1]}'")
            num, name, op = m.groups()
            self.toks.append(("num", num) if num else ("name", name) if name else ("op", op))
            pos = m.end()
        self.i = 0

    def fail(self, why: str) -> None:
        raise ShellError(f"{self.text.strip()}: {why}")

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def eval(self) -> int:
        if not self.toks:
            return 0
        v = self.assign()
        while self.peek() == ("op", ","):
            self.i += 1
            v = self.assign()
        if self.i < len(self.toks):
            self.fail(f"unexpected '{self.peek()[1]}'")
        return v

    def var(self, name: str) -> int:
        raw = self.shell.get(name) or "0"
        try:
            return _i32(int(raw, 0) if raw.strip().lower().startswith("0x") else int(raw))
        except ValueError:
            return Arith(raw, self.shell).eval()

    def assign(self) -> int:
        kind, name = self.peek()
        if kind == "name" and self.i + 1 < len(self.toks):
            op = self.toks[self.i + 1]
            if op[0] == "op" and op[1].endswith("=") and op[1] not in ("==", "!=", "<=", ">="):
                self.i += 2
                rhs = self.assign()
                if op[1] != "=":
                    rhs = self.binop(op[1][:-1], self.var(name), rhs)
                self.shell.set(name, str(rhs))
                return rhs
        return self.ternary()

    def ternary(self) -> int:
        cond = self.binary(1)
        if self.peek() == ("op", "?"):
            self.i += 1
            a = self.assign()
            if self.peek() != ("op", ":"):
                self.fail("unexpected 'end of expression'")
            self.i += 1
            b = self.assign()
            return a if cond else b
        return cond

    def binop(self, op: str, a: int, b: int) -> int:
        if op in ("/", "%") and b == 0:
            self.fail("zero divisor")
        r = {
            "||": lambda: int(bool(a) or bool(b)),
            "&&": lambda: int(bool(a) and bool(b)),
            "|": lambda: a | b,
            "^": lambda: a ^ b,
            "&": lambda: a & b,
            "==": lambda: int(a == b),
            "!=": lambda: int(a != b),
            "<": lambda: int(a < b),
            "<=": lambda: int(a <= b),
            ">": lambda: int(a > b),
            ">=": lambda: int(a >= b),
            "<<": lambda: a << (b & 31),
            ">>": lambda: a >> (b & 31),
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: int(a / b),
            "%": lambda: a - int(a / b) * b,
        }[op]()
        return _i32(r)

    def binary(self, level: int) -> int:
        left = self.unary()
        while True:
            kind, op = self.peek()
            prec = _BINARY.get(op) if kind == "op" else None
            if prec is None or prec < level:
                return left
            self.i += 1
            right = self.binary(prec + 1)
            left = self.binop(op, left, right)

    def unary(self) -> int:
        kind, val = self.peek()
        if kind == "op" and val in ("-", "+", "!", "~"):
            self.i += 1
            v = self.unary()
            return _i32({"-": -v, "+": v, "!": int(not v), "~": ~v}[val])
        if kind == "op" and val in ("++", "--"):
            self.i += 1
            k2, name = self.peek()
            if k2 != "name":
                self.fail(f"unexpected '{val}'")
            self.i += 1
            v = _i32(self.var(name) + (1 if val == "++" else -1))
            self.shell.set(name, str(v))
            return v
        if kind == "op" and val == "(":
            self.i += 1
            v = self.assign()
            while self.peek() == ("op", ","):
                self.i += 1
                v = self.assign()
            if self.peek() != ("op", ")"):
                self.fail("unexpected 'end of expression'")
            self.i += 1
            return v
        if kind == "num":
            self.i += 1
            base = 16 if val.lower().startswith("0x") else 10  # mksh: 010 is ten
            try:
                return _i32(int(val, base))
            except ValueError:
                self.fail("bad number")
        if kind == "name":
            self.i += 1
            v = self.var(val)
            k2, op = self.peek()
            if k2 == "op" and op in ("++", "--"):
                self.i += 1
                self.shell.set(val, str(_i32(v + (1 if op == "++" else -1))))
            return v
        self.fail("unexpected 'end of expression'" if kind == "end" else f"unexpected '{val}'")
        return 0
