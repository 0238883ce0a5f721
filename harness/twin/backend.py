"""The support backend of the twin world: a queue, an agent pool, opening hours, registration.

Asyncio, loopback only. Devices send one JSON object per line; the backend answers with state
changes on the same connection:

    -> {"op": "request", "device": SERIAL, "region": "US", "registered": true, "tz": "Europe/Berlin"}
    <- {"state": "queued", "position": N}            (also when the position changes)
    <- {"state": "assigned", "agent": "agent-1"}      (an agent took the session)
    <- {"state": "answered", "agent": "agent-1"}      (the agent is on camera: video starts)
    <- {"state": "refused", "reason": "closed" | "unregistered"}
    -> {"op": "end"}                                  (customer ended; the agent wraps up)
    -> {"op": "signal", "data": {...}}                  (WebRTC offer/answer/candidates, relayed)

An agent program (the harness's AgentBot) joins the pool, either over the same port (JSON lines):

    -> {"op": "agent", "name": "bot-1", "device": SERIAL, "token": TOKEN}  (device: serve only that one)
    <- {"event": "joined"}  or  {"event": "refused", "reason": "unauthorized"}
    <- {"event": "session", "rid": N, "device": SERIAL}   (assigned to this agent)
    <- {"event": "signal", "rid": N, "data": {...}}        (from the device)
    -> {"op": "signal", "rid": N, "data": {...}}           (to the device)
    <- {"event": "ended", "rid": N}
    -> {"op": "end", "rid": N}                             (the agent hangs up)

or over loopback HTTP/1.1 on a second port (JSON bodies, one request per connection):

    POST   /agents                {"name": "bot-1", "device": SERIAL|null} -> 200 {"agent": ID}
    GET    /agents/ID/events?wait=S   long poll (S <= 30, default 10): 200 [event, ...], the
                                      events above queued since the last poll; [] at the timeout
    POST   /agents/ID/signal      {"rid": N, "data": {...}}  -> 204 (to the device)
    POST   /agents/ID/end         {"rid": N}                 -> 204 (the agent hangs up)
    DELETE /agents/ID                                        -> 204 (leaves the pool)

The same HTTP port serves the web agent console (GET /console: static HTML + JS from
harness/twin/agent_console, no credentials needed to load it): a person or the harness's
`--agent browser` opens it in a browser, gives it the token (a form field or the URL fragment,
never sent to the server in a URL) and it joins as an HTTP agent like any other.

Agents need credentials: the backend's token (issued per run by whoever starts the twin world,
AGENT_TOKEN_FILE in its state dir, mode 0600, and the control op "backend"), sent on every HTTP
request as `Authorization: Bearer TOKEN` (in the JSON-lines "agent" op as "token"). Missing or
wrong: 401 (refused on JSON lines), counted (`unauthorized`, truth event "agent_unauthorized");
such a client never joins the pool, so it gets no session, no media and draws nothing.

Errors are JSON ({"error": ...}): 400 malformed, 401 no or wrong token, 404 unknown path or
agent, 405 wrong method, 409 name taken, 413 body over 1 MiB. An HTTP agent that does not poll for 60 s is dropped as if
it left. Both kinds are one agent model (Agent: an outbox the JSON-lines writer drains or the
poll returns) in one pool; an agent leaving ends its sessions ("agent gone").

A session with an agent program is "answered" with "media": true: the device then opens a
WebRTC peer connection, signalled through the backend.

Queue waits come from the pool: `agents` agents, each session held for the customer's time
(or `handle_s` when the customer never ends it), then `wrap_s` of after-call work; `answer_s`
between assignment and the agent's video. Opening hours per region follow the device's time
zone (Germany 06:00-24:00 local time, US and UK around the clock). Every request's times go to
the ground truth: requested, assigned, answered, ended.

Size: one support backend (queue, staffing, signalling, agent APIs) sharing one state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from harness.profiles import REGIONS, valid_timezone
from harness.twin.truth import GroundTruth

log = logging.getLogger(__name__)

HOURS = {"US": None, "UK": None, "DE": (6, 24)}  # None = 24/7; (open, close) local hours
DEFAULT_TZ = {"US": "America/Los_Angeles", "UK": "Europe/London", "DE": "Europe/Berlin"}
_READ_TIMEOUT_S = 3600.0
HTTP_MAX_BODY = 1 << 20
HTTP_HEAD_TIMEOUT_S = 10.0  # request line, headers and body of one HTTP request
HTTP_MAX_HEADERS = 100
POLL_MAX_S = 30.0
POLL_DEFAULT_S = 10.0
AGENT_IDLE_S = 60.0  # an HTTP agent that does not poll for this long is dropped
AGENT_TOKEN_FILE = "agent_token"  # in the twin world's state dir, mode 0600
TOKEN_FILE_MODE = 0o600
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


@dataclass
class BackendConfig:
    agents: int = 2
    answer_s: float = 1.0
    handle_s: float = 600.0
    wrap_s: float = 0.0
    scripted_waits: list[float] = field(
        default_factory=list
    )  # if set: answer_s per request, in order
    clock_offset_s: float = (
        0.0  # shifts the wall clock used for opening hours (tests of closed hours)
    )


@dataclass
class Request:
    rid: int
    device: str
    writer: asyncio.StreamWriter
    t_request: float
    answer_s: float
    agent: str | None = None
    t_assigned: float | None = None
    t_answered: float | None = None
    ended: bool = False
    answer_task: asyncio.Task | None = None  # answers, then times the session out; ends with it


class Agent:
    """An agent program in the pool, whatever its transport: the events for it wait in `outbox`
    until the JSON-lines writer drains them or an HTTP poll takes them."""

    def __init__(self, name: str, device: str | None, http: bool = False):
        self.name = name
        self.device = device  # serve only this device's sessions (None: any)
        self.http = http
        self.outbox: deque[dict] = deque()
        self._wake = asyncio.Event()
        self.gone = False
        self.polls = 0  # HTTP polls in progress
        self.last_seen = time.monotonic()

    def push(self, msg: dict) -> None:
        if not self.gone:
            self.outbox.append(msg)
            self._wake.set()

    async def take(self, wait_s: float | None) -> list[dict]:
        """The queued events, waiting up to wait_s (None: for ever) for at least one."""
        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        while not self.outbox and not self.gone:
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                break
        out = list(self.outbox)
        self.outbox.clear()
        return out

    def close(self) -> None:
        self.gone = True
        self._wake.set()


class HttpError(Exception):
    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.headers = status, error, headers or {}


def new_agent_token() -> str:
    """A fresh agent credential (256 random bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def write_token_file(path: Path, token: str) -> Path:
    """Write `token` to `path`, readable by its owner only (0600 from creation, also when the
    file already existed)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TOKEN_FILE_MODE)
    try:
        os.fchmod(fd, TOKEN_FILE_MODE)
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return path


class SupportBackend:
    def __init__(
        self,
        config: BackendConfig | None = None,
        truth: GroundTruth | None = None,
        token: str | None = None,
    ):
        self.config = config or BackendConfig()
        self.truth = truth or GroundTruth(None, twin="backend")
        self.token = token or new_agent_token()  # agents must present it
        self.unauthorized = 0  # agent requests refused for a missing or wrong token
        self.free_agents: deque[str] = deque(f"agent-{i + 1}" for i in range(self.config.agents))
        self.queue: deque[Request] = deque()
        self.sessions: dict[int, Request] = {}
        self._next = 1
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self.http_server: asyncio.base_events.Server | None = None
        self.http_port: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self.bots: dict[str, Agent] = {}  # agent programs in the pool, by name
        self.http_agents: dict[str, Agent] = {}  # by the ID given at POST /agents
        self._ids = itertools.count(1)

    def set_simulated_agents(self, count: int) -> None:
        """Replace the simulated agents in the pool (programs that joined stay)."""
        busy = {r.agent for r in self.sessions.values() if r.agent}
        self.free_agents = deque(a for a in self.free_agents if a in self.bots)
        self.free_agents.extend(
            f"agent-{i + 1}" for i in range(count) if f"agent-{i + 1}" not in busy
        )
        self.config.agents = count

    @property
    def bot_devices(self) -> dict[str, str | None]:
        """Agent program -> the device it serves (None: any)."""
        return {name: agent.device for name, agent in self.bots.items()}

    async def start(self, port: int = 0, http_port: int = 0) -> int:
        """Listen for devices and JSON-lines agents on `port`, for HTTP agents on `http_port`
        (both 0: any free port); returns the first."""
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        try:
            self.http_server = await asyncio.start_server(self._http_client, "127.0.0.1", http_port)
        except OSError:
            self.server.close()
            raise
        self.http_port = self.http_server.sockets[0].getsockname()[1]
        self._spawn(self._reap_idle())
        self.truth.record("backend_started", port=self.port, agents=self.config.agents)
        return self.port

    async def stop(self) -> None:
        for server in (self.server, self.http_server):
            if server is not None:
                server.close()
        for t in list(self._tasks):
            t.cancel()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def is_open(self, region: str, tz: str | None) -> bool:
        """Whether support is open now for this region in this time zone (known ones only:
        see refusal())."""
        hours = HOURS.get(region)
        if hours is None:
            return True
        now = datetime.fromtimestamp(
            time.time() + self.config.clock_offset_s, ZoneInfo(tz or DEFAULT_TZ[region])
        )
        return hours[0] <= now.hour < hours[1]

    @staticmethod
    def refusal(region: str, tz: object) -> str | None:
        """Why a request cannot be served whatever the hour: an unknown region (never open
        around the clock by mistake) or a time zone that is not IANA; None when it can."""
        if region not in REGIONS or region not in HOURS:
            return "unknown region"
        if tz is not None and (not isinstance(tz, str) or not valid_timezone(tz)):
            return "bad time zone"
        return None

    async def _send(self, req: Request, msg: dict) -> None:
        try:
            req.writer.write((json.dumps(msg) + "\n").encode())
            await req.writer.drain()
        except (ConnectionError, RuntimeError):
            req.ended = True

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req: Request | None = None
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
                if not raw:
                    break
                try:
                    msg = json.loads(raw)
                except ValueError:
                    writer.write(b'{"state": "error", "reason": "bad json"}\n')
                    continue
                if msg.get("op") == "agent" and req is None:
                    token = msg.get("token")
                    if not self.authorized(token if isinstance(token, str) else None, "lines"):
                        writer.write(b'{"event": "refused", "reason": "unauthorized"}\n')
                        await writer.drain()
                        return
                    await self._lines_agent(
                        str(msg.get("name", "bot")), reader, writer, msg.get("device")
                    )
                    return
                if msg.get("op") == "signal" and req is not None and req.agent in self.bots:
                    self._to_bot(
                        req.agent, {"event": "signal", "rid": req.rid, "data": msg.get("data")}
                    )
                    continue
                if msg.get("op") == "request" and req is None:
                    req = await self._request(msg, writer)
                    if req is None:
                        break
                elif msg.get("op") == "end":
                    break
        except (TimeoutError, ConnectionError):
            pass
        finally:
            if req is not None:
                self._end(req)
            writer.close()

    def authorized(self, presented: str | None, how: str) -> bool:
        """Whether `presented` is this run's agent token; a refusal is counted and recorded."""
        if presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.token.encode()
        ):
            return True
        self.unauthorized += 1
        self.truth.record(
            "agent_unauthorized", how=how, reason="no token" if presented is None else "wrong token"
        )
        return False

    def _to_bot(self, name: str, msg: dict) -> None:
        agent = self.bots.get(name)
        if agent is not None:
            agent.push(msg)

    # --- the agent pool, whatever the transport
    async def _join(self, agent: Agent) -> bool:
        """Put an agent program in the pool (first in line); False if the name is taken."""
        if agent.name in self.bots:
            return False
        self.bots[agent.name] = agent
        self.free_agents.appendleft(agent.name)
        self.truth.record("agent_joined", agent=agent.name)
        return True

    async def _agent_op(self, agent: Agent, op: str, rid: int, data=None) -> None:
        """An agent's signal to its device or hang-up; ignored unless the session is its own."""
        req = self.sessions.get(rid)
        if req is None or req.agent != agent.name or self.bots.get(agent.name) is not agent:
            return
        if op == "signal":
            await self._send(req, {"state": "signal", "data": data})
        elif op == "end":
            await self._send(req, {"state": "ended", "by": "agent"})
            self._end(req)

    async def _leave(self, agent: Agent) -> None:
        """The agent left (connection closed, DELETE, idle): out of the pool, its sessions end."""
        if agent.gone:
            return
        agent.close()
        name = agent.name
        if self.bots.get(name) is not agent:  # never joined (name taken)
            return
        self.bots.pop(name, None)
        if name in self.free_agents:
            self.free_agents.remove(name)
        for req in list(self.sessions.values()):
            if req.agent == name:
                await self._send(req, {"state": "ended", "by": "agent gone"})
                self._end(req)
        self.truth.record("agent_left", agent=name)

    async def _lines_agent(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        device: str | None = None,
    ) -> None:
        """A JSON-lines agent program: in the pool while connected (serving only `device` if
        given); relays its signalling to its device."""
        agent = Agent(name, device)
        if not await self._join(agent):
            writer.write(
                b'{"event": "refused", "reason": "an agent with this name is connected"}\n'
            )
            await writer.drain()
            writer.close()
            return
        agent.push({"event": "joined"})
        pump = self._spawn(self._pump(agent, writer))
        await self._dispatch()
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
                if not raw:
                    break
                msg = json.loads(raw)
                await self._agent_op(
                    agent, str(msg.get("op")), int(msg.get("rid", 0)), msg.get("data")
                )
        except (TimeoutError, ConnectionError, ValueError, TypeError):
            pass
        finally:
            await self._leave(agent)
            pump.cancel()
            writer.close()

    @staticmethod
    async def _pump(agent: Agent, writer: asyncio.StreamWriter) -> None:
        """Write a JSON-lines agent's events, in order, as they come."""
        try:
            while not agent.gone:
                for msg in await agent.take(None):
                    writer.write((json.dumps(msg) + "\n").encode())
                await writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    async def _reap_idle(self) -> None:
        """Drop HTTP agents that stopped polling."""
        while True:
            await asyncio.sleep(min(5.0, AGENT_IDLE_S / 4))
            now = time.monotonic()
            for aid, agent in list(self.http_agents.items()):
                if agent.polls == 0 and now - agent.last_seen > AGENT_IDLE_S:
                    log.info(
                        "agent %s: no poll for %.0f s, dropped", agent.name, now - agent.last_seen
                    )
                    self.http_agents.pop(aid, None)
                    await self._leave(agent)

    # --- the HTTP agent API
    async def _http_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            try:
                method, target, headers_in, body = await asyncio.wait_for(
                    self._http_read(reader), HTTP_HEAD_TIMEOUT_S
                )
                page = console_page(method, target)  # the agent console: static, no token
                if page is not None:
                    await _write_page(writer, *page)
                    return
                self._http_auth(headers_in.get("authorization"))
                status, payload = await self._http_route(method, target, body)
                headers: dict[str, str] = {}
            except HttpError as e:
                status, payload, headers = e.status, {"error": e.error}, e.headers
            except TimeoutError:
                status, payload, headers = (
                    400,
                    {"error": f"request not complete within {HTTP_HEAD_TIMEOUT_S:g} s"},
                    {},
                )
            except (ConnectionError, asyncio.IncompleteReadError):
                return
            except Exception as e:  # noqa: BLE001 -- one bad request must not take the backend down
                log.warning("backend http: %s: %s", type(e).__name__, e)
                status, payload, headers = 500, {"error": f"{type(e).__name__}: {e}"}, {}
            data = b"" if status == 204 else json.dumps(payload).encode()
            head = [
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                f"Content-Length: {len(data)}",
                "Connection: close",
            ]
            if data:
                head.append("Content-Type: application/json")
            head += [f"{k}: {v}" for k, v in headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            await asyncio.wait_for(writer.drain(), HTTP_HEAD_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            self._tasks.discard(task)
            # a task dropped after its loop closed: the transport is gone, nothing to tell
            with contextlib.suppress(RuntimeError):
                writer.close()

    def _http_auth(self, header: str | None) -> None:
        """HttpError 401 unless the request carries `Authorization: Bearer <this run's token>`."""
        token = None
        if header is not None:
            scheme, _, value = header.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        if not self.authorized(token, "http"):
            raise HttpError(
                401,
                "agent credentials required: Authorization: Bearer <the run's agent token>",
                {"WWW-Authenticate": 'Bearer realm="mayday-hil agents"'},
            )

    @staticmethod
    async def _http_read(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:  # noqa: C901 -- HTTP/1.1 request parsing: every malformed case has its own answer
        """One request: (method, target, headers, body). HttpError on anything malformed."""
        try:
            line = await reader.readline()
        except ValueError:  # over the stream limit
            raise HttpError(400, "request line too long") from None
        if not line:
            raise ConnectionError("closed before a request")
        parts = line.decode("latin-1").strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, f"malformed request line: {line[:100]!r}")
        method, target, _ = parts
        headers: dict[str, str] = {}
        for _ in range(HTTP_MAX_HEADERS + 1):
            try:
                raw = await reader.readline()
            except ValueError:
                raise HttpError(400, "header line too long") from None
            if not raw:
                raise HttpError(400, "connection closed in the headers")
            if raw in (b"\r\n", b"\n"):
                break
            key, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not key.strip():
                raise HttpError(400, f"malformed header: {raw[:100]!r}")
            headers[key.strip().lower()] = value.strip()
        else:
            raise HttpError(400, f"more than {HTTP_MAX_HEADERS} headers")
        if "transfer-encoding" in headers:
            raise HttpError(400, "Transfer-Encoding is not supported: send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, f"bad Content-Length {headers['content-length']!r}") from None
        if length < 0:
            raise HttpError(400, f"bad Content-Length {length}")
        if length > HTTP_MAX_BODY:
            raise HttpError(413, f"body of {length} bytes; at most {HTTP_MAX_BODY}")
        body = await reader.readexactly(length) if length else b""
        return method.upper(), target, headers, body

    async def _http_route(self, method: str, target: str, body: bytes) -> tuple[int, object]:  # noqa: C901 -- one branch per route of the agent API
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        if not parts or parts[0] != "agents" or len(parts) > 3:
            raise HttpError(404, f"no such path: {url.path}")
        if len(parts) == 1:
            route, allowed = "join", "POST"
        elif len(parts) == 2:
            route, allowed = "leave", "DELETE"
        elif parts[2] in ("events",):
            route, allowed = parts[2], "GET"
        elif parts[2] in ("signal", "end"):
            route, allowed = parts[2], "POST"
        else:
            raise HttpError(404, f"no such path: {url.path}")
        if method != allowed:
            raise HttpError(
                405, f"{method} not allowed on {url.path}; use {allowed}", {"Allow": allowed}
            )
        if route == "join":
            msg = _json_object(body)
            name, device = msg.get("name"), msg.get("device")
            if not isinstance(name, str) or not name:
                raise HttpError(400, "name: a non-empty string required")
            if device is not None and not isinstance(device, str):
                raise HttpError(400, "device: a string or null")
            agent = Agent(name, device, http=True)
            if not await self._join(agent):
                raise HttpError(409, f"an agent named {name!r} is connected")
            aid = f"a{next(self._ids)}-{name}"
            self.http_agents[aid] = agent
            await self._dispatch()
            return 200, {"agent": aid}
        agent = self.http_agents.get(parts[1])
        if agent is None:
            raise HttpError(404, f"no such agent: {parts[1]}")
        agent.last_seen = time.monotonic()
        if route == "leave":
            self.http_agents.pop(parts[1], None)
            await self._leave(agent)
            return 204, None
        if route == "events":
            wait = parse_qs(url.query).get("wait", [str(POLL_DEFAULT_S)])[-1]
            try:
                wait_s = float(wait)
            except ValueError:
                raise HttpError(400, f"wait: a number of seconds, not {wait!r}") from None
            if not 0 <= wait_s <= POLL_MAX_S:
                raise HttpError(400, f"wait: 0 to {POLL_MAX_S:g} s, not {wait_s:g}")
            agent.polls += 1
            try:
                events = await agent.take(wait_s)
            finally:
                agent.polls -= 1
                agent.last_seen = time.monotonic()
            return 200, events
        msg = _json_object(body)
        rid = msg.get("rid")
        if not isinstance(rid, int) or isinstance(rid, bool):
            raise HttpError(400, "rid: an integer required")
        if route == "signal":
            if not isinstance(msg.get("data"), dict):
                raise HttpError(400, "data: an object required")
            await self._agent_op(agent, "signal", rid, msg["data"])
        else:
            await self._agent_op(agent, "end", rid)
        return 204, None

    async def _request(self, msg: dict, writer: asyncio.StreamWriter) -> Request | None:
        now = time.monotonic()
        device = str(msg.get("device", "?"))
        region = str(msg.get("region", "US"))
        if not msg.get("registered", False):
            self.truth.record("session_refused", device=device, reason="unregistered")
            writer.write(b'{"state": "refused", "reason": "unregistered"}\n')
            await writer.drain()
            return None
        bad = self.refusal(region, msg.get("tz"))
        if bad is not None:
            self.truth.record("session_refused", device=device, reason=bad, region=region)
            writer.write((json.dumps({"state": "refused", "reason": bad}) + "\n").encode())
            await writer.drain()
            return None
        if not self.is_open(region, msg.get("tz")):
            self.truth.record("session_refused", device=device, reason="closed", region=region)
            writer.write(b'{"state": "refused", "reason": "closed"}\n')
            await writer.drain()
            return None
        waits = self.config.scripted_waits
        answer_s = waits.pop(0) if waits else self.config.answer_s
        req = Request(self._next, device, writer, now, answer_s)
        self._next += 1
        self.sessions[req.rid] = req
        self.queue.append(req)
        self.truth.record(
            "session_requested", t=now, rid=req.rid, device=device, region=region, answer_s=answer_s
        )
        await self._dispatch()
        if req.agent is None:
            await self._send(req, {"state": "queued", "position": self.queue.index(req) + 1})
        return req

    def _agent_for(self, req: Request) -> str | None:
        """A free agent for this request: the program dedicated to its device if one joined
        (waiting for it while it is busy), else any free agent not dedicated elsewhere."""
        dedicated = [name for name, dev in self.bot_devices.items() if dev == req.device]
        if dedicated:
            return next((a for a in self.free_agents if a in dedicated), None)
        return next((a for a in self.free_agents if self.bot_devices.get(a) is None), None)

    async def _dispatch(self) -> None:
        progress = True
        while progress:
            progress = False
            for req in list(self.queue):
                if req.ended:
                    self.queue.remove(req)
                    continue
                agent = self._agent_for(req)
                if agent is None:
                    continue
                self.queue.remove(req)
                self.free_agents.remove(agent)
                await self._assign(req, agent)
                progress = True
        for pos, req in enumerate(self.queue, start=1):
            await self._send(req, {"state": "queued", "position": pos})

    async def _assign(self, req: Request, agent: str) -> None:
        req.agent = agent
        req.t_assigned = time.monotonic()
        self.truth.record(
            "session_assigned",
            t=req.t_assigned,
            rid=req.rid,
            device=req.device,
            agent=req.agent,
            queue_wait_s=req.t_assigned - req.t_request,
        )
        await self._send(req, {"state": "assigned", "agent": req.agent})
        self._to_bot(req.agent, {"event": "session", "rid": req.rid, "device": req.device})
        req.answer_task = self._spawn(self._answer(req))

    async def _answer(self, req: Request) -> None:
        await asyncio.sleep(req.answer_s)
        if req.ended:
            return
        req.t_answered = time.monotonic()
        self.truth.record(
            "session_answered",
            t=req.t_answered,
            rid=req.rid,
            device=req.device,
            agent=req.agent,
            wait_s=req.t_answered - req.t_request,
        )
        await self._send(
            req, {"state": "answered", "agent": req.agent, "media": req.agent in self.bots}
        )
        await asyncio.sleep(self.config.handle_s)
        if not req.ended:
            self.truth.record("session_timeout", rid=req.rid, device=req.device)
            self._end(req)

    def _end(self, req: Request) -> None:
        if req.ended and req.rid not in self.sessions:
            return
        req.ended = True
        self.sessions.pop(req.rid, None)
        if req.answer_task is not None:  # no task outlives its session (it holds the request)
            req.answer_task.cancel()
            req.answer_task = None
        if req in self.queue:
            self.queue.remove(req)
        self.truth.record("session_ended", rid=req.rid, device=req.device, agent=req.agent)
        if req.agent is not None:
            agent = req.agent
            req.agent = None

            async def release() -> None:
                self._to_bot(agent, {"event": "ended", "rid": req.rid})
                await asyncio.sleep(self.config.wrap_s)
                if agent in self.bots or agent.startswith("agent-"):
                    self.free_agents.append(agent)
                await self._dispatch()

            self._spawn(release())


CONSOLE_DIR = Path(__file__).with_name("agent_console")  # the web agent console (static)
CONSOLE_FILES = {  # URL path -> (file, content type); nothing else is served from the directory
    "/console": ("index.html", "text/html; charset=utf-8"),
    "/console/": ("index.html", "text/html; charset=utf-8"),
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
}
# the page talks to this backend only (and to loopback: a harness probe's sink); no inline script;
# blob: workers (the browser agent's probe reads the share's decoded frames in one)
CONSOLE_CSP = (
    "default-src 'self'; connect-src 'self' http://127.0.0.1:*; "
    "media-src 'self' blob: mediastream:; img-src 'self' data: blob:; worker-src blob:; "
    "frame-ancestors 'none'"
)


def console_page(method: str, target: str) -> tuple[int, bytes, str] | None:
    """The agent console's static files (GET, no credentials: the page asks for the token and
    presents it on every API call); None for any other request (the agent API)."""
    path = urlsplit(target).path
    if path not in CONSOLE_FILES:
        return None
    if method not in ("GET", "HEAD"):
        raise HttpError(405, f"{method} not allowed on {path}; use GET", {"Allow": "GET"})
    name, ctype = CONSOLE_FILES[path]
    try:
        data = (CONSOLE_DIR / name).read_bytes()
    except OSError as e:
        raise HttpError(500, f"agent console {name}: {e}") from None
    return 200, (b"" if method == "HEAD" else data), ctype


async def _write_page(writer: asyncio.StreamWriter, status: int, data: bytes, ctype: str) -> None:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
        "Referrer-Policy: no-referrer",
        "X-Content-Type-Options: nosniff",
        f"Content-Security-Policy: {CONSOLE_CSP}",
        "Connection: close",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    await asyncio.wait_for(writer.drain(), HTTP_HEAD_TIMEOUT_S)


def _json_object(body: bytes) -> dict:
    try:
        msg = json.loads(body or b"null")
    except ValueError as e:
        raise HttpError(400, f"bad JSON body: {e}") from None
    if not isinstance(msg, dict):
        raise HttpError(400, "the body must be a JSON object")
    return msg
