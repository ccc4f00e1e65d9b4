"""Anthropic Messages API backend through the official ``anthropic`` SDK; structured
answers come back through a forced tool call, whose input is already a JSON object."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from ._sdk import classify_sdk_error, import_sdk
from .base import BaseLLMClient, LLMRequest, Message, RawCompletion, ToolCall, Usage
from .cache import ResponseCache
from .retry import Failure, RetryPolicy
from .structured import repair_instruction

__all__ = ["STRUCTURED_TOOL_NAME", "AnthropicClient"]

#: Name of the tool a structured answer is forced through.
STRUCTURED_TOOL_NAME = "structured_answer"


class AnthropicClient(BaseLLMClient):
    """Claude models over the Messages API.

    Parameters
    ----------
    model
        Model name (``claude-sonnet-4-5``, ...).
    api_key
        ``ANTHROPIC_API_KEY``.
    base_url
        Server root without ``/v1`` (the SDK appends ``/v1/messages``); ``None`` is
        Anthropic (or ``ANTHROPIC_BASE_URL``).
    structured_mode
        ``tool``: the answer schema becomes a tool the model must call (works with every
        Claude model); ``json_schema``: the API's native structured output
        (``output_config.format``, newer models only); ``instructions``: the schema goes
        in the system prompt and the text is parsed. Requests that also offer tools use
        instructions.
    timeout
        Seconds per HTTP request.

    Notes
    -----
    The Messages API has no ``seed``; it is recorded in the response record but not sent.
    Recent SDKs no longer take ``temperature`` (newer models fix it); it is sent only when
    the installed SDK accepts it, and always recorded.
    """

    backend = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        structured_mode: Literal["tool", "json_schema", "instructions"] = "tool",
        timeout: float = 60.0,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(model, cache=cache, retry=retry)
        self._sdk = import_sdk("anthropic")
        self.structured_mode = structured_mode
        self.base_url = base_url
        # max_retries=0: retries are ours (scagent.llm.retry), the same for every backend.
        self._client = self._sdk.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )
        self.timeout = timeout
        params = inspect.signature(self._client.messages.create).parameters
        self._sends_temperature = "temperature" in params
        self._has_output_config = "output_config" in params

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": str(self._client.base_url),
            "structured_mode": self.structured_mode,
        }

    def _uses_tool(self, request: LLMRequest) -> bool:
        return request.schema is not None and self.structured_mode == "tool" and not request.tools

    # -- wire format --------------------------------------------------------------------
    @staticmethod
    def _blocks(m: Message) -> tuple[str, list[dict[str, Any]]]:
        if m.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id,
                "content": m.content,
            }
            if m.is_error:
                block["is_error"] = True
            return "user", [block]
        blocks: list[dict[str, Any]] = []
        if m.content:  # the API rejects empty text blocks
            blocks.append({"type": "text", "text": m.content})
        for tc in m.tool_calls:
            blocks.append({"type": "tool_use", "id": tc.id, "name": tc.name, "input": tc.arguments})
        if not blocks:
            blocks.append({"type": "text", "text": "(empty)"})
        return m.role, blocks

    def _messages(self, request: LLMRequest) -> list[dict[str, Any]]:
        # Tool results travel in user turns, and the API wants roles to alternate:
        # consecutive turns of one role are merged into one turn of several blocks.
        out: list[dict[str, Any]] = []
        for m in request.messages:
            role, blocks = self._blocks(m)
            if out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": role, "content": blocks})
        return out

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": self._messages(request),
        }
        if self._sends_temperature:
            kwargs["temperature"] = request.temperature
        native = (
            request.schema is not None
            and self.structured_mode == "json_schema"
            and self._has_output_config
        )
        if native:
            assert request.schema is not None
            kwargs["output_config"] = {
                "format": {"type": "json_schema", "schema": dict(request.schema.json_schema)}
            }
        system = request.system or ""
        if request.schema is not None and not self._uses_tool(request) and not native:
            system = f"{system}\n\n{request.schema.instructions()}".strip()
        if system:
            kwargs["system"] = system
        tools = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
            for t in request.tools
        ]
        if self._uses_tool(request):
            assert request.schema is not None
            tools = [
                {
                    "name": STRUCTURED_TOOL_NAME,
                    "description": f"Submit the answer ({request.schema.name}) as structured data.",
                    "input_schema": dict(request.schema.json_schema),
                }
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL_NAME}
        elif request.tool_choice is not None:
            choice = request.tool_choice
            kwargs["tool_choice"] = {
                "auto": {"type": "auto"},
                "required": {"type": "any"},
                "none": {"type": "none"},
            }.get(choice, {"type": "tool", "name": choice})
        if tools:
            kwargs["tools"] = tools
        return kwargs

    def _send(self, request: LLMRequest) -> RawCompletion:
        resp = self._client.messages.create(**self._kwargs(request))
        texts: list[str] = []
        calls: list[ToolCall] = []
        structured = structured_id = None
        for block in getattr(resp, "content", None) or []:
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind == "tool_use":
                args = block.input if isinstance(block.input, dict) else {}
                error = None if isinstance(block.input, dict) else "tool input is not an object"
                if self._uses_tool(request) and block.name == STRUCTURED_TOOL_NAME:
                    structured, structured_id = block.input, block.id
                else:
                    calls.append(ToolCall(block.id, block.name, args, error))
        usage = getattr(resp, "usage", None)
        return RawCompletion(
            text="".join(texts),
            tool_calls=tuple(calls),
            model=getattr(resp, "model", None) or self.model,
            usage=Usage(
                int(getattr(usage, "input_tokens", 0) or 0),
                int(getattr(usage, "output_tokens", 0) or 0),
            ),
            finish_reason=getattr(resp, "stop_reason", None),
            structured=structured,
            structured_call_id=structured_id,
        )

    def _probe(self) -> None:
        self._client.models.list()

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_sdk_error(exc, self._sdk, "ANTHROPIC_API_KEY")

    def _repair_turn(self, raw: RawCompletion, error: str) -> list[Message]:
        if raw.structured_call_id is None:
            return super()._repair_turn(raw, error)
        # The invalid answer was a tool call: it must be answered by a tool_result.
        args = raw.structured if isinstance(raw.structured, dict) else {}
        return [
            Message.assistant(
                raw.text, [ToolCall(raw.structured_call_id, STRUCTURED_TOOL_NAME, args)]
            ),
            Message.tool_result(raw.structured_call_id, repair_instruction(error), is_error=True),
        ]
