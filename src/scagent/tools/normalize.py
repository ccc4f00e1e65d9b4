"""Shifted-log normalization from the raw counts, keeping the counts in a layer so they are never lost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field
from scipy import sparse

from scagent.errors import DataStateError, ScagentError
from scagent.tools._data import claim_key, counts_of, is_integer_matrix, mark_owned, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


class NormalizeParams(ParamsModel):
    target_sum: float | None = Field(
        None,
        gt=0,
        description="Counts per cell after scaling; None uses the median of the cells' totals "
        "(the shifted log of Ahlmann-Eltze & Huber 2023); 1e4 gives CP10k.",
    )
    exclude_highly_expressed: bool = Field(
        False,
        description="Leave very highly expressed genes out of the size factors (Weinreb et al. 2017).",
    )
    counts_layer: str = Field("counts", description="Layer that keeps the raw counts.")
    overwrite: bool = Field(
        False, description="Replace a layer of that name that does not hold these counts."
    )


def normalize(adata: AnnData, **params: Any) -> ToolResult:
    """Normalize each cell to a common total and take ``log1p``, always from the raw counts.

    The counts are taken from wherever the inspector finds them (``X``, a layer or
    ``.raw``), so normalize also works on data whose ``X`` was scaled, and is kept in
    ``layers[counts_layer]``.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`NormalizeParams`.

    Returns
    -------
    ToolResult
        Writes ``X`` (log-normalized, float32), ``layers[counts_layer]`` and ``uns['log1p']``.

    Raises
    ------
    DataStateError
        If no raw counts exist anywhere (e.g. scaled ``X`` without counts).
    """
    import scanpy as sc

    p = parse_params(NormalizeParams, params, "normalize")
    state = state_of(adata)
    counts = counts_of(adata, state)
    if counts is None:
        where = {
            "scaled": "X is scaled",
            "log_normalized": "X is already log-normalized",
            "normalized": "X is already normalized",
        }.get(state.x_state, f"X is {state.x_state}")
        raise DataStateError(
            f"normalize needs raw counts, but {where} and no counts were found in layers or .raw",
            remedy="load the raw count matrix into layers['counts'], or skip normalize if X "
            "is already log-normalized",
        )
    warnings = []
    written = ["X", f"layers/{p.counts_layer}", "uns/log1p"]
    if state.counts_location != f"layers/{p.counts_layer}":
        warning = claim_key(adata, "layers", p.counts_layer, "normalize", overwrite=p.overwrite)
        if warning:
            warnings.append(warning)
        adata.layers[p.counts_layer] = counts.copy()
        written.append(mark_owned(adata, "normalize", ("layers", p.counts_layer)))
    matrix = adata.layers[p.counts_layer]
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    if np.any(totals == 0):
        warnings.append(f"{int((totals == 0).sum())} cells have no counts; filter them first")
    adata.X = (
        matrix.astype(np.float32) if sparse.issparse(matrix) else np.asarray(matrix, np.float32)
    )
    sc.pp.normalize_total(
        adata, target_sum=p.target_sum, exclude_highly_expressed=p.exclude_highly_expressed
    )
    adata.uns.pop("log1p", None)  # scanpy warns "already log-transformed" otherwise
    sc.pp.log1p(adata)
    target = p.target_sum if p.target_sum is not None else float(np.median(totals[totals > 0]))
    return ToolResult(
        summary=f"log1p of counts scaled to {target:.0f} per cell, from counts in "
        f"{state.counts_location}; counts kept in layers['{p.counts_layer}']",
        metrics={"target_sum": float(target), "counts_from": state.counts_location or ""},
        warnings=warnings,
        written=written,
    )


def _check_normalize(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    layer = p.counts_layer  # type: ignore[attr-defined]
    if layer not in adata.layers:
        raise ScagentError(f"normalize finished but layers['{layer}'] is missing")
    if not is_integer_matrix(adata.layers[layer]):
        raise ScagentError(f"normalize finished but layers['{layer}'] does not hold integer counts")
    if sparse.issparse(adata.X) and adata.X.nnz and not np.isfinite(adata.X.data).all():
        raise ScagentError("normalize produced non-finite values in X")
    return []


NORMALIZE = register(
    Tool(
        id="normalize",
        name="Shifted-log normalization",
        category="preprocessing",
        framework="scanpy",
        fn=normalize,
        params=NormalizeParams,
        needs="raw_counts",
        produces=("normalize", "log1p"),
        produces_x="log_normalized",
        checks=_check_normalize,
        reference="Ahlmann-Eltze & Huber (2023) Comparison of transformations for single-cell "
        "RNA-seq data. Nat Methods 20:665-672",
        description="Scale each cell to a common total and log1p-transform, from the raw counts; "
        "the counts stay in layers['counts'].",
    )
)
