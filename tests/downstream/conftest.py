"""Fixtures of the downstream tests: small simulated two-condition data with known DE genes, tested once."""

from __future__ import annotations

import pytest
from anndata import AnnData


@pytest.fixture(scope="session")
def de_base() -> AnnData:
    """900 cells x 300 genes, B and NK cells, 3 ctrl + 3 stim samples, 30 DE genes (log2 fc 1.5)."""
    from scagent.data import simulate

    return simulate(
        900,
        300,
        cell_types=["B cell", "NK cell"],
        n_conditions=2,
        samples_per_condition=3,
        n_de_genes=30,
        de_log2fc=1.5,
        seed=3,
    )


@pytest.fixture
def de_data(de_base: AnnData) -> AnnData:
    """A fresh copy of the two-condition counts, for tests that modify it."""
    return de_base.copy()


@pytest.fixture(scope="session")
def de_tested_base(de_base: AnnData) -> AnnData:
    """The two-condition data after pseudobulk_de per cell type (run once)."""
    from scagent.tools.pseudobulk import PSEUDOBULK_DE

    adata = de_base.copy()
    PSEUDOBULK_DE(adata, groupby="cell_type")
    return adata


@pytest.fixture
def de_tested(de_tested_base: AnnData) -> AnnData:
    """A fresh copy of the data with pseudobulk results."""
    return de_tested_base.copy()


@pytest.fixture
def truth(de_base: AnnData) -> dict[str, float]:
    """The simulated DE genes of 'stim' against 'ctrl': gene -> log2 fold change."""
    return dict(de_base.uns["simulation"]["de_genes"]["stim"])
