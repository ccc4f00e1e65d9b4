"""de_within_cluster: a merged population is split back into its simulated subtypes, with their markers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagent.errors import DataStateError, InvalidDataError, InvalidParameterError
from scagent.tools.de_within import DE_WITHIN_CLUSTER

TYPES = ["CD4 naive T cell", "CD8 T cell", "B cell", "classical monocyte"]


@pytest.fixture(scope="module")
def merged_base():
    """Simulated counts where CD4 and CD8 T cells share one label, 'T cell', in obs['broad']."""
    from scagent.data import simulate

    adata = simulate(1000, 400, cell_types=TYPES, seed=4)
    broad = (
        adata.obs["cell_type"]
        .astype(str)
        .replace({"CD4 naive T cell": "T cell", "CD8 T cell": "T cell"})
    )
    adata.obs["broad"] = pd.Categorical(broad)
    return adata


@pytest.fixture
def merged(merged_base):
    return merged_base.copy()


def test_splits_the_merged_population_into_its_subtypes(merged) -> None:
    merged.obs["leiden"] = "user's own"  # a user column the subclustering must not touch
    result = DE_WITHIN_CLUSTER(merged, groupby="broad", labels="T cell", resolution=0.3)
    sub = merged.obs["de_within"]
    is_t = (merged.obs["broad"] == "T cell").to_numpy()
    assert sub[~is_t].isna().all() and sub[is_t].notna().all()
    assert (merged.obs["leiden"] == "user's own").all()
    truth = merged.obs.loc[is_t, "cell_type"].astype(str)
    table = pd.crosstab(sub[is_t].astype(str), truth)
    purity = (table.max(axis=1) / table.sum(axis=1)).to_numpy()
    assert (purity >= 0.9).all(), table
    assert set(table.idxmax(axis=1)) == {"CD4 naive T cell", "CD8 T cell"}
    # the CD8 subcluster's top genes include a simulated CD8 marker
    cd8 = table["CD8 T cell"].idxmax()
    res = merged.uns["de_within"]["results"]
    top = res[(res["group"] == cd8) & (res["logfoldchange"] > 0)].nsmallest(10, "padj")
    markers = set(merged.uns["simulation"]["markers"]["CD8 T cell"])
    assert markers & set(top["gene"]), top
    assert result.metrics["n_subclusters"] == len(table)
    assert merged.uns["de_within"]["params"]["labels"] == ["T cell"]
    assert set(res.columns) >= {"group", "gene", "score", "logfoldchange", "pvalue", "padj"}


def test_label_not_present(merged) -> None:
    with pytest.raises(InvalidParameterError, match=r"labels \['CAF'\] are not levels"):
        DE_WITHIN_CLUSTER(merged, groupby="broad", labels=["CAF"])


def test_subset_too_small(merged) -> None:
    keep = (merged.obs["broad"] != "B cell").to_numpy()
    keep[np.flatnonzero(~keep)[:5]] = True  # five B cells left
    small = merged[keep].copy()
    with pytest.raises(InvalidDataError, match="has 5 cells"):
        DE_WITHIN_CLUSTER(small, groupby="broad", labels=["B cell"])


def test_needs_counts(merged) -> None:
    import scanpy as sc

    merged.X = merged.X.toarray()
    sc.pp.normalize_total(merged)
    sc.pp.log1p(merged)
    sc.pp.scale(merged)
    with pytest.raises(DataStateError, match="needs raw counts"):
        DE_WITHIN_CLUSTER(merged, groupby="broad", labels=["T cell"])


def test_a_homogeneous_population_has_no_subtypes(merged) -> None:
    with pytest.raises(InvalidParameterError, match=r"single cluster at resolution 0\.1"):
        DE_WITHIN_CLUSTER(merged, groupby="broad", labels=["B cell"], resolution=0.1)
    assert "de_within" not in merged.obs
