"""OpenAI chat-completions backend, for OpenAI itself and any compatible server (Ollama,
vLLM, LM Studio), through the official ``openai`` SDK."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from ._sdk import classify_sdk_error, import_sdk
from .base import (
    BaseLLMClient,
    LLMRequest,
    RawCompletion,
    ToolCall,
    Usage,
)
from .cache import ResponseCache
from .retry import Failure, RetryPolicy

__all__ = ["OpenAIClient", "StructuredMode"]

log = logging.getLogger(__name__)

#: How a JSON answer is asked for: the server enforces the schema (``json_schema``), the
#: server only guarantees JSON (``json_object``) or the prompt asks for it (``instructions``).
StructuredMode = Literal["json_schema", "json_object", "instructions"]
_DOWNGRADE: dict[str, StructuredMode] = {
    "json_schema": "json_object",
    "json_object": "instructions",
}


class OpenAIClient(BaseLLMClient):
    """Chat completions over the OpenAI wire format.

    Parameters
    ----------
    model
        Model name (``gpt-4o-mini``, ``llama3.1:8b`` on Ollama, ...).
    api_key
        Key sent as a bearer token; local servers accept any non-empty string.
    base_url
        Server root including ``/v1``; ``None`` is OpenAI (or ``OPENAI_BASE_URL``).
    compatible
        True for a non-OpenAI server: recorded as backend ``openai-compatible`` and sends
        ``max_tokens`` (which they all accept) instead of ``max_completion_tokens``.
    structured_mode
        Starting mode for JSON answers. A server that rejects ``response_format`` (HTTP 400
        or 422) is asked again with the next weaker mode, which is then kept for this
        client: ``json_schema`` -> ``json_object`` -> ``instructions``.
    timeout
        Seconds per HTTP request.
    cache, retry
        See :class:`~scagent.llm.base.BaseLLMClient`.
    """

    backend = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        compatible: bool = False,
        structured_mode: StructuredMode = "json_schema",
        timeout: float = 60.0,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(model, cache=cache, retry=retry)
        self._sdk = import_sdk("openai")
        if compatible:
            self.backend = "openai-compatible"
        self.compatible = compatible
        self.structured_mode: StructuredMode = structured_mode
        self.base_url = base_url
        # max_retries=0: retries are ours (scagent.llm.retry), the same for every backend.
        self._client = self._sdk.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )
        self.timeout = timeout

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": str(self._client.base_url),
            "structured_mode": self.structured_mode,
        }

    # -- wire format --------------------------------------------------------------------
    def _messages(self, request: LLMRequest, mode: StructuredMode) -> list[dict[str, Any]]:
        system = request.system or ""
        if request.schema is not None and mode != "json_schema":
            system = f"{system}\n\n{request.schema.instructions()}".strip()
        out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for m in request.messages:
            if m.role == "tool":
                out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            elif m.role == "assistant" and m.tool_calls:
                out.append(
                    {
                        "role": "assistant",
                        "content": m.content or None,
                        "tool_calls": [
                            {
                                "id": tc.id,
                                "type": "function",
                                "function": {
                                    "name": tc.name,
                                    "arguments": json.dumps(tc.arguments),
                                },
                            }
                            for tc in m.tool_calls
                        ],
                    }
                )
            else:
                out.append({"role": m.role, "content": m.content})
        return out

    def _kwargs(self, request: LLMRequest, mode: StructuredMode) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": self._messages(request, mode),
            "temperature": request.temperature,
        }
        # OpenAI's newer models refuse max_tokens; compatible servers may not know the new name.
        kwargs["max_tokens" if self.compatible else "max_completion_tokens"] = request.max_tokens
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in request.tools
            ]
        if request.tool_choice is not None:
            choice = request.tool_choice
            kwargs["tool_choice"] = (
                choice
                if choice in ("auto", "required", "none")
                else {"type": "function", "function": {"name": choice}}
            )
        if request.schema is not None and mode == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                # strict=False: pydantic schemas rarely meet strict mode's rules
                # (every field required, additionalProperties false).
                "json_schema": {
                    "name": request.schema.name,
                    "schema": dict(request.schema.json_schema),
                    "strict": False,
                },
            }
        elif request.schema is not None and mode == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def _send(self, request: LLMRequest) -> RawCompletion:
        sdk = self._sdk
        requests = 0
        while True:
            mode = self.structured_mode
            requests += 1
            try:
                resp = self._client.chat.completions.create(**self._kwargs(request, mode))
            except (sdk.BadRequestError, sdk.UnprocessableEntityError):
                if request.schema is None or mode not in _DOWNGRADE:
                    raise
                # The server does not support this response_format: step down and remember.
                self.structured_mode = _DOWNGRADE[mode]
                log.info(
                    "%s rejected response_format=%s; using %s",
                    self.spec,
                    mode,
                    self.structured_mode,
                )
                continue
            return self._parse(resp, requests)

    def _parse(self, resp: Any, requests: int) -> RawCompletion:
        choices = getattr(resp, "choices", None) or []
        if not choices:
            # Counted and handed on as an empty answer: a schema then triggers the repair.
            return RawCompletion(
                model=getattr(resp, "model", None) or self.model,
                finish_reason="no_choices",
                requests=requests,
            )
        choice = choices[0]
        msg = choice.message
        calls = []
        for i, tc in enumerate(getattr(msg, "tool_calls", None) or []):
            fn = tc.function
            args: dict[str, Any] = {}
            error = None
            try:
                decoded = json.loads(fn.arguments or "{}")
                if isinstance(decoded, dict):
                    args = decoded
                else:
                    error = f"arguments are a JSON {type(decoded).__name__}, not an object"
            except json.JSONDecodeError as exc:
                error = f"arguments are not valid JSON: {exc}"
            calls.append(ToolCall(tc.id or f"call_{i}", fn.name, args, error))
        usage = getattr(resp, "usage", None)
        return RawCompletion(
            text=msg.content or "",
            tool_calls=tuple(calls),
            model=getattr(resp, "model", None) or self.model,
            usage=Usage(
                int(getattr(usage, "prompt_tokens", 0) or 0),
                int(getattr(usage, "completion_tokens", 0) or 0),
            ),
            finish_reason=getattr(choice, "finish_reason", None),
            requests=requests,
        )

    def _probe(self) -> None:
        self._client.models.list()

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_sdk_error(exc, self._sdk, None if self.compatible else "OPENAI_API_KEY")
