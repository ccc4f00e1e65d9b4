"""Backend selection: turn ``--llm`` / ``SCAGENT_LLM`` and the environment into a client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scagent.errors import InvalidParameterError, LLMError

from .base import LLMClient
from .cache import ResponseCache, default_cache_dir
from .retry import RetryPolicy

__all__ = [
    "ACCEPTED_SPECS",
    "DEFAULT_MODELS",
    "BackendSpec",
    "get_client",
    "parse_spec",
    "resolve_spec",
]

#: Model used when a spec names a hosted backend without a model (``--llm openai``).
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}

#: Local servers that speak the OpenAI wire format, with their usual address.
LOCAL_SERVERS = {
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
    "lmstudio": "http://localhost:1234/v1",
}

ACCEPTED_SPECS = (
    "offline",
    "openai:MODEL",
    "anthropic:MODEL",
    "openai-compatible:MODEL (with --base-url or SCAGENT_LLM_BASE_URL)",
    "ollama:MODEL",
    "vllm:MODEL",
    "lmstudio:MODEL",
)


@dataclass(frozen=True)
class BackendSpec:
    """A parsed ``--llm`` value."""

    backend: str  # offline | openai | anthropic | openai-compatible
    model: str
    default_base_url: str | None = None

    def __str__(self) -> str:
        return "offline" if self.backend == "offline" else f"{self.backend}:{self.model}"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidParameterError(f"{name}={raw!r} is not a number") from None


def parse_spec(spec: str) -> BackendSpec:
    """Parse ``offline``, ``openai[:MODEL]``, ``anthropic[:MODEL]``,
    ``openai-compatible:MODEL`` or ``ollama|vllm|lmstudio:MODEL``.

    The model is everything after the first colon, so Ollama tags such as
    ``ollama:llama3.1:8b`` survive.
    """
    text = (spec or "").strip()
    kind, _, model = text.partition(":")
    kind = kind.strip().lower()
    model = model.strip()
    accepted = ", ".join(ACCEPTED_SPECS)
    if kind == "offline" and not model:
        return BackendSpec("offline", "offline")
    if kind in DEFAULT_MODELS:
        return BackendSpec(kind, model or DEFAULT_MODELS[kind])
    if kind in ("openai-compatible", *LOCAL_SERVERS):
        if not model:
            raise InvalidParameterError(
                f"LLM backend {spec!r} needs a model name",
                remedy=f"write it as {kind}:MODEL, e.g. {kind}:llama3.1:8b",
            )
        return BackendSpec("openai-compatible", model, LOCAL_SERVERS.get(kind))
    raise InvalidParameterError(
        f"unknown LLM backend {spec!r}",
        remedy=f"use one of: {accepted}",
    )


def resolve_spec(spec: str | None = None) -> BackendSpec:
    """The backend to use: ``spec``, else ``SCAGENT_LLM``, else a hosted backend whose key
    is set (``OPENAI_API_KEY``, then ``ANTHROPIC_API_KEY``) with its default model, else
    offline."""
    chosen = spec or os.environ.get("SCAGENT_LLM")
    if chosen:
        return parse_spec(chosen)
    if os.environ.get("OPENAI_API_KEY"):
        return BackendSpec("openai", DEFAULT_MODELS["openai"])
    if os.environ.get("ANTHROPIC_API_KEY"):
        return BackendSpec("anthropic", DEFAULT_MODELS["anthropic"])
    return BackendSpec("offline", "offline")


def get_client(
    spec: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    timeout: float | None = None,
    max_retries: int | None = None,
    retry: RetryPolicy | None = None,
    structured_mode: str | None = None,
) -> LLMClient:
    """Build the LLM client for ``spec`` (``--llm``), reading the environment for the rest.

    Parameters
    ----------
    spec
        See :func:`parse_spec`; ``None`` reads ``SCAGENT_LLM`` then falls back as in
        :func:`resolve_spec` (offline when no key is set).
    base_url
        Server root (with ``/v1`` for OpenAI-compatible servers). Default:
        ``SCAGENT_LLM_BASE_URL``, then ``OPENAI_BASE_URL`` for OpenAI-compatible servers.
    api_key
        Overrides ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` (for OpenAI-compatible servers
        also ``SCAGENT_LLM_API_KEY``; local servers need none).
    cache_dir
        Response cache folder; default ``$SCAGENT_HOME/cache/llm``.
    cache
        False runs without a response cache.
    timeout
        Seconds per HTTP request (default ``SCAGENT_LLM_TIMEOUT`` or 60).
    max_retries
        Retries on timeouts, 429, 5xx and connection errors (default
        ``SCAGENT_LLM_MAX_RETRIES`` or 3). Ignored when ``retry`` is given.
    retry
        Full backoff settings.
    structured_mode
        How JSON answers are requested (see the backend classes).

    Raises
    ------
    InvalidParameterError
        Unknown spec, or an OpenAI-compatible backend without a base URL.
    LLMError
        A hosted backend whose API key is not set.
    MissingDependencyError
        The backend's SDK is not installed (``pip install 'scagent[llm]'``).
    """
    parsed = resolve_spec(spec)
    if parsed.backend == "offline":
        from .offline import OfflineClient

        return OfflineClient()

    timeout = timeout if timeout is not None else _env_float("SCAGENT_LLM_TIMEOUT", 60.0)
    if retry is None:
        n = (
            max_retries
            if max_retries is not None
            else int(_env_float("SCAGENT_LLM_MAX_RETRIES", 3))
        )
        if n < 0:
            raise InvalidParameterError(f"max_retries must be >= 0, got {n}")
        retry = RetryPolicy(max_retries=n)
    response_cache = ResponseCache(Path(cache_dir) if cache_dir else default_cache_dir())
    response_cache = response_cache if cache else None

    if parsed.backend == "anthropic":
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise LLMError(
                f"LLM backend {parsed} needs an API key and ANTHROPIC_API_KEY is not set",
                remedy="export ANTHROPIC_API_KEY=... or use --llm offline",
            )
        from .anthropic_backend import AnthropicClient

        return AnthropicClient(
            parsed.model,
            api_key=key,
            base_url=base_url or os.environ.get("SCAGENT_LLM_BASE_URL") or None,
            timeout=timeout,
            cache=response_cache,
            retry=retry,
            **({"structured_mode": structured_mode} if structured_mode else {}),
        )

    from .openai_backend import OpenAIClient

    if parsed.backend == "openai":
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise LLMError(
                f"LLM backend {parsed} needs an API key and OPENAI_API_KEY is not set",
                remedy="export OPENAI_API_KEY=... or use --llm offline",
            )
        url = base_url or os.environ.get("SCAGENT_LLM_BASE_URL") or None
        compatible = False
    else:
        url = (
            base_url
            or os.environ.get("SCAGENT_LLM_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or parsed.default_base_url
        )
        if not url:
            raise InvalidParameterError(
                f"LLM backend {parsed} needs the server's base URL",
                remedy="pass --base-url http://HOST:PORT/v1 or set SCAGENT_LLM_BASE_URL",
            )
        # Local servers ignore the key, but the SDK insists on a non-empty one.
        key = (
            api_key
            or os.environ.get("SCAGENT_LLM_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
            or "not-needed"
        )
        compatible = True
    return OpenAIClient(
        parsed.model,
        api_key=key,
        base_url=url,
        compatible=compatible,
        timeout=timeout,
        cache=response_cache,
        retry=retry,
        **({"structured_mode": structured_mode} if structured_mode else {}),
    )
