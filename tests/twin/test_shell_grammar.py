"""The twin's sh in process: grammar, expansions, builtins and userland against expected output.

Oracles, when installed (`apt-get install mksh toybox`; skipped with that line otherwise): the
GRAMMAR scripts must print the same bytes with the same status under Debian's mksh 59c (Android
13+'s mksh), and the TOYBOX scripts the same under mksh with toybox 0.8.9 (Android 14's) on PATH.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.profiles import load_profile
from harness.twin.device import Twin
from harness.twin.shell import BufferSink, Shell

API34 = "android-emulator-api34"
API17 = "fire-hdx-7-2013"
_ORACLE_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    return {
        name: Twin(load_profile(name), 45000 + i, tmp_path_factory.mktemp(name))
        for i, name in enumerate((API34, API17))
    }


def run(twin: Twin, script: str, stdin: bytes = b"") -> tuple[int, str, str]:
    async def go() -> tuple[int, str, str]:
        out, err = BufferSink(), BufferSink()
        code = await asyncio.wait_for(Shell(twin).run(script, out, err, stdin), 20)
        return code, out.buf.decode(), err.buf.decode()

    return asyncio.run(go())


# (script, stdout, status): pure shell, so mksh itself must agree (oracle test below)
GRAMMAR = [
    ("echo 'a  b' \"c  $((1+2))\" d\\ e", "a  b c  3 d e\n", 0),
    ('x=5; echo ${x} ${y:-def} ${x:+alt} ${#x} "${z-unset}"', "5 def alt 1 unset\n", 0),
    ("v=/a/b/c.txt; echo ${v##*/} ${v%.*} ${v#/} ${v%%/*}x", "c.txt /a/b/c a/b/c.txt x\n", 0),
    ('echo "$(echo a $(echo b) `echo c`)"', "a b c\n", 0),
    (
        "echo $((7/2)) $((7%3)) $((1<<4)) $((3>2 && 1)) $((x=4, x*x)) $((0x10)) $((010))",
        "3 1 16 1 16 16 10\n",
        0,
    ),
    ("echo $((2147483647+1))", "-2147483648\n", 0),
    ("true && echo y || echo n; false && echo y || echo n", "y\nn\n", 0),
    ("! false; echo $?; ! true; echo $?", "0\n1\n", 0),
    ("if false; then echo a; elif true; then echo b; else echo c; fi", "b\n", 0),
    ("for i in 1 2 3; do [ $i = 2 ] && continue; echo $i; done", "1\n3\n", 0),
    ("i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i", "3\n", 0),
    ("i=0; until [ $i -ge 2 ]; do i=$((i+1)); done; echo $i", "2\n", 0),
    ("for a in x y; do for b in 1 2; do [ $b = 2 ] && break 2; echo $a$b; done; done", "x1\n", 0),
    ("case foo.txt in *.png) echo png;; *.txt|*.md) echo text;; *) echo other;; esac", "text\n", 0),
    ("case x in (x) echo paren;; esac; case '*' in \\*) echo star;; esac", "paren\nstar\n", 0),
    ('f() { local v=$1; echo "$# $v"; return 4; }; f a b; echo $? ${v-none}', "2 a\n4 none\n", 0),
    ("function g { echo g:$1; }; g 1", "g:1\n", 0),
    (
        'set -- \'a b\' c; echo $#; for x in "$@"; do echo "[$x]"; done; shift; echo $1',
        "2\n[a b]\n[c]\nc\n",
        0,
    ),
    ("x='1 2  3'; set -- $x; echo $#; set -- \"$x\"; echo $#", "3\n1\n", 0),
    ("IFS=:; x=a:b::c; set -- $x; echo $#", "4\n", 0),
    ("(x=inner; exit 3); echo $? ${x-outer}", "3 outer\n", 0),
    ('{ echo a; echo b; } | { read l1; read l2; echo "$l2$l1"; }', "ba\n", 0),
    ('echo one two | read a b; echo "[$b $a]"', "[ ]\n", 0),  # the pipeline is a subshell
    ('printf_like() { echo "$*"; }; printf_like 1 2', "1 2\n", 0),
    ("cat <<EOF\nhome=$HOME $((1+1))\nEOF", "home=/ 2\n", 0),
    ("cat <<'EOF'\n$HOME `x`\nEOF", "$HOME `x`\n", 0),
    ("cat <<-EOF\n\tindented\n\tEOF", "indented\n", 0),
    ("echo out; echo err >&2", "out\n", 0),
    ("{ echo err >&2; } 2>&1", "err\n", 0),
    ("echo -n a; echo b; echo 'c\\td'", "ab\nc\td\n", 0),
    ("exit 7", "", 7),
    ("false; echo $?", "1\n", 0),
    ("set -e; echo a; false; echo b", "a\n", 1),
    ("set -e; false || echo ok; if false; then :; fi; echo end", "ok\nend\n", 0),
    ("[ -z '' ] && [ -n x ] && [ 3 -gt 2 ] && [ a != b ] && test 2 -le 2 && echo ok", "ok\n", 0),
    ("[ 1 -eq 2 ]; echo $?; [ ! 1 -eq 2 ]; echo $?", "1\n0\n", 0),
    ("x=3; eval 'echo $x; y=9'; echo $y", "3\n9\n", 0),
    ("sleep 0.1 & p=$!; wait $p; echo waited $?", "waited 0\n", 0),
    ("(exit 5) & wait $!; echo $?", "5\n", 0),
    ("unset x; x=1; unset x; echo ${x-gone}", "gone\n", 0),
    ("echo $(( (1+2)*3 ))", "9\n", 0),
    ("a=1; a=$((a+1)) b=$a; echo $a $b", "2 2\n", 0),
    ('echo "a"\'b\'c"$(echo d)"', "abcd\n", 0),
    ("echo `echo \\`echo nested\\``", "nested\n", 0),
    ("type cd; command -v echo", "cd is a shell builtin\necho\n", 0),
    ("cat <<A; echo after\nline1\nA", "line1\nafter\n", 0),
    ('set -- a b c; IFS=,; echo "$*"; echo $*', "a,b,c\na b c\n", 0),
    ('echo "${a:-"default with space"}"', "default with space\n", 0),
    ("set -- a b c d e f g h i j k; echo ${10} $10", "j a0\n", 0),
    ("set -e; if false; then :; fi; false && true; echo survived", "survived\n", 0),
    ("set -u; echo ${nope:-ok}; echo $nope; echo after", "ok\n", 1),
    ("trap 'echo trapped' EXIT; echo body; exit 2", "body\ntrapped\n", 2),
    ("x=3; (( x > 2 )) && echo big; (( x - 3 )); echo $?", "big\n1\n", 0),
    ("[ 1 -eq a ]; echo $?", "1\n", 0),
    ("F=2 sh -c 'echo $F'; G=3; sh -c 'echo ${G-unset}'", "2\nunset\n", 0),
    ("cd /; cd nonexistent_dir_xyz; echo $?", "2\n", 0),
    (
        "x=abc; [[ $x == a* ]] && echo m1; [[ $x == \"a*\" ]] || echo m2; [[ -z '' || 1 -eq 2 ]]"
        " && echo m3; y='a b'; [[ $y = 'a b' && ! -d /nonexist ]] && echo m4",
        "m1\nm2\nm3\nm4\n",
        0,
    ),
    ('let "z = 3 * 4"; echo $z; let 0; echo $?', "12\n1\n", 0),
    (
        'set -- -ab -c x y; while getopts "abc:" o; do echo "$o ${OPTARG-}"; done;'
        ' shift $((OPTIND-1)); echo "$@"',
        "a \nb \nc x\ny\n",
        0,
    ),
    ("x=y; readonly_test() { echo $x; }; x=z readonly_test; echo $x", "z\ny\n", 0),
]


def _ids(cases):
    return [c[0][:40] for c in cases]


@pytest.mark.parametrize("script,stdout,status", GRAMMAR, ids=_ids(GRAMMAR))
def test_grammar(twins, script, stdout, status):
    assert run(twins[API34], script)[:2] == (status, stdout)


@pytest.mark.parametrize("script,stdout,status", GRAMMAR, ids=_ids(GRAMMAR))
def test_grammar_matches_mksh(twins, script, stdout, status):
    mksh = shutil.which("mksh")
    if mksh is None:
        pytest.skip("no mksh oracle: apt-get install mksh toybox")
    got = subprocess.run(
        [mksh, "-c", script], capture_output=True, timeout=_ORACLE_TIMEOUT_S, env={"HOME": "/"}
    )
    assert (got.returncode, got.stdout.decode()) == (status, stdout)
    # stderr too: Debian's build marks messages "E: "/"W: " and names itself mksh
    err = re.sub(r"^[EW]: \S*mksh: ", "/system/bin/sh: ", got.stderr.decode(), flags=re.M)
    assert run(twins[API34], script)[2] == err


# syntax errors: mksh's words, status 1, nothing run
@pytest.mark.parametrize(
    "script,old,new",
    [
        ("if true", "syntax error: 'if' unmatched", "syntax error: unmatched 'if'"),
        ("echo hi; fi", "syntax error: 'fi' unexpected", "syntax error: unexpected 'fi'"),
        ("echo 'open", "no closing quote", "no closing quote"),
        ("a && && b", "syntax error: '&&' unexpected", "syntax error: unexpected '&&'"),
        ("echo >", "syntax error: unexpected EOF", "syntax error: unexpected EOF"),
        ("for i in 1; do echo", "syntax error: 'for' unmatched", "syntax error: unmatched 'for'"),
        ("echo $(ls", "syntax error: '(' unmatched", "syntax error: unmatched '('"),
    ],
)
def test_syntax_errors_read_like_mksh(twins, script, old, new):
    code, out, err = run(twins[API34], script)
    assert (code, err) == (1, f"/system/bin/sh: {new}\n")
    code, out, err = run(twins[API17], script)
    assert (code, err) == (1, f"/system/bin/sh: {old}\n")
    mksh = shutil.which("mksh")
    if mksh:  # Debian's mksh 59c words it as Android 13+ does
        got = subprocess.run([mksh, "-c", script], capture_output=True, timeout=10)
        assert got.returncode == 1 and new in got.stderr.decode()


def test_script_runs_up_to_its_syntax_error_and_names_file_and_line(twins):
    twin = twins[API34]
    twin.fs.write("/data/local/tmp/bad.sh", b"echo first\necho second\nfi\necho never\n")
    code, out, err = run(twin, "sh /data/local/tmp/bad.sh")
    assert (code, out) == (1, "first\nsecond\n")
    assert err == "/data/local/tmp/bad.sh[3]: syntax error: unexpected 'fi'\n"


def test_sh_file_args_and_sh_c_and_dot(twins):
    twin = twins[API34]
    twin.fs.write(
        "/data/local/tmp/args.sh", b'#!/system/bin/sh\necho "$0 $# $1 $2"\nexit $(($1 + $2))\n'
    )
    assert run(twin, "sh /data/local/tmp/args.sh 2 3") == (
        5,
        "/data/local/tmp/args.sh 2 2 3\n",
        "",
    )
    assert run(twin, "sh -c 'echo $0 $1' zero one; echo $?") == (0, "zero one\n0\n", "")
    twin.fs.write("/data/local/tmp/lib.sh", b"libvar=set\nlibf() { echo libf; }\n")
    assert run(twin, ". /data/local/tmp/lib.sh; libf; echo $libvar")[1] == "libf\nset\n"
    # a script cannot see the caller's unexported variables or functions
    twin.fs.write("/data/local/tmp/env.sh", b"echo ${a-unset} ${b-unset}\n")
    assert run(twin, "a=1; export b=2; sh /data/local/tmp/env.sh")[1] == "unset 2\n"
    assert run(twin, "sh /data/local/tmp/none.sh") == (
        127,
        "",
        "sh: /data/local/tmp/none.sh: No such file or directory\n",
    )
    assert run(twin, "set -- a; shift 2; echo never") == (
        1,
        "",
        "/system/bin/sh: shift: nothing to shift\n",
    )
    # sh reads its script from stdin
    assert run(twin, "sh", stdin=b"echo from-stdin; exit 4\n") == (4, "from-stdin\n", "")
    # an executable file runs, a plain one is refused
    twin.fs.write("/data/local/tmp/x.sh", b"echo ran\n", mode=0o755)
    twin.fs.write("/data/local/tmp/nx.sh", b"echo ran\n", mode=0o644)
    assert run(twin, "/data/local/tmp/x.sh")[:2] == (0, "ran\n")
    code, _, err = run(twin, "cd /data/local/tmp; ./nx.sh")
    assert code == 126 and "./nx.sh: can't execute: Permission denied" in err


def test_not_found_per_level_and_status(twins):
    for name in (API34, API17):
        assert run(twins[name], "frobnicate x") == (
            127,
            "",
            "/system/bin/sh: frobnicate: not found\n",
        )


def test_redirections_files_and_dev_null(twins):
    twin = twins[API34]
    script = (
        "cd /data/local/tmp; echo a > r.txt; echo b >> r.txt; cat < r.txt; "
        "ls /nonexistent 2>/dev/null; echo st=$?; ls /nonexistent > e.txt 2>&1; cat e.txt; "
        "echo gone > /dev/null; cat /dev/null; head -c 4 /dev/zero | wc -c"
    )
    code, out, err = run(twin, script)
    assert out == ("a\nb\nst=1\nls: /nonexistent: No such file or directory\n4\n"), err
    assert twin.fs.read("/dev/null") == b""
    code, out, err = run(twin, "cat < /data/local/tmp/missing; echo $?")
    assert out == "1\n"
    assert err == "/system/bin/sh: /data/local/tmp/missing: open: No such file or directory\n"
    code, out, err = run(twins[API17], "cat < /data/local/tmp/missing")
    assert err == "/system/bin/sh: can't open /data/local/tmp/missing: No such file or directory\n"


def test_pipes_stream_and_stop_producers(twins):
    twin = twins[API34]
    # yes is infinite: head takes 3 lines and yes stops on the broken pipe
    assert run(twin, "yes | head -n 3; echo done") == (0, "y\ny\ny\ndone\n", "")
    assert run(twin, "yes hello | head -2 | wc -l")[1] == "2\n"
    assert run(twin, "cat | tr a-z A-Z", stdin=b"shout\n")[1] == "SHOUT\n"
    assert run(twin, "seq 1 100000 | tail -n 1")[1] == "100000\n"


def test_while_true_does_not_stop_the_event_loop(twins):
    """An endless loop yields: another task keeps running and can cancel it."""
    twin = twins[API34]

    async def go() -> tuple[int, bool]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(20):
                await asyncio.sleep(0.005)
                ticks += 1

        job = asyncio.ensure_future(
            Shell(twin).run("while true; do :; done", BufferSink(), BufferSink())
        )
        await ticker()
        job.cancel()
        try:
            await job
        except asyncio.CancelledError:
            return ticks, True
        return ticks, False

    ticks, cancelled = asyncio.run(go())
    assert ticks == 20 and cancelled


def test_read_builtin(twins):
    twin = twins[API34]
    assert run(twin, 'read a b; echo "[$a][$b]"', stdin=b"  one two three \n")[1] == (
        "[one][two three]\n"
    )
    assert run(twin, 'while read l; do echo "<$l>"; done', stdin=b"x\ny\nz")[1] == ("<x>\n<y>\n")
    assert run(twin, 'read x; echo $? "$x"', stdin=b"")[1] == "1 \n"
    # mksh's echo would turn \\b into a backspace: compare in the shell
    assert run(twin, "read -r x; [ \"$x\" = 'a\\b' ] && echo raw", stdin=b"a\\b\n")[1] == "raw\n"
    assert run(twin, 'read x; echo "$x"', stdin=b"a\\qb\n")[1] == "aqb\n"
    twin.fs.write("/data/local/tmp/lines", b"l1\nl2\n")
    assert run(twin, "while read l; do echo $l; done < /data/local/tmp/lines")[1] == "l1\nl2\n"


def test_background_jobs_and_wait(twins):
    twin = twins[API34]
    code, out, _ = run(twin, "echo a & echo $!; wait; echo b")
    lines = out.splitlines()
    assert sorted(lines[:2]) == sorted(["a", lines[0] if lines[0] != "a" else lines[1]])
    assert lines[-1] == "b" and any(ln.isdigit() and int(ln) > 0 for ln in lines)
    code, out, _ = run(twin, "(sleep 0.2; exit 9) & p=$!; wait $p; echo $?")
    assert out == "9\n"


# --- userland per API level ---------------------------------------------------------------
# Each case makes the files it reads: xdist hands cases of one parametrize to either worker,
# and each worker has its own twin.
USERLAND_34 = [
    ("printf '%s=%d %x|%5s|%-3s|\\n' a 42 255 r l", "a=42 ff|    r|l  |\n"),
    ("printf '%s\\n' a b c", "a\nb\nc\n"),
    ("echo hello world | wc -w; printf 'a\\nb\\n' | wc -l; printf abc | wc -c", "2\n2\n3\n"),
    ("echo 'b\na\nc\na' | sort | uniq -c", "      2 a\n      1 b\n      1 c\n"),
    ("printf '10\\n9\\n100\\n' | sort -n | tr '\\n' ,", "9,10,100,"),
    ("echo 'x:y:z' | cut -d: -f1,3; echo abcdef | cut -c2-4", "x:z\nbcd\n"),
    (
        "echo 'Hello' | tr a-z A-Z; echo 'aabbcc' | tr -d b; echo 'a  b' | tr -s ' '",
        "HELLO\naacc\na b\n",
    ),
    (
        "echo 'one two' | sed 's/o/0/g'; printf 'a\\nb\\nc\\n' | sed -n '2p'; printf 'a\\nb\\n' | sed '1d'",
        "0ne tw0\nb\nb\n",
    ),
    (
        "echo 'a b c' | sed -e 's/a/x/' -e 's/c/z/'; echo ab | sed 's/\\(a\\)\\(b\\)/\\2\\1/'",
        "x b z\nba\n",
    ),
    ("printf '1 x\\n2 y\\n3 z\\n' | awk '{print $2}'", "x\ny\nz\n"),
    ("printf 'a:1\\nb:2\\n' | awk -F: '{s+=$2} END {print s, NR}'", "3 2\n"),
    ("printf '1\\n5\\n9\\n' | awk '$1 > 3 {print \"big\", $1}'", "big 5\nbig 9\n"),
    ("printf 'ab\\ncd\\n' | awk '/c/'; awk 'BEGIN {print 1+2}'", "cd\n3\n"),
    ("seq 3; seq 2 2 6 | tr '\\n' ' '; seq -s, 1 3", "1\n2\n3\n2 4 6 1,2,3\n"),
    ("expr 2 + 3 \\* 4; expr 5 = 5; expr length abc", "14\n1\n3\n"),
    (
        "basename /sdcard/DCIM/x.jpg; basename /a/b.txt .txt; dirname /sdcard/DCIM/x.jpg",
        "x.jpg\nb\n/sdcard/DCIM\n",
    ),
    ("echo a b c | xargs -n 1 echo x", "x a\nx b\nx c\n"),
    ("echo 1 2 | xargs echo", "1 2\n"),
    ("yes | head -n 2", "y\ny\n"),
    (
        "uname -s; uname -m; uname -r",
        "Linux\nx86_64\n6.1.23-android14-4-00257-g7e35917775b8-ab9964412\n",
    ),
    (
        "cd /data/local/tmp && mkdir -p u/v && echo hi > u/v/f.txt && echo x > u/g.log && "
        "find u -name '*.txt'; find u -type d | sort; find u -maxdepth 1 -type f",
        "u/v/f.txt\nu\nu/v\nu/g.log\n",
    ),
    (
        "cd /data/local/tmp && echo 12345 > s.txt && chmod 640 s.txt && stat -c '%s %n %a' s.txt",
        "6 s.txt 640\n",
    ),
    (
        "cd /data/local/tmp && echo c > c1 && cp c1 c2 && mv c2 c3 && cat c3 && ls c2 2>/dev/null;"
        " echo $?",
        "c\n1\n",
    ),
    (
        "cd /data/local/tmp && echo c > l1 && ln -s /data/local/tmp/l1 lnk && readlink lnk"
        " && cat lnk",
        "/data/local/tmp/l1\nc\n",
    ),
    ("cd /data/local/tmp && echo t | tee t1 t2 >/dev/null && cat t1 t2", "t\nt\n"),
    (
        "cd /data/local/tmp && printf 'x\\ny\\n' > g && grep -n y g; grep -c . g; grep -v x g;"
        " grep -q z g; echo $?",
        "2:y\n2\ny\n1\n",
    ),
    ("echo ABC | grep -i abc; echo 'a1b22' | grep -oE '[0-9]+'", "ABC\n1\n22\n"),
    ("env | grep ^PATH=", "PATH=/sbin:/vendor/bin:/system/sbin:/system/bin:/system/xbin\n"),
    ("X=1 env | grep ^X=", "X=1\n"),
    (
        "mkdir -p /data/local/tmp/d/e && du -s /data/local/tmp/d | cut -f2",
        "/data/local/tmp/d\n",
    ),
    ("df | head -n 1", "Filesystem       1K-blocks    Used Available Use% Mounted on\n"),
    ("pwd; cd /sdcard; pwd; cd -; pwd", "/\n/sdcard\n/\n"),
    (
        "echo c > /data/local/tmp/si && sed -i 's/c/C/' /data/local/tmp/si && cat /data/local/tmp/si",
        "C\n",
    ),
]


@pytest.mark.parametrize("script,stdout", USERLAND_34, ids=_ids(USERLAND_34))
def test_toybox_userland_api34(twins, script, stdout):
    code, out, err = run(twins[API34], script)
    assert out == stdout, err


@pytest.mark.parametrize(
    "cmd",
    [
        "cp a b",
        "wc -l",
        "sed p",
        "find /",
        "stat /",
        "pidof x",
        "tr a b",
        "uname -a",
        "head -1",
        "grep x",
        "awk 1",
        "printf x",
        "seq 1",
        "which ls",
        "readlink x",
    ],
)
def test_toolbox_gaps_on_api17(twins, cmd):
    name = cmd.split()[0]
    assert run(twins[API17], cmd) == (127, "", f"/system/bin/sh: {name}: not found\n")


def test_api17_has_its_toolbox_and_mksh_builtins(twins):
    twin = twins[API17]
    script = (
        "cd /data/local/tmp; echo x > m1; mv m1 m2; cat m2; ln -s m2 m3; ls m3; du -s . >/dev/null;"
        " echo $?; df | head -n 1; [ -f m2 ] && echo test; pwd; md5 m2 | cut -c1-4"
    )
    code, out, err = run(twin, script)
    assert out.splitlines()[:5] == ["x", "m3", "0", "test", "/data/local/tmp"]
    assert "/system/bin/sh: head: not found" in err and "/system/bin/sh: cut: not found" in err


def test_awk_only_from_api28(twins):
    assert run(twins[API34], "awk 'BEGIN{print 7}'")[1] == "7\n"


def test_fatal_errors_xtrace_and_recursion(twins):
    twin = twins[API34]
    assert run(twin, "set -x; a=1; echo $a 'b c'") == (0, "1 b c\n", "+ a=1 \n+ echo 1 'b c'\n")
    # ${x:?} ends a subshell, not the shell; at top level it ends the shell with status 1
    assert run(twin, "(echo ${x:?inner}); echo survived $?") == (
        0,
        "survived 1\n",
        "/system/bin/sh: x: inner\n",
    )
    assert run(twin, "echo ${x:?}; echo never") == (
        1,
        "",
        "/system/bin/sh: x: parameter null or not set\n",
    )
    assert run(twin, "echo $((1/0)); echo never") == (1, "", "/system/bin/sh: 1/0: zero divisor\n")
    # endless recursion is an error, not a crash of the twin
    code, out, err = run(twin, "f() { f; }; f; echo never")
    assert (code, out, err) == (1, "", "/system/bin/sh: f: recursion too deep\n")
    assert run(twin, "echo $LINENO\necho $LINENO")[1] == "1\n2\n"


def test_a_job_with_its_output_redirected_outlives_the_session(twins):
    """`(...) >/dev/null 2>&1 &` returns at once and keeps running, as a daemon does on a
    device; a job still writing to the session holds it until it ends."""
    twin = twins[API34]

    async def go() -> tuple[int, bool, bool]:
        out, err = BufferSink(), BufferSink()
        script = "(sleep 0.3; echo late > /data/local/tmp/late.txt) > /dev/null 2>&1 &"
        code = await asyncio.wait_for(Shell(twin).run(script, out, err), 5)
        early = twin.fs.lookup("/data/local/tmp/late.txt") is not None
        for _ in range(100):
            await asyncio.sleep(0.05)
            if twin.fs.lookup("/data/local/tmp/late.txt") is not None:
                break
        return code, early, twin.fs.read("/data/local/tmp/late.txt") == b"late\n"

    assert asyncio.run(go()) == (0, False, True)
    assert run(twin, "(sleep 0.2; echo held) &") == (0, "held\n", "")


def test_golden_qa_script_is_what_mksh_prints():
    """fixtures/sh/qa-script: the expected output is mksh's own (getprop stubbed)."""
    mksh = shutil.which("mksh")
    if mksh is None:
        pytest.skip("no mksh oracle: apt-get install mksh toybox")
    golden = Path(__file__).resolve().parents[2] / "fixtures" / "sh" / "qa-script"
    script = "getprop() { echo 34; }\n" + (golden / "qa.sh").read_text()
    got = subprocess.run(
        [mksh, "-c", script, "qa.sh", "1", "2", "4"], capture_output=True, timeout=10
    )
    assert (got.returncode, got.stdout) == (0, (golden / "api34-emulator.txt").read_bytes())


# --- toybox oracle: the same script under Debian's mksh with toybox 0.8.9 (Android 14's) --------
TOYBOX_SCRIPTS = [
    "touch a; mkdir d; echo hi > d/x; ln -s a l; ls; echo --; ls d .; echo --; ls -d d; ls -1 d;"
    " ls nofile; echo $?; ls -R .",
    "touch b a; ls -a | tail -n 2",
    "printf 'a\\nb\\nc\\n' | wc -l; printf 'a b\\n' | wc -w; printf abc | wc -c; printf 'x\\ny\\n' > f; wc -l f; wc f",
    "printf 'x\\ny\\n' > f; printf 'z\\n' > g; wc -l f g",
    "echo hello world | sed 's/o/0/'; echo hello | sed -n '/ell/p'; printf '1\\n2\\n3\\n' | sed '2d'; printf '1\\n2\\n3\\n' | sed -n '$p'",
    "printf 'k v\\n' | sed -E 's/([a-z]) ([a-z])/\\2 \\1/'; echo 'a.b' | sed 's/\\./-/'",
    "printf 'x\\n' > f; sed -i 's/x/y/' f; cat f",
    "printf '1 2 3\\n4 5 6\\n' | cut -d' ' -f2; echo abcdef | cut -c1,3; echo a:b:c | cut -d: -f2-",
    "printf 'b\\na\\nc\\n' | sort; printf '10\\n9\\n' | sort -n; printf 'a\\nb\\n' | sort -r; printf 'a\\na\\nb\\n' | sort -u",
    "printf 'x 3\\ny 1\\nz 2\\n' | sort -k2 -n; printf 'b:2\\na:1\\n' | sort -t: -k2",
    "printf 'a\\na\\nb\\na\\n' | uniq; printf 'a\\na\\nb\\n' | uniq -c; printf 'a\\na\\nb\\n' | uniq -d; printf 'a\\na\\nb\\n' | uniq -u",
    "seq 3; seq 2 4; seq 1 2 7; seq -s, 3; seq 5 -1 3; seq 0",
    "seq -w 8 10; seq 1.5 3",
    "printf '%s\\n' a b; printf '%d %5d|%-5d|%05d\\n' 1 2 3 4; printf '%x %X %o\\n' 255 255 8",
    "printf '%s=%s\\n' a 1 b; printf 'no newline'; echo; printf '%%\\n'; printf '%c\\n' hello",
    "printf '%.2f %e %g\\n' 3.14159 1000 0.5; printf '%5s|%-5s|\\n' ab cd; printf '%b\\n' 'a\\tb'",
    "printf '%d\\n' 0x10; printf '%d\\n' abc; echo $?",
    "basename /a/b/c; basename /a/b/; basename c.txt .txt; basename /; dirname /a/b/c; dirname c; dirname /a; dirname /",
    "touch a; ln -s a l; readlink l; readlink -f l | sed 's|.*/||'; readlink a; echo $?",
    "yes | head -n 3; yes ab | head -2",
    "printf '1\\n2\\n3\\n4\\n5\\n' | head -n 2; printf '1\\n2\\n3\\n' | tail -n 2; printf '1\\n2\\n3\\n' | tail -n +2; printf '1\\n2\\n3\\n' | head -2",
    "printf 'abcdef' | head -c 3; echo; printf 'abcdef' | tail -c 2; echo",
    "printf 'x\\ny\\n' > f; head -n 1 f; tail -n 1 f; printf 'z\\n' > g; head -n 1 f g",
    "printf 'foo\\nbar\\nbaz\\n' | grep ba; printf 'foo\\nBar\\n' | grep -i bar; printf 'a\\nb\\n' | grep -v a; printf 'a\\nb\\na\\n' | grep -c a",
    "printf 'foo\\nbar\\n' | grep -n bar; printf 'ab12\\n' | grep -o '[0-9]'; printf 'x\\n' | grep -q x; echo $?; printf 'x\\n' | grep y; echo $?",
    "printf 'a+b\\n' | grep 'a+b'; printf 'aab\\n' | grep -E 'a+b'; printf 'a|b\\n' | grep -F 'a|b'; printf 'word\\n' | grep -w wor; echo $?",
    "printf 'x\\n' > f1; printf 'x\\ny\\n' > f2; grep x f1 f2; grep -l y f1 f2; grep -h x f1 f2; grep x nofile; echo $?",
    "mkdir -p d/e; touch d/f.txt d/e/g.txt d/h.log; find d -name '*.txt' | sort; find d -type d | sort; find d -maxdepth 1 -type f | sort",
    "mkdir -p d; touch d/x; find d; find . -name x",
    "printf '12345' > s; stat -c '%s %n' s; chmod 640 s; stat -c '%a %A' s",
    "echo x > a; cp a b; cat b; mv b c; cat c; ls; cp a; echo $?",
    "mkdir src; echo 1 > src/f; cp -r src dst; cat dst/f; cp src x 2>/dev/null; echo $?",
    "echo t | tee t1; cat t1; echo u | tee -a t1 > /dev/null; cat t1",
    "mkdir -p x/y; rmdir x/y; ls x; rmdir nonexist; echo $?",
    "env -i A=1 env; env -i B=2 printenv B",
    "A=1 printenv A; printenv NOPE; echo $?",
    "uname; uname -s -m | cut -d' ' -f1",
    "echo abc | md5sum",
    "true; echo $?; false; echo $?",
    "du -s . | cut -f2",
]
TOYBOX_SCRIPTS += [
    "printf '1\\n' | sed '1i\\hello'",
    "printf '1\\n2\\n' | sed '$a end'",
    "printf 'a\\nb\\n' | sed -n '/a/,/b/p'",
    "printf 'x y\\n' | sed 's/ /\\n/'",
]
# awk on Android is one-true-awk (API 28+): these POSIX cases are checked against the host's awk
AWK_SCRIPTS = [
    "printf '1 2 3\\n4 5 6\\n' | awk '{print $NF}'",
    "printf 'h,x\\n1,a\\n2,b\\n' | awk -F, 'NR>1{print $1}'",
    "printf '2\\n4\\n' | awk '{ s += $1 } END { print s/NR }'",
    "printf 'a b\\n' | awk '{printf \"%s-%s\\n\", $2, $1}'",
    "printf 'x\\n' | awk '{ $2 = \"y\"; print; print NF }'",
    "printf 'abc\\n' | awk '{ print length($0), substr($0, 2, 1), toupper($0) }'",
    "printf 'a 1\\nb 2\\n' | awk '$2 >= 2'",
    "printf 'foo\\nbar\\n' | awk '/^b/ { print \"B:\" $0; next } { print \"other\" }'",
    "awk -v n=3 'BEGIN { for (i = 0; i < n; i++) print i }'",
    "printf '1\\n2\\n3\\n' | awk 'NR % 2 == 1'",
    "printf 'a:b\\n' | awk 'BEGIN { FS = \":\" } { print $2 }'",
    "printf '5\\n' | awk '{ if ($1 > 3) print \"big\"; else print \"small\" }'",
]
TOYBOX_ERRORS = [
    "cat nofile; echo $?",
    "ls nofile; echo $?",
    "rm nofile; echo $?",
    "mkdir d; mkdir d; echo $?",
    "cp nofile x; echo $?",
    "mv nofile x; echo $?",
    "stat nofile; echo $?",
    "find nofile; echo $?",
    "head nofile; echo $?",
    "grep x nofile; echo $?",
    "wc nofile; echo $?",
    "sort nofile; echo $?",
    "cut -f1 nofile; echo $?",
    "rmdir nofile; echo $?",
    "readlink nofile; echo $?",
    "touch a; ln -s a b; ln -s a b; echo $?",
    "sed p nofile; echo $?",
    "tail nofile; echo $?",
    "seq; echo $?",
    "basename; echo $?",
    "cat .; echo $?",
    "mkdir a/b/c; echo $?",
    "touch a; mkdir a/b; echo $?",
    "wc -x; echo $?",
]
_TOYBOX_TOOLS = (
    "cat cp mv sed find stat uname cut sort uniq tee xargs basename dirname seq printf env "
    "readlink ln du df yes head tail wc grep rm mkdir touch ls echo md5sum rmdir printenv chmod"
).split()


@pytest.fixture(scope="module")
def toybox_path(tmp_path_factory):
    mksh, toybox = shutil.which("mksh"), shutil.which("toybox")
    if mksh is None or toybox is None:
        pytest.skip("no mksh/toybox oracle: apt-get install mksh toybox")
    tbin = tmp_path_factory.mktemp("toybin")
    for tool in _TOYBOX_TOOLS:
        (tbin / tool).symlink_to(toybox)
    if shutil.which("awk"):
        (tbin / "awk").symlink_to(shutil.which("awk"))
    return mksh, tbin


def _oracle_case(twins, toybox_path, tmp_path, script: str) -> tuple[tuple, tuple]:
    mksh, tbin = toybox_path
    twin = twins[API34]
    work = f"/data/local/tmp/oracle-{abs(hash(script))}"
    twin.fs.mkdir(work, parents=True)
    code, out, err = run(twin, f"cd {work}; {script}")
    ref = subprocess.run(
        [mksh, "-c", f"cd {tmp_path}; {script}"],
        capture_output=True,
        timeout=_ORACLE_TIMEOUT_S,
        env={"HOME": "/", "PATH": str(tbin)},
    )
    return (code, out, err), (ref.returncode, ref.stdout.decode(), ref.stderr.decode())


@pytest.mark.parametrize("script", TOYBOX_SCRIPTS, ids=[s[:40] for s in TOYBOX_SCRIPTS])
def test_userland_output_matches_toybox(twins, toybox_path, tmp_path, script):
    mine, ref = _oracle_case(twins, toybox_path, tmp_path, script)
    assert mine[:2] == ref[:2]


@pytest.mark.parametrize("script", TOYBOX_ERRORS, ids=[s[:40] for s in TOYBOX_ERRORS])
def test_userland_errors_match_toybox(twins, toybox_path, tmp_path, script):
    mine, ref = _oracle_case(twins, toybox_path, tmp_path, script)
    assert mine == ref


def test_exec_redirections_stay_for_the_rest_of_the_script(twins):
    twin = twins[API34]
    twin.fs.write(
        "/data/local/tmp/logging.sh",
        b"exec > /data/local/tmp/run.log 2>&1\necho one; ls /nope\nf() { echo in-f; }\nf\n",
    )
    assert run(twin, "sh /data/local/tmp/logging.sh") == (0, "", "")
    assert twin.fs.read("/data/local/tmp/run.log") == (
        b"one\nls: /nope: No such file or directory\nin-f\n"
    )
    assert run(twin, "exec echo replaced; echo never") == (0, "replaced\n", "")


@pytest.mark.parametrize("script", AWK_SCRIPTS, ids=[s[:40] for s in AWK_SCRIPTS])
def test_awk_subset_matches_posix_awk(twins, toybox_path, tmp_path, script):
    if not (toybox_path[1] / "awk").exists():
        pytest.skip("no awk on this host to compare with")
    mine, ref = _oracle_case(twins, toybox_path, tmp_path, script)
    assert mine == ref


def test_a_file_that_grows_forever_fills_up_like_a_disk(twins, monkeypatch):
    """`yes > f` ends with ENOSPC at the file cap instead of eating the twin's memory."""
    from harness.twin import fs

    monkeypatch.setattr(fs, "MAX_FILE_BYTES", 1 << 20)
    code, out, err = run(twins[API34], "yes > /data/local/tmp/full; echo rc=$?")
    assert out == "rc=1\n"
    assert err == "yes: /data/local/tmp/full: No space left on device\n"
    assert len(twins[API34].fs.read("/data/local/tmp/full")) <= 1 << 20


def test_system_bin_holds_the_commands_of_the_level(twins):
    new, old = twins[API34], twins[API17]
    assert run(new, "ls -l /system/bin/ls")[1].endswith(" /system/bin/ls -> toybox\n")
    assert run(new, "[ -x /system/bin/screenrecord ] && [ -x /system/bin/wc ] && echo yes")[1] == (
        "yes\n"
    )
    assert run(old, "ls -l /system/bin/ls")[1].endswith(" /system/bin/ls -> toolbox\n")
    assert run(old, "[ -e /system/bin/screenrecord ] || [ -e /system/bin/wc ] || echo no")[1] == (
        "no\n"
    )
    assert run(new, "/system/bin/echo -n x; /system/bin/wc -c < /dev/null")[1] == "x0\n"
