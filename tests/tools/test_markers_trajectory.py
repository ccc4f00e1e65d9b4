"""Marker genes on log data from wherever it lives; PAGA; diffusion pseudotime against simulated truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.errors import InvalidParameterError, MissingPrerequisiteError


def test_markers_find_the_simulated_markers(processed) -> None:
    processed.obs["truth"] = processed.obs["cell_type"].astype(str)
    result = T.markers(processed, groupby="truth", key_added="truth_markers")
    names = processed.uns["truth_markers"]["names"]
    known = processed.uns["simulation"]["markers"]
    hits = 0
    for cell_type in names.dtype.names:
        top = {str(g) for g in names[cell_type][:10]}
        hits += bool(top & set(known[cell_type]))
    assert hits >= len(names.dtype.names) - 1  # nearly every type finds a catalogue marker
    assert result.metrics["n_groups"] == processed.obs["truth"].nunique()
    assert len(result.tables["top_markers"]) == 5 * result.metrics["n_groups"]
    state = inspect_adata(processed)
    assert "markers" in state.steps
    assert any(d.key == "truth_markers" for d in state.breadcrumbs.de)


def test_markers_default_groupby_is_leiden(processed) -> None:
    bare = processed.copy()
    bare.obs = bare.obs[["sample"]]
    with pytest.raises(MissingPrerequisiteError):
        T.markers(bare)
    T.leiden(bare, resolution=0.5)
    result = T.markers(bare, n_genes=20)
    assert result.metrics["groupby"] == "leiden"
    assert len(bare.uns["rank_genes_groups"]["names"]) == 20


def test_markers_on_foreign_data_use_the_log_raw(pbmc68k) -> None:
    adata = pbmc68k.copy()
    with pytest.raises(InvalidParameterError):  # the authors' result is not ours to replace
        T.markers(adata, groupby="bulk_labels")
    result = T.markers(adata, groupby="bulk_labels", key_added="ours")
    assert ".raw" in result.summary
    assert adata.uns["ours"]["params"]["use_raw"] is True
    cd14 = adata.uns["ours"]["names"]["CD14+ Monocyte"][:20]
    assert {"FCN1", "LYZ", "S100A8", "S100A9", "CST3"} & {str(g) for g in cd14}


def test_markers_on_scaled_x_with_counts_layer_never_test_scaled_values(processed) -> None:
    import scanpy as sc

    processed.obs["truth"] = processed.obs["cell_type"].astype(str)
    processed.X = processed.X.toarray()
    sc.pp.scale(processed)  # X scaled; counts still in layers['counts']
    result = T.markers(processed, groupby="truth")
    assert "log-normalized counts" in result.summary
    lfc = processed.uns["rank_genes_groups"]["logfoldchanges"]
    assert np.nanmax(lfc[lfc.dtype.names[0]]) > 1


def test_paga_connects_clusters(processed) -> None:
    T.leiden(processed, resolution=0.5)
    result = T.paga(processed)
    n = processed.obs["leiden"].nunique()
    assert processed.uns["paga"]["connectivities"].shape == (n, n)
    assert result.metrics["n_groups"] == n
    assert "paga" in inspect_adata(processed).steps


@pytest.fixture(scope="module")
def lineage():
    import scagent.tools as tools
    from scagent.data import simulate

    adata = simulate(800, 800, cell_types=["HSPC", "erythroid"], trajectory=True, seed=4)
    tools.normalize(adata)
    tools.hvg(adata, n_top_genes=500)
    tools.pca(adata, n_comps=20)
    tools.neighbors(adata, n_neighbors=30)
    return adata


def test_diffusion_pseudotime_follows_the_simulated_lineage(lineage) -> None:
    adata = lineage.copy()
    del adata.obs["pseudotime"]  # keep the truth aside, so the inspector sees only our result
    truth = lineage.obs["pseudotime"].to_numpy()
    result = T.diffusion_pseudotime(adata, root_group="HSPC", groupby="cell_type")
    assert adata.obs["cell_type"].iloc[result.metrics["root_index"]] == "HSPC"
    rho = spearmanr(adata.obs["dpt_pseudotime"], truth).statistic
    assert rho > 0.7
    assert {"X_diffmap"} <= set(adata.obsm) and adata.uns["iroot"] == result.metrics["root_index"]
    assert {"diffmap", "diffusion_pseudotime"} <= set(inspect_adata(adata).steps)
    # a root cell given by name gives the same ordering from that cell
    again = lineage.copy()
    T.diffusion_pseudotime(again, root_cell=result.metrics["root_cell"], overwrite=True)
    np.testing.assert_allclose(again.obs["dpt_pseudotime"], adata.obs["dpt_pseudotime"])


def test_diffusion_pseudotime_root_errors(lineage) -> None:
    adata = lineage.copy()
    with pytest.raises(InvalidParameterError, match="exactly one"):
        T.diffusion_pseudotime(adata)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        T.diffusion_pseudotime(adata, root_cell="cell_000001", root_group="HSPC")
    with pytest.raises(InvalidParameterError, match="not a level"):
        T.diffusion_pseudotime(adata, root_group="neuron", groupby="cell_type", overwrite=True)
    with pytest.raises(InvalidParameterError, match="root_cell"):
        T.diffusion_pseudotime(adata, root_cell="no_such_cell", overwrite=True)


def test_markers_between_conditions_warns_of_pseudoreplication() -> None:
    from scagent.data import simulate
    from scagent.tools import markers

    adata = simulate(400, 600, n_conditions=2, samples_per_condition=2, seed=4)
    result = markers(adata, groupby="condition")
    assert any("pseudoreplication" in w and "pseudobulk_de" in w for w in result.warnings)
    clusters = markers(adata, groupby="sample", key_added="by_sample", overwrite=True)
    assert not any("pseudoreplication" in w for w in clusters.warnings)
