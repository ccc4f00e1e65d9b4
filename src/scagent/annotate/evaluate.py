"""Scoring annotations against known truth: shared by the demo, the benchmarks and the tests."""

from __future__ import annotations

from typing import Any

#: Cell Ontology ids of pbmc68k_reduced's ``bulk_labels`` (the sorted populations of
#: Zheng et al. 2017), written by hand from the sorting markers each label names.
PBMC68K_BULK_LABELS_CL = {
    "CD14+ Monocyte": "CL:0001054",
    "CD19+ B": "CL:0000236",
    "CD34+": "CL:0000837",
    "CD4+/CD25 T Reg": "CL:0000815",
    "CD4+/CD45RA+/CD25- Naive T": "CL:0000895",
    "CD4+/CD45RO+ Memory": "CL:0000897",
    "CD56+ NK": "CL:0000623",
    "CD8+ Cytotoxic T": "CL:0000625",
    "CD8+/CD45RA+ Naive Cytotoxic": "CL:0000900",
    "Dendritic": "CL:0000451",
}


def pbmc68k_broad_agreement(groupby: str = "louvain") -> dict[str, Any]:
    """Annotate scanpy's pbmc68k_reduced offline and compare with its ``bulk_labels``.

    Returns the share of cells whose predicted broad type (``scagent.knowledge.ontology
    .broad_type``) equals that of their sorted population, with the cluster labels.
    """
    import scanpy as sc

    from scagent.annotate.engine import annotate_anndata
    from scagent.knowledge import ontology

    adata = sc.datasets.pbmc68k_reduced()
    report = annotate_anndata(adata, groupby, tissue="blood", species="human")
    predicted = adata.obs["annotation_cl_id"].astype(str)
    truth = adata.obs["bulk_labels"].astype(str).map(PBMC68K_BULK_LABELS_CL)
    predicted_broad = predicted.map(lambda c: ontology.broad_type(c) if c else None)
    agree = float((predicted_broad == truth.map(ontology.broad_type)).mean())
    return {
        "cells": int(adata.n_obs),
        "clusters": report.stats.n_clusters,
        "broad_type_agreement_cells": agree,
        "labels": {c.cluster_id: c.label for c in report.clusters},
        "truth_mapping": PBMC68K_BULK_LABELS_CL,
    }
