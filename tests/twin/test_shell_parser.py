"""The twin's sh: parsing of what adbutils, uiautomator2 and the harness send."""

from __future__ import annotations

import pytest

from harness.twin.shell import ShellSyntaxError, parse


def _argv(line: str) -> list[list[str]]:
    return [
        [w.expand({"?": "0"}) for w in cmd.words] for pipeline, _ in parse(line) for cmd in pipeline
    ]


def test_sequences_and_operators():
    items = parse("a; b && c || d & e | f")
    assert [sep for _, sep in items] == [";", "&&", "||", "&", ";"]
    assert [len(p) for p, _ in items] == [1, 1, 1, 1, 2]


def test_quotes_vars_and_assignments():
    assert _argv("echo 'a b' \"c $? d\" e\\ f") == [["echo", "a b", "c 0 d", "e f"]]
    ((pipeline, _),) = parse(
        "CLASSPATH=/data/local/tmp/u2.jar app_process / com.wetest.uia2.Main -p 9008"
    )
    cmd = pipeline[0]
    assert [(k, w.expand({})) for k, w in cmd.assigns] == [("CLASSPATH", "/data/local/tmp/u2.jar")]
    assert [w.expand({}) for w in cmd.words][:2] == ["app_process", "/"]
    assert _argv("echo '$?'") == [["echo", "$?"]]


def test_redirections():
    ((pipeline, _),) = parse("uiautomator dump /sdcard/x.xml > /dev/null 2>&1")
    redirs = [(r.fd, r.op, r.target.expand({})) for r in pipeline[0].redirects]
    assert redirs == [(1, ">", "/dev/null"), (2, ">&", "1")]


def test_adbutils_exit_marker_line():
    assert _argv("getprop ro.serialno; echo X4EXIT:$?") == [
        ["getprop", "ro.serialno"],
        ["echo", "X4EXIT:0"],
    ]


@pytest.mark.parametrize("line", ["echo 'open", 'echo "open', "| x", "a && && b", "echo >"])
def test_syntax_errors(line):
    with pytest.raises(ShellSyntaxError):
        parse(line)
