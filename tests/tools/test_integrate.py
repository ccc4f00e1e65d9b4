"""Harmony on simulated batches: batches mix, cell types stay apart."""

from __future__ import annotations

import numpy as np
import pytest

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools.cluster import silhouette
from scagent.tools.integrate import batch_mixing


def test_harmony_mixes_batches_and_keeps_types(batched_base) -> None:
    adata = batched_base.copy()
    batches = adata.obs["batch"].to_numpy()
    before = batch_mixing(adata.obsm["X_pca"], batches)
    result = T.harmony(adata, batch_key="batch")
    after = batch_mixing(adata.obsm["X_pca_harmony"], batches)
    assert after > before + 0.2
    assert result.metrics["batch_mixing_after"] == pytest.approx(after)
    assert adata.obsm["X_pca_harmony"].shape == adata.obsm["X_pca"].shape
    types = adata.obs["cell_type"].to_numpy()
    assert silhouette(adata.obsm["X_pca_harmony"], types) > 0.5 * silhouette(
        adata.obsm["X_pca"], types
    )
    assert "harmony" in inspect_adata(adata).steps


def test_batch_mixing_extremes() -> None:
    rng = np.random.default_rng(0)
    apart = np.r_[rng.normal(0, 1, (300, 5)), rng.normal(50, 1, (300, 5))]
    labels = np.repeat(["a", "b"], 300)
    assert batch_mixing(apart, labels) < 0.05
    mixed = rng.normal(0, 1, (600, 5))
    assert batch_mixing(mixed, labels) > 0.85


def test_harmony_input_errors(batched_base) -> None:
    adata = batched_base.copy()
    with pytest.raises(InvalidParameterError):
        T.harmony(adata)  # batch_key is required
    with pytest.raises(InvalidParameterError):
        T.harmony(adata, batch_key="nope")
    adata.obs["one"] = "x"
    with pytest.raises(InvalidDataError):
        T.harmony(adata, batch_key="one")
    del adata.obsm["X_pca"]
    with pytest.raises(MissingPrerequisiteError):
        T.harmony(adata, batch_key="batch")
