"""The twin as Android of its level for real clients: transport, wire features, reverse, logcat,
packages and processes, screenrecord MP4 (issue 13). Through the real adb server unless a test
says why it is in-process."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from pathlib import Path

import av
import pytest

from harness.profiles import load_profile
from harness.twin.apk import ApkError, make_apk, parse_apk
from harness.twin.personality import features_for
from harness.twin.transport import KEEPALIVE_IDLE_S
from harness.twin.truth import read_truth

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "twin"
NEW, OLD = "android-emulator-api34", "fire-hdx-7-2013"


def _sh(adb_server, serial: str, *args: str, timeout_s: float = 30.0) -> str:
    cp = adb_server.adb("-s", serial, "shell", *args, timeout_s=timeout_s)
    return (cp.stdout + cp.stderr).decode(errors="replace").replace("\r\n", "\n")


def _normalise(text: str) -> str:
    """Golden comparison: timestamps, pids, tids and hashes vary run to run."""
    text = re.sub(r"\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", "MM-DD hh:mm:ss.mmm", text)
    text = re.sub(r"vmdl\d+", "vmdlN", text)
    text = re.sub(r"\(\s*\d+\)", "(PID)", text)
    return re.sub(r"^(MM-DD hh:mm:ss.mmm)\s+\d+\s+\d+ ", r"\1   PID   TID ", text, flags=re.M)


def _golden(name: str, text: str) -> None:
    path = FIXTURES / name
    if os.environ.get("MAYDAY_HIL_WRITE_GOLDEN") == "1":  # regenerate, then review the diff
        path.write_text(_normalise(text))
    assert path.is_file(), f"golden file {path} missing"
    assert _normalise(text) == path.read_text(), f"{name} differs:\n{_normalise(text)}"


# --- transport ------------------------------------------------------------------------------
class _FastForwardLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock can jump ahead: every timer due in the skipped time fires."""

    offset_s = 0.0

    def time(self) -> float:
        return super().time() + self.offset_s


def test_idle_transport_outlives_any_read_timeout_and_has_keepalive(tmp_path):
    """In-process: an hour of idle loop time passes (the clock jumps); the transport stays
    online and still answers, and its socket has TCP keepalive for dead peers."""
    from harness.twin import protocol as p
    from harness.twin.device import Twin

    async def scenario() -> tuple[bool, bytes, int]:
        loop = asyncio.get_running_loop()
        twin = Twin(load_profile(NEW), _free_port(), tmp_path / "state")
        await twin.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", twin.port)
            writer.write(p.packet(p.A_CNXN, 0x01000001, 1 << 20, b"host::\0"))
            await writer.drain()
            cnxn = p.parse_header(
                await asyncio.wait_for(reader.readexactly(p.HEADER_SIZE), 5.0), 1 << 20
            )
            await reader.readexactly(cnxn.length)  # the device banner
            (conn,) = twin.connections
            await asyncio.sleep(0.2)
            loop.offset_s += 3600.0  # an hour of silence on the transport
            await asyncio.sleep(0.5)
            alive = conn.online and not conn.dead
            sock = conn.writer.get_extra_info("socket")
            keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            if hasattr(socket, "TCP_KEEPIDLE"):
                idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
                keepalive = keepalive if idle == KEEPALIVE_IDLE_S else -idle
            writer.write(p.packet(p.A_OPEN, 7, 0, b"shell:echo still here\0"))
            await writer.drain()
            got = b""
            while b"still here" not in got:
                head = p.parse_header(
                    await asyncio.wait_for(reader.readexactly(p.HEADER_SIZE), 5.0), 1 << 20
                )
                data = await reader.readexactly(head.length) if head.length else b""
                if head.command == p.A_WRTE:
                    got += data
                    writer.write(p.packet(p.A_OKAY, 7, head.arg0))
                    await writer.drain()
            writer.close()
            return alive, got, keepalive
        finally:
            await twin.stop()

    with asyncio.Runner(loop_factory=_FastForwardLoop) as runner:
        alive, got, keepalive = runner.run(scenario())
    assert alive, "the idle transport was dropped when the clock passed the old 300 s limit"
    assert b"still here" in got
    assert keepalive == 1


def _free_port() -> int:
    from harness.farm import free_port

    return free_port(pair=True)


# --- wire features, push, /system ---------------------------------------------------------
def test_features_as_real_adbd_and_adb_cli_uses_them(adb_server, start_twin):
    new = start_twin(NEW)
    old = start_twin(OLD)
    s_new, s_old = f"127.0.0.1:{new.port}", f"127.0.0.1:{old.port}"
    listed = adb_server.adb("-s", s_new, "features").stdout.decode().split()
    for f in ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir", "abb_exec", "sendrecv_v2"):
        assert f in listed, f"API 34 adbd lists {f}"
    assert set(features_for(34)) <= set(listed)
    assert "brotli" not in listed and "zstd" not in listed  # compression is not modelled
    old_listed = set(adb_server.adb("-s", s_old, "features").stdout.decode().split())
    assert not old_listed & set(features_for(34)), "Android 4.2's adbd lists no features"


@pytest.mark.parametrize("profile", [NEW, OLD])
def test_push_into_new_directory_and_system_is_read_only(adb_server, start_twin, tmp_path, profile):
    tp = start_twin(profile)
    serial = f"127.0.0.1:{tp.port}"
    src = tmp_path / "f.txt"
    src.write_text("hello\n")
    cp = adb_server.adb("-s", serial, "push", str(src), "/sdcard/new/deeper/f.txt")
    assert cp.returncode == 0, cp.stderr
    assert _sh(adb_server, serial, "cat", "/sdcard/new/deeper/f.txt") == "hello\n"
    if profile == NEW:  # without compression the CLI sends v1; a dry run needs sendrecv_v2
        cp = adb_server.adb("-s", serial, "push", "-n", str(src), "/sdcard/dry/f.txt")
        assert cp.returncode == 0, cp.stderr
        assert "dry" not in _sh(adb_server, serial, "ls", "/sdcard")
    sends = [
        (e["proto"], e.get("dry_run", False)) for e in read_truth(tp.twins[0].truth, "sync_send")
    ]
    assert sends == ([("SEND", False), ("SND2", True)] if profile == NEW else [("SEND", False)])
    cp = adb_server.adb("-s", serial, "push", str(src), "/system/f.txt")
    assert cp.returncode != 0
    assert b"Read-only file system" in cp.stdout + cp.stderr


def test_reverse_carries_bytes_from_device_port_to_host(adb_server, start_twin):
    """adb reverse tcp:D tcp:H; a device-side connection to D (made here through adb forward
    tcp:L tcp:D) reaches the host's listener on H and gets its answer."""
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(10.0)
        host_port = srv.getsockname()[1]
        received: list[bytes] = []

        def serve() -> None:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10.0)
                data = conn.recv(100)
                received.append(data)
                conn.sendall(data.upper())

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cp = adb_server.adb("-s", serial, "reverse", "tcp:27183", f"tcp:{host_port}")
        assert cp.returncode == 0, cp.stderr
        listing = adb_server.adb("-s", serial, "reverse", "--list").stdout.decode()
        assert f"tcp:27183 tcp:{host_port}" in listing
        local = int(adb_server.adb("-s", serial, "forward", "tcp:0", "tcp:27183").stdout.strip())
        with socket.create_connection(("127.0.0.1", local), timeout=10.0) as c:
            c.sendall(b"ping from device")
            reply = c.recv(100)
        t.join(10.0)
    assert received == [b"ping from device"]
    assert reply == b"PING FROM DEVICE"
    adb_server.adb("-s", serial, "reverse", "--remove-all")
    assert "27183" not in adb_server.adb("-s", serial, "reverse", "--list").stdout.decode()


def test_reverse_refused_on_api17(adb_server, start_twin):
    tp = start_twin(OLD)
    cp = adb_server.adb("-s", f"127.0.0.1:{tp.port}", "reverse", "tcp:27183", "tcp:27184")
    assert cp.returncode != 0


# --- logcat ---------------------------------------------------------------------------------
@pytest.mark.parametrize("profile,api", [(NEW, 34), (OLD, 17)])
def test_logcat_formats_filters_clear_golden(adb_server, start_twin, profile, api):
    tp = start_twin(profile)
    serial = f"127.0.0.1:{tp.port}"
    assert _sh(adb_server, serial, "logcat", "-c") == ""
    assert _sh(adb_server, serial, "logcat --clear") == ""
    _sh(adb_server, serial, "log", "-t", "MaydayA", "first line")
    _sh(adb_server, serial, "log", "-p", "w", "-t", "MaydayB", "second line")
    _sh(adb_server, serial, "log", "-p", "d", "-t", "MaydayC", "debug line")
    out = _sh(adb_server, serial, "logcat", "-d", "-s", "MaydayA", "MaydayB")
    out += _sh(adb_server, serial, "logcat", "-d", "-v", "time", "MaydayC:D", "*:S")
    out += _sh(adb_server, serial, "logcat", "-d", "-v", "threadtime", "-s", "MaydayB")
    out += _sh(adb_server, serial, "logcat", "-d", "-t", "1", "-s", "MaydayA", "MaydayC")
    out += _sh(adb_server, serial, "logcat", "-d", "MaydayA:W", "*:S")  # nothing: I < W
    _golden(f"logcat_api{api}.txt", out)
    # after -c, nothing of ours is left
    _sh(adb_server, serial, "logcat", "-c")
    assert _sh(adb_server, serial, "logcat", "-d", "-s", "MaydayA") == ""


def test_logcat_exec_and_twin_events_on_api34(adb_server, start_twin):
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    _sh(adb_server, serial, "svc", "wifi", "disable")
    _sh(adb_server, serial, "svc", "wifi", "enable")
    cp = adb_server.adb("-s", serial, "exec-out", "logcat", "-d", "-s", "WifiService")
    lines = cp.stdout.decode().splitlines()
    assert len(lines) == 2 and all(" I WifiService: setWifiEnabled" in ln for ln in lines)
    cli = adb_server.adb("-s", serial, "logcat", "-d", "-s", "WifiService")  # the adb CLI's way
    assert cli.returncode == 0 and cli.stdout.decode().splitlines() == lines
    tp.control("stall", service="localabstract:nothing")  # a fault: adbd logs it
    stalled = _sh(adb_server, serial, "logcat", "-d", "-s", "adbd")
    assert re.search(r" W adbd\s*: service localabstract:nothing not answering", stalled)
    every = _sh(adb_server, serial, "logcat", "-d")
    assert "com.amazon.kindle.otter" not in every, "no Fire launcher on the API 34 emulator"
    assert "Start proc" in every and "com.android.launcher3" in every
    events = _sh(adb_server, serial, "logcat", "-d", "-b", "events", "-s", "am_proc_start")
    assert re.search(r" I am_proc_start: \[0,\d+,\d+,com.android.launcher3,activity,", events)
    assert "am_proc_start" not in every, "the events buffer is not in logcat's default set"


# --- packages -------------------------------------------------------------------------------
def test_apk_maker_and_parser_round_trip():
    m = parse_apk(make_apk("com.example.round", 42, "4.2-beta", ("android.permission.CAMERA",)))
    assert (m.package, m.version_code, m.version_name) == ("com.example.round", 42, "4.2-beta")
    assert m.permissions == ("android.permission.CAMERA",)
    for bad, code in (
        (b"not a zip at all", "INSTALL_PARSE_FAILED_NOT_APK"),
        (make_apk("com.x", manifest=False), "INSTALL_PARSE_FAILED_BAD_MANIFEST"),
        (make_apk("com.x", signed=False), "INSTALL_PARSE_FAILED_NO_CERTIFICATES"),
    ):
        with pytest.raises(ApkError) as e:
            parse_apk(bad)
        assert e.value.code == code


@pytest.mark.parametrize("profile,api", [(NEW, 34), (OLD, 17)])
def test_install_parses_the_apk_and_refuses_bad_ones_golden(
    adb_server, start_twin, tmp_path, profile, api
):
    tp = start_twin(profile)
    serial = f"127.0.0.1:{tp.port}"
    apks = {
        "good.apk": make_apk("com.example.hello", 7, "1.7", ("android.permission.CAMERA",)),
        "notzip.apk": b"this is text, not a zip",
        "nomanifest.apk": make_apk("com.example.x", manifest=False),
        "unsigned.apk": make_apk("com.example.y", signed=False),
        "older.apk": make_apk("com.example.hello", 3, "1.3"),
    }
    out = []
    for name, data in apks.items():
        (tmp_path / name).write_bytes(data)
        cp = adb_server.adb("-s", serial, "install", "-r", str(tmp_path / name), timeout_s=60.0)
        text = (cp.stdout + cp.stderr).decode(errors="replace").replace("\r\n", "\n")
        text = text.replace(str(tmp_path), "TMP")
        lines = [ln for ln in text.splitlines() if "Success" in ln or "Failure" in ln]
        out.append(f"{name}: {lines[-1] if lines else text.strip()}")
    _golden(f"pm_install_api{api}.txt", "\n".join(out) + "\n")
    d = adb_server.client().device(serial)
    info = d.app_info("com.example.hello")
    assert (info.version_code, info.version_name) == (7, "1.7")
    assert "com.example.hello" in _sh(adb_server, serial, "pm", "list", "packages", "-3")
    assert "com.example.hello" not in _sh(adb_server, serial, "pm", "list", "packages", "-s")
    assert _sh(adb_server, serial, "pm", "path", "com.example.hello").startswith(
        "package:/data/app/"
    )
    if api >= 23:
        _sh(adb_server, serial, "pm", "grant", "com.example.hello", "android.permission.CAMERA")
        assert "android.permission.CAMERA: granted=true" in _sh(
            adb_server, serial, "dumpsys", "package", "com.example.hello"
        )
        _sh(adb_server, serial, "pm", "revoke", "com.example.hello", "android.permission.CAMERA")
        assert "android.permission.CAMERA: granted=false" in _sh(
            adb_server, serial, "dumpsys", "package", "com.example.hello"
        )
    assert _sh(adb_server, serial, "pm", "uninstall", "com.example.hello").strip() == "Success"
    assert d.app_info("com.example.hello") is None


@pytest.mark.parametrize("profile,api", [(NEW, 34), (OLD, 17)])
def test_ps_pidof_and_app_pids_per_level(adb_server, start_twin, profile, api):
    tp = start_twin(profile)
    serial = f"127.0.0.1:{tp.port}"
    out = _sh(adb_server, serial, "am", "start", "-W", "-n", "com.android.settings/.MainActivity")
    assert "Status: ok" in out and re.search(r"TotalTime: \d+", out)
    table = _sh(adb_server, serial, "ps", "-A" if api >= 26 else "")
    header = table.splitlines()[0].split()
    if api >= 26:
        assert header == "USER PID PPID VSZ RSS WCHAN ADDR S NAME".split()
        short = _sh(adb_server, serial, "ps").splitlines()
        assert len(short) == 3 and short[1].split()[-1] == "sh", "ps without -A: this session only"
    else:
        assert header == "USER PID PPID VSIZE RSS WCHAN PC NAME".split()
    rows = {ln.split()[-1]: int(ln.split()[1]) for ln in table.splitlines()[1:]}
    pid = rows["com.android.settings"]
    assert pid > 1000
    if api >= 23:
        assert _sh(adb_server, serial, "pidof", "com.android.settings").strip() == str(pid)
    d = adb_server.client().device(serial)
    current = d.app_current()
    assert (current.package, current.activity) == ("com.android.settings", ".MainActivity")
    _sh(adb_server, serial, "am", "force-stop", "com.android.settings")
    after = _sh(adb_server, serial, "ps", "-A" if api >= 26 else "")
    assert "com.android.settings" not in after


# --- screenrecord ---------------------------------------------------------------------------
def test_screenrecord_writes_mp4_with_duration_and_size(adb_server, start_twin, tmp_path):
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    cp = adb_server.adb(
        "-s",
        serial,
        "shell",
        "screenrecord --time-limit 2 --size 320x240 --bit-rate 1000000 /sdcard/rec.mp4",
        timeout_s=60.0,
    )
    assert cp.returncode == 0, cp.stderr
    dst = tmp_path / "rec.mp4"
    assert adb_server.adb("-s", serial, "pull", "/sdcard/rec.mp4", str(dst)).returncode == 0
    raw = dst.read_bytes()
    assert raw[4:8] == b"ftyp" and b"moov" in raw
    with av.open(str(dst)) as f:
        assert f.format.name.startswith("mov,mp4")
        v = f.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (320, 240)
        duration_s = float(v.duration * v.time_base)
        frames = sum(1 for _ in f.decode(v))
    assert 1.5 <= duration_s <= 2.2, duration_s  # --time-limit 2, frames at 30 fps
    assert frames >= 30


@pytest.mark.parametrize("profile,api", [(NEW, 34), (OLD, 17)])
def test_ps_and_dumpsys_package_golden(adb_server, start_twin, profile, api):
    """Column layout of ps and the fields of dumpsys package per level; numbers, hashes and
    dates vary run to run and are masked."""
    tp = start_twin(profile)
    serial = f"127.0.0.1:{tp.port}"
    _sh(adb_server, serial, "am", "start", "-n", "com.android.settings/.MainActivity")
    ps = _sh(adb_server, serial, "ps", "-A" if api >= 26 else "")
    ps = "\n".join(ln.rstrip() for ln in re.sub(r"\d", "9", ps).splitlines()) + "\n"
    _golden(f"ps_api{api}.txt", ps)
    pkg = _sh(adb_server, serial, "dumpsys", "package", "com.android.settings")
    pkg = re.sub(r"\b[0-9a-f]{8}\b", "HASH", pkg)
    pkg = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "DATE", pkg)
    _golden(f"dumpsys_package_api{api}.txt", pkg)


def test_ime_cmd_and_activity_dumps_on_api34(adb_server, start_twin):
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    latin = "com.android.inputmethod.latin/.LatinIME"
    assert _sh(adb_server, serial, "ime", "list", "-s").split() == [latin]
    assert "now disabled" in _sh(adb_server, serial, "ime", "disable", latin)
    assert _sh(adb_server, serial, "ime", "list", "-s").strip() == ""
    assert "now enabled" in _sh(adb_server, serial, "ime", "enable", latin)
    assert "selected" in _sh(adb_server, serial, "ime", "set", latin)
    assert _sh(adb_server, serial, "settings", "get", "secure", "default_input_method") == (
        latin + "\n"
    )
    assert "Unknown input method" in _sh(adb_server, serial, "ime", "set", "no.such/.Ime")
    # cmd reaches the same services as pm and am
    assert _sh(adb_server, serial, "cmd", "package", "path", "com.android.settings").startswith(
        "package:"
    )
    _sh(adb_server, serial, "cmd", "activity", "start", "-n", "com.android.settings/.MainActivity")
    top = _sh(adb_server, serial, "dumpsys", "activity", "top")
    pid = _sh(adb_server, serial, "pidof", "com.android.settings").strip()
    assert "ACTIVITY com.android.settings/.MainActivity" in top and f"pid={pid}" in top
    acts = _sh(adb_server, serial, "dumpsys", "activity", "activities")
    assert re.search(r"ResumedActivity: ActivityRecord\{\w+ u0 com.android.settings/", acts)
    assert "Can't find service: nosuch" in _sh(adb_server, serial, "cmd", "nosuch")


def test_screenrecord_bit_rate_is_respected(adb_server, start_twin, tmp_path):
    """The Timecode app changes every frame; the file's bit rate follows --bit-rate."""
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    _sh(adb_server, serial, "am", "start", "-n", "com.mayday.hil.timecode/.MainActivity")
    rates = {}
    for kbps in (100, 2000):
        remote = f"/sdcard/rate{kbps}.mp4"
        cmd = f"screenrecord --time-limit 2 --size 640x400 --bit-rate {kbps * 1000} {remote}"
        assert adb_server.adb("-s", serial, "shell", cmd, timeout_s=60.0).returncode == 0
        dst = tmp_path / f"rate{kbps}.mp4"
        assert adb_server.adb("-s", serial, "pull", remote, str(dst)).returncode == 0
        with av.open(str(dst)) as f:
            v = f.streams.video[0]
            seconds = float(v.duration * v.time_base)
            payload = sum(p.size for p in f.demux(v) if p.size)
        rates[kbps] = payload * 8 / seconds / 1000
    assert rates[100] < 100 * 2.5, rates  # rate control keeps near the target
    assert rates[2000] > rates[100] * 3, rates


def test_screenrecord_interrupted_still_leaves_a_playable_mp4(adb_server, start_twin, tmp_path):
    """Closing the shell stream is SIGHUP for screenrecord, which (like SIGINT, the way adbutils
    stops it) finishes the MP4 with what it recorded so far."""
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    d = adb_server.client().device(serial)
    conn = d.shell("screenrecord --size 320x200 /sdcard/cut.mp4", stream=True)
    time.sleep(1.5)
    conn.close()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not d.sync.exists("/sdcard/cut.mp4"):
        time.sleep(0.1)
    dst = tmp_path / "cut.mp4"
    d.sync.pull("/sdcard/cut.mp4", dst)
    with av.open(str(dst)) as f:
        v = f.streams.video[0]
        seconds = float(v.duration * v.time_base)
    assert 0.8 <= seconds <= 3.0, seconds
