"""The offline backend answers only through registered deterministic responders."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from scagent.errors import LLMError
from scagent.llm import (
    InvalidLLMOutputError,
    OfflineCannotAnswerError,
    OfflineClient,
    get_client,
    register_offline_responder,
    unregister_offline_responder,
)


class Label(BaseModel):
    label: str
    confidence: float


def test_free_text_is_refused_clearly():
    client = OfflineClient()
    with pytest.raises(OfflineCannotAnswerError) as info:
        client.complete("what cell type expresses CD3E?")
    assert isinstance(info.value, LLMError) and info.value.exit_code == 16
    assert "cannot answer free text" in info.value.message
    assert "--llm" in info.value.remedy
    assert client.usage.failures == 1 and client.usage.requests == 0


def test_responder_reads_context_and_is_validated():
    def score(request):
        markers = request.context["markers"]
        return {"label": "T cell" if "CD3E" in markers else "Unknown", "confidence": 0.9}

    client = OfflineClient(responders={"annotate": score})
    r = client.complete(
        "prompt text is ignored offline",
        json_schema=Label,
        prompt_version="annotate.v2",
        context={"markers": ["CD3E", "CD2"]},
    )
    assert r.parsed == Label(label="T cell", confidence=0.9)
    assert r.backend == "offline" and r.model == "offline/score"
    assert r.requests == 0 and not r.cached
    # A prompt no responder covers is still refused.
    with pytest.raises(OfflineCannotAnswerError, match="interpret"):
        client.complete("x", prompt_version="interpret.v1")


def test_longest_prefix_and_default():
    client = OfflineClient(lambda req: "default")
    client.register(lambda req: "annotate", prompt="annotate")
    client.register(lambda req: "annotate-llm", prompt="annotate.llm")
    assert client.complete("x", prompt_version="annotate.llm.v3").text == "annotate-llm"
    assert client.complete("x", prompt_version="annotate.v1").text == "annotate"
    assert client.complete("x", prompt_version="other").text == "default"


def test_invalid_offline_answer_raises_without_repair():
    calls = []

    def bad(request):
        calls.append(1)
        return {"label": "T cell"}  # no confidence

    client = OfflineClient(bad)
    with pytest.raises(InvalidLLMOutputError, match="confidence"):
        client.complete("x", json_schema=Label)
    assert len(calls) == 1  # deterministic: asking again would not help


def test_pydantic_answer_and_global_registry():
    register_offline_responder(lambda req: Label(label="B cell", confidence=0.5), "demo.")
    try:
        client = get_client("offline")
        r = client.complete("x", json_schema=Label, prompt_version="demo.v1")
        assert r.parsed.label == "B cell" and r.data == {"label": "B cell", "confidence": 0.5}
    finally:
        unregister_offline_responder("demo.")
    with pytest.raises(OfflineCannotAnswerError):
        get_client("offline").complete("x", prompt_version="demo.v1")


def test_offline_answers_are_not_cached():
    n = []
    client = OfflineClient(lambda req: n.append(1) or "same")
    client.complete("x")
    client.complete("x")
    assert len(n) == 2 and client.cache is None
