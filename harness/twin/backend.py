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

An agent program (the harness's AgentBot) joins the pool over the same port:

    -> {"op": "agent", "name": "bot-1", "device": SERIAL}  (device: serve only that one)
    <- {"event": "session", "rid": N, "device": SERIAL}   (assigned to this agent)
    <- {"event": "signal", "rid": N, "data": {...}}        (from the device)
    -> {"op": "signal", "rid": N, "data": {...}}           (to the device)
    <- {"event": "ended", "rid": N}
    -> {"op": "end", "rid": N}                             (the agent hangs up)

A session with an agent program is "answered" with "media": true: the device then opens a
WebRTC peer connection, signalled through the backend.

Queue waits come from the pool: `agents` agents, each session held for the customer's time
(or `handle_s` when the customer never ends it), then `wrap_s` of after-call work; `answer_s`
between assignment and the agent's video. Opening hours per region follow the device's time
zone (Germany 06:00-24:00 local time, US and UK around the clock). Every request's times go to
the ground truth: requested, assigned, answered, ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from harness.twin.truth import GroundTruth

log = logging.getLogger(__name__)

HOURS = {"US": None, "UK": None, "DE": (6, 24)}  # None = 24/7; (open, close) local hours
DEFAULT_TZ = {"US": "America/Los_Angeles", "UK": "Europe/London", "DE": "Europe/Berlin"}
_READ_TIMEOUT_S = 3600.0


@dataclass
class BackendConfig:
    agents: int = 2
    answer_s: float = 1.0
    handle_s: float = 600.0
    wrap_s: float = 0.0
    scripted_waits: list[float] = field(default_factory=list)  # if set: answer_s per request, in order
    clock_offset_s: float = 0.0  # shifts the wall clock used for opening hours (tests of closed hours)


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


class SupportBackend:
    def __init__(self, config: BackendConfig | None = None, truth: GroundTruth | None = None):
        self.config = config or BackendConfig()
        self.truth = truth or GroundTruth(None, twin="backend")
        self.free_agents: deque[str] = deque(f"agent-{i + 1}" for i in range(self.config.agents))
        self.queue: deque[Request] = deque()
        self.sessions: dict[int, Request] = {}
        self._next = 1
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self.bots: dict[str, asyncio.StreamWriter] = {}
        self.bot_devices: dict[str, str | None] = {}  # agent program -> the device it serves (None: any)

    def set_simulated_agents(self, count: int) -> None:
        """Replace the simulated agents in the pool (programs that joined stay)."""
        busy = {r.agent for r in self.sessions.values() if r.agent}
        self.free_agents = deque(a for a in self.free_agents if a in self.bots)
        self.free_agents.extend(f"agent-{i + 1}" for i in range(count) if f"agent-{i + 1}" not in busy)
        self.config.agents = count

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        self.truth.record("backend_started", port=self.port, agents=self.config.agents)
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in list(self._tasks):
            t.cancel()

    def is_open(self, region: str, tz: str | None) -> bool:
        hours = HOURS.get(region)
        if hours is None:
            return True
        now = datetime.fromtimestamp(time.time() + self.config.clock_offset_s, ZoneInfo(tz or DEFAULT_TZ[region]))
        return hours[0] <= now.hour < hours[1]

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
                    await self._agent(str(msg.get("name", "bot")), reader, writer, msg.get("device"))
                    return
                if msg.get("op") == "signal" and req is not None and req.agent in self.bots:
                    await self._to_bot(req.agent, {"event": "signal", "rid": req.rid, "data": msg.get("data")})
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

    async def _to_bot(self, name: str, msg: dict) -> None:
        writer = self.bots.get(name)
        if writer is None:
            return
        try:
            writer.write((json.dumps(msg) + "\n").encode())
            await writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    async def _agent(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     device: str | None = None) -> None:
        """An agent program: in the pool while connected (serving only `device` if given);
        relays its signalling to its device."""
        if name in self.bots:
            writer.write(b'{"event": "refused", "reason": "an agent with this name is connected"}\n')
            await writer.drain()
            writer.close()
            return
        self.bots[name] = writer
        self.bot_devices[name] = device
        self.free_agents.appendleft(name)
        self.truth.record("agent_joined", agent=name)
        writer.write(b'{"event": "joined"}\n')
        await writer.drain()
        await self._dispatch()
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
                if not raw:
                    break
                msg = json.loads(raw)
                req = self.sessions.get(int(msg.get("rid", 0)))
                if req is None or req.agent != name:
                    continue
                if msg.get("op") == "signal":
                    await self._send(req, {"state": "signal", "data": msg.get("data")})
                elif msg.get("op") == "end":
                    await self._send(req, {"state": "ended", "by": "agent"})
                    self._end(req)
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            if self.bots.get(name) is writer:  # a program that rejoined under the same name stays
                self.bots.pop(name, None)
                self.bot_devices.pop(name, None)
            if name in self.free_agents:
                self.free_agents.remove(name)
            for req in list(self.sessions.values()):
                if req.agent == name:
                    await self._send(req, {"state": "ended", "by": "agent gone"})
                    self._end(req)
            self.truth.record("agent_left", agent=name)
            writer.close()

    async def _request(self, msg: dict, writer: asyncio.StreamWriter) -> Request | None:
        now = time.monotonic()
        device = str(msg.get("device", "?"))
        region = str(msg.get("region", "US"))
        if not msg.get("registered", False):
            self.truth.record("session_refused", device=device, reason="unregistered")
            writer.write(b'{"state": "refused", "reason": "unregistered"}\n')
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
        self.truth.record("session_requested", t=now, rid=req.rid, device=device, region=region, answer_s=answer_s)
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
        self.truth.record("session_assigned", t=req.t_assigned, rid=req.rid, device=req.device, agent=req.agent,
                          queue_wait_s=req.t_assigned - req.t_request)
        await self._send(req, {"state": "assigned", "agent": req.agent})
        if req.agent in self.bots:
            await self._to_bot(req.agent, {"event": "session", "rid": req.rid, "device": req.device})
        task = asyncio.get_running_loop().create_task(self._answer(req))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, req: Request) -> None:
        await asyncio.sleep(req.answer_s)
        if req.ended:
            return
        req.t_answered = time.monotonic()
        self.truth.record("session_answered", t=req.t_answered, rid=req.rid, device=req.device, agent=req.agent,
                          wait_s=req.t_answered - req.t_request)
        await self._send(req, {"state": "answered", "agent": req.agent, "media": req.agent in self.bots})
        await asyncio.sleep(self.config.handle_s)
        if not req.ended:
            self.truth.record("session_timeout", rid=req.rid, device=req.device)
            self._end(req)

    def _end(self, req: Request) -> None:
        if req.ended and req.rid not in self.sessions:
            return
        req.ended = True
        self.sessions.pop(req.rid, None)
        if req in self.queue:
            self.queue.remove(req)
        self.truth.record("session_ended", rid=req.rid, device=req.device, agent=req.agent)
        if req.agent is not None:
            agent = req.agent
            req.agent = None

            async def release() -> None:
                if agent in self.bots:
                    await self._to_bot(agent, {"event": "ended", "rid": req.rid})
                await asyncio.sleep(self.config.wrap_s)
                if agent in self.bots or agent.startswith("agent-"):
                    self.free_agents.append(agent)
                await self._dispatch()

            task = asyncio.get_running_loop().create_task(release())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
