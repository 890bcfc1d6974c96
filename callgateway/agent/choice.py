"""Which agent answers a clinic's callers: the offline rules, or the OpenAI tool caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callgateway.agent.protocol import Agent
from callgateway.agent.rules import RulesAgent
from callgateway.config import Clinic

if TYPE_CHECKING:
    from callgateway.wiring import Services

_RULES = RulesAgent()


def agent_for(services: Services, clinic: Clinic) -> Agent:
    if clinic.agent_kind == "openai":
        # Imported on first use: the SDK is slow to import, and most clinics use rules.
        from callgateway.agent.openai_agent import OpenAIAgent

        return OpenAIAgent.for_clinic(services, clinic)
    return _RULES
