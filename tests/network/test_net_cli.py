"""`hil net`: list, show, apply --dry-run, and the foreground relay printing its counters."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

from harness.cli import build_parser
from harness.farm.process import Child

CLI = [sys.executable, "-m", "harness.cli", "net"]
RELAY_STOP_S = 10.0
GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "network" / "netem"


def _run(*args, timeout=30):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_net_is_registered_with_hil():
    args = build_parser().parse_args(
        [
            "net",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--profile",
            "lossy-5",
            "--seed",
            "3",
            "--tcp",
        ]
    )
    assert (args.protocol, args.seed, args.profile) == ("tcp", 3, "lossy-5")
    assert (
        build_parser()
        .parse_args(["net", "relay", "--listen", "a:1", "--to", "b:2", "--profile", "x"])
        .protocol
        == "udp"
    )


def test_list_and_show():
    cp = _run("list")
    assert cp.returncode == 0
    for name in ("good-wifi", "very-bad-network", "flapping", "offline"):
        assert name in cp.stdout
    assert "Network Link Conditioner" in cp.stdout and "Augmented Traffic Control" in cp.stdout
    cp = _run("show", "lossy-5")
    assert cp.returncode == 0
    table = {line.split()[0]: line.split()[1:] for line in cp.stdout.splitlines()[-3:]}
    assert table["loss"] == [
        "NO",
        "yes",
        "NO",
        "yes",
        "NO",
    ]  # console netem wifi relay-udp relay-tcp


def test_apply_dry_run_prints_the_golden_commands():
    cp = _run("apply", "poor-wifi", "--via", "netem", "--dev", "eth1", "--dry-run")
    assert cp.returncode == 0
    assert cp.stdout == (GOLDEN / "poor-wifi.txt").read_text()
    cp = _run("apply", "3g", "--via", "console", "--serial", "emulator-5554", "--dry-run")
    assert cp.returncode == 0 and cp.stdout.splitlines() == [
        "network speed 330:780",
        "network delay 100:100",
    ]


def _udp_sink():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s


def test_relay_runs_in_the_foreground_and_prints_counters_when_stopped(child_line):
    sink = _udp_sink()
    relay = Child(
        "hil net relay",
        [
            *CLI,
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--to",
            f"127.0.0.1:{sink.getsockname()[1]}",
            "--profile",
            "lossy-5",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ).spawn()
    proc = relay.proc
    try:
        line = child_line(proc, "relay udp", 20)
        port = int(line.split()[2].rsplit(":", 1)[1])
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(200):
            tx.sendto(b"%d" % i, ("127.0.0.1", port))
        tx.close()
        got = 0
        try:
            while got < 200:
                sink.recv(100)
                got += 1
        except TimeoutError:
            pass
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        relay.stop(signal.SIGKILL, RELAY_STOP_S)  # a no-op once it ended by itself
        relay.close_pipes()
        sink.close()
    assert proc.returncode == 0, err
    assert "relay udp profile lossy-5 seed 1" in out
    assert "forward: received 200" in out and f"forwarded {got}" in out
    assert 0 < 200 - got < 40  # 5% loss


def test_relay_json_and_duration():
    sink = _udp_sink()
    cp = _run(
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--to",
        f"127.0.0.1:{sink.getsockname()[1]}",
        "--profile",
        "good-wifi",
        "--tcp",
        "--duration",
        "0.5",
        "--json",
    )
    sink.close()
    assert cp.returncode == 0, cp.stderr
    first, last = (json.loads(x) for x in cp.stdout.splitlines())
    assert first["event"] == "listening" and first["protocol"] == "tcp"
    assert last["event"] == "stopped" and last["counters"]["profile"] == "good-wifi"
