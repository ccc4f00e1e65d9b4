"""trajectory: PAGA + diffusion pseudotime from a root named by cell type, cluster or gene, against simulated truth."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.stats import spearmanr

from scagent.errors import DataStateError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools.trajectory_root import TRAJECTORY


@pytest.fixture(scope="module")
def lineage_base():
    """Simulated HSPC -> erythroid lineage beside B and NK cells, processed up to Leiden."""
    import scagent.tools as T
    from scagent.data import simulate

    adata = simulate(1200, 500, cell_types=["B cell", "NK cell"], trajectory=True, seed=2)
    T.normalize(adata)
    T.hvg(adata, n_top_genes=500)
    T.pca(adata, n_comps=20)
    T.neighbors(adata)
    T.leiden(adata, resolution=0.5)
    return adata


@pytest.fixture
def lineage(lineage_base):
    return lineage_base.copy()


def _agreement(adata) -> float:
    on = adata.obs["pseudotime"].notna().to_numpy()
    return spearmanr(adata.obs["pseudotime"][on], adata.obs["dpt_pseudotime"][on])[0]


def test_root_cell_type_recovers_the_simulated_order(lineage, tmp_path) -> None:
    result = TRAJECTORY(lineage, root_cell_type="HSPC", export_dir=str(tmp_path))
    assert _agreement(lineage) > 0.8
    root = lineage.uns["trajectory"]["root_cell"]
    assert lineage.obs.loc[root, "cell_type"] == "HSPC"
    assert "paga" in lineage.uns and "X_diffmap" in lineage.obsm
    order = lineage.uns["trajectory"]["group_order"]
    assert order["median_pseudotime"].is_monotonic_increasing
    assert result.metrics["velocity"] == "no"
    assert (tmp_path / "trajectory.png").read_bytes()[:4] == b"\x89PNG"


def test_root_gene_picks_the_cluster_that_expresses_it(lineage) -> None:
    result = TRAJECTORY(lineage, root_gene="CD34")
    root = lineage.uns["trajectory"]["root_cell"]
    assert lineage.obs.loc[root, "cell_type"] == "HSPC"
    assert "highest mean CD34" in result.metrics["root"]
    assert _agreement(lineage) > 0.8


def test_root_cluster(lineage) -> None:
    hspc_cluster = (
        lineage.obs.loc[lineage.obs["cell_type"] == "HSPC", "leiden"].astype(str).mode()[0]
    )
    TRAJECTORY(lineage, root_cluster=hspc_cluster)
    assert _agreement(lineage) > 0.8


def test_a_root_cell_type_that_does_not_exist(lineage) -> None:
    with pytest.raises(InvalidParameterError) as err:
        TRAJECTORY(lineage, root_cell_type="HSCP")
    assert "did you mean 'HSPC'" in str(err.value)
    assert "erythroid" in err.value.remedy
    assert "dpt_pseudotime" not in lineage.obs  # nothing ran


def test_unknown_cluster_and_gene(lineage) -> None:
    with pytest.raises(InvalidParameterError, match="not a level of obs\\['leiden'\\]"):
        TRAJECTORY(lineage, root_cluster="99")
    with pytest.raises(InvalidParameterError, match="root_gene 'CD34X' is not a gene"):
        TRAJECTORY(lineage, root_gene="CD34X")


def test_exactly_one_root(lineage) -> None:
    with pytest.raises(InvalidParameterError, match="exactly one"):
        TRAJECTORY(lineage)
    with pytest.raises(InvalidParameterError, match="got root_cell_type, root_gene"):
        TRAJECTORY(lineage, root_cell_type="HSPC", root_gene="CD34")


def test_needs_a_neighbors_graph(lineage) -> None:
    del lineage.uns["neighbors"]
    with pytest.raises(MissingPrerequisiteError, match="neighbors"):
        TRAJECTORY(lineage, root_cell_type="HSPC")


def test_velocity_requests(lineage, monkeypatch) -> None:
    with pytest.raises(DataStateError, match="spliced"):
        TRAJECTORY(lineage, root_cell_type="HSPC", velocity="on")
    lineage.layers["spliced"] = lineage.layers["counts"]
    lineage.layers["unspliced"] = lineage.layers["counts"]
    monkeypatch.setitem(sys.modules, "scvelo", None)  # as if scVelo were not installed
    result = TRAJECTORY(lineage, root_cell_type="HSPC")
    assert any("pip install scvelo" in w for w in result.warnings)
    assert np.isfinite(lineage.obs["dpt_pseudotime"]).any()


@pytest.mark.slow
def test_velocity_pseudotime_with_scvelo() -> None:
    """With spliced/unspliced layers and scVelo installed, velocity pseudotime is added."""
    pytest.importorskip("scvelo")
    import scagent.tools as T
    from scagent.data import simulate

    adata = simulate(800, 400, cell_types=["B cell"], trajectory=True, seed=2)
    rng = np.random.default_rng(0)
    unspliced = adata.X.copy()
    unspliced.data = rng.binomial(unspliced.data.astype(int), 0.3).astype(np.float32)
    adata.layers["spliced"] = adata.X.copy()
    adata.layers["unspliced"] = unspliced
    T.normalize(adata)
    T.hvg(adata, n_top_genes=400)
    T.pca(adata, n_comps=20)
    T.neighbors(adata)
    T.leiden(adata, resolution=0.5)
    result = TRAJECTORY(adata, root_cell_type="HSPC", velocity="on")
    assert result.metrics["velocity"] == "yes"
    assert "obs/velocity_pseudotime" in result.written
    assert adata.obs["velocity_pseudotime"].between(0, 1).all()
