"""The flow under test, driven by an AppProfile: open support, press, wait for the agent, end."""

from harness.session.driver import (
    ConnectResult,
    Recovery,
    SelectorNotFound,
    SessionDriver,
    SessionRefused,
)

__all__ = ["ConnectResult", "Recovery", "SelectorNotFound", "SessionDriver", "SessionRefused"]
