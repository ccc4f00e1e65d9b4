"""Highly variable genes: Seurat v3 on the raw counts when they exist, Seurat on log data otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from scagent.errors import DataStateError, InvalidParameterError
from scagent.tools._data import claim_key, counts_of, mark_owned, ready_for, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


class HvgParams(ParamsModel):
    n_top_genes: int = Field(
        2000,
        ge=50,
        le=20000,
        description="Number of highly variable genes; 2000 is the common default, 1000-5000 "
        "is the usual range (Luecken & Theis 2019).",
        json_schema_extra={"sweep": [1000, 2000, 3000, 5000]},
    )
    flavor: Literal["auto", "seurat_v3", "seurat", "cell_ranger"] = Field(
        "auto",
        description="'seurat_v3' ranks genes by normalized variance on raw counts (Stuart et al. "
        "2019); 'seurat' and 'cell_ranger' use dispersion on log data. 'auto' picks seurat_v3 "
        "when counts exist, else seurat.",
    )
    batch_key: str | None = Field(
        None,
        description="obs column of batches: genes are ranked within each batch and combined, so "
        "batch-specific genes do not dominate (recommended with several samples).",
    )


def hvg(adata: AnnData, **params: Any) -> ToolResult:
    """Flag highly variable genes with :func:`scanpy.pp.highly_variable_genes`.

    Parameters
    ----------
    adata
        The data; modified in place (genes are flagged, not removed).
    **params
        See :class:`HvgParams`.

    Returns
    -------
    ToolResult
        Writes ``var['highly_variable']`` and the flavor's statistics (``means``,
        ``variances``, ``variances_norm``, ``highly_variable_rank`` for seurat_v3;
        ``means``, ``dispersions``, ``dispersions_norm`` for seurat), with a batch key also
        ``highly_variable_nbatches``; and ``uns['hvg']``.
    """
    import anndata as ad
    import scanpy as sc

    p = parse_params(HvgParams, params, "hvg")
    if p.batch_key is not None and p.batch_key not in adata.obs:
        raise InvalidParameterError(
            f"batch_key '{p.batch_key}' is not an obs column",
            remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
        )
    state = state_of(adata)
    flavor = p.flavor
    if flavor == "auto":
        flavor = "seurat_v3" if state.has_counts else "seurat"
    obs = pd.DataFrame(index=adata.obs_names.copy())
    if p.batch_key:
        obs["batch"] = adata.obs[p.batch_key].astype(str).to_numpy()
    if flavor == "seurat_v3":
        counts = counts_of(adata, state)
        if counts is None:
            raise DataStateError(
                "hvg with flavor='seurat_v3' needs raw counts, and none were found",
                remedy="use flavor='seurat' on log-normalized data",
            )
        work = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))
        source = f"counts in {state.counts_location}"
    else:
        try:
            work = ready_for(adata, state, "log_normalized")
        except DataStateError as exc:
            raise DataStateError(
                f"hvg with flavor='{flavor}' needs log-normalized data: {exc.message}",
                remedy="run normalize first",
            ) from None
        work = ad.AnnData(X=work.X, obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))
        source = "log-normalized data"
    n_top = min(p.n_top_genes, adata.n_vars)
    df = sc.pp.highly_variable_genes(
        work,
        n_top_genes=n_top,
        flavor=flavor,
        batch_key="batch" if p.batch_key else None,
        inplace=False,
    )
    if len(df) == adata.n_vars and df.index.astype(str).equals(adata.var_names.astype(str)):
        df.index = adata.var_names
    else:  # some flavors return a positional index
        df.index = adata.var_names[: len(df)]
    warnings = []
    if (w := claim_key(adata, "var", "highly_variable", "hvg", overwrite=True)) is not None:
        warnings.append(w)
    df = df.drop(columns=[c for c in ("gene_name",) if c in df.columns])  # seurat_v3 adds it
    for col in df.columns:
        values = df[col].to_numpy()
        adata.var[col] = values.astype(bool) if col == "highly_variable" else values
    adata.uns["hvg"] = {"flavor": flavor}
    n_hvg = int(np.asarray(adata.var["highly_variable"]).sum())
    if n_top < p.n_top_genes:
        warnings.append(f"only {adata.n_vars} genes; all are flagged highly variable")
    written = [f"var/{c}" for c in df.columns] + ["uns/hvg"]
    written.append(mark_owned(adata, "hvg", ("var", "highly_variable")))
    return ToolResult(
        summary=f"{n_hvg} highly variable genes ({flavor} on {source}"
        + (f", per batch of '{p.batch_key}')" if p.batch_key else ")"),
        metrics={"n_hvg": n_hvg, "flavor": flavor},
        warnings=warnings,
        written=written,
    )


HVG = register(
    Tool(
        id="hvg",
        name="Highly variable genes",
        category="features",
        framework="scanpy",
        fn=hvg,
        params=HvgParams,
        produces=("hvg",),
        captures=("scanpy", "anndata", "numpy", "scikit-misc"),
        reference="Stuart et al. (2019) Comprehensive integration of single-cell data. Cell "
        "177:1888-1902; Luecken & Theis (2019) Mol Syst Biol 15:e8746",
        description="Flag highly variable genes (seurat_v3 on counts or seurat on log data), "
        "batch-aware.",
    )
)
