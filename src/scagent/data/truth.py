"""Scoring a finished analysis against the truth the simulator planted (clusters, cell types, DE genes).

The demo, the paradigm pipelines, the tests and the benchmarks score recovery with these
functions, so that one number means the same thing everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["annotation_recovery", "clustering_ari", "de_recovery", "score_de_calls"]


def clustering_ari(adata: AnnData, key: str = "leiden", truth_key: str = "cell_type") -> float:
    """Adjusted Rand index of the clustering ``obs[key]`` against ``obs[truth_key]``."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(adata.obs[truth_key].astype(str), adata.obs[key].astype(str)))


def annotation_recovery(
    adata: AnnData,
    label_key: str = "annotation",
    groupby: str = "leiden",
    *,
    truth_key: str = "cell_type",
    truth_id_key: str = "cell_ontology_id",
) -> tuple[pd.DataFrame, float]:
    """Each cluster's label scored against its majority true type by the Cell Ontology rule.

    Score 1 for the exact CL term, 0.5 for an ancestor or descendant within three steps,
    0 otherwise (:func:`scagent.knowledge.ontology.score_prediction`).

    Returns
    -------
    The per-cluster table (cluster, cells, label, cl_id, status, true type, score) and the
    cell-weighted mean score.
    """
    from scagent.knowledge.ontology import score_prediction

    rows = []
    for cluster, group in adata.obs.groupby(groupby, observed=True):
        truth = group[truth_key].mode().iloc[0]
        truth_id = group.loc[group[truth_key] == truth, truth_id_key].iloc[0]
        cl_id = str(group[f"{label_key}_cl_id"].iloc[0])
        rows.append(
            {
                "cluster": str(cluster),
                "cells": len(group),
                "label": str(group[f"{label_key}_label"].iloc[0]),
                "cl_id": cl_id,
                "status": str(group[f"{label_key}_status"].iloc[0]),
                "true_type": str(truth),
                "score": score_prediction(cl_id or None, truth_id),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table, float("nan")
    return table, float(np.average(table["score"], weights=table["cells"]))


def score_de_calls(
    table: pd.DataFrame,
    true_genes: dict[str, float] | list[str] | set[str],
    *,
    n_groups: int | None = None,
    alpha: float = 0.05,
) -> dict[str, float | int]:
    """False discovery proportion and recall of DE calls (rows with ``padj < alpha``).

    ``table`` has one row per (group, gene) test, columns ``gene`` and ``padj`` (and
    ``group``). A call is true when its gene was planted. Two recalls, because they answer
    different questions: ``recall_genes``, the share of planted genes called in at least
    one group; ``recall_pairs``, true calls over planted genes x groups (the simulator
    plants the same change in every cell type, so each group could find each gene).
    """
    truth = set(true_genes)
    called = table[table["padj"] < alpha]
    true_calls = called["gene"].isin(truth)
    n_groups = n_groups or (int(table["group"].nunique()) if "group" in table else 1)
    called_genes = set(called["gene"])
    return {
        "calls": len(called),
        "false_calls": int((~true_calls).sum()),
        "fdp": float(1 - true_calls.mean()) if len(called) else 0.0,
        "recall_genes": float(np.mean([g in called_genes for g in truth])) if truth else 0.0,
        "recall_pairs": int(true_calls.sum()) / (len(truth) * n_groups) if truth else 0.0,
    }


def de_recovery(
    adata: AnnData,
    true_genes: dict[str, float] | list[str],
    *,
    key: str = "pseudobulk_de",
    fdr: float = 0.05,
) -> dict[str, float | int]:
    """:func:`score_de_calls` of the pseudobulk DE result in ``uns[key]``."""
    from scagent.tools.pseudobulk import pseudobulk_results

    return score_de_calls(pseudobulk_results(adata, key=key), true_genes, alpha=fdr)
