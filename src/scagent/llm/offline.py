"""The offline backend: deterministic answers from registered responder functions, and a
clear error for anything else — it never pretends to understand free text.

Contract for responders (how a capability plugs its deterministic answer in)
---------------------------------------------------------------------------
A responder is ``fn(request: LLMRequest) -> answer``. It is chosen by the request's
``prompt_version``: an exact match first, then the longest registered prefix
(``"annotate"`` serves ``"annotate.v3"``), then the default responder (``prompt=None``).
It reads ``request.context`` (the structured inputs the caller built the prompt from, e.g.
each cluster's markers), not the prompt text. Its answer may be:

- a ``dict`` / ``list`` or a pydantic model instance: the structured answer; validated
  against ``json_schema`` like any backend's answer (an invalid one raises
  :class:`~scagent.llm.base.InvalidLLMOutputError`; there is no repair offline);
- a ``str``: the text answer (parsed as JSON when a schema was asked for);
- a :class:`~scagent.llm.base.RawCompletion`, to return tool calls.

The annotation engine registers its marker-database scorer this way, so code written
against :class:`~scagent.llm.LLMClient` runs unchanged with ``--llm offline``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from .base import BaseLLMClient, LLMRequest, OfflineCannotAnswerError, RawCompletion

__all__ = [
    "OfflineClient",
    "Responder",
    "register_offline_responder",
    "unregister_offline_responder",
]

Responder = Callable[[LLMRequest], Any]

_GLOBAL: dict[str | None, Responder] = {}
_LOCK = threading.Lock()


def register_offline_responder(fn: Responder, prompt: str | None = None) -> Responder:
    """Register ``fn`` for every offline client, for prompts starting with ``prompt``
    (``None``: the default). Returns ``fn`` so it can be used as a decorator's body."""
    with _LOCK:
        _GLOBAL[prompt] = fn
    return fn


def unregister_offline_responder(prompt: str | None = None) -> None:
    """Remove the process-wide responder registered for ``prompt`` (no error if absent)."""
    with _LOCK:
        _GLOBAL.pop(prompt, None)


def _lookup(table: dict[str | None, Responder], prompt_version: str) -> Responder | None:
    if prompt_version in table:
        return table[prompt_version]
    prefixes = [p for p in table if p is not None and prompt_version.startswith(p)]
    if prefixes:
        return table[max(prefixes, key=len)]
    return table.get(None)


class OfflineClient(BaseLLMClient):
    """A backend that needs no network and no key; answers only through responders.

    Parameters
    ----------
    responder
        A default responder for this client (``prompt=None``).
    responders
        More, by prompt-version prefix. They take precedence over process-wide ones
        registered with :func:`register_offline_responder`.

    Notes
    -----
    Answers are not cached (they are cheap and deterministic), never retried, and an
    answer that does not fit the schema raises at once (no repair request).
    """

    backend = "offline"
    cacheable = False
    # A deterministic responder would give the same invalid answer again.
    repairs_invalid_output = False

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        responders: dict[str, Responder] | None = None,
    ) -> None:
        super().__init__("offline", cache=None)
        self._responders: dict[str | None, Responder] = dict(responders or {})
        if responder is not None:
            self._responders[None] = responder

    @property
    def spec(self) -> str:
        return "offline"

    def ping(self) -> None:
        """Always reachable: nothing to connect to."""

    def register(self, fn: Responder, prompt: str | None = None) -> Responder:
        """Register ``fn`` on this client only (see the module docstring)."""
        self._responders[prompt] = fn
        return fn

    def responder_for(self, prompt_version: str) -> Responder | None:
        """The responder that would answer ``prompt_version``, if any."""
        fn = _lookup(self._responders, prompt_version)
        if fn is None:
            with _LOCK:
                fn = _lookup(dict(_GLOBAL), prompt_version)
        return fn

    def _send(self, request: LLMRequest) -> RawCompletion:
        fn = self.responder_for(request.prompt_version)
        if fn is None:
            raise OfflineCannotAnswerError(
                "the offline backend cannot answer free text: no deterministic responder is "
                f"registered for prompt {request.prompt_version!r}"
            )
        answer = fn(request)
        name = getattr(fn, "__name__", type(fn).__name__)
        if isinstance(answer, RawCompletion):
            return answer
        if isinstance(answer, BaseModel):
            answer = answer.model_dump(mode="json")
        if isinstance(answer, str):
            return RawCompletion(text=answer, model=f"offline/{name}", requests=0)
        if isinstance(answer, dict | list):
            return RawCompletion(
                text=json.dumps(answer, ensure_ascii=False, default=str),
                model=f"offline/{name}",
                structured=answer,
                requests=0,
            )
        raise TypeError(
            f"offline responder {name!r} returned {type(answer).__name__}; "
            "expected str, dict, list, a pydantic model or RawCompletion"
        )
