"""The support backend's HTTP agent API: a real backend on loopback, spoken to over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time

import pytest

from harness.twin.backend import BackendConfig, SupportBackend
from harness.twin.truth import GroundTruth, read_truth

ROGUE = "rogue"

TOKEN = "test-agent-token"  # the agents' credential of the test backend


class Backend:
    """A SupportBackend on its own event loop in a thread."""

    def __init__(self, tmp_path, **config):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.truth_path = tmp_path / "backend.jsonl"
        self.be = SupportBackend(
            BackendConfig(**config), GroundTruth(self.truth_path, "backend"), token=TOKEN
        )
        self.port = self.call(self.be.start())
        self.http = ("127.0.0.1", self.be.http_port)
        self.address = ("127.0.0.1", self.port)

    def call(self, coro, timeout_s: float = 5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.be.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)
        with contextlib.suppress(Exception):
            self.be.truth.close()


@pytest.fixture
def backend(tmp_path):
    b = Backend(tmp_path, agents=0, answer_s=0.1)
    yield b
    b.close()


def raw(addr, data: bytes, timeout_s: float = 5.0) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the whole response (the server closes): (status, headers, body)."""
    with socket.create_connection(addr, timeout=timeout_s) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return int(lines[0].split()[1]), headers, body


def http(addr, method: str, path: str, body=None, timeout_s: float = 5.0, token=TOKEN):
    """(status, JSON reply or None); with `Authorization: Bearer token` unless token is None."""
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n".encode()
        + (f"Authorization: Bearer {token}\r\n" if token is not None else "").encode()
        + b"\r\n"
        + data
    )
    status, _, payload = raw(addr, req, timeout_s)
    return status, json.loads(payload) if payload else None


class DeviceLine:
    """A device of the twin world, speaking JSON lines to the backend."""

    def __init__(self, addr, serial: str):
        self.sock = socket.create_connection(addr, timeout=5.0)
        self.file = self.sock.makefile("rwb")
        self.send({"op": "request", "device": serial, "region": "US", "registered": True})

    def send(self, msg: dict) -> None:
        self.file.write((json.dumps(msg) + "\n").encode())
        self.file.flush()

    def until(self, state: str) -> dict:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            line = self.file.readline()
            if not line:
                break
            msg = json.loads(line)
            if msg.get("state") == state:
                return msg
        raise AssertionError(f"no {state!r} from the backend")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


def poll_until(
    addr, aid: str, event: str, wait: int = 2, tries: int = 5, token: str = TOKEN
) -> dict:
    for _ in range(tries):
        status, events = http(
            addr, "GET", f"/agents/{aid}/events?wait={wait}", timeout_s=wait + 5, token=token
        )
        assert status == 200
        for ev in events:
            if ev.get("event") == event:
                return ev
    raise AssertionError(f"no {event!r} event")


def test_join_and_a_long_poll_with_nothing_queued_returns_an_empty_list(backend):
    status, reply = http(backend.http, "POST", "/agents", {"name": "bot-h", "device": None})
    assert status == 200 and reply["agent"]
    aid = reply["agent"]
    t0 = time.monotonic()
    status, events = http(backend.http, "GET", f"/agents/{aid}/events?wait=1")
    assert status == 200 and events == []
    assert time.monotonic() - t0 < 5
    assert "bot-h" in backend.be.bots and "bot-h" in backend.be.free_agents
    assert http(backend.http, "POST", "/agents", {"name": "bot-h"})[0] == 409  # the name is taken
    assert http(backend.http, "DELETE", f"/agents/{aid}") == (204, None)
    assert "bot-h" not in backend.be.bots and "bot-h" not in backend.be.free_agents
    assert http(backend.http, "GET", f"/agents/{aid}/events?wait=0")[0] == 404
    events = [e["event"] for e in read_truth(backend.truth_path)]
    assert "agent_joined" in events and "agent_left" in events


def test_malformed_requests_are_400_with_a_json_error(backend):
    status, reply = http(backend.http, "POST", "/agents", b"{not json")
    assert status == 400 and "bad JSON" in reply["error"]
    assert http(backend.http, "POST", "/agents", [1, 2])[0] == 400
    assert http(backend.http, "POST", "/agents", {"name": 3})[0] == 400
    status, _, body = raw(backend.http, b"garbage\r\n\r\n")
    assert status == 400 and "error" in json.loads(body)
    status, _, body = raw(backend.http, b"POST /agents HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    assert status == 400 and "Content-Length" in json.loads(body)["error"]
    aid = http(backend.http, "POST", "/agents", {"name": "bot-m"})[1]["agent"]
    assert http(backend.http, "GET", f"/agents/{aid}/events?wait=31")[0] == 400
    assert http(backend.http, "GET", f"/agents/{aid}/events?wait=soon")[0] == 400
    assert http(backend.http, "POST", f"/agents/{aid}/signal", {"rid": "one", "data": {}})[0] == 400
    assert http(backend.http, "POST", f"/agents/{aid}/end", {})[0] == 400


def test_a_request_that_never_completes_is_answered_within_the_bound(backend, monkeypatch):
    import harness.twin.backend as mod

    monkeypatch.setattr(mod, "HTTP_HEAD_TIMEOUT_S", 0.5)
    with socket.create_connection(backend.http, timeout=5.0) as s:
        s.sendall(b"POST /agents HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")


def test_unknown_agent_and_path_are_404_wrong_method_405(backend):
    status, reply = http(backend.http, "GET", "/agents/nobody/events?wait=0")
    assert status == 404 and "nobody" in reply["error"]
    assert http(backend.http, "POST", "/agents/nobody/signal", {"rid": 1, "data": {}})[0] == 404
    assert http(backend.http, "DELETE", "/agents/nobody")[0] == 404
    assert http(backend.http, "GET", "/nowhere")[0] == 404
    assert http(backend.http, "GET", "/agents/x/elsewhere")[0] == 404
    status, headers, body = raw(
        backend.http, f"GET /agents HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    assert status == 405 and headers.get("allow") == "POST" and "error" in json.loads(body)
    assert http(backend.http, "POST", "/agents/x/events")[0] == 405
    assert http(backend.http, "GET", "/agents/x/signal")[0] == 405
    assert http(backend.http, "PUT", "/agents/x")[0] == 405


def test_a_body_over_one_mib_is_413(backend):
    head = f"POST /agents HTTP/1.1\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n".encode()
    status, _, body = raw(backend.http, head)  # refused from the header: the body is never read
    assert status == 413 and "error" in json.loads(body)


def test_a_full_session_with_an_http_agent(backend):
    aid = http(backend.http, "POST", "/agents", {"name": "bot-s", "device": "dev-1"})[1]["agent"]
    dev = DeviceLine(backend.address, "dev-1")
    try:
        assert dev.until("assigned")["agent"] == "bot-s"
        session = poll_until(backend.http, aid, "session")
        assert session["device"] == "dev-1"
        rid = session["rid"]
        assert dev.until("answered")["media"] is True
        dev.send({"op": "signal", "data": {"type": "offer", "sdp": "v=0"}})
        assert poll_until(backend.http, aid, "signal")["data"] == {"type": "offer", "sdp": "v=0"}
        assert http(
            backend.http,
            "POST",
            f"/agents/{aid}/signal",
            {"rid": rid, "data": {"type": "answer", "sdp": "v=0"}},
        ) == (204, None)
        assert dev.until("signal")["data"] == {"type": "answer", "sdp": "v=0"}
        assert http(backend.http, "POST", f"/agents/{aid}/end", {"rid": rid}) == (204, None)
        assert dev.until("ended")["by"] == "agent"
        assert poll_until(backend.http, aid, "ended")["rid"] == rid
    finally:
        dev.close()
    assert http(backend.http, "DELETE", f"/agents/{aid}") == (204, None)
    truth = [e["event"] for e in read_truth(backend.truth_path)]
    for ev in (
        "session_requested",
        "session_assigned",
        "session_answered",
        "session_ended",
        "agent_left",
    ):
        assert ev in truth


def test_an_http_agent_leaving_ends_its_session(backend):
    aid = http(backend.http, "POST", "/agents", {"name": "bot-g", "device": "dev-2"})[1]["agent"]
    dev = DeviceLine(backend.address, "dev-2")
    try:
        dev.until("assigned")
        assert http(backend.http, "DELETE", f"/agents/{aid}") == (204, None)
        assert dev.until("ended")["by"] == "agent gone"
    finally:
        dev.close()


def test_an_agent_that_stops_polling_is_dropped(backend, monkeypatch):
    import harness.twin.backend as mod

    monkeypatch.setattr(mod, "AGENT_IDLE_S", 0.4)
    backend.call(_restart_reaper(backend.be))
    aid = http(backend.http, "POST", "/agents", {"name": "bot-idle"})[1]["agent"]
    deadline = time.monotonic() + 10
    while "bot-idle" in backend.be.bots and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "bot-idle" not in backend.be.bots
    assert http(backend.http, "GET", f"/agents/{aid}/events?wait=0")[0] == 404


async def _restart_reaper(be: SupportBackend) -> None:
    be._spawn(be._reap_idle())  # picks up the patched idle time at its next round


def test_json_lines_agents_still_join_the_same_pool(backend):
    with socket.create_connection(backend.address, timeout=5.0) as s:
        f = s.makefile("rwb")
        f.write(
            b'{"op": "agent", "name": "bot-l", "device": "dev-3", "token": "%s"}\n' % TOKEN.encode()
        )
        f.flush()
        assert json.loads(f.readline()) == {"event": "joined"}
        assert (
            http(backend.http, "POST", "/agents", {"name": "bot-l"})[0] == 409
        )  # one pool, one name
        dev = DeviceLine(backend.address, "dev-3")
        try:
            assert dev.until("assigned")["agent"] == "bot-l"
            ev = json.loads(f.readline())
            assert ev["event"] == "session" and ev["device"] == "dev-3"
            f.write((json.dumps({"op": "end", "rid": ev["rid"]}) + "\n").encode())
            f.flush()
            assert dev.until("ended")["by"] == "agent"
            assert json.loads(f.readline()) == {"event": "ended", "rid": ev["rid"]}
        finally:
            dev.close()


def test_a_twin_reports_its_backend_http_address(start_twin):
    tp = start_twin("android-emulator-api34")
    info = tp.client().backend(answer_s=0.2)
    host, port = info.http
    assert host == "127.0.0.1" and port != info.address[1]
    serial = tp.twins[0].serial
    token = info.token
    aid = http((host, port), "POST", "/agents", {"name": "bot-t", "device": serial}, token=token)[
        1
    ]["agent"]
    try:
        assert "bot-t" in tp.client().backend().bots
        dev = DeviceLine(info.address, serial)
        try:
            dev.until("assigned")
            assert poll_until((host, port), aid, "session", token=token)["device"] == serial
        finally:
            dev.close()
    finally:
        http((host, port), "DELETE", f"/agents/{aid}", token=token)


@pytest.mark.parametrize(
    "auth", [None, "Bearer not-the-token", "Basic cm9ndWU6cm9ndWU=", "Bearer ", TOKEN + "x"]
)
def test_the_http_agent_api_refuses_a_missing_or_wrong_token_with_401(backend, auth):
    for method, path, body in [
        ("POST", "/agents", {"name": ROGUE}),
        ("GET", "/agents/a1-x/events?wait=0", None),
        ("POST", "/agents/a1-x/signal", {"rid": 1, "data": {}}),
        ("POST", "/agents/a1-x/end", {"rid": 1}),
        ("DELETE", "/agents/a1-x", None),
    ]:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
        if auth is not None:
            head += f"Authorization: {auth}\r\n"
        status, headers, payload = raw(backend.http, (head + "\r\n").encode() + data)
        reply = json.loads(payload)
        assert status == 401, (method, path, status, reply)
        assert "token" in reply["error"] and headers["www-authenticate"].startswith("Bearer")
    assert ROGUE not in backend.be.bots and backend.be.unauthorized == 5
    refused = [e for e in read_truth(backend.truth_path) if e["event"] == "agent_unauthorized"]
    assert len(refused) == 5 and {e["how"] for e in refused} == {"http"}
    assert http(backend.http, "POST", "/agents", {"name": "bot-ok"})[0] == 200  # the right one


def test_a_json_lines_agent_without_the_token_is_refused(backend):
    for line in [
        {"op": "agent", "name": ROGUE},
        {"op": "agent", "name": ROGUE, "token": "guess"},
        {"op": "agent", "name": ROGUE, "token": 12345},
    ]:
        with socket.create_connection(backend.address, timeout=5.0) as s:
            f = s.makefile("rwb")
            f.write((json.dumps(line) + "\n").encode())
            f.flush()
            assert json.loads(f.readline()) == {"event": "refused", "reason": "unauthorized"}
            assert f.readline() == b""  # and the connection is closed
    assert ROGUE not in backend.be.bots and backend.be.unauthorized == 3
    dev = DeviceLine(backend.address, "dev-r")  # a customer now waits: nobody takes it
    try:
        assert dev.until("queued")["position"] == 1
    finally:
        dev.close()


@pytest.mark.parametrize(
    "region,tz,reason",
    [
        ("XX", None, "unknown region"),
        ("DE", "Mars/Olympus", "bad time zone"),
        ("US", 42, "bad time zone"),
    ],
)
def test_an_unknown_region_or_time_zone_is_refused_not_open_around_the_clock(
    backend, region, tz, reason
):
    with socket.create_connection(backend.address, timeout=5.0) as s:
        f = s.makefile("rwb")
        req = {"op": "request", "device": "dev-z", "region": region, "registered": True, "tz": tz}
        f.write((json.dumps(req) + "\n").encode())
        f.flush()
        assert json.loads(f.readline()) == {"state": "refused", "reason": reason}
    refused = [e for e in read_truth(backend.truth_path) if e["event"] == "session_refused"]
    assert refused[-1]["reason"] == reason
    dev = DeviceLine(backend.address, "dev-ok")  # the backend still serves
    try:
        assert dev.until("queued")["position"] == 1
    finally:
        dev.close()


@pytest.mark.parametrize("ended", [True, False], ids=["after-its-session", "mid-session"])
def test_an_agent_bot_dropped_after_its_session_ends_quietly(backend, caplog, ended):
    """The backend drops an agent whose poll is in flight (here: DELETE by another client, as its
    idle reaper does). After the bot's session ended that 404 is the end, quietly (logged at INFO,
    no error kept); mid-session it is an error the caller sees."""
    import logging

    from harness.session.agent import AiortcAgentBot

    bot = AiortcAgentBot(
        backend.address, name="bot-404", device="dev-4", http=backend.http, token=TOKEN
    )
    dev = DeviceLine(backend.address, "dev-4")
    caplog.set_level(logging.INFO, logger="harness.session.agent")
    try:
        bot.start()
        dev.until("assigned")
        session = bot.wait_for_session(5.0)
        if ended:
            dev.send({"op": "end"})
            deadline = time.monotonic() + 5.0
            while not session.ended and time.monotonic() < deadline:
                time.sleep(0.05)
            assert session.ended
        assert http(backend.http, "DELETE", f"/agents/{bot.agent_id}") == (204, None)
        deadline = time.monotonic() + 10.0
        while not bot._poll_task.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bot._poll_task.done()  # the poll loop ended on the 404, did not spin
        warned = [
            r for r in caplog.records if r.levelno >= logging.WARNING and "404" in r.getMessage()
        ]
        if ended:
            assert bot.error is None and not warned, (bot.error, warned)
            assert any("after the session's end" in r.getMessage() for r in caplog.records)
        else:
            assert "HTTP 404" in str(bot.error) and warned
    finally:
        bot.stop()
        dev.close()
