"""Scrublet per sample on simulated doublets, and the histogram threshold written in place of scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import scagent.tools as T
from scagent.errors import InvalidParameterError
from scagent.tools.doublets import threshold_minimum


@pytest.fixture(scope="module")
def with_doublets():
    from scagent.data import simulate

    return simulate(800, 800, doublet_rate=0.08, seed=2)


def test_doublet_scores_rank_true_doublets_high(with_doublets) -> None:
    adata = with_doublets.copy()
    result = T.doublets(adata, batch_key="sample")
    assert {"doublet_score", "predicted_doublet"} <= set(adata.obs.columns)
    truth = adata.obs["is_doublet"].to_numpy(bool)
    assert roc_auc_score(truth, adata.obs["doublet_score"]) > 0.8
    table = result.tables["per_sample"]
    assert {r["sample"] for r in table} == set(adata.obs["sample"].astype(str))
    assert sum(r["n_doublets"] for r in table) == int(adata.obs["predicted_doublet"].sum())
    called = adata.obs["predicted_doublet"].to_numpy(bool)
    if called.any():  # the calls are mostly true doublets
        assert truth[called].mean() > 0.5


def test_doublets_remove_drops_the_called_cells(with_doublets) -> None:
    from scagent.data import inspect_adata

    adata = with_doublets.copy()
    adata.obs = adata.obs.drop(columns=["is_doublet", "doublet_partner_type"])  # truth aside
    assert "doublets" not in inspect_adata(adata).steps
    result = T.doublets(adata, threshold=0.2, remove=True)
    assert "doublets" in inspect_adata(adata).steps
    n_called = result.metrics["n_doublets"]
    assert n_called > 0
    assert adata.n_obs == with_doublets.n_obs - n_called
    assert not adata.obs["predicted_doublet"].any()


def test_doublets_will_not_replace_a_foreign_column(with_doublets) -> None:
    adata = with_doublets.copy()
    adata.obs["doublet_score"] = 0.0  # e.g. from another doublet caller
    with pytest.raises(InvalidParameterError) as err:
        T.doublets(adata)
    assert "doublet_score" in err.value.message
    assert (adata.obs["doublet_score"] == 0).all()


def test_threshold_minimum_finds_the_valley_of_a_bimodal_histogram() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.1, 0.03, 5000), rng.normal(0.6, 0.05, 2000)])
    threshold = threshold_minimum(values)
    assert threshold is not None and 0.2 < threshold < 0.5
    assert threshold_minimum(np.full(100, 0.3)) is None
