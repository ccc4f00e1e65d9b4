"""Fixtures of the session tests: small count data, projects, and test-only tools."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np
import pytest


def _nb_counts(n_cells: int = 400, n_genes: int = 300, seed: int = 0):
    """Negative-binomial counts with three groups: a stand-in when the simulator is unavailable."""
    import anndata as ad
    import pandas as pd
    from scipy import sparse

    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, n_cells)
    base = rng.gamma(0.6, 1.0, n_genes)
    effect = np.ones((3, n_genes))
    for g in range(3):
        effect[g, rng.choice(n_genes, 20, replace=False)] = 6.0
    mu = base[None, :] * effect[groups] * rng.lognormal(0, 0.3, n_cells)[:, None]
    counts = rng.negative_binomial(5, 5 / (5 + mu)).astype(np.float32)
    names = [f"MT-{i}" if i < 5 else f"G{i}" for i in range(n_genes)]
    return ad.AnnData(
        sparse.csr_matrix(counts),
        obs=pd.DataFrame(
            {"group": pd.Categorical(groups.astype(str))}, index=[f"c{i}" for i in range(n_cells)]
        ),
        var=pd.DataFrame(index=names),
    )


@pytest.fixture(scope="session")
def counts_data():
    """Raw UMI counts with known cell types (the simulator, 1000 x 1000, seed 0)."""
    from scagent.data import simulate

    try:
        return simulate(n_cells=1000, n_genes=1000, seed=0)
    except NotImplementedError:  # until the simulator lands
        return _nb_counts(1000, 1000)


@pytest.fixture
def session(tmp_path, counts_data):
    """A fresh project whose branch main holds the counts at step 0."""
    from scagent.session import Session

    return Session.init(tmp_path / "proj", data=counts_data.copy())


class _Switch:
    """A value the test tools read, changed by tests to simulate a tool that changed."""

    offset = 0.0


@pytest.fixture
def test_tools():
    """Register tools that misbehave on purpose; removed again after the test."""
    from pydantic import Field

    from scagent.tools import registry
    from scagent.tools.base import ParamsModel, Tool, ToolResult

    class Params(ParamsModel):
        value: float = Field(1.0, ge=0, le=10)
        key_added: str = "test_col"

    def add_column(adata, **p: Any) -> ToolResult:
        adata.obs[p["key_added"]] = (
            np.arange(adata.n_obs, dtype=float) * p["value"] + _Switch.offset
        )
        return ToolResult(summary="added a column", written=[f"obs/{p['key_added']}"])

    def noisy(adata, **p: Any) -> ToolResult:
        adata.obs[p["key_added"]] = np.random.default_rng().random(adata.n_obs)
        return ToolResult(summary="added noise", written=[f"obs/{p['key_added']}"])

    def interrupt(adata, **p: Any) -> ToolResult:
        adata.obs["half_written"] = 1.0
        adata.X = adata.X * 0
        raise KeyboardInterrupt

    def fail(adata, **p: Any) -> ToolResult:
        adata.obs["half_written"] = 1.0
        raise ValueError("boom inside the tool")

    made = {
        "test_add": Tool(
            id="test_add",
            name="add",
            category="qc",
            framework="numpy",
            fn=add_column,
            params=Params,
        ),
        "test_noise": Tool(
            id="test_noise",
            name="noise",
            category="qc",
            framework="numpy",
            fn=noisy,
            params=Params,
            deterministic=False,
        ),
        "test_interrupt": Tool(
            id="test_interrupt",
            name="interrupt",
            category="qc",
            framework="numpy",
            fn=interrupt,
            params=Params,
        ),
        "test_fail": Tool(
            id="test_fail", name="fail", category="qc", framework="numpy", fn=fail, params=Params
        ),
    }
    for tool in made.values():
        registry.register(tool, replace=True)
    _Switch.offset = 0.0
    yield _Switch
    for tool_id in made:
        registry._TOOLS.pop(tool_id, None)
    _Switch.offset = 0.0


@pytest.fixture
def held_elsewhere():
    """``with held_elsewhere(lock_path):`` holds the project lock in another thread.

    ProjectLock is re-entrant within one thread, so a second writer is simulated by a
    thread of its own.
    """
    from scagent.session.lock import ProjectLock

    @contextlib.contextmanager
    def hold(lock_path):
        taken, release = threading.Event(), threading.Event()

        def run():
            with ProjectLock(lock_path):
                taken.set()
                release.wait(30)

        thread = threading.Thread(target=run)
        thread.start()
        assert taken.wait(10)
        try:
            yield
        finally:
            release.set()
            thread.join()

    return hold
