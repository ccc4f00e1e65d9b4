"""Fixtures of the tool tests: simulated counts with known truth, and one processed copy shared by many tests."""

from __future__ import annotations

import pytest
from anndata import AnnData


@pytest.fixture(scope="session")
def sim_base() -> AnnData:
    """1000 cells x 1000 genes of simulated PBMC-like counts in two samples (seed 0)."""
    from scagent.data import simulate

    return simulate(1000, 1000, seed=0)


@pytest.fixture
def sim(sim_base: AnnData) -> AnnData:
    """A fresh copy of the simulated counts, for tests that modify it."""
    return sim_base.copy()


@pytest.fixture(scope="session")
def processed_base(sim_base: AnnData) -> AnnData:
    """The simulated counts after normalize, hvg, pca (30 PCs) and neighbors, through the tools."""
    import scagent.tools as T

    adata = sim_base.copy()
    T.normalize(adata)
    T.hvg(adata, n_top_genes=1000)
    T.pca(adata, n_comps=30)
    T.neighbors(adata)
    return adata


@pytest.fixture
def processed(processed_base: AnnData) -> AnnData:
    """A fresh copy of the processed data."""
    return processed_base.copy()


@pytest.fixture(scope="session")
def batched_base() -> AnnData:
    """Simulated counts with two batches (moderate batch effect), normalized with PCA."""
    import scagent.tools as T
    from scagent.data import simulate

    adata = simulate(1200, 1000, n_batches=2, batch_effect=0.15, seed=1)
    T.normalize(adata)
    T.hvg(adata, n_top_genes=1000)
    T.pca(adata, n_comps=30)
    return adata
