"""Lazy import of the vendor SDKs and one classification of their transport errors.

The OpenAI and Anthropic SDKs share a generated error hierarchy (APITimeoutError <
APIConnectionError, APIStatusError with ``status_code`` and ``response``), so one function
classifies both.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from scagent.errors import MissingDependencyError

from .retry import Failure, classify_status

__all__ = ["classify_sdk_error", "import_sdk"]


def import_sdk(name: str) -> ModuleType:
    """Import ``openai`` or ``anthropic``, or say which extra installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the {name!r} package is needed for this LLM backend but is not installed",
            remedy="pip install 'scagent[llm]'",
        ) from exc


def classify_sdk_error(exc: BaseException, sdk: ModuleType, key_env: str | None) -> Failure | None:
    """Map an SDK exception to a :class:`Failure`; ``None`` for anything else."""
    if isinstance(exc, sdk.APITimeoutError):
        return Failure("timeout", True, message="the request timed out")
    if isinstance(exc, sdk.APIStatusError):
        response = getattr(exc, "response", None)
        headers = dict(response.headers) if response is not None else {}
        message = getattr(exc, "message", None) or str(exc)
        return classify_status(exc.status_code, message, headers, key_env)
    if isinstance(exc, sdk.APIConnectionError):
        return Failure(
            "connection",
            True,
            message=str(exc) or "could not connect",
            remedy="check that the server is running and the base URL is right",
        )
    return None
