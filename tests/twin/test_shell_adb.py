"""The twin's shell through the real adb server: the adb CLI from the adbutils wheel and adbutils.

API 34 (shell v2: stdin packets, exit codes) and API 17 (Fire OS 3: `shell:` under a PTY, no
exit codes, so the `; echo $?` idiom; input echoed, LF shown as CRLF, ^D ends input).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.twin.truth import read_truth

API34 = "android-emulator-api34"
API17 = "fire-hdx-7-2013"
_LOOP_SETTLE_S = 0.5
_HANGUP_S = 3.0  # > the twin's grace after a hang-up (1 s) plus a stalled input's give-up (1 s)
_STREAM_READ_TIMEOUT_S = 5.0

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "sh" / "qa-script"
SCRIPT = (GOLDEN / "qa.sh").read_bytes()


def _serial(tp) -> str:
    return f"127.0.0.1:{tp.port}"


def _push_script(adb_server, serial: str, tmp_path, name: str = "qa.sh") -> str:
    local = tmp_path / name
    local.write_bytes(SCRIPT)
    remote = f"/data/local/tmp/{name}"
    assert adb_server.adb("-s", serial, "push", str(local), remote).returncode == 0
    return remote


def test_api34_script_stdin_and_exit_codes_through_adb_cli(adb_server, start_twin, tmp_path):
    tp = start_twin(API34)
    s = _serial(tp)
    remote = _push_script(adb_server, s, tmp_path)
    r = adb_server.adb("-s", s, "shell", "sh", remote, "1", "2", "4")
    assert r.stdout == (GOLDEN / "api34-emulator.txt").read_bytes()
    assert r.returncode == 0  # 7 % 7
    assert adb_server.adb("-s", s, "shell", "sh", remote, "1", "2").returncode == 3

    # stdin forwarded as shell v2 stdin packets, closed with close-stdin
    r = adb_server.adb("-s", s, "shell", "cat", input=b"hi\n")
    assert (r.returncode, r.stdout) == (0, b"hi\n")
    r = adb_server.adb("-s", s, "shell", "wc -l", input=b"a\nb\nc\n")
    assert r.stdout == b"3\n"
    r = adb_server.adb("-s", s, "shell", "sh", input=b"echo from-stdin $((6*7))\nexit 9\n")
    assert (r.returncode, r.stdout) == (9, b"from-stdin 42\n")
    r = adb_server.adb("-s", s, "shell", 'read a b; echo "$b,$a"', input=b"x y\n")
    assert r.stdout == b"y,x\n"
    big = b"".join(b"line %d\n" % i for i in range(20000))
    r = adb_server.adb("-s", s, "shell", "cat | wc -c", input=big)
    assert r.stdout == b"%d\n" % len(big)

    # stdout and stderr stay apart on v2; syntax errors and unknown commands as mksh
    r = adb_server.adb("-s", s, "shell", "echo out; echo err >&2; exit 4")
    assert (r.returncode, r.stdout, r.stderr) == (4, b"out\n", b"err\n")
    r = adb_server.adb("-s", s, "shell", "if true")
    assert (r.returncode, r.stderr) == (1, b"/system/bin/sh: syntax error: unmatched 'if'\n")
    r = adb_server.adb("-s", s, "shell", "ls /nope 2>/dev/null || echo $?")
    assert r.stdout == b"1\n"


def test_api34_adbutils_shell_and_shell2(adb_server, start_twin):
    tp = start_twin(API34)
    d = adb_server.client().device(_serial(tp))
    assert d.shell("echo $(echo nested $(echo deep)) `echo tick`") == "nested deep tick"
    assert d.shell("for i in 1 2 3; do echo $i; done | sort -r | tr '\\n' ' '") == "3 2 1"
    # shell2 appends `; echo X4EXIT:$?`: a plain `exit` would skip the marker, as on a device
    ret = d.shell2("false; echo $?; (exit 5)")
    assert (ret.returncode, ret.output.strip()) == (5, "1")
    ret = d.shell2("x=1; [ $x -eq 1 ] && echo ok", v2=True)
    assert (ret.returncode, ret.output) == (0, "ok\n")


def test_api17_script_and_echo_status_idiom(adb_server, start_twin, tmp_path):
    tp = start_twin(API17)
    s = _serial(tp)
    remote = _push_script(adb_server, s, tmp_path)
    r = adb_server.adb("-s", s, "shell", f"sh {remote} 1 2 4; echo status=$?")
    assert r.returncode == 0  # no shell v2: adb cannot see exit codes
    assert r.stdout == (GOLDEN / "api17-fire-hdx-7-crlf.txt").read_bytes() + b"status=0\r\n"
    r = adb_server.adb("-s", s, "shell", f"sh {remote} 1 2; echo status=$?")
    assert r.stdout.decode().endswith("status=3\r\n")
    # toolbox gaps of Android 4.2.2
    r = adb_server.adb("-s", s, "shell", "wc -l /dev/null; echo $?")
    assert r.stdout == b"/system/bin/sh: wc: not found\r\n127\r\n"
    # adbutils' v1 exit marker (`; echo X4EXIT:$?`)
    d = adb_server.client().device(s)
    ret = d.shell2("[ -d /sdcard ] && (exit 6)")
    assert ret.returncode == 6


def test_api17_stdin_through_the_pty(adb_server, start_twin):
    """`shell:` under a PTY: input is echoed (CRLF), ^D at a line start ends the input."""
    tp = start_twin(API17)
    s = _serial(tp)
    r = adb_server.adb("-s", s, "shell", "cat", input=b"hi\n\x04")
    assert r.stdout == b"hi\r\nhi\r\n"
    r = adb_server.adb("-s", s, "shell", "read v; echo got=$v", input=b"yo\n")
    assert r.stdout == b"yo\r\ngot=yo\r\n"


def test_endless_jobs_stop_when_the_client_closes_the_stream(adb_server, start_twin):
    tp = start_twin(API34)
    d = adb_server.client().device(_serial(tp))
    # `yes` is flow-controlled: the twin writes only as fast as the client reads
    conn = d.shell("yes", stream=True)
    try:
        conn.conn.settimeout(_STREAM_READ_TIMEOUT_S)
        got = b""
        while len(got) < 100_000:
            got += conn.conn.recv(65536)
        assert set(got) <= set(b"y\n") and got.startswith(b"y\ny\n")
    finally:
        conn.close()
    # a busy loop that appends to a file stops growing once its stream is closed
    conn = d.shell(
        "while true; do echo x >> /data/local/tmp/loop.txt; sleep 0.01; done", stream=True
    )
    time.sleep(_LOOP_SETTLE_S)
    conn.close()
    time.sleep(_HANGUP_S)
    size1 = d.shell("wc -c < /data/local/tmp/loop.txt")
    time.sleep(_LOOP_SETTLE_S)
    size2 = d.shell("wc -c < /data/local/tmp/loop.txt")
    assert int(size1) > 0 and size1 == size2
    # and the twin kept answering while the endless ones ran
    assert d.shell("echo alive") == "alive"
    cmds = [e["cmd"] for e in read_truth(tp.twins[0].truth, "shell")]
    assert "yes" in cmds and any(c.startswith("while true") for c in cmds)


@pytest.mark.parametrize("profile", [API34, API17])
def test_pipes_redirections_and_dev_null(adb_server, start_twin, profile):
    tp = start_twin(profile)
    s = _serial(tp)
    script = (
        'cd /data/local/tmp; echo one > f; echo two >> f; cat f | while read l; do echo "<$l>";'
        " done; cat nope 2>/dev/null; echo rc=$?; cat nope > err 2>&1; cat err; echo x > /dev/null"
    )
    out = adb_server.adb("-s", s, "shell", script).stdout.decode().replace("\r\n", "\n")
    assert out == "<one>\n<two>\nrc=1\ncat: nope: No such file or directory\n"


def test_api34_script_on_stdin_of_a_bare_adb_shell(adb_server, start_twin):
    """`echo cmds | adb shell`: no command, stdin not a terminal -> `shell,v2,raw:` runs sh."""
    tp = start_twin(API34)
    r = adb_server.adb("-s", _serial(tp), "shell", input=b"x=6\necho $((x * 7))\nfalse || exit 3\n")
    assert (r.returncode, r.stdout) == (3, b"42\n")


def test_unread_stdin_does_not_hide_the_client_hanging_up(adb_server, start_twin):
    """A job that never reads its stdin while the client sends more than a pipe holds still
    stops when the client closes the stream."""
    tp = start_twin(API34)
    d = adb_server.client().device(_serial(tp))
    conn = d.shell(
        "while true; do echo x >> /data/local/tmp/unread.txt; sleep 0.01; done", stream=True
    )
    conn.conn.sendall(b"z" * (1 << 20))
    time.sleep(_LOOP_SETTLE_S)
    conn.close()
    time.sleep(_HANGUP_S)
    size1 = d.shell("wc -c < /data/local/tmp/unread.txt")
    time.sleep(_LOOP_SETTLE_S)
    assert int(size1) > 0 and d.shell("wc -c < /data/local/tmp/unread.txt") == size1


def test_exec_in_delivers_all_input_before_the_hang_up(adb_server, start_twin, tmp_path):
    """`adb exec-in 'cat > f'` sends its input and closes at once: the command still gets all
    of it (EOF, then a grace before the hang-up stops it)."""
    tp = start_twin(API34)
    s = _serial(tp)
    data = bytes(range(256)) * 8192  # 2 MiB
    assert (
        adb_server.adb("-s", s, "exec-in", "cat > /data/local/tmp/in.bin", input=data).returncode
        == 0
    )
    deadline = time.monotonic() + _HANGUP_S
    size = b""
    while time.monotonic() < deadline:
        size = adb_server.adb("-s", s, "shell", "wc -c < /data/local/tmp/in.bin").stdout.strip()
        if size == str(len(data)).encode():
            break
        time.sleep(0.2)
    assert size == str(len(data)).encode()
    local = tmp_path / "back.bin"
    assert adb_server.adb("-s", s, "pull", "/data/local/tmp/in.bin", str(local)).returncode == 0
    assert local.read_bytes() == data
