"""Agent adapters: the harness (or nobody) in the support agent's chair.

Adapters are found through the entry-point group `mayday_hil.agents` (name -> a class
implementing harness.session.agents.base.AgentAdapter); docs/agents.md describes the interface.
Built in: `twin` (the reference aiortc bot against the twin world's backend) and `none` (a human
or any agent the harness does not control: connect time by the onset of live video).
"""

from harness.session.agents.base import (
    ENTRY_POINT_GROUP,
    AgentAdapter,
    AgentContext,
    AgentNotCooperating,
    available_agents,
    load_agent,
)

DEFAULT_AGENT = "twin"

__all__ = [
    "DEFAULT_AGENT",
    "ENTRY_POINT_GROUP",
    "AgentAdapter",
    "AgentContext",
    "AgentNotCooperating",
    "available_agents",
    "load_agent",
]
