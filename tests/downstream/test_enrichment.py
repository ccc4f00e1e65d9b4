"""enrichment: ORA, ULM and GSEA find the sets of simulated DE genes, and bad gene sets are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.knowledge.genesets import write_gmt
from scagent.tools.enrich import ENRICHMENT, de_table, export_enrichment


@pytest.fixture
def sets(de_base, truth) -> dict[str, list[str]]:
    """The true up and down genes as two sets, plus two random sets of unchanged genes."""
    rng = np.random.default_rng(0)
    unchanged = [g for g in de_base.var_names if g not in truth and g.startswith("SIMG")]
    return {
        "TRUE_UP": [g for g, lfc in truth.items() if lfc > 0],
        "TRUE_DOWN": [g for g, lfc in truth.items() if lfc < 0],
        "RANDOM_A": list(rng.choice(unchanged, 15, replace=False)),
        "RANDOM_B": list(rng.choice(unchanged, 25, replace=False)),
    }


def _best(results: pd.DataFrame, method: str, group: str = "B cell") -> pd.DataFrame:
    rows = results[(results["method"] == method) & (results["group"] == group)]
    return rows.set_index(["direction", "source"]) if method == "ora" else rows.set_index("source")


def test_all_methods_find_the_true_sets(de_tested, sets) -> None:
    result = ENRICHMENT(de_tested, gene_sets=sets, permutations=500)
    res = de_tested.uns["enrichment"]["results"]
    assert set(res["group"]) == {"B cell", "NK cell"}
    assert de_tested.uns["enrichment"]["params"]["de_key"] == "pseudobulk_de"
    ora = _best(res, "ora")
    assert ora.loc[("up", "TRUE_UP"), "padj"] < 1e-6
    assert ora.loc[("down", "TRUE_DOWN"), "padj"] < 1e-6
    assert ora.loc[("up", "TRUE_DOWN"), "padj"] > 0.5
    assert ora.loc[("up", "TRUE_UP"), "n_hits"] >= 12
    for method in ("ulm", "gsea"):
        rank = _best(res, method)
        assert rank.loc["TRUE_UP", "score"] > 0 and rank.loc["TRUE_UP", "padj"] < 0.05
        assert rank.loc["TRUE_DOWN", "score"] < 0 and rank.loc["TRUE_DOWN", "padj"] < 0.05
        assert (rank.loc[["RANDOM_A", "RANDOM_B"], "padj"] > 0.05).all(), method
    random_ora = res[(res["method"] == "ora") & res["source"].str.startswith("RANDOM")]
    assert (random_ora["padj"] > 0.05).all()
    # GSEA p-values are never reported below the permutation resolution
    assert res.loc[res["method"] == "gsea", "padj"].min() >= 1 / 500
    assert result.metrics["n_sets"] == 4


def test_gmt_file_and_group_subset(de_tested, sets, tmp_path) -> None:
    gmt = tmp_path / "sets.gmt"
    write_gmt(sets, gmt)
    ENRICHMENT(de_tested, gene_sets=str(gmt), groups="NK cell", methods="ora,ulm")
    res = de_tested.uns["enrichment"]["results"]
    assert set(res["group"]) == {"NK cell"} and set(res["method"]) == {"ora", "ulm"}
    assert "GMT file sets.gmt" in de_tested.uns["enrichment"]["params"]["gene_sets"]
    files = export_enrichment(de_tested, tmp_path / "out")
    assert {f.name for f in files} >= {
        "enrichment.csv",
        "enrichment_ora_dotplot.png",
        "enrichment_ulm_dotplot.svg",
    }
    assert len(pd.read_csv(tmp_path / "out" / "enrichment.csv")) == len(res)


def test_gene_sets_without_overlap_say_the_overlap(de_tested) -> None:
    foreign = {"SET1": [f"Gene{i}" for i in range(20)], "SET2": ["Xyz1", "Xyz2", "Xyz3"]}
    with pytest.raises(InvalidDataError) as err:
        ENRICHMENT(de_tested, gene_sets=foreign)
    assert "share 0 genes with var_names" in str(err.value)
    assert "23 genes" in str(err.value)


def test_another_species_is_recognised_by_case(de_tested, sets) -> None:
    mouse_like = {name: [g.capitalize() for g in genes] for name, genes in sets.items()}
    with pytest.raises(InvalidDataError, match="probably of another species"):
        ENRICHMENT(de_tested, gene_sets=mouse_like)


def test_sets_too_small_after_overlap(de_tested, sets) -> None:
    tested = set(de_table(de_tested, "pseudobulk_de").dropna(subset=["padj"])["gene"])
    largest = max(len(set(genes) & tested) for genes in sets.values())
    with pytest.raises(InvalidDataError, match=f"largest set has {largest} tested genes"):
        ENRICHMENT(de_tested, gene_sets=sets, min_size=largest + 1)


def test_markerdb_signatures_on_markers(de_data) -> None:
    """Markers per cell type from rank_genes_groups, against the marker database's signatures."""
    import scagent.tools as T

    T.normalize(de_data)
    de_data.obs["truth"] = de_data.obs["cell_type"].astype(str)
    T.markers(de_data, groupby="truth")
    result = ENRICHMENT(de_data, gene_sets="markerdb", methods=["ora"], min_size=3)
    res = de_data.uns["enrichment"]["results"]
    assert de_data.uns["enrichment"]["params"]["de_key"] == "rank_genes_groups"
    for group in ("B cell", "NK cell"):
        up = res[(res["group"] == group) & (res["direction"] == "up")]
        top = up.sort_values("padj").iloc[0]
        assert top["source"] == group and top["padj"] < 0.05
    assert result.metrics["n_sets"] >= 2


def test_no_de_results(de_data) -> None:
    with pytest.raises(MissingPrerequisiteError, match="no DE results"):
        ENRICHMENT(de_data, gene_sets={"A": ["CD3E"]})
    with pytest.raises(MissingPrerequisiteError):
        ENRICHMENT(de_data, de_key="nothing_here", gene_sets={"A": ["CD3E"]})


def test_bad_parameters(de_tested, sets) -> None:
    with pytest.raises(InvalidParameterError, match="no DE results"):
        ENRICHMENT(de_tested, gene_sets=sets, groups=["T cell"])
    with pytest.raises(InvalidParameterError, match=r"neither 'markerdb' nor a \.gmt"):
        ENRICHMENT(de_tested, gene_sets="hallmark.txt")


def test_de_table_reads_each_result_kind(de_tested) -> None:
    table = de_table(de_tested, "pseudobulk_de")
    assert list(table.columns) == ["group", "gene", "stat", "lfc", "pvalue", "padj"]
    assert len(table) == len(de_tested.uns["pseudobulk_de"]["results"])
