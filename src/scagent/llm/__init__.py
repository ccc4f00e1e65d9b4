"""LLM access for scagent: one client protocol over OpenAI-compatible, Anthropic and offline
backends, with a response cache, retries, validated JSON answers and usage accounting.

>>> from scagent.llm import get_client
>>> client = get_client()  # SCAGENT_LLM, else a hosted backend whose key is set, else offline
>>> client.backend in {"offline", "openai", "anthropic", "openai-compatible"}
True

The vendor SDKs are imported only when their backend is built. See ``docs/llm.md``.
"""

from __future__ import annotations

from .base import (
    DEFAULT_MAX_TOKENS,
    BaseLLMClient,
    InvalidLLMOutputError,
    LLMClient,
    LLMRequest,
    LLMRequestError,
    LLMResponse,
    Message,
    OfflineCannotAnswerError,
    RawCompletion,
    ToolCall,
    ToolSpec,
    Usage,
    UsageTotals,
)
from .cache import LLMCacheWarning, ResponseCache, cache_key, default_cache_dir
from .concurrency import map_concurrent
from .config import (
    ACCEPTED_SPECS,
    DEFAULT_MODELS,
    BackendSpec,
    get_client,
    parse_spec,
    resolve_spec,
)
from .offline import OfflineClient, register_offline_responder, unregister_offline_responder
from .retry import RetryPolicy
from .structured import OutputSchema, extract_json

__all__ = [
    "ACCEPTED_SPECS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODELS",
    "BackendSpec",
    "BaseLLMClient",
    "InvalidLLMOutputError",
    "LLMCacheWarning",
    "LLMClient",
    "LLMRequest",
    "LLMRequestError",
    "LLMResponse",
    "Message",
    "OfflineCannotAnswerError",
    "OfflineClient",
    "OutputSchema",
    "RawCompletion",
    "ResponseCache",
    "RetryPolicy",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "UsageTotals",
    "cache_key",
    "default_cache_dir",
    "extract_json",
    "get_client",
    "map_concurrent",
    "parse_spec",
    "register_offline_responder",
    "resolve_spec",
    "unregister_offline_responder",
]
