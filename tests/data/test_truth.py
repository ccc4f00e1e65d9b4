"""Scoring against planted truth: DE calls, clusters, annotation."""

from __future__ import annotations

import pandas as pd
import pytest

from scagent.data import simulate
from scagent.data.truth import annotation_recovery, clustering_ari, score_de_calls


def test_de_calls_fdp_and_both_recalls() -> None:
    table = pd.DataFrame(
        {
            "group": ["T", "T", "T", "B", "B", "B"],
            "gene": ["g1", "g2", "x1", "g1", "x2", "g3"],
            "padj": [0.01, 0.2, 0.01, 0.001, 0.04, 0.5],
        }
    )
    s = score_de_calls(table, {"g1", "g2", "g3"})
    assert (s["calls"], s["false_calls"]) == (4, 2)
    assert s["fdp"] == pytest.approx(0.5)
    assert s["recall_genes"] == pytest.approx(1 / 3)  # only g1 called anywhere
    assert s["recall_pairs"] == pytest.approx(2 / 6)  # g1 in T and in B, of 3 genes x 2 types
    assert score_de_calls(table, {"g1"}, alpha=1e-4)["calls"] == 0


def test_clusters_equal_to_truth_score_one() -> None:
    adata = simulate(300, 400, seed=0)
    adata.obs["leiden"] = adata.obs["cell_type"].cat.codes.astype(str)
    assert clustering_ari(adata) == pytest.approx(1.0)
    adata.obs["annotation_label"] = adata.obs["cell_type"]
    adata.obs["annotation_cl_id"] = adata.obs["cell_ontology_id"]
    adata.obs["annotation_status"] = "supported"
    table, score = annotation_recovery(adata)
    assert score == pytest.approx(1.0) and len(table) == adata.obs["cell_type"].nunique()
