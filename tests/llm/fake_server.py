"""The scripted LLM server used by these tests; it lives in the package so that any test
folder can import it as ``from scagent.llm.testing import ScriptedLLMServer``."""

from scagent.llm.testing import (
    RecordedRequest,
    Reply,
    ScriptedLLMServer,
    anthropic_reply,
    error_reply,
    json_reply,
    openai_reply,
)

__all__ = [
    "RecordedRequest",
    "Reply",
    "ScriptedLLMServer",
    "anthropic_reply",
    "error_reply",
    "json_reply",
    "openai_reply",
]
