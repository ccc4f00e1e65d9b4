"""map_concurrent: bounded concurrency, answers in request order."""

from __future__ import annotations

import threading
import time

import pytest

from scagent.errors import InvalidParameterError
from scagent.llm import LLMRequestError, OfflineClient, map_concurrent
from scagent.llm.testing import error_reply, openai_reply


def test_order_and_bound_against_the_server(server, make_client):
    def echo(request):
        reply = openai_reply("re: " + request.messages[-1]["content"])
        reply.delay = 0.15
        return reply

    server.enqueue("openai", *[echo] * 8)
    client = make_client("openai", cache=False)
    prompts = [f"cluster {i}" for i in range(8)]
    done = []
    started = time.perf_counter()
    out = map_concurrent(client, prompts, max_workers=3, on_done=lambda i, r: done.append(i))
    elapsed = time.perf_counter() - started
    assert [r.text for r in out] == [f"re: cluster {i}" for i in range(8)]
    assert server.max_in_flight == 3
    assert sorted(done) == list(range(8))
    assert elapsed < 8 * 0.15  # ran concurrently
    assert client.usage.requests == 8 and client.usage.calls == 8


def test_bound_is_respected_offline():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return request.context["i"] * 2

    client = OfflineClient(lambda r: str(slow(r)))
    reqs = [{"messages": "x", "context": {"i": i}} for i in range(12)]
    out = map_concurrent(client, reqs, max_workers=2)
    assert [int(r.text) for r in out] == [2 * i for i in range(12)]
    assert state["peak"] == 2


def test_failures_in_place_or_raised(server, make_client):
    def by_prompt(request):
        if request.messages[-1]["content"] == "bad":
            return error_reply("openai", 400, "bad request")
        return openai_reply("ok")

    client = make_client("openai", cache=False)
    server.enqueue("openai", *[by_prompt] * 3)
    out = map_concurrent(client, ["a", "bad", "c"], max_workers=2, return_exceptions=True)
    assert out[0].text == "ok" and out[2].text == "ok"
    assert isinstance(out[1], LLMRequestError) and out[1].status == 400
    server.enqueue("openai", *[by_prompt] * 2)
    with pytest.raises(LLMRequestError):
        map_concurrent(client, ["bad", "a"], max_workers=2)


def test_bad_max_workers():
    with pytest.raises(InvalidParameterError):
        map_concurrent(OfflineClient(lambda r: "x"), ["a"], max_workers=0)
    assert map_concurrent(OfflineClient(lambda r: "x"), [], max_workers=1) == []
