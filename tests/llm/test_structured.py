"""JSON extraction from model text, schema coercion, retry delays and message handling."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scagent.llm import Message, OutputSchema, RetryPolicy, ToolSpec, extract_json
from scagent.llm.base import normalize_messages
from scagent.llm.retry import classify_status, parse_retry_after
from scagent.llm.structured import SchemaMismatch

json_objects = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.integers(), st.text(max_size=10), st.booleans(), st.none()),
    max_size=5,
)


@settings(max_examples=40, deadline=None)
@given(obj=json_objects, prefix=st.sampled_from(["", "Here it is:\n", "Sure. "]))
def test_extract_json_round_trips_wrapped_objects(obj, prefix):
    text = json.dumps(obj)
    for wrapped in (text, f"{prefix}```json\n{text}\n```", f"{prefix}{text}\nHope this helps."):
        assert extract_json(wrapped) == obj


@pytest.mark.parametrize("text", ["", "   ", "no json here", "{'single': 'quotes'}"])
def test_extract_json_rejects(text):
    with pytest.raises(SchemaMismatch):
        extract_json(text)


def test_dict_schema_checks_type_and_required():
    schema = OutputSchema.coerce(
        {"title": "my answer!", "type": "object", "required": ["label"], "properties": {}}
    )
    assert schema.name == "my_answer_"  # safe for OpenAI's name pattern
    assert schema.validate({"label": "x"}) == {"label": "x"}
    with pytest.raises(SchemaMismatch, match="label"):
        schema.validate({"other": 1})
    with pytest.raises(SchemaMismatch, match="object"):
        schema.validate([1])
    with pytest.raises(TypeError):
        OutputSchema.coerce(42)


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=0.5)
    rng = random.Random(0)
    delays = [policy.delay(a, rng=rng) for a in range(6)]
    for attempt, d in enumerate(delays):
        full = min(5.0, 2.0**attempt)
        assert full * 0.5 <= d <= full
    assert policy.delay(0, retry_after=2.5) == 2.5
    assert policy.delay(0, retry_after=1e6) == policy.retry_after_max


def test_retry_after_parsing():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (408, True),
        (500, True),
        (529, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
def test_status_classification(status, retryable):
    assert classify_status(status, "m", {}).retryable is retryable


def test_normalize_messages():
    msgs, system = normalize_messages(
        [
            {"role": "system", "content": "be brief"},
            "hello",
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ],
        system="you are scagent",
    )
    assert system == "you are scagent\n\nbe brief"
    assert msgs[0] == Message.user("hello")
    assert msgs[1].tool_calls[0].arguments == {"a": 1}
    assert msgs[2].role == "tool" and msgs[2].tool_call_id == "c1"
    with pytest.raises(ValueError):
        normalize_messages([])
    with pytest.raises(ValueError):
        normalize_messages([{"role": "wizard", "content": "x"}])


def test_tool_spec_accepts_three_shapes():
    a = ToolSpec.coerce({"name": "f", "description": "d", "input_schema": {"type": "object"}})
    b = ToolSpec.coerce(
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
        }
    )
    assert a == b == ToolSpec("f", "d", {"type": "object"})
    with pytest.raises(ValueError):
        ToolSpec.coerce({"description": "nameless"})
