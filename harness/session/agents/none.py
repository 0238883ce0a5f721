"""`none`: a human agent (or any agent the harness does not control). Nothing joins; the
session driver measures connect time by the onset of live video; tests that need the agent's
cooperation (media, strokes, control) skip with that reason."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.session.agents.base import AgentContext, AgentNotCooperating

REASON = "--agent none: a human agent; this test needs the agent's cooperation"


class NoAgent:
    name: ClassVar[str] = "none"
    cooperative: ClassVar[bool] = False
    session: Any = None

    @classmethod
    def from_context(cls, ctx: AgentContext) -> NoAgent:
        return cls()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def media_counters(self) -> Any:
        return None

    def _refuse(self, what: str):
        raise AgentNotCooperating(f"{REASON} ({what})")

    def wait_connected(self, timeout_s: float = 15.0) -> None:
        pass  # a human's media is not observed by the harness

    def send_stroke(self, points, color=(255, 0, 0), width: int = 6, stroke_id=None) -> float:
        self._refuse("strokes")

    def clear_strokes(self) -> float:
        self._refuse("strokes")

    def send_tap(self, x: float, y: float, timeout_s: float = 5.0) -> dict:
        self._refuse("remote control")

    def request_control(self) -> None:
        self._refuse("remote control")

    def request_access(self, package: str) -> None:
        self._refuse("consent")

    def wait_reply(self, kind: str, timeout_s: float = 10.0) -> dict:
        self._refuse("replies")

    def hang_up(self) -> None:
        pass
