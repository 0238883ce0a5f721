"""The twin's sh: parsing of what adbutils, uiautomator2 and the harness send."""

from __future__ import annotations

import pytest

from harness.twin import grammar as g
from harness.twin.grammar import ShellSyntaxError, parse


def _lit(word: g.Word) -> str:
    out = []
    for part in word.parts:
        if isinstance(part, g.Lit):
            out.append(part.text)
        elif isinstance(part, g.Param):
            out.append("${" + part.name + "}")
        else:
            out.append("<" + type(part).__name__ + ">")
    return "".join(out)


def _simple_cmds(node) -> list[g.Simple]:
    """Every simple command in source order."""
    if isinstance(node, g.Simple):
        return [node]
    if isinstance(node, g.ListNode):
        return [c for item, _ in node.items for c in _simple_cmds(item)]
    if isinstance(node, g.AndOr):
        return _simple_cmds(node.first) + [c for _, n in node.rest for c in _simple_cmds(n)]
    if isinstance(node, g.Pipeline):
        return [c for n in node.cmds for c in _simple_cmds(n)]
    return []


def _argv(line: str) -> list[list[str]]:
    return [[_lit(w) for w in c.words] for c in _simple_cmds(parse(line))]


def test_sequences_and_operators():
    tree = parse("a; b && c || d & e | f")
    assert [bg for _, bg in tree.items] == [False, True, False]
    a, bcd, ef = (item for item, _ in tree.items)
    assert isinstance(a, g.Simple)
    assert isinstance(bcd, g.AndOr) and [op for op, _ in bcd.rest] == ["&&", "||"]
    assert isinstance(ef, g.Pipeline) and len(ef.cmds) == 2
    assert _argv("a; b && c || d & e | f") == [["a"], ["b"], ["c"], ["d"], ["e"], ["f"]]


def test_quotes_vars_and_assignments():
    ((cmd, _),) = parse("echo 'a b' \"c $? d\" e\\ f").items
    assert [_lit(w) for w in cmd.words] == ["echo", "a b", "c ${?} d", "e f"]
    quoted = [p.quoted for p in cmd.words[1].parts]
    assert quoted == [True]
    ((cmd, _),) = parse(
        "CLASSPATH=/data/local/tmp/u2.jar app_process / com.wetest.uia2.Main -p 9008"
    ).items
    assert [(k, _lit(w)) for k, w in cmd.assigns] == [("CLASSPATH", "/data/local/tmp/u2.jar")]
    assert [_lit(w) for w in cmd.words][:2] == ["app_process", "/"]
    assert _argv("echo '$?'") == [["echo", "$?"]]


def test_redirections():
    ((cmd, _),) = parse("uiautomator dump /sdcard/x.xml > /dev/null 2>&1").items
    redirs = [(r.fd, r.op, _lit(r.target)) for r in cmd.redirects]
    assert redirs == [(1, ">", "/dev/null"), (2, ">&", "1")]


def test_adbutils_exit_marker_line():
    assert _argv("getprop ro.serialno; echo X4EXIT:$?") == [
        ["getprop", "ro.serialno"],
        ["echo", "X4EXIT:${?}"],
    ]


@pytest.mark.parametrize("line", ["echo 'open", 'echo "open', "| x", "a && && b", "echo >"])
def test_syntax_errors(line):
    with pytest.raises(ShellSyntaxError):
        parse(line)
