"""The flow under test: open quick settings, press Mayday, wait for the agent, end."""

from harness.session.driver import ConnectResult, Recovery, SessionDriver, SessionRefused

__all__ = ["ConnectResult", "Recovery", "SessionDriver", "SessionRefused"]
