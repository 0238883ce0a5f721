"""The web agent console served by the support backend (GET /console), and the page-object that
describes it: static files without credentials, the agent API still behind the token, and in
Chromium a console that joins with the token (never left in its URL) and is refused without it."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pytest

from harness.errors import ProfileError, SessionError
from harness.session.agents.browser import PAGE_OBJECT, BrowserAgent, PageObject, find_browser
from harness.twin.backend import CONSOLE_FILES, BackendConfig, SupportBackend
from harness.twin.truth import GroundTruth, read_truth

TOKEN = "console-test-token"

NEEDS_BROWSER = pytest.mark.skipif(
    find_browser() is None, reason="install the OS packages chromium chromium-driver"
)


class Backend:
    """A SupportBackend on its own event loop in a thread."""

    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.truth_path = tmp_path / "backend.jsonl"
        self.be = SupportBackend(
            BackendConfig(), GroundTruth(self.truth_path, "backend"), token=TOKEN
        )
        asyncio.run_coroutine_threadsafe(self.be.start(), self.loop).result(5.0)
        self.http = ("127.0.0.1", self.be.http_port)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.be.stop(), self.loop).result(5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)


@pytest.fixture
def backend(tmp_path):
    be = Backend(tmp_path)
    yield be
    be.close()


def _get(http, method: str, path: str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(http, timeout=5.0) as s:
        s.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(
        (k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:])
    )
    return int(lines[0].split()[1]), fields, body


def test_console_files_are_served_without_a_token_and_the_api_still_needs_one(backend):
    status, headers, body = _get(backend.http, "GET", "/console")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/console/console.js"' in body and int(headers["content-length"]) == len(body)
    assert "default-src 'self'" in headers["content-security-policy"]
    for path in CONSOLE_FILES:
        assert _get(backend.http, "GET", path)[0] == 200, path
    assert _get(backend.http, "HEAD", "/console")[2] == b""
    assert _get(backend.http, "POST", "/console")[0] == 405
    # nothing else of the directory, and no path tricks: the agent API answers (401 without token)
    for path in ("/console/../backend.py", "/console/index.html", "/agents"):
        assert _get(backend.http, "GET", path)[0] == 401, path
    assert _get(backend.http, "GET", "/nope", f"Authorization: Bearer {TOKEN}\r\n")[0] == 404
    assert backend.be.unauthorized == 3  # the console's files are not counted as refusals


def test_the_console_speaks_the_bots_messages():
    js = (PAGE_OBJECT.parent.parent.parent / "twin" / "agent_console" / "console.js").read_text()
    for kind in ("stroke", "clear_strokes", "tap", "request_control", "request_access"):
        assert f'type: "{kind}"' in js, kind
    assert "Authorization: `Bearer ${token}`" in js


def test_a_page_object_with_a_missing_selector_is_one_error_naming_it(tmp_path):
    text = PAGE_OBJECT.read_text().replace('  share_video: "#share"', "  share_video: ''")
    bad = tmp_path / "console.yaml"
    bad.write_text(text)
    with pytest.raises(ProfileError, match=r"console.yaml: selectors.share_video: a non-empty"):
        PageObject.load(bad)
    assert PageObject.load().selectors["share_video"] == "#share"


@NEEDS_BROWSER
def test_the_console_joins_with_the_token_which_leaves_its_url(backend):
    agent = BrowserAgent(backend.http, TOKEN, "emulator-5554", name="console-test")
    try:
        agent.start()
        assert "console-test" in backend.be.bots  # joined the pool as an HTTP agent
        href = agent.driver.execute_script("return location.href")
        assert TOKEN not in href and href.endswith("/console"), href
        assert agent.session.clock.error_s < 0.05  # the ping exchange worked (loopback)
        pid = agent.chromium_pid
        assert pid is not None
        # chromedriver's group, Chromium and the profile are in the run's reaper ledger
        from harness.farm.process import run_ledger

        ledger = run_ledger()
        if ledger is not None:
            text = ledger.read_text()
            assert f"{agent.chromedriver.pid} " in text and f"{pid} " in text
            assert f"dir {agent.profile}" in text
    finally:
        agent.stop()
    # left the pool, the browser is gone, the profile removed
    assert "console-test" not in backend.be.bots
    assert agent.profile is None
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
    events = [e["event"] for e in read_truth(backend.truth_path)]
    assert "agent_joined" in events and "agent_left" in events


@NEEDS_BROWSER
def test_a_wrong_token_is_one_error_naming_the_step(backend):
    agent = BrowserAgent(backend.http, "not-the-token", None, name="intruder")
    try:
        with pytest.raises(
            SessionError, match=r"joining the backend: the console says: .*HTTP 401"
        ):
            agent.start()
    finally:
        agent.stop()
    assert "intruder" not in backend.be.bots and backend.be.unauthorized >= 1


@NEEDS_BROWSER
def test_a_crashed_browser_is_one_error_naming_the_step(backend):
    import signal

    agent = BrowserAgent(backend.http, TOKEN, None, name="crash-test")
    try:
        agent.start()
        os.kill(agent.chromium_pid, signal.SIGKILL)
        with pytest.raises(SessionError, match=r"browser agent crash-test: request control: ") as e:
            agent.request_control()
        assert "\n" not in str(e.value)
    finally:
        agent.stop()  # never raises, even with the browser gone
    assert agent.profile is None and agent.chromedriver is None


@NEEDS_BROWSER
def test_a_hung_browser_is_one_error_naming_the_step_within_the_command_timeout(
    backend, monkeypatch
):
    import signal
    import time

    from harness.session.agents import browser

    monkeypatch.setattr(browser, "COMMAND_TIMEOUT_S", 3.0)
    agent = BrowserAgent(backend.http, TOKEN, None, name="hang-test")
    try:
        agent.start()
        os.kill(agent.chromium_pid, signal.SIGSTOP)  # alive, answers nothing
        t0 = time.monotonic()
        with pytest.raises(SessionError, match=r"browser agent hang-test: request control: "):
            agent.request_control()
        assert time.monotonic() - t0 < 3.0 * 3
    finally:
        t1 = time.monotonic()
        agent.stop()  # kills the group (SIGKILL reaches a stopped process); does not wait on it
        assert time.monotonic() - t1 < 10.0
    assert agent.profile is None


# a stand-in for a console whose policy refuses blob: workers: the worker fails to start
# (asynchronously, as Chromium reports a CSP refusal), and the page shows a canvas's stream
_REFUSE_WORKERS_AND_SHOW_A_STREAM = """
window.Worker = function () {
  const w = { postMessage() {}, onmessage: null, onerror: null };
  setTimeout(() => w.onerror && w.onerror(new Event("error")), 10);
  return w;
};
delete window.__hilProbe;
const c = document.createElement("canvas");
c.width = 320;
c.height = 200;
const g = c.getContext("2d");
let k = 0;
setInterval(() => { g.fillStyle = `rgb(${(k += 10) % 255}, 80, 160)`; g.fillRect(0, 0, 320, 200); }, 50);
document.querySelector(arguments[0]).srcObject = c.captureStream(20);
"""


@NEEDS_BROWSER
def test_the_share_reader_falls_back_to_presented_frames_without_workers(backend):
    """A console refusing blob: workers still has its share read: presented frames."""
    import time

    agent = BrowserAgent(backend.http, TOKEN, None, name="no-workers")
    try:
        agent.start()
        agent.driver.execute_script(
            _REFUSE_WORKERS_AND_SHOW_A_STREAM, agent.page.selectors["share_video"]
        )
        agent._install_probe()  # a fresh probe, under the refusing policy
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and agent.session.share_count < 5:
            time.sleep(0.1)
        state = agent.probe_state()
        assert state["shareReader"] == "presented", state
        assert "did not start" in state["last"], state
        assert agent.session.share_count >= 5, (agent.session.share_count, state)
        frame = agent.session.share[-1]
        assert frame.image.shape == (200, 320, 3)
    finally:
        agent.stop()
