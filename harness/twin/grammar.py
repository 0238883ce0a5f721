"""The grammar of the twin's /system/bin/sh (mksh on Android): source text -> syntax tree.

A hand-written recursive-descent parser working on characters (no separate token pass), because
quoting, `$(...)` nesting, `case` patterns and here-documents all depend on where the parser is.
It covers the POSIX sh grammar that mksh accepts and QA scripts use: simple commands with
assignments and redirections, pipelines with `!`, `&&`/`||` lists, `;`/`&`/newline, `( )`,
`{ }`, `if/elif/else`, `for`, `while`/`until`, `case`, functions (`f() {..}`, `function f {..}`),
here-documents (`<<`, `<<-`, quoted delimiters), mksh's `[[ ]]` and `(( ))`, and in words:
single/double quotes, backslash, `$VAR`, `${VAR}` with `:- - := = :+ + :? ? # ## % %%`,
`${#VAR}`, `${10}`, `$(...)`, backticks and `$((...))`. Not covered: aliases, arrays, `select`,
co-processes, `$'...'`, `<(...)`.

Why not bashlex: it parses bash (not mksh), gives no here-document bodies or `case` pattern
lists in a usable form, and its errors do not match mksh's; a small parser of our own is about
the same size as the glue it would need.

Syntax errors read like mksh's (`syntax error: 'fi' unexpected`, `... 'if' unmatched`,
`... unexpected EOF`, `no closing quote`). mksh R59 (Android 13+) words them
`unexpected 'fi'` / `unmatched 'if'` (checked against Debian's mksh 59c); the older order is
mksh R4x/R5x's. The API level where Android switched is an estimate (not verified on devices).

Size: one recursive-descent parser; its productions call each other and share the cursor. To split
(lexer/compound commands) when it grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_META = " \t\n;&|<>()"
_REDIR_OPS = ("<", ">", ">>", "<<", "<<-", ">&", "<&", ">|", "<>")
_OPS = (
    "&&",
    "||",
    ";;",
    "<<-",
    "<<",
    ">>",
    ">&",
    "<&",
    ">|",
    "<>",
    ";",
    "&",
    "|",
    "(",
    ")",
    "<",
    ">",
)
RESERVED = frozenset(
    "if then elif else fi for in do done while until case esac { } ! function [[ ]]".split()
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_SPECIAL_PARAMS = "?$#!@*-0123456789"
_PARAM_OPS = (":-", ":=", ":+", ":?", "##", "%%", "-", "=", "+", "?", "#", "%")


class ShellSyntaxError(Exception):
    """A script that mksh would refuse. `message(new)` words it as mksh R59 (new) or older."""

    def __init__(self, kind: str, token: str = "", line: int = 1):
        self.kind = kind  # "unexpected", "unmatched", "eof", "quote", "arith"
        self.token = token
        self.line = line
        super().__init__(self.message(False))

    def message(self, new: bool) -> str:
        if self.kind == "quote":
            return "no closing quote"
        if self.kind == "eof":
            return "syntax error: unexpected EOF"
        if self.kind == "arith":
            return self.token
        if new:
            return f"syntax error: {self.kind} '{self.token}'"
        return f"syntax error: '{self.token}' {self.kind}"


# --- word parts ----------------------------------------------------------------------------
@dataclass
class Lit:
    text: str
    quoted: bool = False


@dataclass
class Param:
    name: str
    op: str = ""  # "" | ":-" | "-" | ":=" | "=" | ":+" | "+" | ":?" | "?" | "len" | "#" | ...
    arg: Word | None = None
    quoted: bool = False


@dataclass
class CmdSub:
    body: Node
    quoted: bool = False


@dataclass
class Arith:
    expr: Word
    quoted: bool = False


Part = Lit | Param | CmdSub | Arith


@dataclass
class Word:
    parts: list[Part]
    text: str = ""  # the source text (for reserved words, `set -x` and messages)

    @property
    def literal(self) -> str | None:
        """The word's text if it is one unquoted literal (a candidate reserved word)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Lit) and not self.parts[0].quoted:
            return self.parts[0].text
        return None


# --- commands -----------------------------------------------------------------------------
@dataclass
class Redirect:
    fd: int
    op: str  # > >> < >& <& >| <> << <<-
    target: Word
    heredoc: Word | None = None  # the body of a here-document (expanded unless quoted)


@dataclass
class Simple:
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    line: int = 1


@dataclass
class Pipeline:
    cmds: list[Node]
    negate: bool = False


@dataclass
class AndOr:
    first: Node
    rest: list[tuple[str, Node]] = field(default_factory=list)  # ("&&"|"||", pipeline)


@dataclass
class ListNode:
    items: list[tuple[Node, bool]] = field(default_factory=list)  # (and-or, background)


@dataclass
class Subshell:
    body: Node
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Group:
    body: Node
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class If:
    clauses: list[tuple[Node, Node]]
    else_: Node | None = None
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class For:
    var: str
    words: list[Word] | None  # None: "$@"
    body: Node
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class While:
    cond: Node
    body: Node
    until: bool = False
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Case:
    word: Word
    items: list[tuple[list[Word], Node | None]]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class DBracket:
    """`[[ ... ]]`: words (not split, not globbed) and the operators `&& || ( ) < > !`."""

    args: list[Word | str]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class ArithCmd:
    """`(( expr ))`: status 0 when expr is non-zero."""

    expr: Word
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class FuncDef:
    name: str
    body: Node
    redirects: list[Redirect] = field(default_factory=list)


Node = (
    Simple
    | Pipeline
    | AndOr
    | ListNode
    | Subshell
    | Group
    | If
    | For
    | While
    | Case
    | ArithCmd
    | FuncDef
)


@dataclass
class Tok:
    kind: str  # "word" | "op" | "nl" | "eof"
    value: str = ""
    word: Word | None = None
    fd: int | None = None  # an IO number before a redirection operator
    line: int = 1


# --- the parser ---------------------------------------------------------------------------
class Parser:
    """Parse mksh source. `complete_command()` parses one top-level command at a time, so that a
    script runs up to its first syntax error as mksh does."""

    def __init__(self, src: str, line: int = 1):
        self.s = src
        self.i = 0
        self.line = line
        self._peeked: Tok | None = None
        self._heredocs: list[tuple[Redirect, str, bool, bool]] = []  # redir, delim, strip, quoted

    # tokens
    def peek(self) -> Tok:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def take(self) -> Tok:
        tok = self.peek()
        self._peeked = None
        return tok

    def _is_reserved(self, tok: Tok, *names: str) -> bool:
        return tok.kind == "word" and tok.word is not None and tok.word.literal in names

    def _unexpected(self, tok: Tok) -> ShellSyntaxError:
        if tok.kind == "eof":
            return ShellSyntaxError("eof", line=tok.line)
        text = {"nl": "newline"}.get(tok.kind, tok.value)
        return ShellSyntaxError("unexpected", text, tok.line)

    def _lex(self) -> Tok:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and s.startswith("\\\n", self.i):
                self.i += 2
                self.line += 1
            elif c == "#":
                while self.i < n and s[self.i] != "\n":
                    self.i += 1
            else:
                break
        if self.i >= n:
            return Tok("eof", line=self.line)
        c = s[self.i]
        line = self.line
        if c == "\n":
            self.i += 1
            self.line += 1
            self._read_heredocs()
            return Tok("nl", "\n", line=line)
        m = re.compile(r"\d+(?=[<>])").match(s, self.i)
        fd = None
        if m:
            fd = int(m.group())
            self.i = m.end()
        for op in _OPS:
            if s.startswith(op, self.i):
                self.i += len(op)
                return Tok("op", op, fd=fd, line=line)
        start = self.i
        word = self._word(_META)
        word.text = s[start : self.i]
        return Tok("word", word.text, word=word, line=line)

    # words
    def _word(self, stops: str) -> Word:  # noqa: C901 -- the shell lexer: one branch per quoting and expansion kind
        parts: list[Part] = []
        buf: list[str] = []
        s, n = self.s, len(self.s)

        def flush(quoted: bool = False) -> None:
            if buf:
                parts.append(Lit("".join(buf), quoted))
                buf.clear()

        while self.i < n and s[self.i] not in stops:
            c = s[self.i]
            if c == "\\":
                if self.i + 1 >= n:
                    buf.append("\\")
                    self.i += 1
                elif s[self.i + 1] == "\n":
                    self.i += 2
                    self.line += 1
                else:
                    flush()
                    parts.append(Lit(s[self.i + 1], True))
                    self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("quote", line=self.line)
                flush()
                text = s[self.i + 1 : end]
                self.line += text.count("\n")
                parts.append(Lit(text, True))
                self.i = end + 1
            elif c == '"':
                flush()
                self.i += 1
                parts.extend(self._dquoted('"'))
            elif c in "$`":
                flush()
                parts.append(self._dollar(quoted=False))
            else:
                buf.append(c)
                if c == "\n":
                    self.line += 1
                self.i += 1
        flush()
        if not parts:
            parts.append(Lit("", True))
        return Word(parts)

    def _dquoted(self, end: str | None) -> list[Part]:
        """Inside double quotes (end='"') or an arithmetic/here-document body (end=None)."""
        parts: list[Part] = []
        buf: list[str] = []
        s, n = self.s, len(self.s)
        specials = '$`"\\\n' if end else "$`\\\n"
        while True:
            if self.i >= n:
                if end:
                    raise ShellSyntaxError("quote", line=self.line)
                break
            c = s[self.i]
            if end and c == end:
                self.i += 1
                break
            if c == "\\" and self.i + 1 < n and s[self.i + 1] in specials:
                if s[self.i + 1] != "\n":
                    buf.append(s[self.i + 1])
                else:
                    self.line += 1
                self.i += 2
            elif c in "$`":
                if buf:
                    parts.append(Lit("".join(buf), True))
                    buf.clear()
                parts.append(self._dollar(quoted=True))
            else:
                if c == "\n":
                    self.line += 1
                buf.append(c)
                self.i += 1
        if buf or not parts:
            parts.append(Lit("".join(buf), True))
        return parts

    def _dollar(self, quoted: bool) -> Part:
        s, n = self.s, len(self.s)
        if s[self.i] == "`":
            return self._backtick(quoted)
        j = self.i + 1
        if s.startswith("((", j):
            return self._arith(quoted)
        if j < n and s[j] == "(":
            self.i = j + 1
            sub = Parser(s, self.line)
            sub.i = self.i
            body = sub.compound_list()
            tok = sub.take()
            if tok.kind != "op" or tok.value != ")":
                raise ShellSyntaxError("unmatched", "(", self.line)
            self.i, self.line = sub.i, sub.line
            return CmdSub(body, quoted)
        if j < n and s[j] == "{":
            return self._brace_param(quoted)
        if j < n and s[j] in _SPECIAL_PARAMS:
            self.i = j + 1
            return Param(s[j], quoted=quoted)
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(s, j)
        if m:
            self.i = m.end()
            return Param(m.group(), quoted=quoted)
        self.i = j
        return Lit("$", quoted)

    def _backtick(self, quoted: bool) -> Part:
        s, n = self.s, len(self.s)
        j = self.i + 1
        out: list[str] = []
        while j < n and s[j] != "`":
            if s[j] == "\\" and j + 1 < n and s[j + 1] in "$`\\":
                out.append(s[j + 1])
                j += 2
            else:
                out.append(s[j])
                j += 1
        if j >= n:
            raise ShellSyntaxError("quote", line=self.line)
        text = "".join(out)
        self.i = j + 1
        sub = Parser(text, self.line)
        body = sub.compound_list()
        if sub.peek().kind != "eof":
            raise sub._unexpected(sub.peek())
        self.line += text.count("\n")
        return CmdSub(body, quoted)

    def _arith(self, quoted: bool) -> Part:
        """At `$((` (or `((` for the command, self.i one less): up to the matching `))`."""
        s, n = self.s, len(self.s)
        if s[self.i] == "(":
            self.i -= 1  # `((`: as if there were a `$`
        j = self.i + 3
        depth = 0
        while j < n:
            if s[j] == "(":
                depth += 1
            elif s[j] == ")":
                if depth == 0 and s.startswith("))", j):
                    break
                depth -= 1
            j += 1
        if j >= n:
            raise ShellSyntaxError("unmatched", "((", self.line)
        text = s[self.i + 3 : j]
        self.i = j + 2
        sub = Parser(text, self.line)
        return Arith(Word(sub._dquoted(None), text), quoted)

    def _brace_param(self, quoted: bool) -> Part:
        s, n = self.s, len(self.s)
        j = self.i + 2
        length = False
        if j < n and s[j] == "#" and j + 1 < n and s[j + 1] not in "}":
            length = True
            j += 1
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[" + re.escape(_SPECIAL_PARAMS) + "]").match(
            s, j
        )
        if not m:
            raise ShellSyntaxError("quote", line=self.line)  # mksh: "${": bad substitution
        name = m.group()
        j = m.end()
        if length:
            if j >= n or s[j] != "}":
                raise ShellSyntaxError("quote", line=self.line)
            self.i = j + 1
            return Param(name, "len", quoted=quoted)
        if j < n and s[j] == "}":
            self.i = j + 1
            return Param(name, quoted=quoted)
        op = next((o for o in _PARAM_OPS if s.startswith(o, j)), None)
        if op is None:
            raise ShellSyntaxError("quote", line=self.line)
        self.i = j + len(op)
        arg = self._word("}")
        if self.i >= n or s[self.i] != "}":
            raise ShellSyntaxError("quote", line=self.line)
        self.i += 1
        if quoted:  # "${x:-a b}": the word is quoted as a whole (inner quotes still removed)
            for part in arg.parts:
                part.quoted = True
        return Param(name, op, arg, quoted)

    def _read_heredocs(self) -> None:
        pending, self._heredocs = self._heredocs, []
        for redir, delim, strip, quoted in pending:
            lines: list[str] = []
            while True:
                if self.i >= len(self.s):
                    break  # mksh accepts a here-document ended by EOF
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i : end]
                self.i = min(end + 1, len(self.s))
                self.line += 1
                if strip:
                    line = line.lstrip("\t")
                if line == delim:
                    break
                lines.append(line + "\n")
            body = "".join(lines)
            if quoted:
                redir.heredoc = Word([Lit(body, True)], body)
            else:
                sub = Parser(body, self.line)
                redir.heredoc = Word(sub._dquoted(None), body)

    # grammar
    def complete_command(self) -> Node | None:
        """The next top-level command line (and-or lists up to a newline), or None at the end.
        Here-documents started on the line are read with its newline."""
        while self.peek().kind == "nl" or (self.peek().kind == "op" and self.peek().value == ";"):
            if self.peek().kind == "op":
                raise self._unexpected(self.peek())
            self.take()
        if self.peek().kind == "eof":
            return None
        items: list[tuple[Node, bool]] = []
        while True:
            node = self.and_or()
            tok = self.peek()
            background = False
            if tok.kind == "op" and tok.value in (";", "&"):
                self.take()
                background = tok.value == "&"
                tok = self.peek()
            elif tok.kind not in ("nl", "eof"):
                raise self._unexpected(tok)
            items.append((node, background))
            if tok.kind in ("nl", "eof"):
                if tok.kind == "nl":
                    self.take()
                return ListNode(items)

    def parse_all(self) -> ListNode:
        """The whole source as one list (raises at the first syntax error)."""
        items: list[tuple[Node, bool]] = []
        while (node := self.complete_command()) is not None:
            items.extend(node.items)  # type: ignore[union-attr]
        return ListNode(items)

    def compound_list(self) -> ListNode:
        """A list up to (not including) a terminator: a closing reserved word, `)`, `;;`, EOF."""
        items: list[tuple[Node, bool]] = []
        while True:
            while self.peek().kind == "nl":
                self.take()
            tok = self.peek()
            if (
                tok.kind == "eof"
                or (tok.kind == "op" and tok.value in (")", ";;"))
                or self._is_reserved(tok, "then", "elif", "else", "fi", "do", "done", "esac", "}")
            ):
                break
            node = self.and_or()
            tok = self.peek()
            background = False
            if tok.kind == "op" and tok.value in (";", "&"):
                self.take()
                background = tok.value == "&"
            elif tok.kind == "nl":
                self.take()
            items.append((node, background))
        return ListNode(items)

    def _body(self, start: str, end: str, line: int) -> ListNode:
        body = self.compound_list()
        tok = self.take()
        if not self._is_reserved(tok, end):
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", start, line)
            raise self._unexpected(tok)
        if not body.items:
            raise ShellSyntaxError("unexpected", end, tok.line)
        return body

    def and_or(self) -> Node:
        first = self.pipeline()
        rest: list[tuple[str, Node]] = []
        while self.peek().kind == "op" and self.peek().value in ("&&", "||"):
            op = self.take().value
            while self.peek().kind == "nl":
                self.take()
            rest.append((op, self.pipeline()))
        return AndOr(first, rest) if rest else first

    def pipeline(self) -> Node:
        negate = False
        if self._is_reserved(self.peek(), "!"):
            self.take()
            negate = True
        cmds = [self.command()]
        while self.peek().kind == "op" and self.peek().value == "|":
            self.take()
            while self.peek().kind == "nl":
                self.take()
            cmds.append(self.command())
        if len(cmds) == 1 and not negate:
            return cmds[0]
        return Pipeline(cmds, negate)

    def command(self) -> Node:  # noqa: C901 -- the shell grammar: one branch per compound command
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(" and self.s.startswith("(", self.i):
            self.take()
            self.i -= 2  # back to "((" for the arithmetic scanner
            part = self._arith(False)
            assert isinstance(part, Arith)
            return self._redirects(ArithCmd(part.expr))
        if tok.kind == "op" and tok.value == "(":
            self.take()
            body = self.compound_list()
            end = self.take()
            if end.kind != "op" or end.value != ")":
                if end.kind == "eof":
                    raise ShellSyntaxError("unmatched", "(", tok.line)
                raise self._unexpected(end)
            if not body.items:
                raise ShellSyntaxError("unexpected", ")", end.line)
            return self._redirects(Subshell(body))
        if tok.kind == "word":
            lit = tok.word.literal if tok.word else None
            if lit == "{":
                self.take()
                return self._redirects(Group(self._body("{", "}", tok.line)))
            if lit == "[[":
                return self._redirects(self._dbracket())
            if lit == "if":
                return self._redirects(self._if())
            if lit in ("while", "until"):
                self.take()
                cond = self._body(lit, "do", tok.line)
                body = self._body(lit, "done", tok.line)
                return self._redirects(While(cond, body, until=lit == "until"))
            if lit == "for":
                return self._redirects(self._for())
            if lit == "case":
                return self._redirects(self._case())
            if lit == "function":
                self.take()
                name = self.take()
                if name.kind != "word" or not _NAME.match(name.value):
                    raise self._unexpected(name)
                if self.peek().kind == "op" and self.peek().value == "(":
                    self.take()
                    if self.take().value != ")":
                        raise self._unexpected(self.peek())
                while self.peek().kind == "nl":
                    self.take()
                return FuncDef(name.value, self.command())
            if lit in RESERVED - {"{", "!"}:
                raise self._unexpected(tok)
        if tok.kind != "word" and not (tok.kind == "op" and tok.value in _REDIR_OPS):
            raise self._unexpected(tok)
        return self._simple()

    def _simple(self) -> Node:
        cmd = Simple(line=self.peek().line)
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value in _REDIR_OPS:
                cmd.redirects.append(self._redirect())
                continue
            if tok.kind != "word":
                break
            word = tok.word
            assert word is not None
            if not cmd.words and self._assignment(cmd, word):
                self.take()
                continue
            if (
                not cmd.words
                and not cmd.assigns
                and word.literal is not None
                and _NAME.match(word.literal)
            ):
                self.take()
                nxt = self.peek()
                if nxt.kind == "op" and nxt.value == "(":
                    self.take()
                    close = self.take()
                    if close.kind != "op" or close.value != ")":
                        raise self._unexpected(close)
                    while self.peek().kind == "nl":
                        self.take()
                    return FuncDef(word.literal, self.command())
                cmd.words.append(word)
                continue
            self.take()
            cmd.words.append(word)
        if not cmd.words and not cmd.assigns and not cmd.redirects:
            raise self._unexpected(self.peek())
        return cmd

    @staticmethod
    def _assignment(cmd: Simple, word: Word) -> bool:
        first = word.parts[0]
        if not isinstance(first, Lit) or first.quoted:
            return False
        m = _ASSIGN.match(first.text)
        if not m:
            return False
        rest: list[Part] = []
        if first.text[m.end() :]:
            rest.append(Lit(first.text[m.end() :]))
        rest.extend(word.parts[1:])
        cmd.assigns.append((m.group(1), Word(rest or [Lit("", True)], word.text)))
        return True

    def _redirect(self) -> Redirect:
        tok = self.take()
        op = tok.value
        fd = tok.fd if tok.fd is not None else (0 if op[0] == "<" else 1)
        target = self.take()
        if target.kind != "word" or target.word is None:
            raise self._unexpected(target)
        redir = Redirect(fd, op, target.word)
        if op in ("<<", "<<-"):
            quoted = any(not isinstance(p, Lit) or p.quoted for p in target.word.parts) or any(
                q in target.value for q in "'\"\\"
            )
            delim = "".join(p.text for p in target.word.parts if isinstance(p, Lit))
            self._heredocs.append((redir, delim, op == "<<-", quoted))
        return redir

    def _redirects(self, node: Node) -> Node:
        while self.peek().kind == "op" and self.peek().value in _REDIR_OPS:
            node.redirects.append(self._redirect())  # type: ignore[union-attr]
        return node

    def _dbracket(self) -> Node:
        start = self.take()
        args: list[Word | str] = []
        while True:
            tok = self.take()
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", "[[", start.line)
            if tok.kind == "word" and tok.word is not None and tok.word.literal == "]]":
                break
            if tok.kind == "word":
                args.append(tok.word)  # type: ignore[arg-type]
            elif tok.kind == "op" and tok.value in ("&&", "||", "(", ")", "<", ">"):
                args.append(tok.value)
            else:
                raise self._unexpected(tok)
        return DBracket(args)

    def _if(self) -> Node:
        start = self.take()
        clauses: list[tuple[Node, Node]] = []
        else_: Node | None = None
        cond = self._body("if", "then", start.line)
        while True:
            body = self.compound_list()
            tok = self.take()
            if not body.items:
                raise self._unexpected(tok)
            if self._is_reserved(tok, "elif"):
                clauses.append((cond, body))
                cond = self._body("if", "then", start.line)
                continue
            if self._is_reserved(tok, "else"):
                clauses.append((cond, body))
                else_ = self._body("if", "fi", start.line)
                break
            if self._is_reserved(tok, "fi"):
                clauses.append((cond, body))
                break
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", "if", start.line)
            raise self._unexpected(tok)
        return If(clauses, else_)

    def _for(self) -> Node:
        start = self.take()
        name = self.take()
        if name.kind != "word" or not _NAME.match(name.value):
            raise self._unexpected(name)
        while self.peek().kind == "nl":
            self.take()
        words: list[Word] | None = None
        if self._is_reserved(self.peek(), "in"):
            self.take()
            words = []
            while self.peek().kind == "word":
                words.append(self.take().word)  # type: ignore[arg-type]
            tok = self.take()
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", "for", start.line)
            if tok.kind not in ("nl",) and not (tok.kind == "op" and tok.value == ";"):
                raise self._unexpected(tok)
        elif self.peek().kind == "op" and self.peek().value == ";":
            self.take()
        while self.peek().kind == "nl":
            self.take()
        tok = self.take()
        if not self._is_reserved(tok, "do"):
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", "for", start.line)
            raise self._unexpected(tok)
        body = self._body("for", "done", start.line)
        return For(name.value, words, body)

    def _case(self) -> Node:  # noqa: C901 -- case/esac grammar: patterns, terminators and errors as mksh
        start = self.take()
        word = self.take()
        if word.kind != "word":
            raise self._unexpected(word)
        while self.peek().kind == "nl":
            self.take()
        tok = self.take()
        if not self._is_reserved(tok, "in"):
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", "case", start.line)
            raise self._unexpected(tok)
        items: list[tuple[list[Word], Node | None]] = []
        while True:
            while self.peek().kind == "nl":
                self.take()
            tok = self.peek()
            if self._is_reserved(tok, "esac"):
                self.take()
                break
            if tok.kind == "eof":
                raise ShellSyntaxError("unmatched", "case", start.line)
            if tok.kind == "op" and tok.value == "(":
                self.take()
            pats: list[Word] = []
            while True:
                t = self.take()
                if t.kind != "word":
                    raise self._unexpected(t)
                pats.append(t.word)  # type: ignore[arg-type]
                t = self.take()
                if t.kind == "op" and t.value == "|":
                    continue
                if t.kind == "op" and t.value == ")":
                    break
                raise self._unexpected(t)
            body = self.compound_list()
            items.append((pats, body if body.items else None))
            t = self.peek()
            if t.kind == "op" and t.value == ";;":
                self.take()
            elif self._is_reserved(t, "esac"):
                continue
            elif t.kind == "eof":
                raise ShellSyntaxError("unmatched", "case", start.line)
            else:
                raise self._unexpected(t)
        return Case(word.word, items)  # type: ignore[arg-type]


def parse(src: str) -> ListNode:
    """Parse a whole script. Raises ShellSyntaxError."""
    return Parser(src).parse_all()
