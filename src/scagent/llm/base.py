"""One client protocol for every LLM backend: typed messages in, one typed response out.

Backends only translate a normalized :class:`LLMRequest` into their wire format and back
(:meth:`BaseLLMClient._send`); everything that must behave the same across backends lives
here, once: the response cache, retries with backoff, the JSON repair retry, and token and
request accounting.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from scagent.errors import InvalidParameterError, LLMError, ScagentError

from .cache import ResponseCache, cache_key
from .retry import Failure, RetryPolicy
from .structured import OutputSchema, SchemaMismatch, repair_instruction

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "BaseLLMClient",
    "InvalidLLMOutputError",
    "LLMClient",
    "LLMRequest",
    "LLMRequestError",
    "LLMResponse",
    "Message",
    "OfflineCannotAnswerError",
    "RawCompletion",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "UsageTotals",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 2048

Role = Literal["user", "assistant", "tool"]


# --------------------------------------------------------------------------- errors


class InvalidLLMOutputError(LLMError):
    """The model's answer was not valid for the requested schema, even after one repair."""

    default_remedy = (
        "try a stronger model, lower the chunk size, or use --llm offline for the "
        "deterministic answer"
    )

    def __init__(
        self,
        message: str,
        remedy: str | None = None,
        *,
        raw_text: str = "",
        validation_error: str = "",
    ) -> None:
        super().__init__(message, remedy)
        self.raw_text = raw_text
        self.validation_error = validation_error


class LLMRequestError(LLMError):
    """The backend refused the request, or kept failing until the retries ran out."""

    def __init__(
        self,
        message: str,
        remedy: str | None = None,
        *,
        kind: str = "unknown",
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, remedy)
        self.kind = kind
        self.status = status
        self.attempts = attempts


class OfflineCannotAnswerError(LLMError):
    """The offline backend was asked something no deterministic responder answers."""

    default_remedy = (
        "configure an LLM (--llm openai:MODEL / anthropic:MODEL, or SCAGENT_LLM) "
        "or use the command's offline mode"
    )


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class ToolCall:
    """A tool (function) call proposed by the model.

    ``arguments`` is the decoded argument object; when the model sent arguments that are
    not a JSON object, it is empty and ``parse_error`` says why (the caller decides whether
    to ask again).
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    parse_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Message:
    """One conversation turn.

    ``role`` is ``user``, ``assistant`` (optionally with ``tool_calls``) or ``tool`` (the
    result of the call ``tool_call_id``; ``is_error`` marks a failed call).
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls("assistant", text, tuple(tool_calls))

    @classmethod
    def tool_result(cls, tool_call_id: str, content: str, *, is_error: bool = False) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, is_error=is_error)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.is_error:
            out["is_error"] = True
        return out


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    @classmethod
    def coerce(cls, spec: ToolSpec | Mapping[str, Any]) -> ToolSpec:
        """Accept a ToolSpec, an OpenAI ``{"type": "function", "function": {...}}`` entry,
        or a plain / Anthropic-style ``{"name", "description", "parameters"|"input_schema"}``."""
        if isinstance(spec, ToolSpec):
            return spec
        if not isinstance(spec, Mapping):
            raise TypeError(f"a tool must be a ToolSpec or a mapping, got {type(spec).__name__}")
        if "function" in spec:
            spec = spec["function"]
        if "name" not in spec:
            raise InvalidParameterError(f"tool specification without a name: {dict(spec)!r}")
        params = spec.get("parameters") or spec.get("input_schema") or {"type": "object"}
        return cls(str(spec["name"]), str(spec.get("description", "")), dict(params))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }


def _coerce_tool_call(obj: ToolCall | Mapping[str, Any]) -> ToolCall:
    if isinstance(obj, ToolCall):
        return obj
    if "function" in obj:  # OpenAI wire shape
        fn = obj["function"]
        args = fn.get("arguments", {})
        if isinstance(args, str):
            args = json.loads(args or "{}")
        return ToolCall(str(obj.get("id", "")), str(fn["name"]), dict(args))
    return ToolCall(str(obj.get("id", "")), str(obj["name"]), dict(obj.get("arguments", {})))


def normalize_messages(
    messages: str | Message | Mapping[str, Any] | Iterable[Message | Mapping[str, Any] | str],
    system: str | None = None,
) -> tuple[tuple[Message, ...], str | None]:
    """Turn what callers pass into ``(messages, system)``.

    A bare string is one user message; dict messages use OpenAI's shape (``role``,
    ``content``, optional ``tool_calls`` / ``tool_call_id``); ``system`` messages are folded
    into the system prompt because Anthropic takes it apart from the turns.
    """
    if isinstance(messages, str | Message | Mapping):
        messages = [messages]
    systems = [system] if system else []
    out: list[Message] = []
    for m in messages:
        if isinstance(m, str):
            out.append(Message.user(m))
        elif isinstance(m, Message):
            out.append(m)
        elif isinstance(m, Mapping):
            role = m.get("role", "user")
            content = m.get("content") or ""
            if not isinstance(content, str):
                raise TypeError("message content must be a string")
            if role == "system":
                systems.append(content)
                continue
            if role not in ("user", "assistant", "tool"):
                raise InvalidParameterError(f"unknown message role {role!r}")
            out.append(
                Message(
                    role,
                    content,
                    tuple(_coerce_tool_call(tc) for tc in m.get("tool_calls") or ()),
                    m.get("tool_call_id"),
                    bool(m.get("is_error", False)),
                )
            )
        else:
            raise TypeError(f"cannot use {type(m).__name__} as a message")
    if not out:
        raise InvalidParameterError("at least one message is needed")
    return tuple(out), ("\n\n".join(systems) if systems else None)


# --------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class Usage:
    """Tokens spent by one call (all its HTTP requests, retries and repair included)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass
class UsageTotals:
    """What a client has spent so far; thread-safe, aggregated over every call.

    ``requests`` counts HTTP requests (retries and repairs included); cached calls add to
    ``calls`` and ``cache_hits`` but spend no tokens or requests.
    """

    calls: int = 0
    requests: int = 0
    retries: int = 0
    repairs: int = 0
    failures: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        d["total_tokens"] = d["input_tokens"] + d["output_tokens"]
        return d


# --------------------------------------------------------------------------- request / response


@dataclass(frozen=True)
class LLMRequest:
    """A normalized request, as a backend (or an offline responder) sees it.

    ``context`` carries the structured inputs the prompt was built from (e.g. the markers
    of each cluster); remote backends never send it, offline responders read it instead of
    parsing the prompt. It is not part of the cache key (the prompt already is).
    """

    messages: tuple[Message, ...]
    system: str | None = None
    schema: OutputSchema | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    prompt_version: str = "unversioned"
    cache_key_extra: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None

    def key_payload(self) -> dict[str, Any]:
        """Everything that can change the answer, for the cache key."""
        return {
            "prompt_version": self.prompt_version,
            "system": self.system,
            "messages": [m.to_dict() for m in self.messages],
            "schema": self.schema.json_schema if self.schema else None,
            "tools": [t.to_dict() for t in self.tools],
            "tool_choice": self.tool_choice,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "extra": dict(self.cache_key_extra or {}),
        }


@dataclass(frozen=True)
class RawCompletion:
    """What a backend's single exchange produced, before JSON parsing.

    ``structured`` holds an already-decoded answer when the backend got one natively
    (Anthropic's forced tool); ``structured_call_id`` is that tool call's id, needed to
    send a repair turn.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    model: str = ""
    usage: Usage = Usage()
    finish_reason: str | None = None
    structured: Any = None
    structured_call_id: str | None = None
    requests: int = 1


@dataclass(frozen=True)
class LLMResponse:
    """One answer from :meth:`LLMClient.complete`.

    Attributes
    ----------
    text
        The model's text (for a structured answer: the JSON it sent).
    parsed
        The validated answer when a schema was given: an instance of the pydantic model,
        or the decoded JSON object for a dict schema; ``None`` otherwise.
    data
        The decoded JSON object behind ``parsed`` (plain dicts and lists).
    tool_calls
        Calls the model proposed (empty when none).
    usage
        Tokens this answer cost when it was produced (for a cache hit: the original cost,
        none of which was spent again).
    requests
        HTTP requests this call made: retries and the repair included, 0 for a cache hit.
    """

    text: str
    model: str
    backend: str
    parsed: Any = None
    data: Any = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    requests: int = 0
    latency_s: float = 0.0
    cached: bool = False
    repaired: bool = False
    finish_reason: str | None = None
    prompt_version: str = "unversioned"
    seed: int | None = None
    temperature: float = 0.0
    cache_key: str | None = None

    def record(self) -> dict[str, Any]:
        """The provenance record of this call (JSON-ready)."""
        return {
            "backend": self.backend,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "seed": self.seed,
            "temperature": self.temperature,
            "cached": self.cached,
            "repaired": self.repaired,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "requests": self.requests,
            "latency_s": round(self.latency_s, 4),
            "finish_reason": self.finish_reason,
            "cache_key": self.cache_key,
        }

    def to_cache(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "data": self.data,
            "tool_calls": [tc.to_dict() for tc in self.tool_calls],
            "usage": asdict(self.usage),
            "finish_reason": self.finish_reason,
            "repaired": self.repaired,
        }


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class LLMClient(Protocol):
    """What every backend offers. Build one with :func:`scagent.llm.get_client`."""

    backend: str
    model: str
    usage: UsageTotals

    def complete(
        self,
        messages: Any,
        *,
        system: str | None = None,
        json_schema: Any = None,
        tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        prompt_version: str = "unversioned",
        cache_key_extra: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        use_cache: bool = True,
    ) -> LLMResponse: ...


class BaseLLMClient:
    """Shared machinery; a backend subclasses it and implements :meth:`_send` and
    :meth:`_classify`.

    Parameters
    ----------
    model
        The model name sent to the backend.
    cache
        A :class:`ResponseCache`, or ``None`` to run without one.
    retry
        Backoff settings; ``retry.max_retries`` retries after the first attempt.
    """

    backend: str = "base"
    #: Whether answers may be cached (a deterministic local backend gains nothing).
    cacheable: ClassVar[bool] = True
    #: Whether an answer that does not fit the schema gets one repair request.
    repairs_invalid_output: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model = model
        self.cache = cache if self.cacheable else None
        self.retry = retry or RetryPolicy()
        self.usage = UsageTotals()
        self.history: list[dict[str, Any]] = []
        self._history_lock = threading.Lock()
        self._rng = random.Random()

    # -- what a backend implements --------------------------------------------------
    def _send(self, request: LLMRequest) -> RawCompletion:  # pragma: no cover - abstract
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> Failure | None:
        """Describe an exception from :meth:`_send`; ``None`` means it is not a transport
        failure and must propagate unchanged."""
        return None

    def _repair_turn(self, raw: RawCompletion, error: str) -> list[Message]:
        """Messages that show the model its invalid answer and ask for a corrected one."""
        return [Message.assistant(raw.text), Message.user(repair_instruction(error))]

    # -- public -----------------------------------------------------------------------
    @property
    def spec(self) -> str:
        return f"{self.backend}:{self.model}"

    def describe(self) -> dict[str, Any]:
        """Backend, model and cache folder, for provenance."""
        return {
            "backend": self.backend,
            "model": self.model,
            "cache_dir": str(self.cache.folder) if self.cache else None,
            "max_retries": self.retry.max_retries,
        }

    def _probe(self) -> None:
        """One cheap request that proves the backend answers (a backend overrides it)."""

    def ping(self) -> None:
        """Check, without retries, that the backend is reachable and accepts the key.

        For preflight checks (``scagent interpret`` exits early when no LLM answers). It
        lists the server's models: no tokens are spent.

        Raises
        ------
        LLMRequestError
            The server is unreachable, times out, or refuses the key.
        """
        try:
            self._probe()
        except ScagentError:
            raise
        except Exception as exc:
            failure = self._classify(exc)
            if failure is None:
                raise
            self.usage.add(requests=1)
            raise LLMRequestError(
                f"{self.spec} is not reachable: {failure.describe()}",
                failure.remedy,
                kind=failure.kind,
                status=failure.status,
            ) from exc
        self.usage.add(requests=1)

    def complete(
        self,
        messages: Any,
        *,
        system: str | None = None,
        json_schema: Any = None,
        tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        prompt_version: str = "unversioned",
        cache_key_extra: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        use_cache: bool = True,
    ) -> LLMResponse:
        """Ask the model once; see :class:`LLMClient` and ``docs/llm.md``.

        Parameters
        ----------
        messages
            A string (one user turn), a :class:`Message` / dict, or a list of them.
        system
            System prompt.
        json_schema
            A pydantic model class (answers are validated into it) or a JSON-schema dict;
            the answer is parsed into ``response.parsed``, with one repair request when it
            is invalid. Skipped when the model answers with tool calls instead.
        tools
            Tools the model may call (:class:`ToolSpec` or OpenAI / Anthropic dicts).
        tool_choice
            ``"auto"``, ``"required"``, ``"none"`` or a tool name.
        temperature, seed, max_tokens
            Sampling settings (Anthropic ignores ``seed``; it is still recorded).
        prompt_version
            Name and version of the prompt template; in the cache key and the record.
        cache_key_extra
            More things the answer depends on (species, tissue, guardrail settings...).
        context
            Structured inputs for offline responders; never sent to a remote model.
        use_cache
            Set False to bypass the cache for this call (the answer is still stored).

        Returns
        -------
        LLMResponse

        Raises
        ------
        InvalidLLMOutputError
            The answer stayed invalid after the repair request.
        LLMRequestError
            The backend refused the request or the retries ran out.
        """
        started = time.perf_counter()
        msgs, system = normalize_messages(messages, system)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidParameterError(
                f"max_tokens must be a positive integer, got {max_tokens!r}"
            )
        request = LLMRequest(
            messages=msgs,
            system=system,
            schema=OutputSchema.coerce(json_schema),
            tools=tuple(ToolSpec.coerce(t) for t in tools or ()),
            tool_choice=tool_choice,
            temperature=float(temperature),
            seed=seed,
            max_tokens=max_tokens,
            prompt_version=prompt_version,
            cache_key_extra=cache_key_extra,
            context=context,
        )
        key = None
        if self.cache is not None:
            key = cache_key(self.backend, self.model, request.key_payload())
            if use_cache:
                hit = self._from_cache(key, request, started)
                if hit is not None:
                    return hit
        try:
            response = self._complete_uncached(request, started, key)
        except LLMError:
            self.usage.add(calls=1, failures=1)
            raise
        self.usage.add(calls=1)
        if self.cache is not None and key is not None:
            self.cache.put(key, response.to_cache())
        self._remember(response)
        return response

    # -- internals --------------------------------------------------------------------
    def _remember(self, response: LLMResponse) -> None:
        with self._history_lock:
            self.history.append(response.record())

    def _from_cache(self, key: str, request: LLMRequest, started: float) -> LLMResponse | None:
        assert self.cache is not None
        entry = self.cache.get(key)
        if entry is None:
            self.usage.add(cache_misses=1)
            return None
        try:
            tool_calls = tuple(ToolCall(**tc) for tc in entry.get("tool_calls", []))
            parsed = None
            data = entry.get("data")
            if request.schema is not None and not tool_calls:
                parsed = request.schema.validate(data)
            usage = Usage(**entry.get("usage", {}))
            response = LLMResponse(
                text=entry["text"],
                model=entry["model"],
                backend=self.backend,
                parsed=parsed,
                data=data,
                tool_calls=tool_calls,
                usage=usage,
                requests=0,
                latency_s=time.perf_counter() - started,
                cached=True,
                repaired=bool(entry.get("repaired", False)),
                finish_reason=entry.get("finish_reason"),
                prompt_version=request.prompt_version,
                seed=request.seed,
                temperature=request.temperature,
                cache_key=key,
            )
        except (SchemaMismatch, KeyError, TypeError, ValueError) as exc:
            # A stale entry (e.g. the schema gained a field) is a miss, like a corrupt one.
            self.cache.report_bad_entry(key, f"does not fit the request ({exc})", was_hit=True)
            self.usage.add(cache_misses=1)
            return None
        self.usage.add(calls=1, cache_hits=1)
        self._remember(response)
        return response

    def _send_with_retry(self, request: LLMRequest) -> RawCompletion:
        """One exchange, retried on transient failures; counts every HTTP request."""
        policy = self.retry
        attempt = 0
        while True:
            try:
                raw = self._send(request)
            except ScagentError:
                raise
            except Exception as exc:
                failure = self._classify(exc)
                if failure is None:
                    raise
                self.usage.add(requests=1)
                if not failure.retryable:
                    raise LLMRequestError(
                        f"{self.spec} refused the request: {failure.describe()}",
                        failure.remedy,
                        kind=failure.kind,
                        status=failure.status,
                        attempts=attempt + 1,
                    ) from exc
                if attempt >= policy.max_retries:
                    raise LLMRequestError(
                        f"{self.spec} failed after {attempt + 1} attempts: {failure.describe()}",
                        failure.remedy,
                        kind=failure.kind,
                        status=failure.status,
                        attempts=attempt + 1,
                    ) from exc
                delay = policy.delay(attempt, failure.retry_after, self._rng)
                log.info(
                    "%s: %s; retry %d/%d in %.2fs",
                    self.spec,
                    failure.describe(),
                    attempt + 1,
                    policy.max_retries,
                    delay,
                )
                self.usage.add(retries=1)
                time.sleep(delay)
                attempt += 1
                continue
            self.usage.add(
                requests=raw.requests,
                input_tokens=raw.usage.input_tokens,
                output_tokens=raw.usage.output_tokens,
            )
            return replace(raw, requests=raw.requests + attempt)

    def _complete_uncached(
        self, request: LLMRequest, started: float, key: str | None
    ) -> LLMResponse:
        schema = request.schema
        raw = self._send_with_retry(request)
        requests, usage = raw.requests, raw.usage
        parsed = data = None
        repaired = False
        if schema is not None and not raw.tool_calls:
            try:
                data, parsed = schema.parse(raw.structured, raw.text)
            except SchemaMismatch as first:
                if not self.repairs_invalid_output:
                    raise InvalidLLMOutputError(
                        f"{self.spec} returned an answer for {request.prompt_version!r} that "
                        f"does not match the schema {schema.name!r}: {first}",
                        raw_text=raw.text,
                        validation_error=str(first),
                    ) from first
                # One repair request: show the model its answer and the validation error.
                self.usage.add(repairs=1)
                repaired = True
                log.info(
                    "%s: invalid structured answer, asking once to repair: %s", self.spec, first
                )
                repair = replace(
                    request, messages=request.messages + tuple(self._repair_turn(raw, str(first)))
                )
                raw = self._send_with_retry(repair)
                requests += raw.requests
                usage = usage + raw.usage
                try:
                    data, parsed = schema.parse(raw.structured, raw.text)
                except SchemaMismatch as second:
                    raise InvalidLLMOutputError(
                        f"{self.spec} returned an answer that does not match the schema "
                        f"{schema.name!r}, even after one repair request: {second}",
                        raw_text=raw.text,
                        validation_error=str(second),
                    ) from second
        text = raw.text
        if not text and data is not None:
            text = json.dumps(data, ensure_ascii=False)
        return LLMResponse(
            text=text,
            model=raw.model or self.model,
            backend=self.backend,
            parsed=parsed,
            data=data,
            tool_calls=raw.tool_calls,
            usage=usage,
            requests=requests,
            latency_s=time.perf_counter() - started,
            cached=False,
            repaired=repaired,
            finish_reason=raw.finish_reason,
            prompt_version=request.prompt_version,
            seed=request.seed,
            temperature=request.temperature,
            cache_key=key,
        )


#: Signature of an offline responder (see :mod:`scagent.llm.offline`).
Responder = Callable[[LLMRequest], Any]
