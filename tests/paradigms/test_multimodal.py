"""The multimodal (CITE-seq) paradigm: simulator truth, CLR, WNN, protein markers, protein evidence in annotation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import scagent.tools.annotation
import scagent.tools.multimodal as mm
from scagent.annotate.guardrails import LabelChecker, protein_marker_genes
from scagent.annotate.report import GuardrailConfig
from scagent.data.modalities import set_modality_counts
from scagent.data.simulate_cite import (
    CITE_POPULATIONS,
    simulate_cite,
    truth_recovery,
)
from scagent.errors import (
    InvalidDataError,
    InvalidParameterError,
    MissingPrerequisiteError,
)
from scagent.knowledge import MarkerDB
from scagent.knowledge.proteins import is_isotype_control, map_proteins, protein_genes
from scagent.tools.multimodal import check_multimodal_inputs

assert scagent.tools.annotation  # registers annotate for the session test

T_CELLS = ["CD4 naive T cell", "CD4 memory T cell", "CD8 naive T cell", "CD8 memory T cell"]


@pytest.fixture(scope="module")
def cite():
    return simulate_cite(1500, 1000, seed=3)


@pytest.fixture(scope="module")
def prepared(cite):
    """Log-normalized RNA with a PCA, CLR proteins and the WNN graph (scanpy directly, fast)."""
    adata = cite.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=30)
    mm.protein_normalize(adata)
    result = mm.joint_embedding(adata)
    return adata, result


# ------------------------------------------------------------------ simulator


def test_simulator_plants_protein_only_populations(cite):
    counts = cite.obsm["protein_counts"]
    assert isinstance(counts, pd.DataFrame) and counts.index.equals(cite.obs_names)
    assert counts.shape[1] == 20 and np.issubdtype(counts.to_numpy().dtype, np.integer)
    assert (counts.to_numpy() >= 0).all()
    truth = cite.obs["true_protein_population"].astype(str)
    assert set(truth) == set(CITE_POPULATIONS)
    assert "true_protein_population" in cite.uns["simulation"]["truth_columns"]
    # Naive and memory T cells share one RNA type ...
    rna = cite.obs["cell_type"].astype(str)
    assert (
        set(rna[truth == "CD4 memory T cell"])
        == set(rna[truth == "CD4 naive T cell"])
        == {"CD4 naive T cell"}
    )
    # ... and differ in CD45RA / CD45RO protein by far more than the noise.
    mean = counts.groupby(truth).mean()
    for naive, memory in [T_CELLS[:2], T_CELLS[2:]]:
        assert mean.loc[naive, "CD45RA"] > 5 * mean.loc[memory, "CD45RA"]
        assert mean.loc[memory, "CD45RO"] > 5 * mean.loc[naive, "CD45RO"]
    # Background everywhere: every antibody has counts in most cells, isotypes stay low.
    assert (counts > 0).mean().min() > 0.5
    iso = cite.uns["simulation"]["cite"]["isotype_controls"]
    assert len(iso) == 3 and counts[iso].to_numpy().mean() < counts["CD3"].mean() / 5


def test_simulator_is_seeded_and_checks_parameters():
    a = simulate_cite(300, 600, seed=1)
    b = simulate_cite(300, 600, seed=1)
    c = simulate_cite(300, 600, seed=2)
    assert a.obsm["protein_counts"].equals(b.obsm["protein_counts"])
    assert not a.obsm["protein_counts"].equals(c.obsm["protein_counts"])
    wide = simulate_cite(300, 600, n_proteins=23, seed=1)
    assert list(wide.obsm["protein_counts"].columns[-3:]) == [
        "ADT_EXTRA_01",
        "ADT_EXTRA_02",
        "ADT_EXTRA_03",
    ]
    with pytest.raises(InvalidParameterError, match="n_proteins"):
        simulate_cite(300, 600, n_proteins=5)


# ------------------------------------------------------------------ antibody -> gene mapping


@pytest.mark.parametrize(
    ("name", "genes"),
    [
        ("CD8a", ["CD8A"]),
        ("CD8a_TotalSeqB", ["CD8A"]),
        ("Hu.CD56", ["NCAM1"]),
        ("CD16", ["FCGR3A", "FCGR3B"]),
        ("CD45RA", ["PTPRC"]),
        ("HLA-DR", ["HLA-DRA", "HLA-DRB1"]),
        ("CD4-RPA-T4", ["CD4"]),
        ("CD3_A0034", ["CD3E", "CD3D", "CD3G"]),
        ("TCR-alpha/beta", ["TRAC", "TRBC1", "TRBC2"]),
        ("CD127", ["IL7R"]),
        ("Mouse_IgG1_isotype", []),
        ("made-up antibody 7", []),
    ],
)
def test_protein_names_map_to_genes(name, genes):
    assert protein_genes(name) == genes


def test_isotype_controls_and_mouse_orthologs():
    assert is_isotype_control("Mouse_IgG2a_isotype") and is_isotype_control("IgG1_ctrl")
    assert not is_isotype_control("IgD") and not is_isotype_control("CD3")
    assert protein_genes("CD8a", "mouse") == ["Cd8a"]
    assert map_proteins(["CD14", "XYZ"]) == {"CD14": ["CD14"], "XYZ": []}


# ------------------------------------------------------------------ tools


def test_protein_normalize_is_clr_and_measures_isotype_binding(cite):
    adata = cite.copy()
    res = mm.protein_normalize(adata)
    x = cite.obsm["protein_counts"].to_numpy(float)
    expected = np.log1p(x / np.exp(np.log1p(x).mean(axis=1, keepdims=True)))
    np.testing.assert_allclose(adata.obsm["protein_clr"].to_numpy(), expected, rtol=1e-5)
    assert list(adata.obsm["protein_clr"].columns) == list(cite.obsm["protein_counts"].columns)
    assert res.metrics["n_proteins"] == 20 and "obsm/protein_clr" in res.written
    # CD34 is stained on nothing in blood: flagged as background only, the lineage markers not.
    assert "CD34" in adata.uns["protein_clr"]["background_only"]
    assert not {"CD3", "CD14", "CD19"} & set(adata.uns["protein_clr"]["background_only"])
    # Monocytes bind antibodies non-specifically (Fc receptors): more isotype counts.
    frac = adata.obs["protein_isotype_fraction"]
    truth = adata.obs["true_protein_population"].astype(str)
    assert frac[truth == "classical monocyte"].median() > frac[truth.isin(T_CELLS)].median()
    other = cite.copy()
    mm.protein_normalize(other, axis=0)
    assert not np.allclose(other.obsm["protein_clr"].to_numpy(), expected)


def test_joint_embedding_writes_a_scanpy_graph_and_weights(prepared):
    adata, res = prepared
    nb = adata.uns["wnn"]
    assert nb["connectivities_key"] == "wnn_connectivities"
    assert nb["distances_key"] == "wnn_distances"
    dist = adata.obsp["wnn_distances"]
    assert (np.diff(dist.indptr) == 19).all()  # n_neighbors=20 counts the cell itself
    w = adata.obs["wnn_rna_weight"]
    np.testing.assert_allclose(w + adata.obs["wnn_protein_weight"], 1.0)
    truth = adata.obs["true_protein_population"].astype(str)
    # Cells that only protein tells apart lean on protein; B cells and monocytes less so.
    assert (
        w[truth.isin(T_CELLS)].mean() + 0.1 < w[truth.isin(["B cell", "classical monocyte"])].mean()
    )
    # scanpy reads the graph by its neighbors_key.
    work = adata.copy()
    sc.tl.leiden(work, neighbors_key="wnn", key_added="w", flavor="igraph", n_iterations=2,
                 directed=False, resolution=0.5)  # fmt: skip
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, work.obs["w"]) > 0.8
    assert res.metrics["n_proteins_used"] == 17  # isotype controls left out


def test_weighted_nearest_neighbors_favours_the_informative_modality():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 60)
    informative = rng.normal(size=(180, 5)) * 0.3 + np.eye(3, 5)[groups] * 4
    noise = rng.normal(size=(180, 5))
    _, conn, weights = mm.weighted_nearest_neighbors({"a": informative, "b": noise}, n_neighbors=10)
    assert weights[:, 0].mean() > 0.7
    # Neighbours follow the informative modality: most edges stay within a group.
    rows, cols = conn.nonzero()
    assert (groups[rows] == groups[cols]).mean() > 0.95


def test_protein_markers_rank_defining_antibodies(prepared):
    adata, _ = prepared
    adata = adata.copy()
    adata.obs["truth"] = adata.obs["true_protein_population"].astype(str)
    res = mm.protein_markers(adata, groupby="truth")
    names = adata.uns["protein_markers"]["names"]
    defining = adata.uns["simulation"]["cite"]["defining_proteins"]
    hits = sum(str(names[pop][0]) in defining[pop] for pop in defining)
    assert hits >= 7
    assert adata.uns["protein_markers"]["protein_genes"]["CD56"] == "NCAM1"
    rows = [r for r in res.tables["protein_markers"] if r["group"] == "B cell" and r["rank"] == 1]
    assert rows[0]["mean_clr_group"] > rows[0]["mean_clr_rest"]
    evidence = protein_marker_genes(adata.uns["protein_markers"], "truth")
    assert "CD8A" in evidence["CD8 naive T cell"]["CD8a"]
    assert protein_marker_genes(adata.uns["protein_markers"], "leiden") == {}


# ------------------------------------------------------------------ guardrails


def test_protein_evidence_counts_in_the_guardrails():
    checker = LabelChecker(MarkerDB.default(), GuardrailConfig(), "human")
    rna_only = checker.check("CD8 T cell", ["CD8A", "FOO1", "FOO2"])
    assert rna_only.status == "flagged" and rna_only.check.protein_markers_found == []
    with_protein = checker.check(
        "CD8 T cell",
        ["CD8A", "FOO1", "FOO2"],
        protein_markers={"CD3": ["CD3E", "CD3D"], "CD45RO": ["PTPRC"]},
    )
    assert with_protein.status == "supported"
    assert with_protein.check.protein_markers_found == ["CD3 (CD3E)"]
    # The same gene seen as RNA and protein is one marker, not two.
    same = checker.check("CD8 T cell", ["CD8A", "FOO1"], protein_markers={"CD8a": ["CD8A"]})
    assert same.status == "flagged" and same.check.protein_markers_found == ["CD8a (CD8A)"]


# ------------------------------------------------------------------ bad inputs


def test_adt_table_of_other_cells_reports_the_match_rate(cite):
    adata = cite[:200].copy()
    del adata.obsm["protein_counts"]
    counts = cite.obsm["protein_counts"].iloc[:200].copy()
    counts.index = [f"other_{i}" for i in range(140)] + list(adata.obs_names[140:])
    with pytest.raises(InvalidDataError, match=r"60 of 200 cells \(30.0%\)"):
        set_modality_counts(adata, "protein_counts", counts)
    set_modality_counts(adata, "protein_counts", counts, match="fill")
    with pytest.raises(InvalidDataError, match="30% of cells have any antibody count"):
        check_multimodal_inputs(adata)


def test_normalized_or_negative_values_given_as_counts(cite):
    adata = cite[:100].copy()
    adata.obsm["protein_counts"] = np.log1p(adata.obsm["protein_counts"].astype(float))
    with pytest.raises(InvalidDataError, match="non-integer"):
        check_multimodal_inputs(adata)
    with pytest.raises(InvalidDataError, match="looks normalized"):
        mm.protein_normalize(adata)
    adata.obsm["protein_counts"] = adata.obsm["protein_counts"] - 1
    with pytest.raises(InvalidDataError, match="negative"):
        mm.protein_normalize(adata)
    del adata.obsm["protein_counts"]
    with pytest.raises(InvalidDataError, match=r"obsm\['protein_counts'\] is absent"):
        check_multimodal_inputs(adata)


def test_single_protein(prepared):
    adata = prepared[0][:300].copy()
    adata.obsm["protein_counts"] = adata.obsm["protein_counts"][["CD3"]]
    with pytest.raises(InvalidDataError, match="at least 2"):
        check_multimodal_inputs(adata)
    with pytest.raises(InvalidDataError, match="needs at least 2") as exc:
        mm.protein_normalize(adata, overwrite=True)
    assert "axis=0" in exc.value.remedy
    mm.protein_normalize(adata, axis=0, overwrite=True)
    assert adata.obsm["protein_clr"].shape == (300, 1)
    with pytest.raises(InvalidDataError, match="at least 2"):
        mm.joint_embedding(adata)


def test_unmapped_protein_names_do_not_break_markers(prepared):
    adata = prepared[0].copy()
    renamed = {"CD19": "clone_XYZ_17", "CD56": "BarcodeOnly"}
    adata.obsm["protein_clr"] = adata.obsm["protein_clr"].rename(columns=renamed)
    adata.obs["truth"] = adata.obs["true_protein_population"].astype(str)
    res = mm.protein_markers(adata, groupby="truth", key_added="pm", overwrite=True)
    assert set(adata.uns["pm"]["unmapped"]) == {"clone_XYZ_17", "BarcodeOnly"}
    assert any("map to no known gene" in w for w in res.warnings)
    evidence = protein_marker_genes(adata.uns["pm"], "truth")
    assert "clone_XYZ_17" not in evidence["B cell"]


def test_wnn_before_rna_pca_is_a_missing_prerequisite(cite):
    adata = cite[:200].copy()
    mm.protein_normalize(adata)
    with pytest.raises(MissingPrerequisiteError, match=r"RNA PCA \(obsm\['X_pca'\]\)") as exc:
        mm.joint_embedding(adata)
    assert "pca" in exc.value.remedy
    adata.obsm["X_pca"] = np.zeros((200, 5))
    del adata.obsm["protein_clr"]
    with pytest.raises(MissingPrerequisiteError, match="protein_normalize"):
        mm.joint_embedding(adata)
    with pytest.raises(MissingPrerequisiteError, match="protein_normalize"):
        mm.protein_markers(adata, groupby="cell_type")


# ------------------------------------------------------------------ end to end


def test_cite_seq_end_to_end_through_the_session(tmp_path):
    from scagent.annotate import DatasetReport
    from scagent.plan.run import run_paradigm
    from scagent.session import Session

    adata = simulate_cite(2000, 1200, seed=0)
    check_multimodal_inputs(adata)
    session = Session.init(tmp_path / "proj", data=adata, context={})
    with pytest.raises(MissingPrerequisiteError, match="pca"):
        session.run("joint_embedding")
    # the paradigm's plan, at the resolution where the planted populations are separate
    resolution = {"resolution": 0.5}
    run_paradigm(session, "multimodal", params={"leiden": resolution, "leiden_wnn": resolution})
    results = {h.tool_id: h for h in session.history()}
    done = session.adata
    assert results["protein_markers"].metrics["groupby"] == "leiden_wnn"
    assert results["joint_embedding"].step > results["protein_normalize"].step
    scores = truth_recovery(done)
    assert scores["rna_clustering"] == "leiden" and scores["wnn_clustering"] == "leiden_wnn"
    assert scores["ari_wnn"] > 0.8
    assert scores["ari_wnn"] > scores["ari_rna"] + 0.1
    assert scores["ari_wnn_protein_only"] > 0.8 > scores["ari_rna_protein_only"]
    assert scores["n_top_protein_defining"] >= 7
    # Protein markers feed the annotation: CD8 clusters carry CD8a protein evidence.
    assert results["annotate"].metrics["n_protein_evidence"] >= 6
    report = DatasetReport.from_json(done.uns["annotation"]["report"])
    cd8 = [c for c in report.clusters if "CD8" in c.label]
    assert cd8 and all("CD8a (CD8A)" in c.guardrails.protein_markers_found for c in cd8)
    assert "protein markers" in report.marker_source


@pytest.mark.slow
def test_exact_wnn_agrees_with_muon(prepared):
    adata, _ = prepared
    work = adata.copy()
    mm.joint_embedding(work, method="muon", key_added="wnn_muon")
    from sklearn.metrics import adjusted_rand_score

    truth = work.obs["true_protein_population"].astype(str)
    for key in ("wnn", "wnn_muon"):
        sc.tl.leiden(work, neighbors_key=key, key_added=key, flavor="igraph", n_iterations=2,
                     directed=False, resolution=0.5)  # fmt: skip
    assert adjusted_rand_score(truth, work.obs["wnn_muon"]) > 0.8
    assert adjusted_rand_score(work.obs["wnn"], work.obs["wnn_muon"]) > 0.8
    r = np.corrcoef(work.obs["wnn_rna_weight"], work.obs["wnn_muon_rna_weight"])[0, 1]
    assert r > 0.5


# ------------------------------------------------------------------ review fixes


def test_duplicate_antibody_names_are_refused_by_name(prepared):
    adata = prepared[0][:300].copy()
    counts = adata.obsm["protein_counts"]
    dup = counts.rename(columns={"CD8a": "CD4"})  # two 'CD4' columns
    adata.obsm["protein_counts"] = dup
    with pytest.raises(InvalidDataError, match=r"more than once: CD4") as exc:
        mm.protein_normalize(adata, overwrite=True)
    assert "unique name" in exc.value.remedy
    # A CLR table of someone else's with duplicates: refused by the WNN and the markers too.
    adata.obsm["protein_clr"] = adata.obsm["protein_clr"].rename(columns={"CD8a": "CD4"})
    with pytest.raises(InvalidDataError, match="CD4"):
        mm.joint_embedding(adata, overwrite=True)
    adata.obs["truth"] = adata.obs["true_protein_population"].astype(str)
    with pytest.raises(InvalidDataError, match="CD4"):
        mm.protein_markers(adata, groupby="truth", overwrite=True)


def test_fewer_candidates_than_neighbours_is_a_parameter_error(prepared):
    adata = prepared[0][:200].copy()
    with pytest.raises(InvalidParameterError, match="n_multineighbors"):
        mm.joint_embedding(adata, n_neighbors=50, n_multineighbors=10, overwrite=True)
    x = np.random.default_rng(0).normal(size=(100, 5))
    with pytest.raises(InvalidParameterError, match="n_multineighbors"):
        mm.weighted_nearest_neighbors({"a": x, "b": x}, n_neighbors=50, n_multineighbors=10)


def test_protein_markers_of_a_replaced_clustering_are_not_evidence(prepared):
    adata = prepared[0].copy()
    adata.obs["clusters"] = adata.obs["true_protein_population"].astype(str)
    mm.protein_markers(adata, groupby="clusters")
    entry = adata.uns["protein_markers"]
    labels = adata.obs["clusters"]
    assert entry["params"]["group_sizes"] == labels.value_counts().to_dict()
    # The clustering the markers were computed on: evidence.
    assert protein_marker_genes(entry, "clusters", labels=labels)["B cell"]
    # A re-run into the same column (here: the labels shuffled among cells) is another
    # clustering: no evidence, and a warning saying why.
    rerun = labels.sample(frac=1.0, random_state=0).to_numpy()
    with pytest.warns(UserWarning, match="another clustering"):
        assert protein_marker_genes(entry, "clusters", labels=rerun) == {}
    # A result that recorded only the sizes is checked on them.
    sizes_only = {**entry, "params": {k: v for k, v in entry["params"].items()
                                      if k != "groupby_fingerprint"}}  # fmt: skip
    assert protein_marker_genes(sizes_only, "clusters", labels=rerun)  # same sizes
    with pytest.warns(UserWarning):
        assert protein_marker_genes(sizes_only, "clusters", labels=labels.iloc[:-5]) == {}
