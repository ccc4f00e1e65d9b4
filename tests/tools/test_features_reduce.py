"""Highly variable genes, PCA and UMAP: documented keys, the right inputs, and X left alone."""

from __future__ import annotations

import numpy as np
import pytest

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.errors import DataStateError, MissingPrerequisiteError


def test_hvg_seurat_v3_on_counts_finds_marker_genes(sim) -> None:
    T.normalize(sim)
    result = T.hvg(sim, n_top_genes=150)
    assert result.metrics["flavor"] == "seurat_v3"
    assert int(sim.var["highly_variable"].sum()) == 150
    assert {"highly_variable_rank", "variances_norm"} <= set(sim.var.columns)
    assert "hvg" in inspect_adata(sim).steps
    markers = sim.var["is_marker_of"].astype(str) != ""
    # 15% of the genes are flagged, yet most of the simulated markers are among them
    assert sim.var.loc[markers, "highly_variable"].mean() > 0.6


def test_hvg_uses_seurat_on_log_data_without_counts(pbmc68k) -> None:
    adata = pbmc68k.copy()
    result = T.hvg(adata, n_top_genes=200)
    assert result.metrics["flavor"] == "seurat"
    assert int(adata.var["highly_variable"].sum()) == 200
    assert any("replaced" in w for w in result.warnings)  # pbmc68k came with its own flags


def test_hvg_batch_aware(batched_base) -> None:
    adata = batched_base.copy()
    T.hvg(adata, n_top_genes=300, batch_key="batch")
    assert adata.var["highly_variable_nbatches"].max() == 2
    with pytest.raises(Exception, match="batch_key"):
        T.hvg(adata, batch_key="nope")


def test_pca_on_hvgs_keeps_x_and_reports_variance(sim) -> None:
    T.normalize(sim)
    T.hvg(sim, n_top_genes=400)
    x_before = sim.X.copy()
    result = T.pca(sim, n_comps=20, scale=True)
    assert (sim.X != x_before).nnz == 0  # scaling happened in a copy
    assert sim.obsm["X_pca"].shape == (sim.n_obs, 20)
    assert sim.varm["PCs"].shape == (sim.n_vars, 20)
    assert np.all(sim.varm["PCs"][~sim.var["highly_variable"].to_numpy()] == 0)
    ratio = sim.uns["pca"]["variance_ratio"]
    assert np.all(np.diff(ratio) <= 1e-6) and 0 < ratio.sum() <= 1
    assert result.metrics["n_genes_used"] == 400
    assert inspect_adata(sim).steps.count("pca") == 1


def test_pca_refuses_raw_counts(sim) -> None:
    with pytest.raises(DataStateError) as err:
        T.pca(sim)
    assert "normalize" in err.value.remedy
    assert "X_pca" not in sim.obsm


def test_pca_on_scaled_foreign_data(pbmc68k) -> None:
    adata = pbmc68k.copy()
    T.pca(adata, n_comps=10)
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 10)


def test_umap_needs_neighbors_and_writes_the_embedding(processed) -> None:
    result = T.umap(processed)
    assert processed.obsm["X_umap"].shape == (processed.n_obs, 2)
    assert "obsm/X_umap" in result.written
    assert "umap" in inspect_adata(processed).steps
    del processed.uns["neighbors"]
    with pytest.raises(MissingPrerequisiteError):
        T.umap(processed)
