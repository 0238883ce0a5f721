"""The flow under test: open quick settings, press Mayday, wait for the agent, end."""

from harness.session.driver import ConnectResult, SessionDriver, SessionRefused

__all__ = ["ConnectResult", "SessionDriver", "SessionRefused"]
