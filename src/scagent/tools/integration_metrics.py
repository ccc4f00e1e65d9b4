"""Did integration remove the batch and keep the biology? scIB's metrics on the embeddings before and after.

Luecken et al. (2022) score an integration by batch removal (batch ASW, iLISI, graph
connectivity, kBET) and conservation of biology (NMI and ARI of clusters against cell-type
labels, label ASW, cLISI), each scaled to [0, 1], with an overall score of
0.6 * biology + 0.4 * batch. This module computes the metrics that need nothing beyond
scanpy and scikit-learn, on the unintegrated PCA and on every integrated embedding, so the
two can be compared in one table.

``scib`` needs its own compiled kNN and ``scib-metrics`` needs jax, neither in our stack; the
metrics are short enough to write on scikit-learn (silhouettes, NMI, ARI), scipy (connected
components, chi-square) and scanpy (Leiden), and LISI comes from harmonypy, which ships
Korsunsky et al.'s compiled implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned, obs_column, owner_of, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "IntegrationMetricsParams",
    "batch_asw",
    "graph_connectivity",
    "integration_metrics",
    "kbet_acceptance",
    "label_asw",
    "lisi",
    "score_embedding",
]

LUECKEN_2022 = (
    "Luecken et al. (2022) Benchmarking atlas-level data integration in single-cell genomics. "
    "Nat Methods 19:41-50"
)
KORSUNSKY_2019 = (
    "Korsunsky et al. (2019) Fast, sensitive and accurate integration of single-cell data with "
    "Harmony. Nat Methods 16:1289-1296 (LISI)"
)

#: Tools whose obsm output is an integrated embedding.
_INTEGRATION_TOOLS = ("harmony", "scvi", "scanvi", "scanorama")
#: Words in an obsm key that mark an integrated embedding written by another program.
_INTEGRATED_WORDS = ("harmony", "scvi", "scanvi", "scanorama", "integrated", "mnn", "totalvi")
#: Leiden resolutions tried per embedding; scIB keeps the clustering with the best NMI.
_RESOLUTIONS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0)
BIO_METRICS = ("nmi", "ari", "label_asw", "clisi")
BATCH_METRICS = ("batch_asw", "ilisi", "graph_connectivity")


class IntegrationMetricsParams(ParamsModel):
    batch_key: str = Field(
        "auto",
        description="obs column of the batches; 'auto' takes the inspector's first batch, "
        "sample or donor column with 2 or more levels.",
    )
    label_key: str = Field(
        "auto",
        description="obs column of the cell types whose separation must survive integration; "
        "'auto' takes the first cell-type (annotation) column, else the clusters.",
    )
    embeddings: list[str] | None = Field(
        None,
        description="obsm keys to score, the unintegrated one first; None takes X_pca and every "
        "integrated embedding found (X_pca_harmony, X_scVI, ...).",
    )
    n_neighbors: int = Field(
        15,
        ge=2,
        le=200,
        description="Neighbours of the kNN graph for graph connectivity, clustering and kBET "
        "(scIB uses 15).",
    )
    perplexity: float = Field(
        30.0,
        ge=2.0,
        le=100.0,
        description="LISI perplexity, the effective neighbourhood size; LISI looks at "
        "3 * perplexity neighbours (30 as in Korsunsky et al. 2019).",
    )
    subsample: int | None = Field(
        5000,
        ge=200,
        description="Score a random subsample of this many cells (seeded); silhouettes cost "
        "cells^2. None scores every cell.",
    )
    random_state: int = Field(0, description="Seed of the subsample and the clusterings.")
    key_added: str = Field("integration_metrics", description="uns key of the results.")
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")

    @field_validator("embeddings", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        # The CLI passes "X_pca,X_pca_harmony"; the API passes a list.
        if isinstance(value, str):
            return [v for v in value.replace(" ", ",").split(",") if v]
        return value


# --------------------------------------------------------------------------- the metrics


def _codes(labels: Any) -> tuple[np.ndarray, int]:
    codes, levels = pd.factorize(pd.Series(np.asarray(labels)).astype(str))
    return codes.astype(np.int64), len(levels)


def _knn(embedding: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each cell's ``k`` nearest other cells (exact search)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, embedding.shape[0] - 1)
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    return dist[:, 1:], idx[:, 1:]


def lisi(embedding: np.ndarray, labels: Any, perplexity: float = 30.0) -> np.ndarray:
    """Local inverse Simpson's index of ``labels`` per cell: the effective number of labels
    among its ``3 * perplexity`` nearest neighbours, weighted by a Gaussian kernel calibrated
    to ``perplexity`` (Korsunsky et al. 2019; harmonypy's compiled implementation).
    """
    from harmonypy.lisi import compute_lisi

    frame = pd.DataFrame({"label": pd.Series(np.asarray(labels)).astype(str).to_numpy()})
    perplexity = min(perplexity, (embedding.shape[0] - 1) / 3)
    return np.asarray(compute_lisi(embedding, frame, ["label"], perplexity))[:, 0]


def graph_connectivity(neighbor_index: np.ndarray, labels: Any) -> float:
    """scIB's graph connectivity: per label, the share of its cells in the largest connected
    component of the kNN graph restricted to that label; the mean over labels.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    codes, n_levels = _codes(labels)
    n, k = neighbor_index.shape
    graph = sparse.csr_matrix(
        (np.ones(n * k), (np.repeat(np.arange(n), k), neighbor_index.ravel())), shape=(n, n)
    )
    shares = []
    for level in range(n_levels):
        members = np.flatnonzero(codes == level)
        _, comp = connected_components(graph[members][:, members], directed=False)
        shares.append(np.bincount(comp).max() / members.size)
    return float(np.mean(shares))


def label_asw(embedding: np.ndarray, labels: Any) -> float:
    """Silhouette of the labels, scaled to [0, 1] as scIB does: (ASW + 1) / 2."""
    from sklearn.metrics import silhouette_score

    codes, n_levels = _codes(labels)
    if n_levels < 2:
        return float("nan")
    return float((silhouette_score(embedding, codes) + 1) / 2)


def batch_asw(embedding: np.ndarray, batches: Any, labels: Any) -> float:
    """scIB's batch ASW: within each label, 1 - |silhouette of the batches| per cell, averaged
    per label, then over labels. 1 means the batches are mixed within every cell type.

    Labels present in a single batch are left out, as in scIB.
    """
    from sklearn.metrics import silhouette_samples

    batch_codes, _ = _codes(batches)
    label_codes, n_labels = _codes(labels)
    per_label = []
    for level in range(n_labels):
        members = np.flatnonzero(label_codes == level)
        b = batch_codes[members]
        n_batches = len(np.unique(b))
        if n_batches < 2 or n_batches >= members.size:
            continue
        sil = silhouette_samples(embedding[members], b)
        per_label.append(np.mean(1 - np.abs(sil)))
    return float(np.mean(per_label)) if per_label else float("nan")


def kbet_acceptance(
    neighbor_index: np.ndarray, batches: Any, labels: Any, alpha: float = 0.05
) -> float:
    """Share of neighbourhoods whose batch composition a chi-square test accepts as the
    composition of the cell's label (a kBET-like test, Büttner et al. 2019).

    kBET proper (an R package) tunes the neighbourhood size per label and tests a random
    subset of cells; this is the same test on every cell's kNN, so its values run higher.
    """
    from scipy.stats import chi2

    batch_codes, n_batches = _codes(batches)
    label_codes, n_labels = _codes(labels)
    k = neighbor_index.shape[1]
    observed = np.stack(
        [(batch_codes[neighbor_index] == b).sum(axis=1) for b in range(n_batches)], axis=1
    )
    accepted = []
    for level in range(n_labels):
        members = label_codes == level
        freq = np.bincount(batch_codes[members], minlength=n_batches) / members.sum()
        present = freq > 0
        if present.sum() < 2:
            continue
        expected = k * freq[present]
        stat = ((observed[members][:, present] - expected) ** 2 / expected).sum(axis=1)
        # Neighbours from batches absent in the label also count against the cell.
        stat += observed[members][:, ~present].sum(axis=1) * k
        accepted.append(chi2.sf(stat, present.sum() - 1) >= alpha)
    return float(np.concatenate(accepted).mean()) if accepted else float("nan")


def _best_clustering(
    embedding: np.ndarray, labels: Any, n_neighbors: int, random_state: int
) -> tuple[np.ndarray, float, float, float]:
    """Leiden on the embedding's kNN graph at several resolutions; the one with the best NMI
    against ``labels`` (scIB's optimised clustering): (clusters, resolution, nmi, ari).
    """
    import anndata as ad
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    tmp = ad.AnnData(
        obsm={"X_emb": embedding}, obs=pd.DataFrame(index=np.arange(len(embedding)).astype(str))
    )
    # Exact kNN from scikit-learn: scanpy's pynndescent path for large data costs a long numba
    # compile, and fails under scipy >= 1.17 (see scagent.tools.graph).
    sc.pp.neighbors(tmp, use_rep="X_emb", n_neighbors=n_neighbors, transformer="sklearn")
    codes, _ = _codes(labels)
    best: tuple[np.ndarray, float, float, float] | None = None
    for resolution in _RESOLUTIONS:
        sc.tl.leiden(
            tmp,
            resolution=resolution,
            flavor="igraph",
            n_iterations=2,
            directed=False,
            random_state=random_state,
            key_added="c",
        )
        clusters = tmp.obs["c"].to_numpy()
        nmi = float(normalized_mutual_info_score(codes, clusters))
        if best is None or nmi > best[2]:
            best = (clusters, resolution, nmi, float(adjusted_rand_score(codes, clusters)))
    assert best is not None
    return best


def score_embedding(
    embedding: np.ndarray,
    batches: Any,
    labels: Any,
    *,
    n_neighbors: int = 15,
    perplexity: float = 30.0,
    random_state: int = 0,
) -> dict[str, float]:
    """Every metric for one embedding, each in [0, 1] (higher is better), plus the scores.

    Returns
    -------
    dict
        ``batch_asw``, ``ilisi``, ``graph_connectivity``, ``kbet_acceptance`` (batch
        removal), ``nmi``, ``ari``, ``label_asw``, ``clisi`` (biology), ``ilisi_raw`` and
        ``clisi_raw`` (median effective numbers of batches and labels), ``resolution`` of
        the best clustering, ``batch_score``, ``bio_score`` and ``overall``
        (0.6 * bio + 0.4 * batch).
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    _, n_batches = _codes(batches)
    _, n_labels = _codes(labels)
    _, knn = _knn(embedding, n_neighbors)
    ilisi_raw = float(np.median(lisi(embedding, batches, perplexity)))
    clisi_raw = float(np.median(lisi(embedding, labels, perplexity)))
    _, resolution, nmi, ari = _best_clustering(embedding, labels, n_neighbors, random_state)
    out = {
        "batch_asw": batch_asw(embedding, batches, labels),
        # scIB's scaling: 0 = one batch nearby, 1 = all batches; 1 = one label nearby.
        "ilisi": (ilisi_raw - 1) / (n_batches - 1) if n_batches > 1 else float("nan"),
        "graph_connectivity": graph_connectivity(knn, labels),
        "kbet_acceptance": kbet_acceptance(knn, batches, labels),
        "nmi": nmi,
        "ari": ari,
        "label_asw": label_asw(embedding, labels),
        "clisi": (n_labels - clisi_raw) / (n_labels - 1) if n_labels > 1 else float("nan"),
        "ilisi_raw": ilisi_raw,
        "clisi_raw": clisi_raw,
        "resolution": resolution,
    }
    # kBET is left out of the batch score: this neighbourhood test is not kBET's calibration.
    out["batch_score"] = float(np.nanmean([out[m] for m in BATCH_METRICS]))
    out["bio_score"] = float(np.nanmean([out[m] for m in BIO_METRICS]))
    out["overall"] = 0.6 * out["bio_score"] + 0.4 * out["batch_score"]
    return out


# --------------------------------------------------------------------------- the tool


def _batch_key(adata: AnnData, value: str) -> str:
    def candidates() -> list[str]:
        state = state_of(adata)
        columns = [*state.batch_columns, *state.sample_columns, *state.donor_columns]
        return [c.name for c in columns if c.n_levels >= 2]

    key = obs_column(
        adata,
        value,
        candidates,
        param="batch_key",
        missing=InvalidDataError(
            "integration_metrics found no batch, sample or donor column with 2 or more levels",
            remedy="pass batch_key=<obs column of the batches>",
        ),
    )
    assert key is not None
    return key


def _label_key(adata: AnnData, value: str) -> tuple[str, bool]:
    """The label column and whether it is a clustering rather than cell types."""
    crumbs = state_of(adata).breadcrumbs
    types = [c.name for c in crumbs.cell_types]
    clusters = ["leiden", *(c.name for c in crumbs.clusterings)]
    key = obs_column(
        adata,
        value,
        lambda: [*types, *clusters],
        param="label_key",
        missing=MissingPrerequisiteError(
            "integration_metrics needs cell-type labels or clusters to judge the biology",
            remedy="run annotate (or leiden) first, or pass label_key=<obs column>",
        ),
    )
    assert key is not None
    return key, key not in types and value == "auto"


def _embeddings(adata: AnnData, given: list[str] | None) -> list[str]:
    if given is not None:
        missing = [k for k in given if k not in adata.obsm]
        if missing:
            raise InvalidParameterError(
                f"embeddings {missing} are not in obsm",
                remedy=f"choose among: {', '.join(map(str, adata.obsm.keys()))}",
            )
        if not given:
            raise InvalidParameterError("embeddings: give at least one obsm key")
        return list(dict.fromkeys(given))
    if "X_pca" not in adata.obsm:
        raise MissingPrerequisiteError(
            "integration_metrics needs the unintegrated obsm['X_pca'] as its baseline",
            remedy="run pca first, or pass embeddings=[...]",
        )
    integrated = [
        str(k)
        for k in adata.obsm.keys()
        if k != "X_pca"
        and (
            owner_of(adata, "obsm", str(k)) in _INTEGRATION_TOOLS
            or any(w in str(k).lower() for w in _INTEGRATED_WORDS)
        )
    ]
    return ["X_pca", *integrated]


def integration_metrics(adata: AnnData, **params: Any) -> ToolResult:
    """Score batch removal and conservation of biology of each embedding (scIB metrics).

    For every embedding (default: ``X_pca`` and each integrated one, such as Harmony's
    ``X_pca_harmony``) on the same seeded subsample of cells: batch ASW, iLISI, graph
    connectivity and a kBET-like acceptance (batch removal); NMI and ARI of the best Leiden
    clustering against the labels, label ASW and cLISI (biology). All are scaled to [0, 1]
    as in Luecken et al. (2022); ``overall`` = 0.6 * bio + 0.4 * batch.

    Parameters
    ----------
    adata
        The data; ``uns[key_added]`` is added.
    **params
        See :class:`IntegrationMetricsParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` with ``results`` (a DataFrame, one row per embedding,
        the first the baseline) and ``params``. ``tables['integration_metrics']`` holds
        the same rows; ``metrics`` has ``<metric>:<embedding>`` for the scores and the
        changes of the batch, bio and overall scores from the first embedding to the best.

    Raises
    ------
    InvalidDataError
        No batch column with 2 or more levels, or fewer than 2 labels.
    MissingPrerequisiteError
        No X_pca (without ``embeddings``), or no labels nor clusters.
    """
    p = parse_params(IntegrationMetricsParams, params, "integration_metrics")
    batch_key = _batch_key(adata, p.batch_key)
    label_key, labels_are_clusters = _label_key(adata, p.label_key)
    if batch_key == label_key:
        raise InvalidParameterError(
            f"batch_key and label_key are the same column '{batch_key}'",
            remedy="pass label_key=<obs column of the cell types>",
        )
    embeddings = _embeddings(adata, p.embeddings)
    warnings = []
    if (
        w := claim_key(adata, "uns", p.key_added, "integration_metrics", overwrite=p.overwrite)
    ) is not None:
        warnings.append(w)

    batches_all = adata.obs[batch_key].astype(str).to_numpy()
    labels_all = adata.obs[label_key].astype(str).to_numpy()
    keep = ~pd.isna(adata.obs[label_key].to_numpy()) & ~pd.isna(adata.obs[batch_key].to_numpy())
    cells = np.flatnonzero(keep)
    if p.subsample is not None and cells.size > p.subsample:
        rng = np.random.default_rng(p.random_state)
        cells = np.sort(rng.choice(cells, p.subsample, replace=False))
    batches, labels = batches_all[cells], labels_all[cells]
    n_batches, n_labels = len(np.unique(batches)), len(np.unique(labels))
    if n_batches < 2:
        raise InvalidDataError(
            f"obs['{batch_key}'] has a single level among the scored cells; there is no batch "
            "effect to measure",
            remedy="pass batch_key=<the column that separates samples or batches>",
        )
    if n_labels < 2:
        raise InvalidDataError(
            f"obs['{label_key}'] has a single level; biology conservation needs 2 or more labels",
            remedy="pass label_key=<obs column of the cell types>",
        )
    if labels_are_clusters:
        warnings.append(
            f"no cell-type column found: labels are the clusters '{label_key}', which were "
            "computed on one of the embeddings and favour it; run annotate first"
        )

    rows = []
    for key in embeddings:
        embedding = np.asarray(adata.obsm[key])[cells]
        if not np.isfinite(embedding).all():
            raise InvalidDataError(f"obsm['{key}'] holds NaN or infinite values")
        scores = score_embedding(
            embedding,
            batches,
            labels,
            n_neighbors=p.n_neighbors,
            perplexity=p.perplexity,
            random_state=p.random_state,
        )
        rows.append(
            {"embedding": key, "integrated": key != embeddings[0], "n_cells": cells.size, **scores}
        )
    table = pd.DataFrame(rows)
    adata.uns[p.key_added] = {
        "results": table,
        "params": {
            "batch_key": batch_key,
            "label_key": label_key,
            "embeddings": embeddings,
            "n_neighbors": p.n_neighbors,
            "perplexity": p.perplexity,
            "n_cells": int(cells.size),
            "random_state": p.random_state,
            "score": "overall = 0.6 * mean(nmi, ari, label_asw, clisi) + "
            "0.4 * mean(batch_asw, ilisi, graph_connectivity)",
        },
    }

    metrics: dict[str, float | int | str] = {
        "batch_key": batch_key,
        "label_key": label_key,
        "n_cells": int(cells.size),
        "n_batches": n_batches,
        "n_labels": n_labels,
    }
    for row in rows:
        for name in (*BATCH_METRICS, *BIO_METRICS, "batch_score", "bio_score", "overall"):
            metrics[f"{name}:{row['embedding']}"] = float(row[name])
    baseline = table.iloc[0]
    summary = f"scIB metrics of {', '.join(embeddings)} for batches '{batch_key}' and labels "
    summary += f"'{label_key}' on {cells.size} cells: " + "; ".join(
        f"{r['embedding']} overall {r['overall']:.2f} (batch {r['batch_score']:.2f}, bio "
        f"{r['bio_score']:.2f})"
        for r in rows
    )
    if len(rows) > 1:
        best = table.iloc[int(table["overall"].to_numpy()[1:].argmax()) + 1]
        metrics["best_embedding"] = str(best["embedding"])
        for name in ("batch_score", "bio_score", "overall"):
            metrics[f"delta_{name}"] = float(best[name] - baseline[name])
        if best["bio_score"] < baseline["bio_score"] - 0.1:
            warnings.append(
                f"biology conservation fell from {baseline['bio_score']:.2f} to "
                f"{best['bio_score']:.2f} in {best['embedding']}: integration may have merged "
                "cell types"
            )
        if best["batch_score"] <= baseline["batch_score"]:
            warnings.append(
                f"{best['embedding']} does not mix batches better than {baseline['embedding']}"
            )
    return ToolResult(
        summary=summary,
        metrics=metrics,
        warnings=warnings,
        written=[
            f"uns/{p.key_added}",
            mark_owned(adata, "integration_metrics", ("uns", p.key_added)),
        ],
        tables={"integration_metrics": table.to_dict("records")},
    )


INTEGRATION_METRICS = register(
    Tool(
        id="integration_metrics",
        name="Integration metrics (scIB)",
        category="integration_metrics",
        framework="scagent",
        fn=integration_metrics,
        params=IntegrationMetricsParams,
        requires=("pca",),
        captures=("scanpy", "scikit-learn", "numpy", "anndata"),
        reference=f"{LUECKEN_2022}; {KORSUNSKY_2019}",
        description="Batch removal (batch ASW, iLISI, graph connectivity, kBET-like) and "
        "biology conservation (NMI, ARI, label ASW, cLISI) of the PCA and the integrated "
        "embeddings, with scIB's overall score.",
    )
)
