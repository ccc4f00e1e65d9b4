"""The LLM loop against a scripted OpenAI-compatible server on 127.0.0.1: tool calls, schema errors, gene guard, fallback."""

from __future__ import annotations

import json

import pytest

from scagent.llm import RetryPolicy, get_client
from scagent.llm.testing import ScriptedLLMServer, anthropic_reply, openai_reply


@pytest.fixture
def server():
    with ScriptedLLMServer() as srv:
        yield srv


def _client(server, route="openai"):
    if route == "anthropic":
        return get_client(
            "anthropic:scripted-claude",
            base_url=server.anthropic_base_url,
            api_key="test",
            cache=False,
            retry=RetryPolicy(max_retries=0),
        )
    return get_client(
        "openai-compatible:m",
        base_url=server.openai_base_url,
        cache=False,
        timeout=10,
        retry=RetryPolicy(max_retries=0),
    )


def _tool_messages(request) -> list[dict]:
    return [m for m in request.messages if m.get("role") == "tool"]


def test_tool_schemas_are_generated_from_the_registry(server, processed, make_agent):
    from scagent.tools import get_tool, list_tools

    server.enqueue("openai", openai_reply("Nothing to run."))
    agent, _io = make_agent(processed, llm=_client(server))
    agent.handle("hello")
    tools = server.requests[0].body["tools"]
    assert [t["function"]["name"] for t in tools] == [t.id for t in list_tools()]
    leiden = next(t["function"] for t in tools if t["function"]["name"] == "leiden")
    assert leiden["parameters"] == get_tool("leiden").json_schema()["parameters"]
    system = server.requests[0].body["messages"][0]
    assert system["role"] == "system" and "Branch: main at step 7" in system["content"]


def test_multi_step_plan_is_confirmed_once_and_recorded(server, fresh, make_agent):
    server.enqueue(
        "openai",
        openai_reply(
            "QC, filtering, then clustering.",
            tool_calls=[("qc_metrics", {}), ("filter_cells", {}), ("leiden", {"resolution": 0.5})],
        ),
        openai_reply("Done: the cells form several clusters."),
    )
    agent, io = make_agent(fresh, answers=["y"], llm=_client(server))
    agent.handle("QC the data, filter it and cluster at 0.5")
    assert io.questions == ["Proceed? [y/N] "]  # one confirmation for the whole plan
    plan = io.text("plan")
    assert "normalize (prerequisite" in plan and "neighbors (prerequisite" in plan
    history = fresh.history()
    assert [s.tool_id for s in history] == [
        "import", "qc_metrics", "filter_cells", "normalize", "hvg", "pca", "neighbors", "leiden",
    ]  # fmt: skip
    assert {s.requested_by for s in history[1:]} == {"llm:scripted-model"}
    assert history[-1].params["resolution"] == 0.5
    # Each call got a compact summary back, in the order of the calls.
    results = _tool_messages(server.requests[1])
    assert [json.loads(m["content"])["ok"] for m in results] == [True, True, True]
    assert json.loads(results[2]["content"])["steps"][-1].startswith("leiden@")
    assert "Done: the cells form several clusters." in io.text("agent")


def test_invalid_parameter_goes_back_to_the_model(server, processed, make_agent):
    server.enqueue(
        "openai",
        openai_reply(None, tool_calls=[("leiden", {"resolution": -1})]),
        openai_reply(None, tool_calls=[("leiden", {"resolution": 0.6})]),
        openai_reply("Re-clustered."),
    )
    agent, io = make_agent(processed, answers=["y"], llm=_client(server))
    head = processed.head()
    agent.handle("cluster more coarsely")
    assert "cannot run" in io.text("warning") and "resolution" in io.text("warning")
    error_result = _tool_messages(server.requests[1])[-1]
    assert "resolution" in error_result["content"] and "allowed" in error_result["content"]
    # The bad call ran nothing; the corrected one ran once.
    history = processed.history()
    assert history[-2].snapshot_id == head
    assert (history[-1].tool_id, history[-1].params["resolution"]) == ("leiden", 0.6)
    assert len(server.requests) == 3


def test_hallucinated_gene_is_not_printed(server, processed, make_agent):
    var = set(processed.adata.var_names)
    absent = next(g for g in ("ALB", "INS", "TTR", "APOA1") if g not in var)
    present = "CD8A"
    assert present in var
    server.enqueue(
        "openai",
        openai_reply(f"Cluster 3 is marked by {present} and {absent}; NK cells express CD56."),
    )
    agent, io = make_agent(processed, llm=_client(server))
    agent.handle("what marks cluster 3?")
    said = io.text()
    assert absent not in said
    assert present in said
    assert "[gene not in the data]" in io.text("agent")
    if "NCAM1" in var:
        assert "NCAM1" in io.text("agent")
    assert "gene check" in io.text("note")


def test_unknown_tool_and_broken_arguments_are_reported(server, processed, make_agent):
    server.enqueue(
        "openai",
        openai_reply(None, tool_calls=[("pseudobulk_dee", {}), ("leiden", "{not json")]),
        openai_reply("Sorry, I will stop."),
    )
    agent, io = make_agent(processed, llm=_client(server))
    head = processed.head()
    agent.handle("do DE")
    warnings = io.text("warning")
    assert "not available" in warnings and "not a JSON object" in warnings
    assert processed.head() == head
    assert len(_tool_messages(server.requests[1])) == 2


def test_declined_plan_stops_the_loop(server, processed, make_agent):
    server.enqueue("openai", openai_reply(None, tool_calls=[("umap", {})]))
    agent, io = make_agent(processed, answers=["n"], llm=_client(server))
    head = processed.head()
    agent.handle("make a umap")
    assert processed.head() == head
    assert "Nothing was run" in io.text()
    assert len(server.requests) == 1  # the model is not asked again


def test_llm_down_falls_back_to_the_parser_and_says_so_once(processed, make_agent):
    with ScriptedLLMServer() as srv:
        client = _client(srv)
    # The server is closed: connections are refused.
    agent, io = make_agent(processed, answers=["y", "y"], llm=client)
    agent.handle("cluster at resolution 0.3")
    agent.handle("cluster at resolution 0.4")
    warnings = [t for k, t in io.lines if k == "warning" and "not answering" in t]
    assert len(warnings) == 1
    assert "offline intent parser" in warnings[0]
    assert agent.mode == "offline"
    assert [s.params["resolution"] for s in processed.history()[-2:]] == [0.3, 0.4]


def test_anthropic_backend_drives_the_same_loop(server, processed, make_agent):
    server.enqueue(
        "anthropic",
        anthropic_reply(tool_uses=[("leiden", {"resolution": 0.3})]),
        anthropic_reply("Clustered."),
    )
    agent, io = make_agent(processed, llm=_client(server, "anthropic"), auto_yes=True)
    agent.handle("cluster coarsely")
    step = processed.history()[-1]
    assert (step.tool_id, step.params["resolution"], step.requested_by) == (
        "leiden",
        0.3,
        "llm:scripted-claude",
    )
    assert "Clustered." in io.text("agent")
    assert any(m.get("role") == "user" for m in server.requests[1].messages)


def test_memory_gives_the_model_recent_and_retrieved_turns(server, processed, make_agent):
    server.enqueue("openai", openai_reply("First."), openai_reply("Second."))
    agent, _io = make_agent(processed, llm=_client(server))
    agent.handle("remember the harmony question")
    agent.handle("and now?")
    sent = server.requests[1].messages
    contents = [m.get("content") for m in sent]
    assert "remember the harmony question" in contents and "First." in contents
    assert contents[-1] == "and now?"
