"""The agent adapter interface (docs/agents.md) and its discovery through entry points."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from harness.errors import HarnessError, SessionError

ENTRY_POINT_GROUP = "mayday_hil.agents"


class AgentNotCooperating(SessionError):
    """The adapter cannot do this (a human agent sends no strokes on request): tests skip."""


@dataclass(frozen=True)
class AgentContext:
    """Everything an adapter may need to join one device's sessions as the agent.

    Attributes:
        device: the serial whose support sessions the agent answers.
        backend: the support backend's JSON-lines address (host, port), if any.
        http: the backend's HTTP agent API (host, port), if any.
        token: the agent credential the backend issued for this run (Authorization: Bearer).
        display_url: a lab camera's /agent_display (the agent's monitor, filmed), if any.
        media_profile: a harness.network NetworkProfile for the media path (None: direct).
        name: a unique agent name for this test.
        options: adapter-specific settings (free form).
    """

    device: str
    backend: tuple[str, int] | None = None
    http: tuple[str, int] | None = None
    token: str | None = None
    display_url: str | None = None
    media_profile: Any = None
    name: str = "agent"
    options: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class AgentAdapter(Protocol):
    """What the suites need from an agent. Every call is bounded; stop() never raises.

    Media out: `session.sent` maps each video frame number the agent sent to its host send
    time (monotonic seconds); the frames carry harness.vision.timecode codes. The reference
    agents send a loop (60 s) whose codes repeat: a number maps to its newest send, so a latency
    window must be shorter than the loop. Media in:
    `session.share` holds the received screen-share frames (BGR image, host arrival time),
    `session.audio` the microphone chunks (host arrival time, samples) at `session.audio_rate`
    (the reference bot keeps the newest 60 s).

    Optional: a class attribute `lab_monitor = True` says the adapter puts its picture on the lab
    camera's agent monitor (AgentContext.display_url), which dual-view glass-to-glass films;
    without it dual view skips, saying so.
    """

    name: ClassVar[str]
    cooperative: ClassVar[bool]  # False: a human/uncontrolled agent (media tests skip)

    @classmethod
    def from_context(cls, ctx: AgentContext) -> AgentAdapter: ...

    session: Any

    def start(self) -> None: ...  # join: ready to answer the device's next session
    def wait_connected(self, timeout_s: float) -> None: ...  # media flowing both ways
    def send_stroke(
        self, points: list, color=(255, 0, 0), width: int = 6, stroke_id: int | None = None
    ) -> float: ...  # host send time
    def clear_strokes(self) -> float: ...
    def send_tap(self, x: float, y: float, timeout_s: float = 5.0) -> dict: ...
    def request_control(self) -> None: ...
    def request_access(self, package: str) -> None: ...  # consent to see a private app
    def wait_reply(self, kind: str, timeout_s: float = 10.0) -> dict: ...
    def media_counters(self) -> Any: ...  # the impairment relay's counters, or None
    def hang_up(self) -> None: ...
    def stop(self) -> None: ...


def available_agents() -> dict[str, Any]:
    """name -> entry point of every installed adapter."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_agent(name: str) -> type:
    """The adapter class registered as `name`.

    Raises:
        HarnessError: no such adapter (names the installed ones), or it does not load.
    """
    found = available_agents()
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise HarnessError(
            f"--agent {name}: no adapter of that name in the entry-point group "
            f"{ENTRY_POINT_GROUP!r}; installed: {known}"
        )
    try:
        cls = found[name].load()
    except Exception as e:  # noqa: BLE001 -- a third-party adapter may fail any way: one error naming it
        raise HarnessError(f"--agent {name}: {found[name].value} does not load: {e}") from None
    missing = [m for m in ("from_context", "start", "stop", "cooperative") if not hasattr(cls, m)]
    if missing:
        raise HarnessError(
            f"--agent {name}: {found[name].value} is not an agent adapter (lacks {', '.join(missing)})"
        )
    return cls
