"""Fixtures for the LLM tests: one scripted server per test and clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scagent.llm import RetryPolicy, get_client
from scagent.llm.base import BaseLLMClient
from scagent.llm.testing import ScriptedLLMServer

#: Short waits keep the retry tests fast; jitter off so that waits are predictable.
FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05, jitter=0.0)
TIMEOUT_S = 0.3


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as s:
        yield s


@pytest.fixture
def make_client(server: ScriptedLLMServer, tmp_path: Path) -> Callable[..., BaseLLMClient]:
    """``make_client(route, **overrides)``: a real SDK client for route openai|anthropic."""

    def make(route: str, **kwargs) -> BaseLLMClient:
        kwargs.setdefault("timeout", TIMEOUT_S)
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("cache_dir", tmp_path / "llm-cache")
        if route == "openai":
            return get_client(
                "openai-compatible:scripted-model", base_url=server.openai_base_url, **kwargs
            )
        if route == "anthropic":
            return get_client(
                "anthropic:scripted-claude",
                api_key="test-key",
                base_url=server.anthropic_base_url,
                **kwargs,
            )
        raise ValueError(route)

    return make
