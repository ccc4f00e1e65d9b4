"""The inspector: every X state, every breadcrumb, species, design columns, and bringing data ready."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from anndata import AnnData
from scipy import sparse

from scagent.data import ensure_ready_for, get_counts, inspect_adata, simulate, summarize_state
from scagent.data import inspect as inspect_module
from scagent.errors import DataStateError


@pytest.fixture(scope="module")
def sim() -> AnnData:
    return simulate(800, 1000, n_batches=2, n_conditions=2, samples_per_condition=2, seed=3)


@pytest.fixture
def counts(sim: AnnData) -> AnnData:
    return sim.copy()


# --------------------------------------------------------------------------- X state


def test_raw_counts_detected(counts: AnnData) -> None:
    state = inspect_adata(counts)
    assert state.x_state == "raw_counts"
    assert state.counts_location == "X"
    # fresh counts: nothing done; the simulator's truth columns are not annotations
    assert state.steps == []
    assert state.breadcrumbs.cell_types == []


def test_normalize_total_without_log_is_normalized(counts: AnnData) -> None:
    sc.pp.normalize_total(counts, target_sum=1e4)
    state = inspect_adata(counts)
    assert state.x_state == "normalized"
    assert "10,000" in state.x_state_evidence or "1e+04" in state.x_state_evidence
    assert state.counts_location is None
    assert "normalize" in state.steps and "log1p" not in state.steps


def test_cpm_is_normalized(counts: AnnData) -> None:
    sc.pp.normalize_total(counts, target_sum=1e6)
    assert inspect_adata(counts).x_state == "normalized"


def test_log1p_detected_from_breadcrumb(counts: AnnData) -> None:
    sc.pp.normalize_total(counts, target_sum=1e4)
    sc.pp.log1p(counts)
    state = inspect_adata(counts)
    assert state.x_state == "log_normalized"
    assert "uns['log1p']" in state.x_state_evidence
    assert state.has("log1p")


def test_log_normalized_without_breadcrumb_and_gene_subset(counts: AnnData) -> None:
    """Row totals no longer match after subsetting genes; the per-cell lattice still does."""
    sc.pp.normalize_total(counts)
    sc.pp.log1p(counts)
    del counts.uns["log1p"]
    subset = counts[:, counts.var_names[::3]].copy()
    state = inspect_adata(subset)
    assert state.x_state == "log_normalized"
    assert any("uns['log1p'] is missing" in w for w in state.warnings)


def test_scaled_detected_and_counts_found_in_layer(counts: AnnData) -> None:
    counts.layers["counts"] = counts.X.copy()
    sc.pp.normalize_total(counts)
    sc.pp.log1p(counts)
    sc.pp.scale(counts, max_value=10)
    state = inspect_adata(counts)
    assert state.x_state == "scaled"
    assert state.counts_location == "layers/counts"
    assert state.layer_states["counts"] == "raw_counts"
    assert "layers['counts']" in summarize_state(state)


def test_unknown_transform(counts: AnnData) -> None:
    counts.X = counts.X.sqrt()
    state = inspect_adata(counts)
    assert state.x_state == "transformed_unknown"
    assert state.counts_location is None


def test_counts_in_integer_layer_with_any_name_and_in_raw(counts: AnnData) -> None:
    counts.layers["umi_matrix"] = counts.X.copy()
    counts.raw = counts.copy()
    sc.pp.normalize_total(counts)
    sc.pp.log1p(counts)
    state = inspect_adata(counts)
    assert state.raw_state == "raw_counts"
    # a layer is preferred to .raw (layers keep the same genes as X)
    assert state.counts_location == "layers/umi_matrix"
    del counts.layers["umi_matrix"]
    assert inspect_adata(counts).counts_location == "raw"


def test_dense_matrix_states(counts: AnnData) -> None:
    counts.X = counts.X.toarray()
    assert inspect_adata(counts).x_state == "raw_counts"
    sc.pp.normalize_total(counts)
    sc.pp.log1p(counts)
    state = inspect_adata(counts)
    assert state.x_state == "log_normalized"
    assert not state.x_sparse


def test_negative_values_in_counts_layer_warned(counts: AnnData) -> None:
    layer = counts.X.copy()
    layer.data[:5] = -1
    counts.layers["counts"] = layer
    state = inspect_adata(counts)
    assert state.layer_states["counts"] == "scaled"
    assert any("named like counts" in w for w in state.warnings)
    assert state.counts_location == "X"  # the broken layer is not used as counts


def test_inspection_reads_a_bounded_sample_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = simulate(4000, 300, seed=1)
    before_uns = set(big.uns)
    X_before = big.X
    seen: list[int] = []
    original = inspect_module._sample_rows

    def spy(matrix, n_rows, rng):
        out = original(matrix, n_rows, rng)
        seen.append(out.shape[0])
        return out

    monkeypatch.setattr(inspect_module, "_sample_rows", spy)
    inspect_adata(big)
    assert seen and max(seen) <= inspect_module.SAMPLE_ROWS
    assert big.X is X_before and sparse.issparse(big.X)
    assert set(big.uns) == before_uns


# --------------------------------------------------------------------------- pbmc68k_reduced


def test_pbmc68k_reduced(pbmc68k: AnnData) -> None:
    state = inspect_adata(pbmc68k)
    assert state.x_state == "scaled"
    assert state.raw_state == "log_normalized"
    assert state.counts_location is None
    assert state.species == "human"
    crumbs = state.breadcrumbs
    assert [(c.name, c.n_levels) for c in crumbs.clusterings] == [("louvain", 11)]
    assert [(c.name, c.n_levels) for c in crumbs.cell_types] == [("bulk_labels", 10)]
    assert crumbs.de and crumbs.de[0].key == "rank_genes_groups"
    assert crumbs.de[0].groupby == "bulk_labels"
    for step in ("hvg", "pca", "neighbors", "umap", "louvain", "markers", "log1p", "scale"):
        assert state.has(step), step
    assert crumbs.n_pcs == pbmc68k.obsm["X_pca"].shape[1]
    summary = summarize_state(state)
    assert "700 cells x 765 genes (human)" in summary
    assert "obs['louvain'] (11)" in summary and "obs['bulk_labels'] (10)" in summary
    assert "no raw counts" in summary


def test_pbmc68k_ready_for_log_normalized_uses_raw(pbmc68k: AnnData) -> None:
    ready = ensure_ready_for(pbmc68k, needs="log_normalized")
    assert ready is not pbmc68k
    assert inspect_adata(ready).x_state == "log_normalized"
    assert ready.uns["scagent_prepared_from"] == "raw"
    np.testing.assert_allclose(ready.X[:5].toarray(), pbmc68k.raw.X[:5].toarray())
    with pytest.raises(DataStateError) as err:
        ensure_ready_for(pbmc68k, needs="raw_counts")
    assert err.value.exit_code == 7
    assert "no raw counts" in err.value.message


# --------------------------------------------------------------------------- breadcrumbs


def test_every_breadcrumb_after_the_step_that_leaves_it() -> None:
    counts = simulate(400, 500, n_conditions=2, seed=5)

    def steps() -> set[str]:
        return set(inspect_adata(counts).steps)

    counts.var["mt"] = counts.var_names.str.startswith("MT-")
    sc.pp.calculate_qc_metrics(counts, qc_vars=["mt"], inplace=True)
    assert "qc_metrics" in steps()
    sc.pp.scrublet(counts, batch_key="sample", random_state=0)
    assert "doublets" in steps()
    counts.layers["counts"] = counts.X.copy()
    sc.pp.normalize_total(counts)
    sc.pp.log1p(counts)
    assert {"normalize", "log1p"} <= steps()
    sc.pp.highly_variable_genes(counts, n_top_genes=300)
    state = inspect_adata(counts)
    assert state.has("hvg") and state.breadcrumbs.n_hvg == 300
    sc.pp.pca(counts, n_comps=15)
    assert "pca" in steps() and inspect_adata(counts).breadcrumbs.n_pcs == 15
    assert "neighbors" not in steps()
    sc.pp.neighbors(counts, n_neighbors=10)
    assert "neighbors" in steps()
    sc.tl.umap(counts, maxiter=20)
    assert "umap" in steps()
    sc.tl.leiden(counts, flavor="igraph", n_iterations=2, directed=False, key_added="leiden_r1")
    state = inspect_adata(counts)
    assert state.has("leiden") and state.has("clustering")
    assert any(c.name == "leiden_r1" for c in state.breadcrumbs.clusterings)
    sc.tl.rank_genes_groups(counts, "leiden_r1", method="wilcoxon", key_added="de_leiden")
    state = inspect_adata(counts)
    assert state.has("markers")
    assert [(d.key, d.groupby) for d in state.breadcrumbs.de] == [("de_leiden", "leiden_r1")]
    sc.tl.paga(counts, groups="leiden_r1")
    assert "paga" in steps()
    sc.tl.diffmap(counts)
    assert "diffmap" in steps()
    counts.uns["iroot"] = 0
    sc.tl.dpt(counts)
    assert "diffusion_pseudotime" in steps()
    small = counts[:120].copy()  # t-SNE is slow; its breadcrumb does not depend on size
    sc.tl.tsne(small, n_pcs=10, perplexity=10)
    assert "tsne" in inspect_adata(small).steps
    sc.pp.scale(counts, max_value=10)
    state = inspect_adata(counts)
    assert state.x_state == "scaled" and state.has("scale")
    assert state.counts_location == "layers/counts"


def test_harmony_breadcrumb(counts: AnnData) -> None:
    counts.obsm["X_pca_harmony"] = np.zeros((counts.n_obs, 5))
    assert "harmony" in inspect_adata(counts).steps


def test_cluster_and_cell_type_columns_found_by_fuzzy_names(counts: AnnData) -> None:
    rng = np.random.default_rng(0)
    n = counts.n_obs
    counts.obs["seurat_clusters"] = pd.Categorical(rng.integers(0, 7, n).astype(str))
    counts.obs["RNA_snn_res.0.8"] = pd.Categorical(rng.integers(0, 5, n).astype(str))
    counts.obs["predicted.celltype.l2"] = pd.Categorical(rng.choice(["B", "T", "NK"], n))
    counts.obs["Annotation"] = pd.Categorical(rng.choice(["x", "y"], n))
    counts.obs["unnamed"] = pd.Categorical(rng.integers(0, 4, n).astype(str))
    counts.obs["barcode_id"] = [f"c{i}" for i in range(n)]  # an identifier, not a grouping
    counts.obs["score"] = rng.normal(size=n)  # continuous
    counts.obs["annotation_status"] = pd.Categorical(rng.choice(["supported", "flagged"], n))
    counts.obs["annotation_cl_id"] = pd.Categorical(rng.choice(["CL:1", "CL:2"], n))
    crumbs = inspect_adata(counts).breadcrumbs
    clusterings = {c.name: c.n_levels for c in crumbs.clusterings}
    assert clusterings == {"seurat_clusters": 7, "RNA_snn_res.0.8": 5, "unnamed": 4}
    cell_types = {c.name for c in crumbs.cell_types}
    assert cell_types == {"predicted.celltype.l2", "Annotation"}  # not the simulator's truth
    del counts.uns["simulation"]
    assert "cell_type" in {c.name for c in inspect_adata(counts).breadcrumbs.cell_types}


def test_too_many_levels_is_not_a_clustering(counts: AnnData) -> None:
    n = counts.n_obs
    counts.obs["leiden"] = pd.Categorical((np.arange(n) % (n // 5)).astype(str))
    assert all(c.name != "leiden" for c in inspect_adata(counts).breadcrumbs.clusterings)


# --------------------------------------------------------------------------- genes and design


def test_species_and_gene_counts_human(sim: AnnData) -> None:
    state = inspect_adata(sim)
    assert state.species == "human"
    assert state.gene_id_type == "symbol"
    assert state.n_mito_genes == int(sim.var["mito"].sum()) > 0
    assert state.n_ribo_genes == int(sim.var["ribo"].sum()) > 0


def test_species_mouse() -> None:
    mouse = simulate(300, 500, species="mouse", seed=2)
    state = inspect_adata(mouse)
    assert state.species == "mouse"
    assert "mt-" in state.species_evidence
    assert state.n_mito_genes == int(mouse.var["mito"].sum()) > 0


@pytest.mark.parametrize(("prefix", "species"), [("ENSG", "human"), ("ENSMUSG", "mouse")])
def test_species_from_ensembl_ids(prefix: str, species: str) -> None:
    adata = AnnData(sparse.random(50, 200, density=0.1, format="csr", dtype=np.float32))
    adata.var_names = [f"{prefix}{i:011d}" for i in range(200)]
    state = inspect_adata(adata)
    assert state.gene_id_type == "ensembl"
    assert state.species == species


def test_symbols_with_ensembl_ids_in_var() -> None:
    adata = AnnData(sparse.random(50, 100, density=0.1, format="csr", dtype=np.float32))
    adata.var_names = [f"GENE{i}" for i in range(100)]
    adata.var["gene_ids"] = [f"ENSMUSG{i:011d}" for i in range(100)]
    state = inspect_adata(adata)
    assert state.gene_id_type == "symbol"
    assert state.species == "mouse"


def test_design_columns(sim: AnnData) -> None:
    state = inspect_adata(sim)
    assert {c.name: c.n_levels for c in state.sample_columns}["sample"] == 4
    assert {c.name: c.n_levels for c in state.batch_columns}["batch"] == 2
    assert {c.name: c.n_levels for c in state.condition_columns}["condition"] == 2
    adata = sim.copy()
    adata.obs["patient_id"] = adata.obs["sample"].astype(str)
    assert [c.name for c in inspect_adata(adata).donor_columns] == ["patient_id"]


def test_state_serialises_to_json(pbmc68k: AnnData) -> None:
    from scagent.data import DataState

    state = inspect_adata(pbmc68k)
    again = DataState.model_validate_json(state.model_dump_json())
    assert again == state


# --------------------------------------------------------------------------- ensure_ready_for


def test_ready_for_log_normalized_from_counts_layer(counts: AnnData) -> None:
    raw = counts.X.copy()
    counts.layers["counts"] = raw.copy()
    sc.pp.normalize_total(counts)
    sc.pp.log1p(counts)
    sc.pp.scale(counts)
    state = inspect_adata(counts)
    ready = ensure_ready_for(counts, state, "log_normalized")
    assert inspect_adata(ready).x_state == "log_normalized"
    expected = AnnData(raw.astype(np.float32))
    sc.pp.normalize_total(expected, target_sum=1e4)
    sc.pp.log1p(expected)
    np.testing.assert_allclose(ready.X.toarray(), expected.X.toarray(), rtol=1e-5)
    assert inspect_adata(counts).x_state == "scaled"  # the input is untouched
    counts_back = ensure_ready_for(counts, state, "raw_counts")
    assert (counts_back.X != raw).nnz == 0
    assert get_counts(counts, state) is counts.layers["counts"]


def test_ready_for_scaled_from_counts(counts: AnnData) -> None:
    ready = ensure_ready_for(counts, needs="scaled")
    assert inspect_adata(ready).x_state == "scaled"
    assert float(np.max(ready.X)) <= 10.0 + 1e-6
    assert inspect_adata(counts).x_state == "raw_counts"


def test_ready_for_log_from_normalized(counts: AnnData) -> None:
    sc.pp.normalize_total(counts)
    ready = ensure_ready_for(counts, needs="log_normalized")
    assert inspect_adata(ready).x_state == "log_normalized"
    assert inspect_adata(counts).x_state == "normalized"


def test_ready_returns_same_object_when_nothing_to_do(counts: AnnData) -> None:
    assert ensure_ready_for(counts, needs="raw_counts") is counts


def test_ready_fails_clearly_when_nothing_can_serve(counts: AnnData) -> None:
    counts.X = counts.X.sqrt()
    with pytest.raises(DataStateError) as err:
        ensure_ready_for(counts, needs="log_normalized")
    assert "cannot be derived" in err.value.message
    assert err.value.exit_code == 7


def test_simulated_truth_pseudotime_is_not_a_computed_trajectory() -> None:
    adata = simulate(300, 400, trajectory=True, seed=0)
    assert "pseudotime" in adata.obs
    assert not inspect_adata(adata).has("diffusion_pseudotime")
    adata.obs["dpt_pseudotime"] = adata.obs["pseudotime"].to_numpy()
    assert inspect_adata(adata).has("diffusion_pseudotime")
