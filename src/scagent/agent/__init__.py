"""The agent: a REPL and natural-language front door (LLM tool calling or an offline intent parser) onto ``Session.run``, with memory and exports."""

from __future__ import annotations

from scagent.agent.exports import bundle_commands, environment_versions, methods_text, write_bundle
from scagent.agent.guard import GeneGuard, GuardReport
from scagent.agent.intent import CAPABILITIES, Intent, parse_intent
from scagent.agent.io import AgentIO, ConsoleIO, RecordingIO
from scagent.agent.memory import ContextBundle, Memory, SessionSummary, Turn
from scagent.agent.orchestrator import Agent, ProposedCall, StepOutcome, tool_specs
from scagent.agent.requirements import MissingData, check_data
from scagent.agent.verifier import Finding, verify_step

__all__ = [
    "CAPABILITIES",
    "Agent",
    "AgentIO",
    "ConsoleIO",
    "ContextBundle",
    "Finding",
    "GeneGuard",
    "GuardReport",
    "Intent",
    "Memory",
    "MissingData",
    "ProposedCall",
    "RecordingIO",
    "SessionSummary",
    "StepOutcome",
    "Turn",
    "bundle_commands",
    "check_data",
    "environment_versions",
    "methods_text",
    "parse_intent",
    "tool_specs",
    "verify_step",
    "write_bundle",
]
