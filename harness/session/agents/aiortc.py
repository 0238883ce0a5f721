"""`twin`: the reference adapter, wrapping harness.session.agent.AiortcAgentBot (WebRTC via
aiortc against the twin world's support backend)."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.session.agent import AiortcAgentBot
from harness.session.agents.base import AgentContext


class AiortcAdapter:
    """The twin world's reference agent: timecoded video out, share and microphone in, strokes,
    taps, control and access requests over the data channel."""

    name: ClassVar[str] = "twin"
    cooperative: ClassVar[bool] = True
    lab_monitor: ClassVar[bool] = True  # AgentBot posts its picture to display_url

    def __init__(self, bot: AiortcAgentBot):
        self.bot = bot

    @classmethod
    def from_context(cls, ctx: AgentContext) -> AiortcAdapter:
        if ctx.backend is None:
            from harness.errors import HarnessError

            raise HarnessError("the twin agent needs the twin world's support backend address")
        return cls(
            AiortcAgentBot(
                tuple(ctx.backend),
                name=ctx.name,
                device=ctx.device,
                display_url=ctx.display_url,
                media_profile=ctx.media_profile,
                http=tuple(ctx.http) if ctx.http else None,
                token=ctx.token,
            )
        )

    @property
    def session(self) -> Any:
        return self.bot.session

    def start(self) -> None:
        self.bot.start()

    def wait_connected(self, timeout_s: float = 15.0) -> None:
        self.bot.wait_connected(timeout_s)

    def send_stroke(self, points, color=(255, 0, 0), width: int = 6, stroke_id=None) -> float:
        return self.bot.send_stroke(points, color=color, width=width, stroke_id=stroke_id)

    def clear_strokes(self) -> float:
        return self.bot._channel_send({"type": "clear_strokes"})

    def send_tap(self, x: float, y: float, timeout_s: float = 5.0) -> dict:
        return self.bot.send_tap(x, y, timeout_s)

    def request_control(self) -> None:
        self.bot.request_control()

    def request_access(self, package: str) -> None:
        self.bot.request_access(package)

    def wait_reply(self, kind: str, timeout_s: float = 10.0) -> dict:
        return self.bot.wait_reply(kind, timeout_s)

    def media_counters(self) -> Any:
        return self.bot.media_counters()

    def hang_up(self) -> None:
        self.bot.hang_up()

    def stop(self) -> None:
        self.bot.stop()

    def __getattr__(self, item: str) -> Any:  # the bot's other attributes (fps, layout, ...)
        return getattr(self.bot, item)
