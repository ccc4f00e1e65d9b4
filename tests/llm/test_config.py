"""Backend selection from --llm / SCAGENT_LLM and the environment."""

from __future__ import annotations

import sys

import pytest

from scagent.errors import InvalidParameterError, LLMError, MissingDependencyError
from scagent.llm import (
    DEFAULT_MODELS,
    LLMClient,
    OfflineClient,
    get_client,
    parse_spec,
    resolve_spec,
)


@pytest.mark.parametrize(
    ("spec", "backend", "model", "url"),
    [
        ("offline", "offline", "offline", None),
        ("openai:gpt-4o", "openai", "gpt-4o", None),
        ("openai", "openai", DEFAULT_MODELS["openai"], None),
        ("Anthropic:claude-x", "anthropic", "claude-x", None),
        ("openai-compatible:qwen2.5", "openai-compatible", "qwen2.5", None),
        ("ollama:llama3.1:8b", "openai-compatible", "llama3.1:8b", "http://localhost:11434/v1"),
        ("vllm:meta/llama", "openai-compatible", "meta/llama", "http://localhost:8000/v1"),
    ],
)
def test_parse_spec(spec, backend, model, url):
    parsed = parse_spec(spec)
    assert (parsed.backend, parsed.model, parsed.default_base_url) == (backend, model, url)


@pytest.mark.parametrize("spec", ["gpt4", "openai-compatible", "offline:x", "", "azure:gpt"])
def test_bad_spec_lists_accepted_forms(spec):
    with pytest.raises(InvalidParameterError) as info:
        parse_spec(spec)
    assert info.value.exit_code == 2
    assert "MODEL" in info.value.remedy


def test_no_spec_no_key_is_offline():
    client = get_client()
    assert isinstance(client, OfflineClient) and isinstance(client, LLMClient)
    assert client.backend == "offline" and client.spec == "offline"


def test_env_selects_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("SCAGENT_LLM", "openai-compatible:m")
    monkeypatch.setenv("SCAGENT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    client = get_client(cache_dir=tmp_path)
    assert client.backend == "openai-compatible" and client.model == "m"
    assert client.describe()["base_url"].startswith("http://127.0.0.1:9/v1")
    assert client.cache.folder == tmp_path
    # An explicit spec wins over the environment.
    assert get_client("offline").backend == "offline"


def test_key_in_environment_selects_hosted_backend(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert resolve_spec().backend == "anthropic"
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert str(resolve_spec()) == f"openai:{DEFAULT_MODELS['openai']}"


@pytest.mark.parametrize(
    ("spec", "var"), [("openai:m", "OPENAI_API_KEY"), ("anthropic:m", "ANTHROPIC_API_KEY")]
)
def test_missing_key_names_the_variable(spec, var):
    with pytest.raises(LLMError) as info:
        get_client(spec)
    assert var in info.value.message and var in info.value.remedy
    assert info.value.exit_code == 16


def test_compatible_backend_needs_base_url(monkeypatch):
    monkeypatch.delenv("SCAGENT_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(InvalidParameterError, match="base URL"):
        get_client("openai-compatible:m")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert get_client("openai-compatible:m").backend == "openai-compatible"


@pytest.mark.parametrize(
    ("spec", "module"), [("openai-compatible:m", "openai"), ("anthropic:m", "anthropic")]
)
def test_missing_sdk_names_the_extra(monkeypatch, spec, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError) as info:
        get_client(spec, base_url="http://127.0.0.1:9/v1", api_key="k")
    assert "pip install 'scagent[llm]'" in info.value.remedy
    assert info.value.exit_code == 17


def test_negative_max_retries_is_rejected():
    with pytest.raises(InvalidParameterError):
        get_client("openai-compatible:m", base_url="http://x/v1", max_retries=-1)


def test_bad_timeout_env(monkeypatch):
    monkeypatch.setenv("SCAGENT_LLM_TIMEOUT", "soon")
    with pytest.raises(InvalidParameterError, match="SCAGENT_LLM_TIMEOUT"):
        get_client("openai-compatible:m", base_url="http://x/v1")
