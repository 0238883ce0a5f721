"""awk's lexer and parser (the subset the userland's docstring lists): source -> a tree of tuples."""

from __future__ import annotations

import re

from harness.twin.proc import ShellError

# --- awk (a subset) -----------------------------------------------------------------------
_AWK_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?)|\"((?:[^\"\\]|\\.)*)\"|/((?:[^/\\]|\\.)+)/|([A-Za-z_][A-Za-z0-9_]*)|"
    r"(\+\+|--|\+=|-=|\*=|/=|==|!=|<=|>=|&&|\|\||!~|[-+*/%<>!~=(),;{}$?:]))"
)


class AwkProgram:
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
