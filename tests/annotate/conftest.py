"""Fixtures for the annotation tests: small simulated data with known types, a scripted LLM server."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from scagent.llm import RetryPolicy, get_client
from scagent.llm.testing import ScriptedLLMServer

FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05, jitter=0.0)


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as s:
        yield s


@pytest.fixture
def make_client(server, tmp_path):
    def make(route: str, **kwargs):
        kwargs.setdefault("timeout", 0.5)
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("cache_dir", tmp_path / "llm-cache")
        if route == "openai":
            return get_client(
                "openai-compatible:scripted-model", base_url=server.openai_base_url, **kwargs
            )
        return get_client(
            "anthropic:scripted-claude",
            api_key="test-key",
            base_url=server.anthropic_base_url,
            **kwargs,
        )

    return make


@pytest.fixture(scope="session")
def sim_all_types():
    """Every simulator type, human, small; with its rank_genes_groups for cell_type."""
    from scagent.data import simulate
    from scagent.data._celltypes import simulator_cell_types

    types = simulator_cell_types("human")
    adata = simulate(1100, 2000, cell_types=list(types["cell_type"]), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scagent.annotate.markers import markers_from_adata

        markers, _ = markers_from_adata(adata, "cell_type")
    return adata, types, markers
