"""Neighbors graph, Leiden clustering with its sweep and checks, and never replacing a user's column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import adjusted_rand_score

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.errors import InvalidParameterError, MissingPrerequisiteError
from scagent.tools.cluster import clustering_checks


def test_neighbors_writes_graph_and_counts_components(processed) -> None:
    result = T.neighbors(processed, n_neighbors=10)
    assert {"distances", "connectivities"} <= set(processed.obsp)
    assert processed.uns["neighbors"]["params"]["n_neighbors"] == 10
    n, _ = connected_components(processed.obsp["connectivities"], directed=False)
    assert result.metrics["n_components"] == n
    assert result.metrics["use_rep"] == "X_pca"
    assert "neighbors" in inspect_adata(processed).steps


def test_neighbors_prefers_the_harmony_embedding(processed) -> None:
    processed.obsm["X_pca_harmony"] = processed.obsm["X_pca"][:, :10] * 2
    result = T.neighbors(processed, key_added="nb_h")
    assert result.metrics["use_rep"] == "X_pca_harmony"
    assert "nb_h_connectivities" in processed.obsp
    with pytest.raises(InvalidParameterError):
        T.neighbors(processed, use_rep="X_nothing")
    del processed.obsm["X_pca"], processed.obsm["X_pca_harmony"]
    with pytest.raises(MissingPrerequisiteError):
        T.neighbors(processed)


def test_leiden_recovers_simulated_types(processed) -> None:
    result = T.leiden(processed, resolution=0.8)
    ari = adjusted_rand_score(processed.obs["cell_type"], processed.obs["leiden"])
    assert ari > 0.7
    assert processed.obs["leiden"].dtype.name == "category"
    assert processed.uns["leiden"]["params"]["random_state"] == 0
    assert result.metrics["n_clusters"] == processed.obs["leiden"].nunique()
    steps = inspect_adata(processed).steps
    assert {"leiden", "clustering"} <= set(steps)


def test_leiden_is_deterministic_for_a_seed(processed) -> None:
    T.leiden(processed, resolution=1.0, key_added="a")
    T.leiden(processed, resolution=1.0, key_added="b")
    assert np.array_equal(processed.obs["a"].to_numpy(), processed.obs["b"].to_numpy())


def test_resolution_sweep_reports_one_row_per_resolution(processed) -> None:
    resolutions = [0.1, 0.5, 1.0, 2.0]
    result = T.leiden(processed, resolutions=resolutions)
    rows = result.tables["sweep"]
    assert [r["resolution"] for r in rows] == resolutions
    clusters = [r["n_clusters"] for r in rows]
    assert clusters == sorted(clusters) and clusters[0] < clusters[-1]
    best = max(rows, key=lambda r: r["silhouette"])
    assert result.metrics["resolution"] == best["resolution"]
    assert sum(r["selected"] for r in rows) == 1
    assert processed.obs["leiden"].nunique() == best["n_clusters"]
    assert list(processed.uns["leiden_sweep"]["resolution"]) == resolutions
    # keep the one asked for instead
    result = T.leiden(processed, resolutions=[0.1, 0.5], resolution=2.0, select="resolution")
    assert result.metrics["resolution"] == 2.0
    assert len(result.tables["sweep"]) == 3
    assert processed.obs["leiden"].nunique() == rows[-1]["n_clusters"]


def test_leiden_never_replaces_a_user_column(processed) -> None:
    processed.obs["leiden"] = "from the authors"
    with pytest.raises(InvalidParameterError) as err:
        T.leiden(processed)
    assert err.value.exit_code == 2 and "overwrite=True" in err.value.remedy
    assert (processed.obs["leiden"] == "from the authors").all()
    result = T.leiden(processed, overwrite=True)
    assert any("replaced" in w for w in result.warnings)
    # once scagent wrote it, re-running replaces it without fuss
    result = T.leiden(processed, resolution=0.5)
    assert not any("replaced" in w for w in result.warnings)


def test_one_cluster_is_a_hard_error(processed) -> None:
    with pytest.raises(InvalidParameterError, match="one cluster"):
        T.leiden(processed, resolution=0.0001)


def test_clustering_checks_warn_on_small_and_too_many_clusters(processed) -> None:
    labels = np.zeros(processed.n_obs, dtype=int)
    labels[:5] = 1  # a 5-cell cluster
    processed.obs["tiny"] = pd.Categorical(labels)
    assert any("fewer than 10 cells" in w for w in clustering_checks(processed, "tiny"))
    processed.obs["many"] = pd.Categorical(np.arange(processed.n_obs) % 200)
    assert any("resolution is probably too high" in w for w in clustering_checks(processed, "many"))


def test_leiden_needs_a_graph(sim) -> None:
    with pytest.raises(MissingPrerequisiteError):
        T.leiden(sim)


def test_large_data_knn_returns_a_csr_matrix() -> None:
    from scipy import sparse

    from scagent.tools.graph import _CsrMatrixKnn, _large_data_transformer

    assert _large_data_transformer(2000, 15, "euclidean", 0) is None  # scanpy's brute force

    class Inner:
        def get_params(self, deep=True):
            return {"n_neighbors": 3}

        def fit_transform(self, X):
            return sparse.csr_array(np.eye(len(X)))

    wrapped = _CsrMatrixKnn(Inner())
    assert wrapped.get_params()["n_neighbors"] == 3
    out = wrapped.fit_transform(np.zeros((4, 2)))
    assert isinstance(out, sparse.csr_matrix) and out.getnnz(axis=1).tolist() == [1, 1, 1, 1]


@pytest.mark.slow
def test_neighbors_on_more_than_8192_cells() -> None:
    # scanpy's pynndescent path; fails in plain scanpy 1.11 with scipy >= 1.17
    rng = np.random.default_rng(0)
    from anndata import AnnData

    adata = AnnData(np.zeros((9000, 1), dtype=np.float32))
    adata.obsm["X_pca"] = rng.normal(size=(9000, 20)).astype(np.float32)
    result = T.neighbors(adata, n_neighbors=10)
    assert (adata.obsp["distances"].getnnz(axis=1) >= 9).all()
    assert adata.obsp["connectivities"].shape == (9000, 9000)
    assert result.metrics["n_components"] >= 1
