"""The simulator's counts follow its model and carry the truth it claims to carry."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from scagent.data.simulate import simulate, simulator_cell_types
from scagent.errors import InvalidParameterError

# scagent.data re-exports the function under the module's own name, so fetch the module.
simulate_module = sys.modules["scagent.data.simulate"]


def _dense(adata) -> np.ndarray:
    return adata.X.toarray()


def _cp10k(X: np.ndarray) -> np.ndarray:
    return X / X.sum(axis=1, keepdims=True) * 1e4


def _pseudobulk(adata, by: str) -> pd.DataFrame:
    """Summed counts per level of ``by`` (rows) and gene (columns), as CPM."""
    X = _dense(adata)
    sums = {
        level: X[(adata.obs[by] == level).to_numpy()].sum(axis=0)
        for level in adata.obs[by].cat.categories
    }
    df = pd.DataFrame(sums, index=adata.var_names).T
    return df.div(df.sum(axis=1), axis=0) * 1e6


@pytest.fixture(scope="module")
def pbmc():
    return simulate(2000, 1500, seed=1)


@pytest.fixture(scope="module")
def design():
    return simulate(
        3000,
        1500,
        n_batches=2,
        n_conditions=2,
        samples_per_condition=2,
        doublet_rate=0.06,
        seed=2,
    )


def test_same_seed_same_matrix_other_seed_other_matrix():
    kwargs = dict(doublet_rate=0.05, trajectory=True, n_conditions=2, n_batches=2)
    a = simulate(2500, 1000, seed=3, **kwargs)
    b = simulate(2500, 1000, seed=3, **kwargs)
    # Chunking bounds memory only: it must not change the counts.
    c = simulate(2500, 1000, seed=3, chunk_size=1, **kwargs)
    d = simulate(2500, 1000, seed=4, **kwargs)
    for other in (b, c):
        assert (a.X != other.X).nnz == 0
        pd.testing.assert_frame_equal(a.obs, other.obs)
    assert (a.X != d.X).nnz > 0
    assert not a.obs["cell_type"].equals(d.obs["cell_type"])


def test_output_arrays_grow_when_the_nnz_estimate_is_short(monkeypatch):
    expected = simulate(1500, 1000, seed=12)
    monkeypatch.setattr(simulate_module, "_expected_nnz", lambda *args: 10.0)
    grown = simulate(1500, 1000, seed=12)
    assert grown.X.nnz == expected.X.nnz and (grown.X != expected.X).nnz == 0


def test_matrix_looks_like_fresh_cellranger_output(pbmc):
    X = pbmc.X
    assert isinstance(X, sp.csr_matrix)
    assert X.dtype == np.float32
    assert X.indices.dtype == np.int32
    assert X.has_canonical_format  # sorted, no duplicate entries
    assert X.shape == (2000, 1500)
    assert np.all(X.data > 0)
    assert np.array_equal(X.data, np.round(X.data))
    assert pbmc.obs_names.is_unique and pbmc.var_names.is_unique
    assert pbmc.obs_names[0] == "cell_000001" and pbmc.obs_names[-1] == "cell_002000"
    assert pbmc.var_names[-1].startswith("SIMG")
    # Nothing computed: no layers, embeddings, graphs, QC columns or log1p marker.
    assert not pbmc.layers and not pbmc.obsm and not pbmc.obsp
    assert set(pbmc.uns) == {"simulation"}
    assert not any(c.startswith(("n_genes", "total_counts", "pct_")) for c in pbmc.obs)
    totals = np.asarray(X.sum(axis=1)).ravel()
    assert 2000 < totals.mean() < 4500  # mean_library_size=3000 with NB noise


def test_truth_columns(pbmc):
    obs, sim = pbmc.obs, pbmc.uns["simulation"]
    assert isinstance(obs["cell_type"].dtype, pd.CategoricalDtype)
    assert set(obs["cell_type"].cat.categories) == set(sim["cell_types"])
    for t, cl in sim["cell_ontology_ids"].items():
        assert set(obs.loc[obs["cell_type"] == t, "cell_ontology_id"]) == {cl}
    assert sim["cell_ontology_ids"]["NK cell"] == "CL:0000623"
    assert set(obs["sample"]) == {"ctrl_1", "ctrl_2"}
    assert set(obs["condition"]) == {"ctrl"}
    assert not obs["is_doublet"].any() and obs["doublet_partner_type"].isna().all()
    assert "pseudotime" not in obs
    assert {"cell_type", "is_doublet", "batch", "true_library_size"} <= set(sim["truth_columns"])
    # Markers are listed per type and flagged in var.
    for t, genes in sim["markers"].items():
        assert all(t in pbmc.var.loc[g, "is_marker_of"].split(",") for g in genes)
    assert pbmc.var.loc["GNLY", "is_marker_of"] == "NK cell"
    assert pbmc.var.loc["CD3E", "is_marker_of"] == "CD4 naive T cell,CD8 T cell"
    assert pbmc.var["mito"].sum() == 13 and pbmc.var["hb"].sum() == 3
    assert pbmc.var["ribo"].sum() >= 40
    assert all(g.startswith(("RPL", "RPS")) for g in pbmc.var_names[pbmc.var["ribo"]])


def test_proportions_are_respected():
    types = ["B cell", "hepatocyte", "fibroblast"]
    adata = simulate(3000, 1000, cell_types=types, proportions=[0.5, 0.3, 0.2], seed=5)
    share = adata.obs["cell_type"].value_counts(normalize=True)
    assert share["B cell"] == pytest.approx(0.5, abs=0.03)
    assert share["hepatocyte"] == pytest.approx(0.3, abs=0.03)
    assert share["fibroblast"] == pytest.approx(0.2, abs=0.03)
    assert adata.obs["cell_ontology_id"][adata.obs["cell_type"] == "hepatocyte"].iloc[0] == (
        "CL:0000182"
    )


def test_markers_are_higher_in_their_type(pbmc):
    norm = _cp10k(_dense(pbmc))
    types = pbmc.obs["cell_type"].to_numpy()
    for t, genes in pbmc.uns["simulation"]["markers"].items():
        for gene in genes:
            # A marker shared by two types (CD3E: CD4 and CD8 T) is compared with the rest.
            sharing = pbmc.var.loc[gene, "is_marker_of"].split(",")
            col = pbmc.var_names.get_loc(gene)
            inside = norm[types == t, col].mean()
            outside = norm[~np.isin(types, sharing), col].mean()
            assert np.log2((inside + 1e-3) / (outside + 1e-3)) > 1, (t, gene)


@pytest.mark.parametrize("mean", [0.01, 0.1, 0.4, 0.9, 3.0, 20.0])
def test_sampler_draws_the_negative_binomial(mean):
    """Both regimes (sparse compound-Poisson and dense gamma-Poisson) give NB(mean, phi)."""
    phi, n = 0.25, 100_000
    rng = np.random.default_rng(11)
    lib = np.full(n, 1000.0)
    q = np.array([mean / 1000, 1 - mean / 1000])
    rows, cols, vals = simulate_module._sample_profile(rng, lib, q, phi, dense_mean=1.0)
    x = np.bincount(rows[cols == 0], weights=vals[cols == 0], minlength=n)
    expected_var = mean + phi * mean**2
    p0 = (1 + phi * mean) ** (-1 / phi)
    p1 = p0 * mean / (1 + phi * mean)
    se_mean = np.sqrt(expected_var / n)
    assert abs(x.mean() - mean) < 4 * se_mean
    assert x.var() == pytest.approx(expected_var, rel=0.06)
    assert np.mean(x == 0) == pytest.approx(p0, abs=4 * np.sqrt(p0 * (1 - p0) / n) + 1e-4)
    assert np.mean(x == 1) == pytest.approx(p1, abs=4 * np.sqrt(p1 * (1 - p1) / n) + 1e-4)


def test_counts_mean_variance_follow_dispersion():
    phi = 0.3
    adata = simulate(
        3000,
        1000,
        cell_types=["B cell"],
        samples_per_condition=1,
        library_size_sigma=0.0,
        dispersion=phi,
        seed=6,
    )
    X = _dense(adata)
    m, v = X.mean(axis=0), X.var(axis=0, ddof=1)
    high = m > 2  # sampled densely
    est = (v[high] - m[high]) / m[high] ** 2
    assert np.median(est) == pytest.approx(phi, rel=0.15)
    low = (m > 0.02) & (m < 0.5)  # sampled sparsely
    assert low.sum() > 100
    expected_var = m[low] + phi * m[low] ** 2
    assert v[low].sum() / expected_var.sum() == pytest.approx(1.0, abs=0.03)
    expected_zeros = ((1 + phi * m[low]) ** (-1 / phi)).sum() * X.shape[0]
    assert (X[:, low] == 0).sum() / expected_zeros == pytest.approx(1.0, abs=0.01)


def test_mito_and_ribo_shares_are_realistic(pbmc):
    X = _dense(pbmc)
    totals = X.sum(axis=1)
    mito = X[:, pbmc.var["mito"].to_numpy()].sum(axis=1) / totals
    ribo = X[:, pbmc.var["ribo"].to_numpy()].sum(axis=1) / totals
    assert 0.03 <= np.median(mito) <= 0.08
    assert 0.10 <= np.median(ribo) <= 0.35
    assert all(g.startswith("MT-") for g in pbmc.var_names[pbmc.var["mito"]])


def _log2_ratio_sd(cpm: pd.DataFrame, a: str, b: str, genes) -> float:
    return float(np.std(np.log2(cpm.loc[a, genes] / cpm.loc[b, genes])))


def test_batch_effect_present_only_with_batches(design):
    sim = design.uns["simulation"]
    assert sim["sample_batch"] == {
        "ctrl_1": "batch1",
        "ctrl_2": "batch2",
        "stim_1": "batch1",
        "stim_2": "batch2",
    }
    de = set(sim["de_genes"]["stim"])
    cd4 = design[design.obs["cell_type"] == "CD4 naive T cell"]
    cpm = _pseudobulk(cd4, "sample")
    genes = [g for g in cpm.columns[(cpm > 300).all()] if g not in de]
    across = _log2_ratio_sd(cpm, "ctrl_1", "ctrl_2", genes)  # different batches
    within = _log2_ratio_sd(cpm, "ctrl_1", "stim_1", genes)  # same batch
    assert across > 0.4 and across > 2 * within

    single = simulate(3000, 1500, n_conditions=2, seed=2)
    assert single.obs["batch"].nunique() == 1
    cd4 = single[single.obs["cell_type"] == "CD4 naive T cell"]
    cpm = _pseudobulk(cd4, "sample")
    genes = [g for g in cpm.columns[(cpm > 300).all()]]
    assert _log2_ratio_sd(cpm, "ctrl_1", "ctrl_2", genes) < 0.3


def test_condition_de_genes_show_their_fold_change(design):
    truth = pd.Series(design.uns["simulation"]["de_genes"]["stim"])
    assert len(truth) == 50
    assert set(np.abs(truth)) == {1.0}
    cpm = _pseudobulk(design[~design.obs["is_doublet"]], "sample")
    log_cpm = np.log2(cpm + 1)
    ctrl = log_cpm.loc[["ctrl_1", "ctrl_2"]].mean()
    stim = log_cpm.loc[["stim_1", "stim_2"]].mean()
    estimate = stim - ctrl
    assert np.mean(np.abs(estimate[truth.index] - truth)) < 0.3
    others = estimate.drop(truth.index)
    others = others[cpm[others.index].min() > 50]
    assert np.median(np.abs(others)) < 0.15


def test_doublets_sum_two_cells_of_different_types(design):
    obs = design.obs
    is_doublet = obs["is_doublet"].to_numpy()
    assert is_doublet.sum() == round(0.06 * 3000)
    partner = obs["doublet_partner_type"]
    assert partner[~is_doublet].isna().all() and partner[is_doublet].notna().all()
    assert (partner[is_doublet].astype(str) != obs["cell_type"][is_doublet].astype(str)).all()
    totals = np.asarray(design.X.sum(axis=1)).ravel()
    ratio = np.median(totals[is_doublet]) / np.median(totals[~is_doublet])
    assert 1.6 < ratio < 2.4
    true_ratio = obs["true_library_size"][is_doublet].median() / (
        obs["true_library_size"][~is_doublet].median()
    )
    assert 1.6 < true_ratio < 2.4


def test_trajectory_genes_follow_pseudotime():
    adata = simulate(1500, 1000, trajectory=True, seed=7)
    obs = adata.obs
    lineage = obs["cell_type"].isin(["HSPC", "erythroid"]).to_numpy()
    pt = obs["pseudotime"].to_numpy()
    assert np.all((pt[lineage] >= 0) & (pt[lineage] <= 1)) and np.isnan(pt[~lineage]).all()
    assert (pt[(obs["cell_type"] == "HSPC").to_numpy()] < 0.5).all()
    assert (pt[(obs["cell_type"] == "erythroid").to_numpy()] >= 0.5).all()
    truth = adata.uns["simulation"]["trajectory_genes"]
    assert truth["HBB"] > 0 and truth["CD34"] < 0
    counts = _dense(adata)[lineage]
    norm = _cp10k(counts)
    cols = adata.var_names.get_indexer(list(truth))
    expressed = counts[:, cols].mean(axis=0) >= 2  # rank correlation needs some counts
    assert expressed.sum() >= 10
    changes = np.array(list(truth.values()))
    rhos = np.array(
        [
            spearmanr(norm[:, col], pt[lineage])[0] * np.sign(change)
            for col, change in zip(cols[expressed], changes[expressed], strict=True)
        ]
    )
    assert np.mean(rhos > 0.5) >= 0.8, rhos.round(2)


def test_mouse_uses_mouse_symbols():
    adata = simulate(300, 1000, species="mouse", seed=8)
    names = adata.var_names
    assert not any(n.isupper() for n in names)
    assert {"Cd3e", "Ms4a1", "Nkg7", "Fcgr4", "H2-Aa", "Lyz2"} <= set(names)
    assert all(n.startswith("mt-") for n in names[adata.var["mito"]])
    assert {"Hba-a1", "Hbb-bs"} <= set(names[adata.var["hb"]])
    assert names[-1].startswith("Simg")
    assert adata.uns["simulation"]["markers"]["B cell"][0] == "Ms4a1"
    assert not (adata.var_names.str.upper().isin(["CD3E", "MS4A1"]) & names.str.isupper()).any()


def test_catalogue_ids_are_valid_cell_ontology_terms():
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    parser = OntologyParser()
    human, mouse = simulator_cell_types("human"), simulator_cell_types("mouse")
    assert list(human.columns) == ["cell_type", "cell_ontology_id", "markers"]
    assert len(human) >= 20 and human["cell_type"].is_unique
    assert human["cell_ontology_id"].tolist() == mouse["cell_ontology_id"].tolist()
    for cl in human["cell_ontology_id"]:
        assert parser.get_term_label(cl)
        assert not parser.is_term_deprecated(cl)
    assert parser.get_term_label("CL:0000623") == "natural killer cell"
    for markers in (*human["markers"], *mouse["markers"]):
        assert 4 <= len(markers) <= 8
    assert all(m.isupper() or "-" in m for ms in human["markers"] for m in ms)
    # The table is what the simulator uses.
    adata = simulate(300, 1000, cell_types=["hepatocyte", "pDC"], seed=9)
    row = human.set_index("cell_type").loc["pDC"]
    assert adata.uns["simulation"]["markers"]["pDC"] == row["markers"]
    assert adata.uns["simulation"]["cell_ontology_ids"]["pDC"] == row["cell_ontology_id"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_cells": 0}, "n_cells"),
        ({"n_cells": 2.5}, "n_cells"),
        ({"n_genes": 50}, "n_genes"),
        ({"proportions": [0.5, 0.6]}, "proportions"),
        ({"cell_types": ["B cell", "NK cell"], "proportions": [0.3, 0.3]}, "proportions"),
        ({"cell_types": ["B cell", "NK cell"], "proportions": [1.0]}, "proportions"),
        ({"cell_types": ["B cell", "NK cell"], "proportions": [1.2, -0.2]}, "proportions"),
        ({"cell_types": ["B cell", "unicorn cell"]}, "cell_types"),
        ({"cell_types": ["B cell", "B cell"]}, "cell_types"),
        ({"doublet_rate": -0.1}, "doublet_rate"),
        ({"doublet_rate": 0.5}, "doublet_rate"),
        ({"doublet_rate": 0.1, "cell_types": ["B cell"]}, "doublet_rate"),
        ({"species": "rat"}, "species"),
        ({"dispersion": -1.0}, "dispersion"),
        ({"batch_effect": -0.1}, "batch_effect"),
        ({"mean_library_size": 0}, "mean_library_size"),
        ({"library_size_sigma": float("nan")}, "library_size_sigma"),
        ({"n_batches": 0}, "n_batches"),
        ({"n_batches": 3}, "n_batches"),  # only 2 samples
        ({"n_de_genes": -1}, "n_de_genes"),
        ({"n_conditions": 2, "n_de_genes": 10_000}, "n_de_genes"),
        ({"samples_per_condition": 0}, "samples_per_condition"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_parameters_raise(kwargs, name):
    with pytest.raises(InvalidParameterError) as info:
        simulate(**{"n_cells": 100, "n_genes": 1000, **kwargs})
    assert info.value.message.startswith(name)


def test_unknown_cell_type_lists_the_known_ones():
    with pytest.raises(InvalidParameterError, match=r"known types are .*'NK cell'"):
        simulate(100, 1000, cell_types=["unicorn cell"])


def test_writes_and_reads_back_as_h5ad(tmp_path, design):
    import anndata as ad

    design.write_h5ad(tmp_path / "sim.h5ad")
    back = ad.read_h5ad(tmp_path / "sim.h5ad")
    assert (back.X != design.X).nnz == 0
    assert (
        back.uns["simulation"]["de_genes"]["stim"] == design.uns["simulation"]["de_genes"]["stim"]
    )
    pd.testing.assert_frame_equal(back.obs, design.obs)


def test_cell_types_recoverable_by_standard_clustering():
    """PCA + Leiden on the default simulation finds the simulated types (ARI > 0.8)."""
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    adata = simulate(2000)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=1000)
    sc.pp.pca(adata, n_comps=30, mask_var="highly_variable", random_state=0)
    sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, random_state=0)
    assert adjusted_rand_score(adata.obs["cell_type"], adata.obs["leiden"]) > 0.8
