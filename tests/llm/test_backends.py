"""The real OpenAI and Anthropic SDK clients against the scripted server on 127.0.0.1:
structured answers, the repair retry, retries on 429 / 5xx / timeouts, tool calls, usage."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from scagent.errors import LLMError
from scagent.llm import (
    InvalidLLMOutputError,
    LLMRequestError,
    Message,
    RetryPolicy,
    ToolCall,
    ToolSpec,
)
from scagent.llm.testing import (
    Reply,
    anthropic_reply,
    error_reply,
    json_reply,
    openai_reply,
)

ROUTES = ["openai", "anthropic"]


class ClusterLabel(BaseModel):
    cluster: str
    label: str
    confidence: float = Field(ge=0, le=1)
    markers: list[str]


GOOD = {"cluster": "3", "label": "B cell", "confidence": 0.8, "markers": ["MS4A1", "CD79A"]}


def invalid_reply(route: str) -> Reply:
    """An answer that fails validation in the route's structured mode."""
    if route == "openai":
        return openai_reply("Sure! The cluster is {label: B cell")  # not JSON
    return json_reply("anthropic", {"cluster": "3", "label": "B cell", "confidence": 7})


@pytest.mark.parametrize("route", ROUTES)
def test_structured_answer_is_parsed_and_validated(server, make_client, route):
    server.enqueue(route, json_reply(route, GOOD))
    client = make_client(route)
    r = client.complete("name cluster 3", system="You annotate cells.", json_schema=ClusterLabel)
    assert isinstance(r.parsed, ClusterLabel)
    assert r.parsed.markers == ["MS4A1", "CD79A"]
    assert r.data == GOOD
    assert (r.requests, r.repaired, r.cached) == (1, False, False)
    body = server.requests_for(route)[0].body
    if route == "openai":
        # The schema is enforced server-side through response_format.
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"]["title"] == "ClusterLabel"
        assert body["messages"][0] == {"role": "system", "content": "You annotate cells."}
        assert body["max_tokens"] > 0  # compatible servers get max_tokens
    else:
        # Anthropic: the schema is a tool the model is forced to call.
        assert body["tool_choice"] == {"type": "tool", "name": "structured_answer"}
        assert body["tools"][0]["input_schema"]["title"] == "ClusterLabel"
        assert body["system"] == "You annotate cells."


@pytest.mark.parametrize("route", ROUTES)
def test_invalid_then_valid_makes_one_repair_request(server, make_client, route):
    server.enqueue(route, invalid_reply(route), json_reply(route, GOOD))
    client = make_client(route)
    r = client.complete("name cluster 3", json_schema=ClusterLabel)
    assert r.parsed.label == "B cell"
    assert r.repaired and r.requests == 2
    assert client.usage.repairs == 1
    repair_turns = server.requests_for(route)[1].messages
    # The repair request shows the model its answer and the validation error.
    assert repair_turns[1]["role"] == "assistant"
    if route == "openai":
        assert "not valid JSON" in repair_turns[2]["content"]
    else:
        result = repair_turns[2]["content"][0]
        assert result["type"] == "tool_result" and result["is_error"] is True
        assert result["tool_use_id"] == repair_turns[1]["content"][0]["id"]
        assert "confidence" in result["content"]


@pytest.mark.parametrize("route", ROUTES)
def test_never_valid_json_raises_after_one_repair(server, make_client, route):
    server.enqueue(route, invalid_reply(route), invalid_reply(route), json_reply(route, GOOD))
    client = make_client(route)
    with pytest.raises(InvalidLLMOutputError) as info:
        client.complete("name cluster 3", json_schema=ClusterLabel)
    assert isinstance(info.value, LLMError) and info.value.exit_code == 16
    assert info.value.validation_error
    assert len(server.requests_for(route)) == 2  # the first answer and one repair, no more
    assert server.pending(route) == 1
    assert client.usage.failures == 1


@pytest.mark.parametrize("route", ROUTES)
def test_429_then_success_honours_retry_after(server, make_client, route):
    server.enqueue(
        route,
        error_reply(route, 429, "slow down", headers={"Retry-After": "0.3"}),
        json_reply(route, GOOD),
    )
    client = make_client(route)
    r = client.complete("x", json_schema=ClusterLabel)
    assert r.parsed.label == "B cell" and r.requests == 2
    first, second = server.requests_for(route)
    # backoff_base is 0.01 s, so a 0.3 s gap can only come from the Retry-After header.
    assert second.received_at - first.received_at >= 0.28
    assert client.usage.retries == 1 and client.usage.requests == 2


def test_retry_after_ms_header_is_read(server, make_client):
    server.enqueue(
        "openai",
        error_reply("openai", 429, headers={"retry-after-ms": "250"}),
        openai_reply("ok"),
    )
    assert make_client("openai").complete("x").text == "ok"
    first, second = server.requests_for("openai")
    assert second.received_at - first.received_at >= 0.23


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("status", [500, 503])
def test_server_error_then_success(server, make_client, route, status):
    server.enqueue(route, error_reply(route, status), json_reply(route, GOOD))
    r = make_client(route).complete("x", json_schema=ClusterLabel)
    assert r.parsed == ClusterLabel(**GOOD)
    assert len(server.requests_for(route)) == 2


@pytest.mark.parametrize("route", ROUTES)
def test_timeout_then_success(server, make_client, route):
    slow = json_reply(route, GOOD)
    slow.delay = 2.0  # far past the client's 0.3 s timeout
    server.enqueue(route, slow, json_reply(route, GOOD))
    r = make_client(route).complete("x", json_schema=ClusterLabel)
    assert r.parsed.label == "B cell" and r.requests == 2


@pytest.mark.parametrize("route", ROUTES)
def test_timeouts_until_retries_run_out(server, make_client, route):
    replies = []
    for _ in range(3):
        slow = json_reply(route, GOOD)
        slow.delay = 2.0
        replies.append(slow)
    server.enqueue(route, *replies)
    client = make_client(route, retry=RetryPolicy(max_retries=1, backoff_base=0.01, jitter=0))
    with pytest.raises(LLMRequestError) as info:
        client.complete("x", json_schema=ClusterLabel)
    assert info.value.kind == "timeout" and info.value.attempts == 2
    assert info.value.exit_code == 16
    assert len(server.requests_for(route)) == 2  # max_retries=1: two attempts
    assert client.usage.requests == 2 and client.usage.failures == 1


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(server, make_client, route, status):
    server.enqueue(route, error_reply(route, status, "nope"), json_reply(route, GOOD))
    client = make_client(route)
    with pytest.raises(LLMRequestError) as info:
        client.complete("x")
    assert info.value.status == status and info.value.attempts == 1
    assert len(server.requests_for(route)) == 1
    if status == 401 and route == "anthropic":
        assert "ANTHROPIC_API_KEY" in info.value.remedy


def test_connection_refused_is_retried_then_reported(make_client, server):
    url = server.openai_base_url
    server.close()  # nothing listens on that port any more
    from scagent.llm import get_client

    client = get_client(
        "openai-compatible:m",
        base_url=url,
        timeout=0.3,
        retry=RetryPolicy(max_retries=1, backoff_base=0.01, jitter=0),
        cache=False,
    )
    with pytest.raises(LLMRequestError) as info:
        client.complete("x")
    assert info.value.kind == "connection" and info.value.attempts == 2


TOOLS = [
    ToolSpec(
        "run_qc",
        "Filter cells and genes by quality metrics.",
        {"type": "object", "properties": {"min_genes": {"type": "integer"}}},
    ),
    # An OpenAI-style dict is accepted too.
    {
        "type": "function",
        "function": {
            "name": "cluster",
            "description": "Leiden clustering.",
            "parameters": {"type": "object", "properties": {"resolution": {"type": "number"}}},
        },
    },
]


def test_openai_tool_calls_are_parsed(server, make_client):
    server.enqueue(
        "openai",
        openai_reply(
            None,
            tool_calls=[("run_qc", {"min_genes": 200}), ("cluster", '{"resolution": ')],
        ),
    )
    r = make_client("openai").complete("run QC then cluster", tools=TOOLS, tool_choice="auto")
    good, broken = r.tool_calls
    assert (good.name, good.arguments, good.parse_error) == ("run_qc", {"min_genes": 200}, None)
    # Broken arguments are reported, not raised: the agent asks the model again.
    assert broken.name == "cluster" and broken.arguments == {} and "JSON" in broken.parse_error
    body = server.requests_for("openai")[0].body
    assert [t["function"]["name"] for t in body["tools"]] == ["run_qc", "cluster"]
    assert body["tool_choice"] == "auto"
    assert r.finish_reason == "tool_calls"


def test_anthropic_tool_calls_are_parsed(server, make_client):
    server.enqueue(
        "anthropic",
        anthropic_reply("I will run QC first.", tool_uses=[("run_qc", {"min_genes": 200})]),
    )
    r = make_client("anthropic").complete("run QC", tools=TOOLS, tool_choice="required")
    assert r.text == "I will run QC first."
    assert r.tool_calls == (ToolCall("toolu_0", "run_qc", {"min_genes": 200}),)
    body = server.requests_for("anthropic")[0].body
    assert body["tools"][1] == {
        "name": "cluster",
        "description": "Leiden clustering.",
        "input_schema": {"type": "object", "properties": {"resolution": {"type": "number"}}},
    }
    assert body["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize("route", ROUTES)
def test_tool_results_round_trip_in_each_wire_format(server, make_client, route):
    server.enqueue(route, openai_reply("done") if route == "openai" else anthropic_reply("done"))
    call = ToolCall("call_7", "run_qc", {"min_genes": 200})
    convo = [
        Message.user("run QC"),
        Message.assistant("", [call]),
        Message.tool_result("call_7", "filtered 12 cells", is_error=False),
    ]
    r = make_client(route).complete(convo, tools=TOOLS)
    assert r.text == "done"
    sent = server.requests_for(route)[0].messages
    if route == "openai":
        assert sent[1]["tool_calls"][0]["function"] == {
            "name": "run_qc",
            "arguments": json.dumps({"min_genes": 200}),
        }
        assert sent[2] == {"role": "tool", "tool_call_id": "call_7", "content": "filtered 12 cells"}
    else:
        assert sent[1]["content"] == [
            {"type": "tool_use", "id": "call_7", "name": "run_qc", "input": {"min_genes": 200}}
        ]
        assert sent[2]["role"] == "user"
        assert sent[2]["content"][0]["type"] == "tool_result"
        assert sent[2]["content"][0]["tool_use_id"] == "call_7"


@pytest.mark.parametrize("route", ROUTES)
def test_usage_accounting_sums_tokens_and_requests(server, make_client, route):
    reply = openai_reply if route == "openai" else anthropic_reply
    server.enqueue(route, error_reply(route, 500))
    kw = (
        {"prompt_tokens": 100, "completion_tokens": 10}
        if route == "openai"
        else {"input_tokens": 100, "output_tokens": 10}
    )
    for i in range(3):
        server.enqueue(route, reply(f"answer {i}", **kw))
    client = make_client(route)
    responses = [client.complete(f"q{i}", use_cache=False) for i in range(3)]
    assert [r.text for r in responses] == ["answer 0", "answer 1", "answer 2"]
    totals = client.usage.as_dict()
    assert totals["input_tokens"] == 300 and totals["output_tokens"] == 30
    assert totals["total_tokens"] == 330
    assert totals["requests"] == 4 and totals["retries"] == 1 and totals["calls"] == 3
    assert sum(r.requests for r in responses) == 4
    assert responses[0].usage.input_tokens == 100


def test_unsupported_response_format_falls_back_to_instructions(server, make_client):
    """An older compatible server that rejects response_format still gets parsed JSON."""

    def picky(request):
        if "response_format" in request.body:
            return error_reply("openai", 400, "response_format is not supported")
        return openai_reply("Here you go:\n```json\n" + json.dumps(GOOD) + "\n```")

    server.enqueue("openai", picky, picky, picky, picky)
    client = make_client("openai")
    r = client.complete("x", json_schema=ClusterLabel)
    assert r.parsed.label == "B cell"
    kinds = [req.body.get("response_format", {}).get("type") for req in server.requests]
    assert kinds == ["json_schema", "json_object", None]
    assert client.structured_mode == "instructions" and r.requests == 3
    # Without server enforcement the schema travels in the system prompt.
    assert "ClusterLabel" in server.requests[-1].messages[0]["content"]
    # The client remembers: the next call goes straight to instructions.
    client.complete("y", json_schema=ClusterLabel)
    assert len(server.requests) == 4


def test_hosted_openai_sends_max_completion_tokens_and_seed(server, monkeypatch, tmp_path):
    from scagent.llm import get_client

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.enqueue("openai", openai_reply("hello"))
    client = get_client(
        "openai:gpt-test", base_url=server.openai_base_url, cache_dir=tmp_path, timeout=1
    )
    r = client.complete("hi", seed=7, temperature=0.2, max_tokens=99)
    assert client.backend == "openai" and r.backend == "openai"
    req = server.requests[0]
    assert req.headers["authorization"] == "Bearer sk-test"
    assert req.body["max_completion_tokens"] == 99 and "max_tokens" not in req.body
    assert req.body["seed"] == 7 and req.body["temperature"] == 0.2
    rec = r.record()
    assert rec["seed"] == 7 and rec["model"] == "scripted-model" and rec["cached"] is False


def test_anthropic_instructions_mode_parses_text(server, make_client):
    server.enqueue("anthropic", anthropic_reply("```json\n" + json.dumps(GOOD) + "\n```"))
    client = make_client("anthropic", structured_mode="instructions")
    r = client.complete("x", json_schema=ClusterLabel)
    assert r.parsed.cluster == "3"
    body = server.requests[0].body
    assert "tools" not in body and "JSON schema" in body["system"]


@pytest.mark.parametrize("route", ROUTES)
def test_ping_reports_reachability(server, make_client, route):
    client = make_client(route)
    client.ping()  # lists the server's models; no tokens spent
    assert client.usage.requests == 1 and client.usage.input_tokens == 0
    server.close()
    with pytest.raises(LLMRequestError) as info:
        client.ping()
    assert info.value.kind == "connection"


def test_answer_without_choices_is_repaired(server, make_client):
    empty = openai_reply("unused")
    empty.body["choices"] = []
    server.enqueue("openai", empty, json_reply("openai", GOOD))
    r = make_client("openai").complete("x", json_schema=ClusterLabel)
    assert r.parsed.label == "B cell" and r.repaired and r.requests == 2


def test_overloaded_anthropic_529_is_retried(server, make_client):
    server.enqueue("anthropic", error_reply("anthropic", 529, "overloaded"), anthropic_reply("ok"))
    assert make_client("anthropic").complete("x").text == "ok"
    assert len(server.requests) == 2
