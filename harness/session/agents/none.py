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

    def __getattr__(self, item: str) -> Any:
        raise AgentNotCooperating(f"{REASON} ({item})")
