"""QC -> normalize_total + log1p -> HVG -> PCA on a dask-backed AnnData, one chunk of cells
at a time: nothing ever holds the whole matrix, and every pass over the data is explicit."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from scagent.errors import DataStateError, InvalidParameterError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["lazy_qc_metrics", "preprocess_lazy"]

_QC_SETS = ("mt", "ribo", "hb")


def _as_csr(block: Any) -> sparse.csr_matrix:
    return block.tocsr() if sparse.issparse(block) else sparse.csr_matrix(np.asarray(block))


def _top_sums(indptr: np.ndarray, data: np.ndarray, top: int) -> np.ndarray:
    """Sum of the ``top`` largest values of each CSR row.

    By hand because scanpy's kernel for this is private; numba's ``np.partition`` per row
    is linear in the row length, where sorting the whole chunk cost 1-2 s per 10k cells.
    """
    return _top_sums_kernel(indptr.astype(np.int64), data, top)


def _make_top_sums_kernel() -> Any:
    from numba import njit

    @njit(cache=True, nogil=True)
    def kernel(indptr: np.ndarray, data: np.ndarray, top: int) -> np.ndarray:
        n = len(indptr) - 1
        out = np.zeros(n, dtype=np.float64)
        for i in range(n):
            row = data[indptr[i] : indptr[i + 1]]
            if len(row) <= top:
                out[i] = row.sum()
            else:
                out[i] = np.partition(row, len(row) - top)[len(row) - top :].sum()
        return out

    return kernel


_KERNEL: Any = None


def _top_sums_kernel(indptr: np.ndarray, data: np.ndarray, top: int) -> np.ndarray:
    global _KERNEL
    if _KERNEL is None:  # compile on first use, not at import
        _KERNEL = _make_top_sums_kernel()
    return _KERNEL(indptr, data, top)


def _block_metrics(block: Any, flags: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell and per-gene QC sums of one row chunk, from its CSR arrays alone.

    Cell columns: n_genes_by_counts, total_counts, total_counts_<set>..., top-``top`` sum.
    Gene rows: n_cells_by_counts, total_counts.
    """
    m = _as_csr(block)
    m.sum_duplicates()
    n_rows, n_genes = m.shape
    data = m.data.astype(np.float64, copy=False)
    nonzero = data != 0
    row_nnz = np.diff(m.indptr)
    rows = np.repeat(np.arange(n_rows), row_nnz)
    cells = np.empty((n_rows, 3 + flags.shape[1]), dtype=np.float64)
    cells[:, 0] = np.bincount(rows, weights=nonzero, minlength=n_rows)
    cells[:, 1] = np.bincount(rows, weights=data, minlength=n_rows)
    for j in range(flags.shape[1]):
        in_set = flags[m.indices, j]
        cells[:, 2 + j] = np.bincount(rows[in_set], weights=data[in_set], minlength=n_rows)
    cells[:, -1] = _top_sums(m.indptr, data, top)
    genes = np.empty((2, n_genes), dtype=np.float64)
    genes[0] = np.bincount(m.indices, weights=nonzero, minlength=n_genes)
    genes[1] = np.bincount(m.indices, weights=data, minlength=n_genes)
    return cells, genes


def _check_counts(adata: AnnData) -> None:
    """Raise unless the first chunk of X looks like raw counts (cheap: one chunk is read)."""
    X = adata.X
    first = X.blocks[0].compute() if hasattr(X, "blocks") else X[: min(1000, X.shape[0])]
    values = first.data if sparse.issparse(first) else np.asarray(first)
    if values.size and (np.any(values < 0) or not np.all(np.equal(np.mod(values, 1), 0))):
        raise DataStateError(
            "X does not hold raw counts (negative or non-integer values in its first chunk); "
            "the lazy pipeline starts from counts",
            remedy="point it at the raw-count file, or run the later steps in memory",
        )


def lazy_qc_metrics(
    adata: AnnData,
    *,
    percent_top: int = 20,
    mito_prefix: str = "MT-",
    gene_symbols: str | None = None,
) -> None:
    """Per-cell and per-gene QC metrics in one pass over a (dask) count matrix.

    Same columns and values as :func:`scagent.tools.qc_metrics` /
    :func:`scanpy.pp.calculate_qc_metrics` with ``qc_vars=['mt','ribo','hb']``,
    ``percent_top=[percent_top]``, ``log1p=True``. Scanpy's own dask path computes each
    column separately (one read of the file per column); here every chunk is read once and
    reduced to a few numbers per cell and per gene.

    Parameters
    ----------
    adata
        Raw counts in ``X`` (dask, sparse or dense); modified in place.
    percent_top
        N of ``pct_counts_in_top_N_genes``.
    mito_prefix, gene_symbols
        As in :class:`scagent.tools.qc.QcMetricsParams`.

    Returns
    -------
    None. Writes ``obs``: ``n_genes_by_counts``, ``total_counts``,
    ``pct_counts_in_top_{N}_genes``, ``total_counts_{mt,ribo,hb}``, ``pct_counts_{mt,ribo,hb}``
    and ``log1p_`` versions of the counts; ``var``: ``mt``, ``ribo``, ``hb``,
    ``n_cells_by_counts``, ``mean_counts``, ``log1p_mean_counts``, ``pct_dropout_by_counts``,
    ``total_counts``, ``log1p_total_counts``.
    """
    import dask

    from scagent.tools.qc import QcMetricsParams, _gene_flags

    if isinstance(percent_top, bool) or not isinstance(percent_top, int) or percent_top < 1:
        raise InvalidParameterError(f"percent_top must be a positive integer, not {percent_top!r}")
    flag_dict = _gene_flags(
        adata, QcMetricsParams(mito_prefix=mito_prefix, gene_symbols=gene_symbols)
    )
    flags = np.column_stack([flag_dict[k] for k in _QC_SETS])
    top = min(percent_top, adata.n_vars)
    X = adata.X
    if hasattr(X, "to_delayed"):
        fn = dask.delayed(_block_metrics, pure=True)
        parts = [fn(b, flags, top) for b in X.to_delayed().ravel()]
        parts = dask.compute(*parts)
    else:  # in-memory input: same code, chunked only to bound the temporary arrays
        step = 10_000
        parts = [_block_metrics(X[i : i + step], flags, top) for i in range(0, X.shape[0], step)]
    cells = np.concatenate([c for c, _ in parts])
    genes = np.sum([g for _, g in parts], axis=0)

    total = cells[:, 1]
    obs = {
        "n_genes_by_counts": cells[:, 0].astype(np.int64),
        "log1p_n_genes_by_counts": np.log1p(cells[:, 0]),
        "total_counts": total,
        "log1p_total_counts": np.log1p(total),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        obs[f"pct_counts_in_top_{top}_genes"] = cells[:, -1] / total * 100
        for j, name in enumerate(_QC_SETS):
            obs[f"total_counts_{name}"] = cells[:, 2 + j]
            obs[f"log1p_total_counts_{name}"] = np.log1p(cells[:, 2 + j])
            obs[f"pct_counts_{name}"] = cells[:, 2 + j] / total * 100
    for col, values in obs.items():
        adata.obs[col] = values
    n_cells = adata.n_obs
    for name, flag in flag_dict.items():
        adata.var[name] = flag
    adata.var["n_cells_by_counts"] = genes[0].astype(np.int64)
    adata.var["mean_counts"] = genes[1] / n_cells
    adata.var["log1p_mean_counts"] = np.log1p(genes[1] / n_cells)
    adata.var["pct_dropout_by_counts"] = (1 - genes[0] / n_cells) * 100
    adata.var["total_counts"] = genes[1]
    adata.var["log1p_total_counts"] = np.log1p(genes[1])


def preprocess_lazy(
    adata: AnnData,
    *,
    target_sum: float | None = 1e4,
    n_top_genes: int = 2000,
    flavor: Literal["seurat", "cell_ranger"] = "seurat",
    n_comps: int = 50,
    percent_top: int = 20,
    mito_prefix: str = "MT-",
    keep_counts: bool = True,
    check_counts: bool = True,
) -> dict[str, Any]:
    """Run QC, normalize_total + log1p, HVG and PCA on a count matrix chunk by chunk.

    Works on a dask-backed AnnData from :func:`scagent.scale.read_lazy` (and on an in-memory
    one). The data is read four times: QC (:func:`lazy_qc_metrics`), HVG statistics, the
    PCA covariance and the PCA projection; normalization and log1p stay lazy in the graph,
    so ``X`` after this call is the log-normalized matrix *as a recipe*, computed only when
    written or used. With a dask.distributed client active (:func:`scagent.scale.connect`),
    every pass runs on its workers.

    Parameters
    ----------
    adata
        Raw counts in ``X``; modified in place.
    target_sum
        Counts per cell after normalization; ``None``: the median of non-zero totals.
    n_top_genes, flavor
        :func:`scanpy.pp.highly_variable_genes` on the log-normalized data (``seurat_v3``
        needs a per-gene LOESS on counts that scanpy does not run on dask).
    n_comps
        Principal components, via scanpy's ``covariance_eigh`` solver: one Gram matrix of
        the HVGs (n_hvg x n_hvg) summed over chunks, then an eigendecomposition.
    percent_top, mito_prefix
        QC, see :func:`lazy_qc_metrics`.
    keep_counts
        Keep the counts (lazily, no copy) in ``layers['counts']``.
    check_counts
        Read the first chunk and refuse data that is not raw counts.

    Returns
    -------
    A summary: sizes, ``n_hvg``, ``variance_ratio`` (first components), ``target_sum`` and
    ``seconds`` per step. Writes the QC columns (see :func:`lazy_qc_metrics`),
    ``layers['counts']``, ``X`` (log-normalized, lazy), ``uns['log1p']``,
    ``var['highly_variable', 'means', 'dispersions', 'dispersions_norm']``, ``uns['hvg']``,
    ``obsm['X_pca']`` (computed), ``varm['PCs']``, ``uns['pca']``.

    Raises
    ------
    DataStateError
        ``X`` is not raw counts.
    InvalidParameterError
        A parameter is out of range.
    """
    import scanpy as sc

    if flavor not in ("seurat", "cell_ranger"):
        raise InvalidParameterError(
            f"flavor must be 'seurat' or 'cell_ranger' on the lazy path, not {flavor!r}",
            remedy="seurat_v3 needs in-memory counts; use flavor='seurat'",
        )
    for name, value in (("n_top_genes", n_top_genes), ("n_comps", n_comps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameterError(f"{name} must be a positive integer, not {value!r}")
    if target_sum is not None and not target_sum > 0:
        raise InvalidParameterError(f"target_sum must be > 0 or None, not {target_sum!r}")
    if adata.n_obs < 2 or adata.n_vars < 2:
        raise DataStateError(f"need at least 2 cells and 2 genes, got {adata.shape}")
    if check_counts:
        _check_counts(adata)

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    lazy_qc_metrics(adata, percent_top=percent_top, mito_prefix=mito_prefix)
    seconds["qc"] = time.perf_counter() - t

    t = time.perf_counter()
    if keep_counts:
        adata.layers["counts"] = adata.X
    totals = adata.obs["total_counts"].to_numpy()
    if target_sum is None:  # scanpy would compute the totals again for this; we have them
        target_sum = float(np.median(totals[totals > 0]))
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    seconds["normalize"] = time.perf_counter() - t

    t = time.perf_counter()
    n_top = min(n_top_genes, adata.n_vars)
    sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor=flavor)
    adata.uns["hvg"] = {"flavor": flavor}
    seconds["hvg"] = time.perf_counter() - t

    t = time.perf_counter()
    n_hvg = int(adata.var["highly_variable"].sum())
    comps = min(n_comps, n_hvg - 1, adata.n_obs - 1)
    sc.pp.pca(adata, n_comps=comps, mask_var="highly_variable", svd_solver="covariance_eigh")
    X_pca = adata.obsm["X_pca"]
    if hasattr(X_pca, "compute"):  # cells x n_comps: small, and every later step wants it
        adata.obsm["X_pca"] = np.asarray(X_pca.compute())
    for key in ("variance", "variance_ratio"):
        value = adata.uns["pca"].get(key)
        if hasattr(value, "compute"):
            adata.uns["pca"][key] = np.asarray(value.compute())
    if hasattr(adata.varm["PCs"], "compute"):
        adata.varm["PCs"] = np.asarray(adata.varm["PCs"].compute())
    seconds["pca"] = time.perf_counter() - t
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_hvg": n_hvg,
        "n_comps": int(comps),
        "target_sum": float(target_sum),
        "variance_ratio": [float(v) for v in adata.uns["pca"]["variance_ratio"][:5]],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def qc_frame(adata: AnnData) -> pd.DataFrame:
    """The per-cell QC columns :func:`lazy_qc_metrics` wrote (for summaries)."""
    cols = [c for c in adata.obs.columns if c.startswith(("n_genes_by", "total_counts", "pct_"))]
    return adata.obs[cols]
