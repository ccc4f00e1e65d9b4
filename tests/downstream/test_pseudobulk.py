"""pseudobulk_de: simulated truth recovered, unreplicated designs refused, bad inputs named, files written."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from scagent.errors import DataStateError, InvalidDataError, InvalidParameterError
from scagent.tools.pseudobulk import PSEUDOBULK_DE, export_pseudobulk, pseudobulk_results


def _drop_samples(adata, samples):
    keep = ~adata.obs["sample"].astype(str).isin(samples)
    out = adata[keep.to_numpy()].copy()
    out.obs["sample"] = out.obs["sample"].astype(str).astype("category")
    return out


def test_recovers_the_simulated_de_genes(de_tested, truth) -> None:
    res = pseudobulk_results(de_tested)
    assert list(res.columns[:2]) == ["group", "gene"]
    assert set(res["group"]) == {"B cell", "NK cell"}
    for group, rows in res.groupby("group"):
        called = rows[rows["padj"] < 0.05]
        false = called[~called["gene"].isin(truth)]
        assert len(false) <= 0.1 * max(len(called), 1), f"{group}: FDP too high"
        recall = called["gene"].isin(truth).sum() / len(truth)
        assert recall >= 0.8, f"{group}: recall {recall:.2f}"
        # the sign of every called true gene matches the simulated direction
        hits = called[called["gene"].isin(truth)]
        assert (np.sign(hits["log2FoldChange"]) == np.sign(hits["gene"].map(truth))).all()
    groups = de_tested.uns["pseudobulk_de"]["groups"]
    assert (groups["status"] == "tested").all()
    assert (groups["n_samples_ctrl"] == 3).all() and (groups["n_samples_stim"] == 3).all()
    params = de_tested.uns["pseudobulk_de"]["params"]
    assert params["reference"] == "ctrl" and params["test_level"] == "stim"
    assert params["counts_from"] == "X"


def test_counts_found_in_a_layer_give_the_same_answer(de_tested, de_data) -> None:
    """Counts in layers['counts'] with log-normalized X: the inspector finds them."""
    import scagent.tools as T

    T.normalize(de_data)
    assert de_data.uns.get("log1p") is not None
    PSEUDOBULK_DE(de_data, groupby="cell_type")
    a = pseudobulk_results(de_tested).set_index(["group", "gene"])["stat"]
    b = pseudobulk_results(de_data).set_index(["group", "gene"])["stat"]
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())
    assert de_data.uns["pseudobulk_de"]["params"]["counts_from"] == "layers/counts"


def test_refuses_when_no_condition_is_replicated() -> None:
    from scagent.data import simulate

    adata = simulate(
        300, 300, cell_types=["B cell"], n_conditions=2, samples_per_condition=1, n_de_genes=10
    )
    with pytest.raises(InvalidDataError) as err:
        PSEUDOBULK_DE(adata, groupby="cell_type")
    text = str(err.value)
    assert "pseudoreplication" in text and "Squair" in text
    assert "'ctrl': 1 sample" in text and "'stim': 1 sample" in text
    assert "replicates" in err.value.remedy


def test_refuses_a_condition_with_one_sample(de_data) -> None:
    adata = _drop_samples(de_data, ["stim_2", "stim_3"])
    with pytest.raises(InvalidDataError) as err:
        PSEUDOBULK_DE(adata, groupby="cell_type")
    text = str(err.value)
    assert "'stim': 1 sample" in text and not re.search(r"'ctrl': \d", text)
    assert "stim_1" in text  # names the lone sample


def test_refuses_sample_and_condition_being_one_column(de_data) -> None:
    with pytest.raises(InvalidDataError, match="no replicates"):
        PSEUDOBULK_DE(de_data, groupby="cell_type", sample_key="condition")


def test_no_counts_anywhere(de_data) -> None:
    import scanpy as sc

    de_data.X = de_data.X.toarray()
    sc.pp.normalize_total(de_data)
    sc.pp.log1p(de_data)
    sc.pp.scale(de_data)
    with pytest.raises(DataStateError, match="needs raw counts"):
        PSEUDOBULK_DE(de_data, groupby="cell_type")


def test_a_cell_type_absent_in_one_condition_is_skipped_with_a_warning(de_data) -> None:
    gone = (de_data.obs["cell_type"] == "NK cell") & (de_data.obs["condition"] == "stim")
    adata = de_data[~gone.to_numpy()].copy()
    result = PSEUDOBULK_DE(adata, groupby="cell_type")
    assert any("'NK cell' has no cells in condition 'stim'" in w for w in result.warnings)
    groups = adata.uns["pseudobulk_de"]["groups"].set_index("group")
    assert groups.loc["NK cell", "status"] == "absent in stim"
    assert groups.loc["B cell", "status"] == "tested"
    assert set(pseudobulk_results(adata)["group"]) == {"B cell"}
    assert result.metrics["n_groups_skipped"] == 1


def test_min_cells_drops_small_pseudobulk_samples(de_data) -> None:
    with pytest.raises(InvalidDataError, match="could test no cell type"):
        PSEUDOBULK_DE(de_data, groupby="cell_type", min_cells=1000)


def test_design_with_a_batch_covariate(de_data) -> None:
    # batch crossed with condition: replicate 1 and 3 in batch A, 2 in batch B
    batch = {
        "ctrl_1": "A",
        "ctrl_2": "B",
        "ctrl_3": "A",
        "stim_1": "A",
        "stim_2": "B",
        "stim_3": "A",
    }
    de_data.obs["run_batch"] = de_data.obs["sample"].astype(str).map(batch)
    result = PSEUDOBULK_DE(de_data, groupby=None, covariates="run_batch", key_added="pb_batch")
    params = de_data.uns["pb_batch"]["params"]
    assert params["design"] == "~run_batch + condition"
    assert result.metrics["n_groups_tested"] == 1
    assert set(pseudobulk_results(de_data, "pb_batch")["group"]) == {"all cells"}


def test_a_covariate_confounded_with_the_condition_is_refused(de_data) -> None:
    de_data.obs["site"] = de_data.obs["condition"].astype(str).map({"ctrl": "x", "stim": "y"})
    with pytest.raises(InvalidDataError, match="confounded design"):
        PSEUDOBULK_DE(de_data, groupby="cell_type", covariates=["site"])


def test_a_sample_in_two_conditions_is_refused(de_data) -> None:
    de_data.obs["sample"] = de_data.obs["sample"].astype(str)
    first = np.flatnonzero(de_data.obs["sample"] == "ctrl_1")[0]
    de_data.obs.iloc[first, de_data.obs.columns.get_loc("sample")] = "stim_1"
    with pytest.raises(InvalidDataError, match="span several levels"):
        PSEUDOBULK_DE(de_data, groupby="cell_type")


def test_unknown_columns_and_levels(de_data) -> None:
    with pytest.raises(InvalidParameterError, match="not an obs column"):
        PSEUDOBULK_DE(de_data, groupby="cell_type", sample_key="donor_id")
    with pytest.raises(InvalidParameterError, match="not a level"):
        PSEUDOBULK_DE(de_data, groupby="cell_type", reference="healthy")
    with pytest.raises(InvalidParameterError, match="unknown parameter 'min_cell'"):
        PSEUDOBULK_DE(de_data, min_cell=3)


def test_does_not_replace_a_users_uns_entry(de_data) -> None:
    de_data.uns["pseudobulk_de"] = {"mine": 1}
    with pytest.raises(InvalidParameterError, match="not written by scagent"):
        PSEUDOBULK_DE(de_data, groupby="cell_type", min_cells=1000)
    assert de_data.uns["pseudobulk_de"] == {"mine": 1}


def test_export_writes_one_csv_per_type_and_volcanos(de_tested, tmp_path) -> None:
    files = export_pseudobulk(de_tested, tmp_path / "out")
    names = {f.name for f in files}
    assert {"pseudobulk_de_B_cell.csv", "pseudobulk_de_NK_cell.csv"} <= names
    assert {"pseudobulk_de_B_cell_volcano.png", "pseudobulk_de_B_cell_volcano.svg"} <= names
    table = pd.read_csv(tmp_path / "out" / "pseudobulk_de_NK_cell.csv")
    expected = pseudobulk_results(de_tested, group="NK cell")
    assert len(table) == len(expected)
    assert table["pvalue"].is_monotonic_increasing or table["pvalue"].isna().any()
    assert set(table["gene"]) == set(expected["gene"])
    png = (tmp_path / "out" / "pseudobulk_de_B_cell_volcano.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "out" / "pseudobulk_de_B_cell_volcano.svg").read_bytes()[:500]


def test_runs_through_a_session(de_data, tmp_path) -> None:
    """The tool through Session.run: a committed step, the result in the stored snapshot."""
    from scagent.session import Session

    # the session stores sparse float X; keep the fixture's counts as they are
    assert sparse.issparse(de_data.X)
    session = Session.init(tmp_path / "proj", data=de_data)
    record = session.run("pseudobulk_de", groupby="cell_type", export_dir=str(tmp_path / "export"))
    assert record.step.tool_id == "pseudobulk_de"
    assert record.result.metrics["n_groups_tested"] == 2
    assert (tmp_path / "export" / "pseudobulk_de_B_cell.csv").is_file()
    again = Session.open(tmp_path / "proj")
    stored = again.adata.uns["pseudobulk_de"]["results"]
    assert isinstance(stored, pd.DataFrame) and (stored["padj"] < 0.05).sum() > 0
    assert again.history()[-1].params["groupby"] == "cell_type"
    # the next step reads the stored DE results
    import scagent.tools.enrich  # noqa: F401  (registers 'enrichment')

    truth = de_data.uns["simulation"]["de_genes"]["stim"]
    up = [g for g, lfc in truth.items() if lfc > 0]
    enriched = again.run("enrichment", gene_sets={"UP": up}, methods=["ulm"])
    res = enriched.result
    assert res.metrics["de_key"] == "pseudobulk_de" and res.metrics["n_significant"] == 2
    assert [s.tool_id for s in again.history()][-2:] == ["pseudobulk_de", "enrichment"]
