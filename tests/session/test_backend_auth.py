"""No one joins uninvited: the backend's agent API wants the run's token; a rogue gets 401."""

from __future__ import annotations

import json
import os
import socket
import stat
import time

import pytest

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.errors import SessionError
from harness.session import SessionDriver
from harness.session.agent import AiortcAgentBot
from harness.twin.backend import AGENT_TOKEN_FILE
from harness.twin.truth import read_truth

ROGUE = "rogue"


def _raw(addr, data: bytes, timeout_s: float = 5.0) -> tuple[int, dict, bytes]:
    with socket.create_connection(addr, timeout=timeout_s) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _rogue_http(addr, method: str, path: str, body: dict | None, auth: str | None):
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    if auth is not None:
        head += f"Authorization: {auth}\r\n"
    status, headers, payload = _raw(addr, (head + "\r\n").encode() + data)
    return status, headers, json.loads(payload) if payload else None


def test_a_rogue_on_the_host_never_gets_the_customer(adb_server, start_twin):
    """The scenario of issue 14: an unknown client joins the agent pool of a running twin world
    first; the customer presses Mayday. It gets 401s, no session, no frames, no audio, and
    nothing it sends is drawn; the customer sees only the run's own agent."""
    tp = start_twin("android-emulator-api34")
    info = tp.control("backend", answer_s=0.3)
    token_file = tp.state_dir / AGENT_TOKEN_FILE
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert token_file.read_text() == info["token"] and len(info["token"]) >= 32
    http_addr = tuple(info["http"])
    # the rogue, first in the queue if it could join
    status, _, _ = _rogue_http(http_addr, "POST", "/agents", {"name": ROGUE}, None)
    assert status == 401
    rogue = AiortcAgentBot(tuple(info["address"]), name=ROGUE, http=http_addr, token="guess")
    with pytest.raises(SessionError, match="HTTP 401"):
        rogue.start()
    rogue.stop()
    lines_rogue = AiortcAgentBot(tuple(info["address"]), name=ROGUE + "-lines")
    with pytest.raises(SessionError, match="unauthorized"):
        lines_rogue.start()
    lines_rogue.stop()
    # the run's agent
    bot = AiortcAgentBot(
        tuple(info["address"]), device=tp.twins[0].serial, http=http_addr, token=info["token"]
    )
    bot.start()
    try:
        dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
        drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
        drv.connect(timeout_s=20)
        bot.wait_connected(15)
        time.sleep(1.0)
        # the rogue keeps trying during the session: polls, signals, hang-ups, strokes
        for method, path, body in [
            ("GET", "/agents/a1-rogue/events?wait=0", None),
            ("POST", "/agents/a1-rogue/signal", {"rid": 1, "data": {"type": "answer"}}),
            ("POST", "/agents/a1-rogue/end", {"rid": 1}),
        ]:
            assert _rogue_http(http_addr, method, path, body, "Bearer guess")[0] == 401
        assert bot.session.share_count > 0 and not bot.session.ended  # the session is intact
        after = tp.control("backend")
        assert after["bots"] == [bot.name]
        assert after["unauthorized"] == 6  # 1 + the rogue bot + the lines rogue + 3
    finally:
        bot.stop()
    backend_truth = read_truth(tp.twins[0].backend_truth)
    joined = [e["agent"] for e in backend_truth if e["event"] == "agent_joined"]
    assigned = [e["agent"] for e in backend_truth if e["event"] == "session_assigned"]
    assert joined == [bot.name] and assigned == [bot.name]
    assert len([e for e in backend_truth if e["event"] == "agent_unauthorized"]) == 6
    assert not [e for e in read_truth(tp.twins[0].truth) if e["event"] == "stroke_drawn"]
