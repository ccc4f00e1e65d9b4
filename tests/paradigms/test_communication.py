"""The communication paradigm: planted ligand-receptor signals are recovered by LIANA+ through scagent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

import scagent.tools.communication  # noqa: F401  (registers the tool)
from scagent.data.simulate_communication import (
    PLANTED_INTERACTIONS,
    simulate_communication,
    truth_recovery,
)
from scagent.errors import (
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    KnowledgeError,
)
from scagent.tools.communication import (
    COMMUNICATION,
    check_communication_inputs,
    communication_results,
    load_resource,
    plot_communication,
)


@pytest.fixture(scope="module")
def counts_base() -> AnnData:
    """1500 cells x 1000 genes of raw counts with the default planted interactions."""
    return simulate_communication(1500, 1000, seed=1)


@pytest.fixture
def counts(counts_base: AnnData) -> AnnData:
    return counts_base.copy()


@pytest.fixture(scope="module")
def lognorm_base(counts_base: AnnData) -> AnnData:
    import scagent.tools as T

    adata = counts_base.copy()
    T.normalize(adata)
    return adata


@pytest.fixture(scope="module")
def tested_base(lognorm_base: AnnData) -> AnnData:
    """The log-normalised data after communication grouped by the true cell types."""
    adata = lognorm_base.copy()
    result = COMMUNICATION(adata, groupby="cell_type", top_n=15)
    adata.uns["test_result"] = result.model_dump()
    return adata


def _mean_by_type(adata: AnnData, gene: str) -> pd.Series:
    column = adata[:, gene].X
    values = column.toarray().ravel() if sparse.issparse(column) else np.asarray(column).ravel()
    return (
        pd.Series(values, index=adata.obs_names).groupby(adata.obs["cell_type"].astype(str)).mean()
    )


# ------------------------------------------------------------------------------ simulator


def test_simulator_plants_specific_ligands_and_receptors(counts_base: AnnData) -> None:
    truth = counts_base.uns["simulation"]["communication"]
    assert [tuple(t) for t in truth] == list(PLANTED_INTERACTIONS)
    assert int(counts_base.var["planted_communication"].sum()) == 8
    assert counts_base.var_names.is_unique
    X = counts_base.X
    assert np.all(np.mod(X.data, 1) == 0) and X.data.min() >= 0
    for source, target, ligand, receptor in truth:
        lig, rec = _mean_by_type(counts_base, ligand), _mean_by_type(counts_base, receptor)
        # Strongly expressed in its own type, at ambient level everywhere else.
        assert lig[source] > 2.0 and lig.drop(source).max() < 0.05 * lig[source]
        assert rec[target] > 1.0 and rec.drop(target).max() < 0.05 * rec[target]


def test_simulator_is_deterministic_and_validates_pairs() -> None:
    a = simulate_communication(1200, 800, seed=4)
    b = simulate_communication(1200, 800, seed=4)
    assert (a.X != b.X).nnz == 0 and a.var_names.equals(b.var_names)
    with pytest.raises(InvalidParameterError, match="not a single-gene pair"):
        simulate_communication(1200, 800, interactions=[("cDC", "B cell", "CXCL13", "MET")])
    with pytest.raises(InvalidParameterError, match="not simulated"):
        simulate_communication(1200, 800, interactions=[("HSPC", "B cell", "HGF", "MET")])


# ---------------------------------------------------------------------------------- tool


def test_planted_interactions_rank_first_by_cell_type(tested_base: AnnData) -> None:
    scores = truth_recovery(tested_base)
    assert scores["n_found"] == scores["n_planted"] == 4
    assert scores["max_rank_in_pair"] <= 2
    assert scores["share_top1pct"] == 1.0
    result = tested_base.uns["test_result"]
    table = communication_results(tested_base)
    assert result["metrics"]["n_interactions"] == len(table) > 100
    assert result["metrics"]["groupby"] == "cell_type"
    assert (
        0
        < result["metrics"]["n_significant_both"]
        <= result["metrics"]["n_significant_specificity"]
    )
    top = result["tables"]["top_interactions"]
    assert len(top) == 15
    assert [r["specificity_rank"] for r in top] == sorted(r["specificity_rank"] for r in top)
    assert set(result["written"]) >= {"uns/liana_res", "uns/liana_res_params"}
    assert tested_base.uns["liana_res_params"]["resource"] == "consensus"


def test_shuffled_labels_lose_the_signal(lognorm_base: AnnData) -> None:
    # Negative control: with labels unrelated to the senders the plant is not recovered.
    adata = lognorm_base.copy()
    rng = np.random.default_rng(0)
    adata.obs["shuffled_type"] = pd.Categorical(rng.permutation(adata.obs["cell_type"].astype(str)))
    COMMUNICATION(adata, groupby="shuffled_type", n_perms=20)
    scores = truth_recovery(adata)
    assert scores["share_top10"] <= 0.25


def test_renamed_labels_are_scored_through_their_majority_type(lognorm_base: AnnData) -> None:
    adata = lognorm_base.copy()
    adata.obs["annotation_label"] = (
        adata.obs["cell_type"].astype(str).map(lambda t: f"{t} (annotated)")
    )
    result = COMMUNICATION(adata, n_perms=20)  # 'auto' finds annotation_label
    assert result.metrics["groupby"] == "annotation_label"
    scores = truth_recovery(adata)
    assert scores["groupby"] == "annotation_label"
    assert scores["n_found"] == 4 and scores["max_rank_in_pair"] <= 2


def test_raw_counts_are_normalised_on_a_copy(counts: AnnData) -> None:
    before = counts.X.copy()
    result = COMMUNICATION(counts, groupby="cell_type", n_perms=20)
    assert any("log-normalised values made on a copy" in w for w in result.warnings)
    assert (counts.X != before).nnz == 0  # the user's counts are untouched
    assert truth_recovery(counts)["share_top10"] == 1.0


def test_user_key_is_not_overwritten(lognorm_base: AnnData) -> None:
    adata = lognorm_base.copy()
    adata.uns["liana_res"] = pd.DataFrame({"mine": [1]})
    with pytest.raises(InvalidParameterError, match="liana_res"):
        COMMUNICATION(adata, groupby="cell_type", n_perms=10)
    assert list(adata.uns["liana_res"].columns) == ["mine"]
    result = COMMUNICATION(adata, groupby="cell_type", n_perms=10, overwrite=True)
    assert "magnitude_rank" in adata.uns["liana_res"]
    assert any("overwrite=True" in w for w in result.warnings)


def test_resource_file_with_alias_columns(lognorm_base: AnnData, tmp_path) -> None:
    adata = lognorm_base.copy()
    consensus = load_resource("consensus")
    genes = set(adata.var_names)
    mine = consensus[consensus["ligand"].isin(genes) & consensus["receptor"].isin(genes)]
    mine = mine.rename(columns={"ligand": "source_genesymbol", "receptor": "target_genesymbol"})
    path = tmp_path / "pairs.tsv"
    mine.to_csv(path, sep="\t", index=False)
    COMMUNICATION(adata, groupby="cell_type", resource=str(path), n_perms=10)
    used = set(
        zip(
            adata.uns["liana_res"]["ligand_complex"],
            adata.uns["liana_res"]["receptor_complex"],
            strict=True,
        )
    )
    assert used <= set(zip(mine["source_genesymbol"], mine["target_genesymbol"], strict=True))
    assert ("CXCL13", "CXCR5") in used


def test_ensembl_ids_are_mapped_through_a_symbol_column(lognorm_base: AnnData) -> None:
    adata = lognorm_base.copy()
    adata.var["gene_symbols"] = adata.var_names.to_numpy()
    adata.var_names = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    COMMUNICATION(adata, groupby="cell_type", n_perms=10)
    assert truth_recovery(adata)["n_found"] == 4


# ------------------------------------------------------------------------------ bad input


def test_unknown_resource_lists_the_shipped_ones(lognorm_base: AnnData) -> None:
    with pytest.raises(InvalidParameterError, match="nosuchdb") as info:
        COMMUNICATION(lognorm_base.copy(), groupby="cell_type", resource="nosuchdb")
    assert "consensus" in info.value.remedy and "mouseconsensus" in info.value.remedy


def test_resource_file_without_ligand_receptor_columns(lognorm_base: AnnData, tmp_path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"gene1": ["CXCL13"], "gene2": ["CXCR5"]}).to_csv(path, index=False)
    with pytest.raises(KnowledgeError, match="no ligand and no receptor column") as info:
        COMMUNICATION(lognorm_base.copy(), groupby="cell_type", resource=str(path))
    assert "gene1" in info.value.message
    with pytest.raises(InputNotFoundError, match="does not exist"):
        COMMUNICATION(lognorm_base.copy(), groupby="cell_type", resource=str(tmp_path / "no.csv"))


def test_no_shared_genes_says_why(lognorm_base: AnnData) -> None:
    ids = lognorm_base.copy()
    ids.var_names = [f"ENSG{i:011d}" for i in range(ids.n_vars)]
    with pytest.raises(InvalidDataError, match="Ensembl ids"):
        COMMUNICATION(ids, groupby="cell_type")
    mouse = lognorm_base.copy()
    mouse.var_names = [g.capitalize() for g in mouse.var_names]
    with pytest.raises(InvalidDataError, match="mouse") as info:
        COMMUNICATION(mouse, groupby="cell_type")
    assert "mouseconsensus" in info.value.remedy
    result = COMMUNICATION(mouse, groupby="cell_type", resource="mouseconsensus", n_perms=10)
    assert result.metrics["n_interactions"] > 0
    assert "Cxcl13" in set(mouse.uns["liana_res"]["ligand_complex"])


def test_groupby_missing_or_single_group(lognorm_base: AnnData) -> None:
    adata = lognorm_base.copy()
    with pytest.raises(InvalidParameterError, match="not an obs column"):
        COMMUNICATION(adata, groupby="no_such_column")
    with pytest.raises(InvalidParameterError, match="no cell-type or cluster column"):
        COMMUNICATION(adata)  # the truth column does not count as an analysis result
    adata.obs["one"] = "all"
    with pytest.raises(InvalidDataError, match="1 group"):
        COMMUNICATION(adata, groupby="one")
    assert "liana_res" not in adata.uns


def test_check_communication_inputs(counts_base: AnnData) -> None:
    adata = counts_base.copy()
    check_communication_inputs(adata, groupby=None)  # labels come later in the pipeline
    with pytest.raises(InvalidDataError, match="no cell-type or cluster"):
        check_communication_inputs(adata)
    check_communication_inputs(adata, groupby="cell_type")
    adata.obs["one"] = "all"
    with pytest.raises(InvalidDataError, match="at least two cell types"):
        check_communication_inputs(adata, groupby="one")
    adata.var_names = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    with pytest.raises(InvalidDataError, match="Ensembl"):
        check_communication_inputs(adata, groupby=None)


# ---------------------------------------------------------------------------------- plots


def test_plot_and_export(tested_base: AnnData, tmp_path) -> None:
    import matplotlib.pyplot as plt

    fig = plot_communication(tested_base, top_n=6)
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == 6
    planted = {f"{lig} -> {rec}" for *_, lig, rec in PLANTED_INTERACTIONS}
    assert planted <= set(rows)  # the four most specific pairs are the planted ones
    columns = [t.get_text() for t in ax.get_xticklabels()]
    assert "cDC -> B cell" in columns
    # Drawing into a given axes uses its figure.
    own, own_ax = plt.subplots()
    assert plot_communication(tested_base, top_n=3, ax=own_ax) is own
    plt.close(own)

    adata = tested_base.copy()
    result = COMMUNICATION(adata, groupby="cell_type", n_perms=10, export_dir=str(tmp_path / "out"))
    assert result.metrics["n_files"] == 3
    table = pd.read_csv(tmp_path / "out" / "liana_res.csv")
    assert len(table) == len(adata.uns["liana_res"])
    assert (tmp_path / "out" / "liana_res_dotplot.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "out" / "liana_res_dotplot.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- end to end


def test_end_to_end_through_a_session(tmp_path) -> None:
    from scagent.plan.run import run_paradigm
    from scagent.session import Session

    adata = simulate_communication(2500, 1500, seed=0)
    session = Session.init(tmp_path / "proj", data=adata)
    result = run_paradigm(session, "communication")
    assert result.outcome("communication").status == "done"
    # Grouped by the annotation labels (what a user would do), not the truth column: at this
    # size every simulated type is its own Leiden cluster, so no planted sender or receiver is
    # merged with another type. The assertion below checks that, and truth_recovery maps each
    # label to the true type most of its cells have ('monocyte' -> 'classical monocyte').
    obs = session.adata.obs
    crosstab = pd.crosstab(obs["annotation_label"].astype(str), obs["cell_type"].astype(str))
    majority = set(crosstab.idxmax(axis=1))
    assert {t for row in PLANTED_INTERACTIONS for t in row[:2]} <= majority
    step = session.history()[-1]
    assert step.tool_id == "communication" and step.params["groupby"] == "annotation_label"
    scores = truth_recovery(session.adata)
    assert scores["n_found"] == 4
    assert scores["max_rank_in_pair"] <= 3
    assert scores["share_top1pct"] == 1.0
    # The results survive the snapshot store.
    reopened = Session.open(tmp_path / "proj")
    assert truth_recovery(reopened.adata)["max_rank_overall"] == scores["max_rank_overall"]
