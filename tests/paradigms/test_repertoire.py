"""Immune repertoire paradigm: V(D)J reading and attaching, the simulator's truth, the scirpy tools, end to end."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import scagent.tools.repertoire  # noqa: F401 - registers the repertoire tools
from scagent.data.simulate_repertoire import (
    _CODONS,
    B_CELL_TYPES,
    T_CELL_TYPES,
    simulate_repertoire,
    simulate_repertoire_contigs,
    truth_recovery,
    write_10x_contigs,
)
from scagent.data.vdj import TENX_CONTIG_COLUMNS, attach_vdj, read_vdj, receptor_cells
from scagent.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    MissingPrerequisiteError,
    UnsupportedFormatError,
)
from scagent.tools.repertoire import (
    AIRR_QC,
    CLONAL_EXPANSION,
    CLONOTYPES,
    REPERTOIRE_OVERLAP,
    check_repertoire_inputs,
)

# anndata marks awkward arrays in obsm as experimental on every access.
pytestmark = pytest.mark.filterwarnings("ignore:Support for Awkward Arrays")
_TRANSLATE = {codon: aa for aa, codons in _CODONS.items() for codon in codons}


@pytest.fixture(scope="module")
def simulated() -> tuple[AnnData, pd.DataFrame]:
    """Expression cells (no receptors yet) and their 10x contig table."""
    return simulate_repertoire_contigs(2000, 1200, seed=0)


@pytest.fixture(scope="module")
def contig_file(simulated, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("vdj") / "filtered_contig_annotations.csv"
    return str(write_10x_contigs(simulated[1], path))


@pytest.fixture(scope="module")
def attached(simulated, contig_file) -> AnnData:
    adata = simulated[0].copy()
    attach_vdj(adata, read_vdj(contig_file))
    return adata


@pytest.fixture(scope="module")
def analysed(attached) -> AnnData:
    """Chain QC, clonotypes, expansion and overlap run once on the attached data."""
    adata = attached.copy()
    AIRR_QC(adata)
    CLONOTYPES(adata)
    CLONAL_EXPANSION(adata, groupby="cell_type")
    REPERTOIRE_OVERLAP(adata)
    return adata


# ----------------------------------------------------------------------------- simulator


def test_contigs_look_like_cell_ranger_output(simulated) -> None:
    adata, contigs = simulated
    assert set(TENX_CONTIG_COLUMNS) <= set(contigs.columns)
    cell_type = adata.obs["cell_type"].astype(str)
    by_cell = contigs.groupby("barcode")["chain"].agg(set)
    types = cell_type.loc[by_cell.index]
    t_loci = set().union(*by_cell[types.isin(T_CELL_TYPES)])
    b_loci = set().union(*by_cell[types.isin(B_CELL_TYPES)])
    assert t_loci == {"TRA", "TRB"}
    assert b_loci == {"IGH", "IGK", "IGL"}
    # NK cells, monocytes and DCs have no contigs.
    assert types.isin((*T_CELL_TYPES, *B_CELL_TYPES)).all()
    assert (cell_type == "NK cell").sum() > 50
    # Gene names belong to the chain's locus; CDR3s start with C, end with F/W, and the
    # nucleotides translate back to the amino acids.
    assert (contigs.apply(lambda r: r["v_gene"].startswith(r["chain"] + "V"), axis=1)).all()
    assert (contigs.apply(lambda r: r["j_gene"].startswith(r["chain"] + "J"), axis=1)).all()
    assert contigs["cdr3"].str.match(r"^C[A-Z]{6,}[FW]$").all()
    sample = contigs.sample(200, random_state=0)
    for aa, nt in zip(sample["cdr3"], sample["cdr3_nt"], strict=True):
        assert "".join(_TRANSLATE[nt[i : i + 3]] for i in range(0, len(nt), 3)) == aa
    # Barcodes are 10x-like, with the aggr suffix of their sample.
    assert adata.obs_names.str.match(r"^[ACGT]{16}-[12]$").all()
    assert not contigs["productive"].all()  # a few non-productive contigs, as in real data


def test_planted_clones_are_the_truth(simulated) -> None:
    adata, contigs = simulated
    rep = adata.uns["simulation"]["repertoire"]
    clones = rep["expanded_clones"]
    assert rep["shared_clone"] == "shared_CD8"
    truth = adata.obs["true_clone"].astype(object)
    for cid, info in clones.items():
        members = truth == cid
        assert members.sum() == info["size"] >= 3
        assert set(adata.obs.loc[members, "cell_type"].astype(str)) == {info["cell_type"]}
        assert sorted(adata.obs.loc[members, "sample"].astype(str).unique()) == info["samples"]
        # Every member carries the clone's CDR3 pair (unless that chain dropped out).
        rows = contigs[contigs["barcode"].isin(adata.obs_names[members.to_numpy()])]
        assert info["cdr3_vdj"] in set(rows["cdr3"])
    assert len(clones["shared_CD8"]["samples"]) == 2
    # 5-6% of the CD8 T cells of the first sample are the expanded clone.
    cd8 = (adata.obs["cell_type"] == "CD8 T cell") & (adata.obs["sample"] == "ctrl_1")
    assert 0.05 <= clones["expanded_CD8_1"]["size"] / cd8.sum() <= 0.07
    # Background clones are single cells.
    background = truth[truth.notna() & ~truth.isin(list(clones))]
    assert background.value_counts().max() == 1
    assert "true_clone" in adata.uns["simulation"]["truth_columns"]


def test_simulator_is_deterministic_and_validates() -> None:
    a1, c1 = simulate_repertoire_contigs(600, 600, seed=3)
    a2, c2 = simulate_repertoire_contigs(600, 600, seed=3)
    _, c3 = simulate_repertoire_contigs(600, 600, seed=4)
    pd.testing.assert_frame_equal(c1, c2)
    assert list(a1.obs_names) == list(a2.obs_names)
    assert not c1["cdr3"].equals(c3["cdr3"])
    with pytest.raises(InvalidParameterError, match="carries no receptor"):
        simulate_repertoire_contigs(
            600, 600, expanded_clones=[{"cell_type": "NK cell", "samples": [0]}]
        )
    with pytest.raises(InvalidParameterError, match="n_samples"):
        simulate_repertoire_contigs(
            600, 600, expanded_clones=[{"cell_type": "B cell", "samples": [5]}]
        )


def test_simulate_repertoire_goes_through_the_reader() -> None:
    adata = simulate_repertoire(600, 600, n_samples=1, seed=1)
    assert "airr" in adata.obsm and adata.uns["vdj"]["match_rate"] == 1.0
    # One sample: no shared clone is planted.
    assert adata.uns["simulation"]["repertoire"]["shared_clone"] == ""
    has = receptor_cells(adata)
    assert np.array_equal(has, adata.obs["true_clone"].notna().to_numpy())


# ------------------------------------------------------------------------ reading, attaching


def test_read_and_attach_round_trip(simulated, contig_file, attached) -> None:
    _, contigs = simulated
    vdj = read_vdj(contig_file)
    assert set(vdj.obs_names) == set(contigs["barcode"])
    assert vdj.uns["vdj_source"]["formats"] == ["10x_csv"]
    assert attached.uns["vdj"]["match_rate"] == 1.0
    # Every cell keeps exactly its own contigs; cells without contigs get an empty list.
    n_chains = pd.Series(np.asarray(ak.num(attached.obsm["airr"], axis=1)), attached.obs_names)
    expected = contigs.groupby("barcode").size().reindex(attached.obs_names, fill_value=0)
    assert n_chains.equals(expected.astype(n_chains.dtype))
    one = attached.obs_names[n_chains.to_numpy() == 2][0]
    row = ak.to_list(attached.obsm["airr"][attached.obs_names.get_loc(one)])
    assert {c["junction_aa"] for c in row} == set(contigs.loc[contigs["barcode"] == one, "cdr3"])


def test_folder_airr_tsv_and_two_libraries(simulated, contig_file, tmp_path) -> None:
    import scirpy as ir

    _, contigs = simulated
    from pathlib import Path

    folder_read = read_vdj(Path(contig_file).parent)
    assert folder_read.n_obs == contigs["barcode"].nunique()
    # AIRR rearrangement TSV (what scirpy, Immcantation and AIRR-C tools exchange).
    tsv = tmp_path / "airr_rearrangement.tsv"
    ir.io.write_airr(folder_read, tsv)
    from_tsv = read_vdj(tsv)
    assert set(from_tsv.obs_names) == set(folder_read.obs_names)
    # TCR and BCR libraries of the same cells, merged per cell with scirpy's merge_airr.
    tcr = contigs[contigs["chain"].str.startswith("TR")]
    bcr = contigs[contigs["chain"].str.startswith("IG")]
    paths = [
        write_10x_contigs(tcr, tmp_path / "t" / "filtered_contig_annotations.csv"),
        write_10x_contigs(bcr, tmp_path / "b" / "filtered_contig_annotations.csv"),
    ]
    both = read_vdj(paths)
    assert set(both.obs_names) == set(contigs["barcode"])
    assert len(both.uns["vdj_source"]["paths"]) == 2


def test_all_contig_annotations_keep_only_confident_cell_contigs(simulated, tmp_path) -> None:
    _, contigs = simulated
    raw = contigs.copy()
    dropped = raw["barcode"].drop_duplicates().iloc[:25]
    raw.loc[raw["barcode"].isin(dropped), "high_confidence"] = False
    path = write_10x_contigs(raw, tmp_path / "all_contig_annotations.csv")
    assert read_vdj(path).n_obs == contigs["barcode"].nunique() - 25
    assert read_vdj(path, filtered=False).n_obs == contigs["barcode"].nunique()


def test_barcodes_without_the_suffix_are_refused_with_the_rate(simulated, tmp_path) -> None:
    adata, contigs = simulated
    stripped = contigs.assign(barcode=contigs["barcode"].str.replace(r"-\d+$", "", regex=True))
    stripped["contig_id"] = stripped["barcode"] + "_" + stripped.index.astype(str)
    vdj = read_vdj(write_10x_contigs(stripped, tmp_path / "filtered_contig_annotations.csv"))
    target = adata.copy()
    with pytest.raises(InvalidDataError, match=r"0 of [\d,]+ V\(D\)J barcodes \(0\.0%\)") as err:
        attach_vdj(target, vdj)
    # Example barcodes from both sides.
    assert adata.obs_names[0] in err.value.message
    assert any(b in err.value.message for b in stripped["barcode"].unique()[:50])
    assert "suffix" in err.value.remedy
    assert "airr" not in target.obsm


def test_another_samples_barcodes_are_refused(simulated, tmp_path) -> None:
    adata, _ = simulated
    _, other = simulate_repertoire_contigs(600, 600, seed=9)
    vdj = read_vdj(write_10x_contigs(other, tmp_path / "filtered_contig_annotations.csv"))
    with pytest.raises(InvalidDataError, match="do not match") as err:
        attach_vdj(adata.copy(), vdj)
    assert "same sample" in err.value.remedy


def test_low_match_rate_warns_and_is_returned(simulated, contig_file) -> None:
    adata, contigs = simulated
    vdj = read_vdj(contig_file)
    keep = adata.obs_names[: adata.n_obs // 4]
    subset = adata[keep].copy()
    with pytest.warns(UserWarning, match="V\\(D\\)J barcodes are among"):
        rate = attach_vdj(subset, vdj)
    expected = contigs["barcode"].drop_duplicates().isin(keep).mean()
    assert rate == pytest.approx(expected)
    assert rate < 0.5
    with pytest.raises(InvalidDataError, match="already holds"):
        attach_vdj(subset, vdj)
    with pytest.warns(UserWarning):
        assert attach_vdj(subset, vdj, overwrite=True, min_match=0.05) == pytest.approx(rate)


def test_contig_file_missing_columns(simulated, tmp_path) -> None:
    _, contigs = simulated
    path = write_10x_contigs(
        contigs.drop(columns=["cdr3_nt", "umis"]), tmp_path / "filtered_contig_annotations.csv"
    )
    with pytest.raises(InvalidDataError, match="cdr3_nt, umis"):
        read_vdj(path)


def test_missing_empty_corrupt_and_unsupported_files(tmp_path) -> None:
    with pytest.raises(InputNotFoundError, match="not found"):
        read_vdj(tmp_path / "nope" / "filtered_contig_annotations.csv")
    with pytest.raises(InputNotFoundError, match="no contig file"):
        read_vdj(tmp_path)
    empty = tmp_path / "filtered_contig_annotations.csv"
    empty.write_text("")
    with pytest.raises(CorruptInputError, match="empty"):
        read_vdj(empty)
    broken = tmp_path / "all_contig_annotations.json"
    broken.write_text(json.dumps([{"barcode": "AAAC-1"}])[:-3])
    with pytest.raises(CorruptInputError, match="cannot read"):
        read_vdj(broken)
    other = tmp_path / "contigs.xlsx"
    other.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFormatError):
        read_vdj(other)


# ------------------------------------------------------------------------------------ tools


def test_tools_need_receptor_data(simulated) -> None:
    adata = simulated[0].copy()
    for check in (check_repertoire_inputs, CLONOTYPES, AIRR_QC):
        with pytest.raises(InvalidDataError, match="obsm\\['airr'\\] is absent") as err:
            check(adata)
        assert "--vdj" in err.value.remedy and "attach_vdj" in err.value.remedy
    assert "clone_id" not in adata.obs


def test_expansion_and_overlap_need_clonotypes(attached) -> None:
    adata = attached.copy()
    with pytest.raises(MissingPrerequisiteError, match="clone_id"):
        CLONAL_EXPANSION(adata, groupby="cell_type")
    with pytest.raises(MissingPrerequisiteError, match="clonotypes"):
        REPERTOIRE_OVERLAP(adata)


def test_airr_qc_matches_the_simulated_pairing(analysed) -> None:
    obs = analysed.obs
    assert (obs["chain_pairing"].astype(str) == obs["true_chain_pairing"].astype(str)).all()
    result = AIRR_QC(analysed.copy(), groupby="cell_type")
    truth = obs["true_chain_pairing"].astype(str)
    with_ir = truth[truth != "no IR"]
    assert result.metrics["share_with_receptor"] == pytest.approx(len(with_ir) / len(obs), abs=1e-4)
    assert result.metrics["share_single_pair"] == pytest.approx(
        (with_ir == "single pair").mean(), abs=1e-4
    )
    assert result.metrics["n_groups_receptor_mismatch"] == 0
    assert not result.warnings
    by_group = pd.DataFrame(result.tables["by_group"]).set_index("group")
    assert by_group.loc["NK cell", "share_receptor"] == 0
    assert by_group.loc["B cell", "share_BCR"] > 0.7


def test_airr_qc_flags_receptors_on_cells_labelled_neither_t_nor_b(analysed) -> None:
    adata = analysed.copy()
    labels = adata.obs["cell_type"].astype(str).replace({"B cell": "classical monocyte"})
    adata.obs["my_labels"] = labels
    result = AIRR_QC(adata, groupby="my_labels")
    assert result.metrics["n_groups_receptor_mismatch"] == 1
    assert any("'classical monocyte'" in w for w in result.warnings)


def test_clonotypes_recover_the_planted_clones(analysed) -> None:
    scores = truth_recovery(analysed)
    assert scores["n_recovered"] == scores["n_planted"] == 3
    assert scores["shared_recovered"] == 1
    assert scores["clonotype_purity"] == 1.0
    assert scores["clonotype_completeness"] > 0.75
    for cid in ("expanded_CD8_1", "expanded_B_1", "shared_CD8"):
        assert abs(scores[f"{cid}_found_size"] - scores[f"{cid}_true_size"]) <= 2


def test_truth_recovery_fails_on_scrambled_clonotypes(analysed) -> None:
    adata = analysed.copy()
    rng = np.random.default_rng(0)
    clone = adata.obs["clone_id"].astype(object)
    has = clone.notna().to_numpy()
    values = clone[has].to_numpy()
    clone[has] = values[rng.permutation(len(values))]
    adata.obs["clone_id"] = clone
    scores = truth_recovery(adata)
    assert scores["n_recovered"] == 0
    assert scores["clonotype_purity"] < 0.5


def test_amino_acid_clonotype_clusters_and_key_safety(attached) -> None:
    adata = attached.copy()
    result = CLONOTYPES(adata, sequence="aa", metric="levenshtein", cutoff=1, key_added="cc_aa")
    assert result.metrics["n_clonotypes"] <= CLONOTYPES(adata.copy()).metrics["n_clonotypes"]
    assert truth_recovery(adata, clone_key="cc_aa")["n_recovered"] == 3
    assert "cc_aa_size" in adata.obs
    adata.obs["mine"] = "user"
    with pytest.raises(InvalidParameterError, match="already exists"):
        CLONOTYPES(adata, key_added="mine")
    with pytest.raises(InvalidParameterError, match="compares amino acids"):
        CLONOTYPES(adata, metric="alignment", sequence="nt", key_added="x")


def test_clonal_expansion_by_cell_type(analysed) -> None:
    table = analysed.uns["clonal_expansion"]["by_group"].set_index("group")
    assert table["expanded_share"].idxmax() == "CD8 T cell"
    assert table.loc["NK cell", "n_with_clonotype"] == 0
    assert table.loc["CD4 naive T cell", "n_expanded"] == 0
    assert table.loc["B cell", "n_expanded"] == (analysed.obs["true_clone"] == "expanded_B_1").sum()
    assert analysed.uns["clonal_expansion"]["params"]["expanded_in"] == "sample"
    members = analysed.obs["true_clone"] == "expanded_CD8_1"
    classes = analysed.obs.loc[members, "clonal_expansion"].astype(str)
    assert (classes == "> 2").mean() > 0.8


def test_repertoire_overlap_names_the_shared_clone(analysed) -> None:
    entry = analysed.uns["repertoire_overlap"]
    shared = entry["shared_clonotypes"]
    members = analysed.obs["true_clone"] == "shared_CD8"
    expected = analysed.obs.loc[members, "clone_id"].value_counts().index[0]
    assert list(shared["clone_id"]) == [expected]
    pair = entry["pairs"].iloc[0]
    union = pair["n_clonotypes_a"] + pair["n_clonotypes_b"] - pair["n_shared"]
    assert pair["n_shared"] == 1
    assert pair["jaccard"] == pytest.approx(1 / union, rel=1e-4)


# ---------------------------------------------------------------------------- end to end


def _assert_recovered(adata: AnnData) -> None:
    scores = truth_recovery(adata)
    assert scores["expanded_CD8_1_recovered"] == 1
    assert scores["shared_recovered"] == 1
    assert scores["n_recovered"] == 3
    assert "CD8" in scores["expanded_CD8_1_label"]
    assert scores["expanded_B_1_label"] == "B cell"
    table = adata.uns["clonal_expansion"]["by_group"]
    assert "CD8" in table.loc[table["n_with_clonotype"] >= 5, "group"].iloc[0]


def test_end_to_end_through_a_session(tmp_path) -> None:
    from scagent.plan.run import run_paradigm
    from scagent.session import Session

    adata, contigs = simulate_repertoire_contigs(2000, 1200, seed=0)
    path = write_10x_contigs(contigs, tmp_path / "vdj" / "filtered_contig_annotations.csv")
    assert attach_vdj(adata, read_vdj(path)) == 1.0
    session = Session.init(tmp_path / "proj", data=adata)
    result = run_paradigm(session, "immune_repertoire")
    repertoire_steps = ["airr_qc", "clonotypes", "clonal_expansion", "repertoire_overlap"]
    assert all(result.outcome(s).status == "done" for s in repertoire_steps)
    last = session.history()[-1]
    assert last.tool_id == "repertoire_overlap" and last.metrics["n_shared_clonotypes"] == 1
    _assert_recovered(session.adata)
    reopened = Session.open(tmp_path / "proj")
    assert truth_recovery(reopened.adata)["n_recovered"] == 3


# ----------------------------------------------------------------------------- review fixes


def test_mast_goblet_and_club_cells_are_not_t_cells(analysed) -> None:
    adata = analysed.copy()
    for label in ("Mast cell", "Goblet cell", "Club cell"):
        adata.obs["my_labels"] = adata.obs["cell_type"].astype(str).replace({"B cell": label})
        result = AIRR_QC(adata, groupby="my_labels")
        assert result.metrics["n_groups_receptor_mismatch"] == 1, label
        assert any(f"'{label}'" in w for w in result.warnings)


def _pairing(adata: AnnData) -> pd.Series:
    return adata.obs["chain_pairing"].astype(str)


def test_replaced_receptor_data_drops_what_came_from_the_old_chains(analysed, contig_file) -> None:
    adata = analysed.copy()
    assert "chain_indices" in adata.obsm and "clone_id" in adata.obs
    vdj = read_vdj(contig_file)
    old = vdj.obs_names.copy()
    vdj.obs_names = old[::-1]  # every receptor cell now carries another cell's chains
    with pytest.warns(UserWarning, match="obsm/chain_indices") as record:
        attach_vdj(adata, vdj, overwrite=True)
    text = " ".join(str(w.message) for w in record)
    for key in ("obs/chain_pairing", "obs/clone_id", "uns/clone_id", "obs/clonal_expansion"):
        assert key in text
    assert "chain_indices" not in adata.obsm and "chain_indices" not in adata.uns
    assert not {"receptor_type", "chain_pairing", "clone_id", "clone_id_size"} & set(adata.obs)
    AIRR_QC(adata)
    truth = analysed.obs["chain_pairing"].astype(str)
    expected = pd.Series(truth.loc[old].to_numpy(), index=old[::-1])
    assert (_pairing(adata).loc[expected.index] == expected).all()
    CLONOTYPES(adata)  # clonotypes of the new chains run without stale indices


def test_chain_indices_are_recomputed_for_the_current_chains(analysed) -> None:
    """Chains replaced behind scagent's back (same number of cells): no stale indices."""
    adata = analysed.copy()
    adata.obsm["airr"] = adata.obsm["airr"][::-1]
    AIRR_QC(adata, overwrite=True)
    truth = analysed.obs["chain_pairing"].astype(str).to_numpy()[::-1]
    assert (_pairing(adata).to_numpy() == truth).all()
