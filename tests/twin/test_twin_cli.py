"""`hil twin up` / `hil twin backend` refuse bad options in one line (exit 2), before anything
listens; the backend's agent token file is private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from harness.farm.process import Child

PROFILE = "android-emulator-api34"
CLI_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--count", "-1"], "argument --count: must be 1..64, got -1"),
        (["--count", "0"], "argument --count: must be 1..64, got 0"),
        (["--count", "500"], "argument --count: must be 1..64, got 500"),
        (["--port", "70000"], "argument --port: must be 2..65533, got 70000"),
        (["--port", "http"], "argument --port: a whole number, got 'http'"),
        (["--backend", "nohost"], "argument --backend: expected HOST:PORT"),
        (["--backend", "10.1.2.3:5000"], "argument --backend: the twin world is loopback only"),
        (["--region", "XX"], "argument --region: unknown region 'XX'; known: US, UK, DE"),
        (["--timezone", "Mars/Base"], "argument --timezone: not an IANA time zone: 'Mars/Base'"),
        (["--answer-s", "nan"], "argument --answer-s: must be a finite number >= 0, got nan"),
        (["--boot-s", "-1"], "argument --boot-s: must be a finite number >= 0, got -1"),
        (["--port", "65533", "--count", "3"], "the last twin would need port 65537"),
        (["--profile", "nope"], "unknown profile 'nope'"),
    ],
)
def test_twin_up_refuses_bad_options_in_one_line(args, message):
    if "--profile" not in args:
        args = ["--profile", PROFILE, *args]
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "twin", "up", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_twin_backend_writes_its_agent_token_0600(tmp_path):
    token_file = tmp_path / "agent-token"
    backend = Child(
        "twin backend",
        [sys.executable, "-m", "harness.cli", "twin", "backend", "--token-file", str(token_file)],
        stdout=subprocess.PIPE,
    ).spawn()
    try:
        line = json.loads(backend.read_line(CLI_TIMEOUT_S) or "{}")
        assert line.get("ready") and line["agent_token_file"] == str(token_file)
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert len(token_file.read_text()) >= 32
    finally:
        backend.stop()
        backend.close_pipes()


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
def test_twin_up_removes_its_own_state_dir_at_a_clean_exit(keep):
    """Without --state-dir, `twin up` makes a temp dir (its truth, keys, control socket, named
    by the ready line) and removes it when stopped (SIGTERM, exit 0), unless --keep-state."""
    import shutil
    import signal
    from pathlib import Path

    from harness.farm.adbserver import free_port

    cmd = [sys.executable, "-m", "harness.cli", "twin", "up", "--profile", PROFILE]
    cmd += ["--port", str(free_port(pair=True)), "--adb-port", str(free_port())]
    twin = Child("twin up", [*cmd, *(["--keep-state"] if keep else [])], stdout=subprocess.PIPE)
    state = None
    try:
        twin.spawn()
        line = json.loads(twin.read_line(CLI_TIMEOUT_S) or "{}")
        assert line.get("ready"), line
        state = Path(line["truth"]).parent.parent  # <state>/twin-<port>/truth.jsonl
        assert state.name.startswith("hil-twin-") and state.is_dir(), line
        assert twin.stop(signal.SIGTERM, STOP_GRACE_S) == 0
        assert state.is_dir() is keep, f"{state}: keep={keep}"
    finally:
        twin.stop()
        twin.close_pipes()
        if state is not None and keep:
            shutil.rmtree(state, ignore_errors=True)


def test_twin_backend_removes_its_own_token_dir_at_exit():
    """Without --token-file the backend writes its token in a private temp dir of its own (named
    by the ready line) and removes the dir when stopped (SIGTERM, exit 0)."""
    import signal
    from pathlib import Path

    backend = Child(
        "twin backend",
        [sys.executable, "-m", "harness.cli", "twin", "backend"],
        stdout=subprocess.PIPE,
    ).spawn()
    try:
        line = json.loads(backend.read_line(CLI_TIMEOUT_S) or "{}")
        token_file = Path(line["agent_token_file"])
        assert token_file.parent.name.startswith("hil-backend-"), line
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert backend.stop(signal.SIGTERM, STOP_GRACE_S) == 0
        assert not token_file.parent.exists(), token_file.parent
    finally:
        backend.stop()
        backend.close_pipes()
