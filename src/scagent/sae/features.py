"""Tie each SAE feature to cells (frequency, per-group means, specificity, top cells) and to genes.

Gene scores: for per-token sources, the feature's activation on a gene's token times that
gene's expression, summed over cells; for pooled sources with a linear map to genes (the
expression matrix itself, or X_pca through its loadings), the feature's decoder direction
in gene space; otherwise the Pearson correlation across cells between the feature's
activation and each gene's log-normalized expression. The decoder readout is preferred
where it exists: correlation also ties any feature that fires in one cell population to
that population's markers, random directions included (see ``validate``).

Output schema (``write_features``), one folder:

``features.parquet``
    one row per feature: ``feature``, ``frequency`` (share of cells active), ``mean_activation``
    (over active cells), ``max_activation``, ``top_group``, ``specificity`` (tau index of the
    per-group means, 0 = even, 1 = one group only), ``top_genes`` (comma-separated).
``feature_groups.parquet``
    ``feature``, ``group``, ``mean_activation`` (over all cells of the group), ``frac_active``.
``feature_genes.parquet``
    ``feature``, ``gene``, ``score``, ``rank`` (1 = best), the ``n_top_genes`` best per feature.
``feature_top_cells.parquet``
    ``feature``, ``cell_id``, ``activation``, ``rank``.
``features.json``
    ``groupby``, ``gene_score`` method, ``n_cells``, ``d_sae``, activation histograms per
    feature (``bins`` edges and ``counts`` over active cells).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import DataStateError, InvalidDataError, InvalidParameterError
from scagent.sae.activations import ActivationCache
from scagent.sae.model import TopKSAE

__all__ = [
    "FeatureResult",
    "compute_features",
    "decoder_gene_map",
    "encode_cells",
    "log_expression",
    "read_features",
    "write_features",
]


@dataclass
class FeatureResult:
    """Per-feature tables and the cells x features activation matrix."""

    features: pd.DataFrame
    groups: pd.DataFrame
    genes: pd.DataFrame
    top_cells: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    cell_activations: sparse.csr_matrix | None = None

    def top_gene_lists(self) -> dict[int, list[str]]:
        """Feature -> its top genes, best first."""
        g = self.genes.sort_values(["feature", "rank"])
        return {int(f): list(sub["gene"]) for f, sub in g.groupby("feature", sort=True)}


def log_expression(adata: AnnData) -> tuple[Any, pd.Index]:
    """Log-normalized expression (cells x genes) and its gene names: ``.raw`` or X."""
    from scagent.data import inspect_adata

    state = inspect_adata(adata)
    if adata.raw is not None and state.raw_state == "log_normalized":
        return adata.raw.X, adata.raw.var_names
    if state.x_state == "log_normalized":
        return adata.X, adata.var_names
    if "log1p" in adata.layers:
        return adata.layers["log1p"], adata.var_names
    if state.counts_location is not None:
        import scanpy as sc

        from scagent.data import ensure_ready_for

        ready = ensure_ready_for(adata, "log_normalized")
        del sc
        return ready.X, ready.var_names
    raise DataStateError(
        f"gene scores need log-normalized expression; X is {state.x_state}, .raw is "
        f"{state.raw_state or 'absent'}",
        remedy="keep log-normalized values in .raw or X (or raw counts to derive them)",
    )


def _torch() -> Any:
    import torch

    return torch


def encode_cells(
    sae: TopKSAE, cache: ActivationCache, adata: AnnData | None = None, batch_size: int = 8192
) -> tuple[sparse.csr_matrix, np.ndarray, sparse.csr_matrix | None]:
    """Encode every cached row; return cells x features (CSR), the cell ids, and for
    per-token caches the feature x gene score matrix (activation x expression, summed).

    Per-token caches pool a cell's tokens by their mean activation.
    """
    torch = _torch()
    cell_ids = cache.cell_ids()
    n_cells = len(cell_ids)
    rows_r, cols_r, vals_r = [], [], []
    gene_score = None
    expr = expr_col = adata_row = None
    if cache.per_token:
        if adata is None:
            raise InvalidParameterError("per-token gene scores need the AnnData (expression)")
        X, names = log_expression(adata)
        expr = X.tocsr() if sparse.issparse(X) else np.asarray(X)
        gene_ids = cache.meta.get("gene_ids") or []
        expr_col = pd.Index(names.astype(str)).get_indexer(pd.Index(gene_ids).astype(str))
        adata_row = adata.obs_names.get_indexer(pd.Index(cell_ids))
        gene_score = sparse.csr_matrix((sae.d_sae, len(names)), dtype=np.float64)
        tokens_per_cell = np.zeros(n_cells)
    sae.eval()
    with torch.no_grad():
        for acts, cells, genes in cache.iter_chunks():
            for b in range(0, len(acts), batch_size):
                x = torch.from_numpy(np.asarray(acts[b : b + batch_size], dtype=np.float32))
                values, indices = sae.topk(sae.pre_activations(x * sae.input_scale))
                v, i = values.numpy(), indices.numpy()
                c = cells[b : b + batch_size]
                rows_r.append(np.repeat(c, sae.k))
                cols_r.append(i.ravel())
                vals_r.append(v.ravel())
                if cache.per_token:
                    g = genes[b : b + batch_size]
                    np.add.at(tokens_per_cell, c, 1)
                    col = expr_col[g]
                    row = adata_row[c]
                    ok = (col >= 0) & (row >= 0)
                    e = np.zeros(len(c))
                    if sparse.issparse(expr):
                        e[ok] = np.asarray(expr[row[ok], col[ok]]).ravel()
                    else:
                        e[ok] = expr[row[ok], col[ok]]
                    contrib = sparse.coo_matrix(
                        (
                            (v * e[:, None]).ravel(),
                            (i.ravel(), np.repeat(np.where(ok, col, 0), sae.k)),
                        ),
                        shape=gene_score.shape,
                    )
                    gene_score = gene_score + contrib.tocsr()
    mat = sparse.coo_matrix(
        (np.concatenate(vals_r), (np.concatenate(rows_r), np.concatenate(cols_r))),
        shape=(n_cells, sae.d_sae),
    ).tocsr()
    mat.eliminate_zeros()
    if cache.per_token:
        mat = sparse.diags(1.0 / np.maximum(tokens_per_cell, 1)) @ mat
    return mat.tocsr().astype(np.float32), cell_ids, gene_score


def _tau(means: np.ndarray) -> np.ndarray:
    """Tau specificity (Yanai et al. 2005) per row of a features x groups matrix."""
    mx = means.max(axis=1, keepdims=True)
    g = means.shape[1]
    if g < 2:
        return np.zeros(means.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (1 - means / mx).sum(axis=1) / (g - 1)
    return np.nan_to_num(tau, nan=0.0)


def _correlation_top_genes(
    acts: sparse.csr_matrix, expr: Any, names: pd.Index, n_top: int, block: int = 512
) -> pd.DataFrame:
    """Top genes per feature by Pearson correlation across cells (blocks of features)."""
    n = acts.shape[0]
    E = (
        expr.tocsc().astype(np.float64)
        if sparse.issparse(expr)
        else np.asarray(expr, dtype=np.float64)
    )
    mu_e = np.asarray(E.mean(axis=0)).ravel()
    sq = E.multiply(E) if sparse.issparse(E) else E**2
    sd_e = np.sqrt(np.maximum(np.asarray(sq.mean(axis=0)).ravel() - mu_e**2, 0))
    A = acts.tocsc().astype(np.float64)
    out_f, out_g, out_s, out_r = [], [], [], []
    for start in range(0, A.shape[1], block):
        a = A[:, start : start + block].toarray()
        mu_a = a.mean(0)
        sd_a = a.std(0)
        cov = np.asarray(E.T @ a) / n - np.outer(mu_e, mu_a)  # genes x block
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd_e, sd_a)
        corr = np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
        top = min(n_top, corr.shape[0])
        idx = np.argpartition(-corr, top - 1, axis=0)[:top]
        for j in range(corr.shape[1]):
            if sd_a[j] == 0:
                continue  # a feature that never fires has no genes
            order = idx[:, j][np.argsort(-corr[idx[:, j], j])]
            order = order[corr[order, j] > 0]
            out_f.extend([start + j] * len(order))
            out_g.extend(names[order])
            out_s.extend(corr[order, j])
            out_r.extend(range(1, len(order) + 1))
    return pd.DataFrame({"feature": out_f, "gene": out_g, "score": out_s, "rank": out_r})


def decoder_gene_map(
    cache: ActivationCache, adata: AnnData, d_in: int
) -> tuple[np.ndarray, pd.Index] | None:
    """A genes x d_in map from the activation space to genes, when one exists.

    Gene-space sources (``X``, ``raw``, ``layer:NAME``) map by identity; ``obsm:X_pca`` maps
    through the PCA loadings ``adata.varm['PCs']``. Other sources have no linear map.
    """
    names = cache.meta.get("feature_names")
    if names is not None and len(names) == d_in:
        return np.eye(d_in, dtype=np.float32), pd.Index(names)
    if cache.meta.get("source") == "obsm:X_pca" and "PCs" in adata.varm:
        pcs = np.asarray(adata.varm["PCs"])
        if pcs.shape[1] == d_in:
            return pcs, pd.Index(adata.var_names.astype(str))
    return None


def _matrix_top_genes(scores: np.ndarray, names: pd.Index, n_top: int) -> pd.DataFrame:
    """Top positive entries per row of a features x genes score matrix."""
    top = min(n_top, scores.shape[1])
    idx = np.argpartition(-scores, top - 1, axis=1)[:, :top]
    rows = []
    for f in range(scores.shape[0]):
        order = idx[f][np.argsort(-scores[f, idx[f]])]
        rows.extend(
            (f, names[j], float(scores[f, j]), r)
            for r, j in enumerate(order[scores[f, order] > 0], 1)
        )
    return pd.DataFrame(rows, columns=["feature", "gene", "score", "rank"])


def _score_top_genes(score: sparse.csr_matrix, names: pd.Index, n_top: int) -> pd.DataFrame:
    rows = []
    for f in range(score.shape[0]):
        lo, hi = score.indptr[f], score.indptr[f + 1]
        if hi == lo:
            continue
        cols, vals = score.indices[lo:hi], score.data[lo:hi]
        order = np.argsort(-vals)[:n_top]
        for r, j in enumerate(order, start=1):
            if vals[j] > 0:
                rows.append((f, names[cols[j]], float(vals[j]), r))
    return pd.DataFrame(rows, columns=["feature", "gene", "score", "rank"])


def compute_features(
    sae: TopKSAE,
    cache: ActivationCache,
    adata: AnnData,
    groupby: str | None = None,
    n_top_genes: int = 50,
    n_top_cells: int = 20,
    n_bins: int = 20,
    key_added: str | None = "X_sae",
    gene_score: str = "auto",
) -> FeatureResult:
    """Cell- and gene-level analysis of every SAE feature.

    Parameters
    ----------
    sae
        The trained SAE.
    cache
        The activation cache it was trained on (or any cache of the same width).
    adata
        The cells; their ids must include every cached cell id.
    groupby
        ``adata.obs`` column of cell types or clusters; the first of ``cell_type``,
        ``bulk_labels``, ``leiden``, ``louvain`` present when None.
    n_top_genes, n_top_cells
        How many genes / cells to keep per feature.
    n_bins
        Histogram bins of each feature's activation over its active cells.
    gene_score
        ``'decoder'``: genes with the largest weight in the feature's decoder direction
        mapped to genes (gene-space sources; ``obsm:X_pca`` through ``varm['PCs']``);
        ``'correlation'``: genes whose expression tracks the feature across cells;
        ``'auto'``: per-token sources use activation x expression, others ``decoder`` where a
        map to genes exists, else ``correlation``.
    key_added
        Write the cells x features activations (sparse) to ``adata.obsm[key_added]``; None
        writes nothing. Cells absent from the cache get zeros.

    Returns
    -------
    A :class:`FeatureResult` (see the module docstring for the tables).
    """
    if cache.d_in != sae.d_in:
        raise InvalidParameterError(
            f"the cache has width {cache.d_in} but the SAE takes d_in={sae.d_in}"
        )
    acts, cell_ids, token_scores = encode_cells(sae, cache, adata)
    pos = adata.obs_names.get_indexer(pd.Index(cell_ids))
    if (pos < 0).any():
        missing = cell_ids[pos < 0][:3]
        raise InvalidDataError(
            f"{int((pos < 0).sum())} cached cell id(s) are not in the data (e.g. {list(missing)})",
            remedy="pass the same AnnData the activations were computed from",
        )
    if groupby is None:
        groupby = next(
            (c for c in ("cell_type", "bulk_labels", "leiden", "louvain") if c in adata.obs), None
        )
    if groupby is not None and groupby not in adata.obs:
        raise InvalidParameterError(f"groupby={groupby!r} is not an adata.obs column")
    n_cells, d_sae = acts.shape
    csc = acts.tocsc()
    nnz = np.diff(csc.indptr)
    sums = np.asarray(csc.sum(axis=0)).ravel()
    maxes = np.asarray(csc.max(axis=0).toarray()).ravel()
    feats = pd.DataFrame(
        {
            "feature": np.arange(d_sae),
            "frequency": nnz / max(n_cells, 1),
            "mean_activation": np.divide(sums, nnz, out=np.zeros(d_sae), where=nnz > 0),
            "max_activation": maxes,
        }
    )
    groups_df = pd.DataFrame(columns=["feature", "group", "mean_activation", "frac_active"])
    if groupby is not None:
        labels = adata.obs[groupby].astype(str).to_numpy()[pos]
        levels = np.unique(labels)
        onehot = sparse.csr_matrix(
            (np.ones(n_cells), (np.searchsorted(levels, labels), np.arange(n_cells))),
            shape=(len(levels), n_cells),
        )
        size = np.asarray(onehot.sum(axis=1)).ravel()
        means = (onehot @ acts).toarray() / size[:, None]  # groups x features
        active = (onehot @ (acts > 0).astype(np.float32)).toarray() / size[:, None]
        feats["top_group"] = levels[means.argmax(axis=0)]
        feats["specificity"] = _tau(means.T)
        groups_df = pd.DataFrame(
            {
                "feature": np.tile(np.arange(d_sae), len(levels)),
                "group": np.repeat(levels, d_sae),
                "mean_activation": means.ravel(),
                "frac_active": active.ravel(),
            }
        )
    else:
        feats["top_group"] = ""
        feats["specificity"] = 0.0
    # Top cells and histograms, from the CSC columns.
    top_rows, hists = [], {}
    for f in range(d_sae):
        lo, hi = csc.indptr[f], csc.indptr[f + 1]
        if hi == lo:
            continue
        vals, rows = csc.data[lo:hi], csc.indices[lo:hi]
        order = np.argsort(-vals)[:n_top_cells]
        top_rows.extend(
            (f, str(cell_ids[rows[j]]), float(vals[j]), r) for r, j in enumerate(order, 1)
        )
        counts, edges = np.histogram(vals, bins=n_bins, range=(0.0, float(vals.max()) or 1.0))
        hists[f] = {"bins": [round(float(e), 5) for e in edges], "counts": counts.tolist()}
    top_cells = pd.DataFrame(top_rows, columns=["feature", "cell_id", "activation", "rank"])
    if gene_score not in ("auto", "decoder", "correlation"):
        raise InvalidParameterError(
            f"gene_score={gene_score!r}; expected auto, decoder or correlation"
        )
    gene_map = decoder_gene_map(cache, adata, sae.d_in) if gene_score != "correlation" else None
    if gene_score == "decoder" and gene_map is None:
        raise InvalidParameterError(
            f"gene_score='decoder' needs a gene-space source or obsm:X_pca with varm['PCs']; "
            f"the source is {cache.meta.get('source')!r}",
            remedy="use gene_score='correlation'",
        )
    if token_scores is not None:
        _, names = log_expression(adata)
        genes = _score_top_genes(token_scores.tocsr(), pd.Index(names.astype(str)), n_top_genes)
        method = "activation x expression (per token)"
    elif gene_map is not None:
        loadings, names = gene_map
        scores = sae.W_dec.detach().cpu().numpy() @ np.asarray(loadings, dtype=np.float32).T
        scores[nnz == 0] = 0.0  # a feature that never fires has no genes
        genes = _matrix_top_genes(scores, names, n_top_genes)
        method = "decoder direction"
    else:
        X, names = log_expression(adata)
        X = X[pos] if not sparse.issparse(X) else X.tocsr()[pos]
        genes = _correlation_top_genes(acts, X, pd.Index(names.astype(str)), n_top_genes)
        method = "pearson correlation across cells"
    top_lists = (
        genes.sort_values(["feature", "rank"])
        .groupby("feature")["gene"]
        .apply(lambda s: ",".join(s[:10]))
    )
    feats["top_genes"] = feats["feature"].map(top_lists).fillna("")
    if key_added:
        full = sparse.csr_matrix((adata.n_obs, d_sae), dtype=np.float32)
        perm = sparse.csr_matrix(
            (np.ones(n_cells), (pos, np.arange(n_cells))), shape=(adata.n_obs, n_cells)
        )
        full = (perm @ acts).tocsr().astype(np.float32) if n_cells else full
        adata.obsm[key_added] = full
        adata.uns[key_added] = {"d_sae": d_sae, "k": sae.k, "source": cache.meta.get("source")}
    info = {
        "groupby": groupby,
        "gene_score": method,
        "gene_score_option": gene_score,
        "gene_universe": [str(g) for g in names],
        "n_cells": int(n_cells),
        "d_sae": int(d_sae),
        "k": int(sae.k),
        "source": cache.meta.get("source"),
        "histograms": hists,
    }
    return FeatureResult(feats, groups_df, genes, top_cells, info, acts)


def write_features(result: FeatureResult, folder: str | os.PathLike[str]) -> Path:
    """Write the tables as parquet and the rest as ``features.json`` (schema in the module doc)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (
        ("features", result.features),
        ("feature_groups", result.groups),
        ("feature_genes", result.genes),
        ("feature_top_cells", result.top_cells),
    ):
        with atomic_path(folder / f"{name}.parquet") as tmp:
            df.to_parquet(tmp, index=False)
    atomic_write_text(folder / "features.json", json.dumps(result.info))
    return folder


def read_features(folder: str | os.PathLike[str]) -> FeatureResult:
    """Read what :func:`write_features` wrote."""
    from scagent.errors import InputNotFoundError

    folder = Path(folder)
    if not (folder / "features.parquet").is_file():
        raise InputNotFoundError(
            f"no features in {str(folder)!r}", remedy="run `scagent sae features` first"
        )
    info = json.loads((folder / "features.json").read_text())
    info["histograms"] = {int(k): v for k, v in info.get("histograms", {}).items()}
    return FeatureResult(
        pd.read_parquet(folder / "features.parquet"),
        pd.read_parquet(folder / "feature_groups.parquet"),
        pd.read_parquet(folder / "feature_genes.parquet"),
        pd.read_parquet(folder / "feature_top_cells.parquet"),
        info,
    )
