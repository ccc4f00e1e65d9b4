"""Subtypes within a population: subset cells by label, re-run the pipeline from counts, re-cluster, test DE.

"Find DE genes between the CAF subtypes" needs the CAFs alone: highly variable genes,
PCA and the neighbors graph of the whole dataset are dominated by differences between
cell types, so subtypes hide in them. The subset is rebuilt from raw counts and sent
through the registered tools (normalize, hvg, pca, neighbors, leiden, markers), so each
step keeps its checks; the Wilcoxon test then compares each subcluster with the rest of
the subset (or with one reference subcluster). This is a comparison of cell states, not
of conditions: condition DE belongs to ``pseudobulk_de``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.tools._data import claim_key, mark_owned, obs_column, require_counts, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["DeWithinParams", "de_within_cluster"]


class DeWithinParams(ParamsModel):
    groupby: str = Field(
        "auto",
        description="obs column holding the labels to subset; 'auto' takes the inspector's "
        "first cell-type column, else 'leiden' or the first clustering.",
    )
    labels: list[str] = Field(
        ..., min_length=1, description="Labels of `groupby` whose cells form the subset."
    )
    resolution: float = Field(
        0.5,
        gt=0.0,
        le=10.0,
        description="Leiden resolution for the subclusters; subtypes are finer than types, "
        "but a subset has fewer cells, so 0.3-1.0 is typical.",
    )
    n_top_genes: int = Field(
        2000,
        ge=50,
        le=20_000,
        description="Highly variable genes of the subset (capped at its genes).",
    )
    n_comps: int = Field(30, ge=2, le=200, description="PCs of the subset (capped by its size).")
    n_neighbors: int = Field(
        15, ge=2, le=200, description="Neighbors per cell in the subset graph."
    )
    min_cells: int = Field(30, ge=10, description="The subset needs at least this many cells.")
    method: Literal["wilcoxon", "t-test", "t-test_overestim_var", "logreg"] = Field(
        "wilcoxon", description="Test between subclusters (Wilcoxon rank-sum by default)."
    )
    reference: str = Field(
        "rest",
        description="Compare each subcluster with 'rest' (the other subclusters) or one of them.",
    )
    sample_key: str | None = Field(
        "auto",
        description="obs column of samples, used to warn about subclusters made of one sample "
        "(a sample effect, not a subtype); None skips the check.",
    )
    random_state: int = Field(0, description="Seed of PCA, neighbors and Leiden.")
    key_added: str = Field(
        "de_within", description="obs column of the subclusters and uns key of the results."
    )
    overwrite: bool = Field(False, description="Replace obs/uns[key_added] not written by scagent.")

    @field_validator("labels", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        # The CLI passes "CAF,myCAF"; the API a list or one label.
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


def _groupby(adata: AnnData, value: str) -> str:
    def labels() -> list[str]:
        crumbs = state_of(adata).breadcrumbs
        return [
            *(c.name for c in crumbs.cell_types),
            "leiden",
            *(c.name for c in crumbs.clusterings),
        ]

    return obs_column(
        adata,
        value,
        labels,
        missing=InvalidParameterError(
            "de_within_cluster found no label column to subset by",
            remedy="pass groupby=<obs column of cell types or clusters>",
        ),
    )


def _sample_key(adata: AnnData, value: str | None) -> str | None:
    if value is None:
        return None

    def samples() -> list[str]:
        state = state_of(adata)
        return [c.name for c in (*state.sample_columns, *state.donor_columns)]

    return obs_column(adata, value, samples, param="sample_key", missing=None)


def de_within_cluster(adata: AnnData, **params: Any) -> ToolResult:
    """Subcluster the cells of some labels from their counts and find DE genes between the subclusters.

    The subset's counts (from wherever the inspector finds them) go through the registered
    tools ``normalize`` -> ``hvg`` -> ``pca`` -> ``neighbors`` -> ``leiden`` -> ``markers`` on
    a separate AnnData; only the labels and the DE table come back.

    Parameters
    ----------
    adata
        The data; ``obs[key_added]`` and ``uns[key_added]`` are added.
    **params
        See :class:`DeWithinParams`; ``labels`` is required.

    Returns
    -------
    ToolResult
        Writes ``obs[key_added]`` (categorical subcluster of each subset cell, missing for
        the other cells) and ``uns[key_added]`` with ``results`` (one row per subcluster and
        gene: ``group, gene, score, logfoldchange, pvalue, padj, pct_in, pct_out``),
        ``sizes`` and ``params``; ``tables['top_genes']`` lists the top 5 per subcluster.

    Raises
    ------
    InvalidParameterError
        A label is not a level of ``groupby``; one subcluster only (raise the resolution).
    InvalidDataError
        The subset has fewer than ``min_cells`` cells.
    DataStateError
        No raw counts anywhere.
    """
    import anndata as ad
    import scanpy as sc
    from scipy import sparse

    from scagent.tools.cluster import LEIDEN
    from scagent.tools.features import HVG
    from scagent.tools.graph import NEIGHBORS
    from scagent.tools.markers import MARKERS
    from scagent.tools.normalize import NORMALIZE
    from scagent.tools.reduce import PCA

    p = parse_params(DeWithinParams, params, "de_within_cluster")
    state = state_of(adata)
    groupby = _groupby(adata, p.groupby)
    labels = adata.obs[groupby].astype(str)
    levels = sorted(labels.unique())
    missing = [lab for lab in p.labels if lab not in set(levels)]
    if missing:
        raise InvalidParameterError(
            f"labels {missing} are not levels of obs['{groupby}']",
            remedy=f"choose from: {', '.join(levels[:30])}",
        )
    mask = labels.isin(p.labels).to_numpy()
    n_subset = int(mask.sum())
    if n_subset < p.min_cells:
        raise InvalidDataError(
            f"the subset {p.labels} of obs['{groupby}'] has {n_subset} cells; subclustering "
            f"needs at least {p.min_cells}",
            remedy="add labels to the subset, or lower min_cells (at your own risk)",
        )
    counts = require_counts(adata, "de_within_cluster", state)
    warnings: list[str] = []
    for slot in ("obs", "uns"):
        if (
            w := claim_key(adata, slot, p.key_added, "de_within_cluster", overwrite=p.overwrite)
        ) is not None:
            warnings.append(w)

    rows = np.flatnonzero(mask)
    X = counts[rows] if sparse.issparse(counts) else np.asarray(counts)[rows]
    X = sparse.csr_matrix(X, dtype=np.float32)
    # A bare object: the user's obs columns (e.g. their own 'leiden') must not meet the tools.
    sub = ad.AnnData(X=X, obs=pd.DataFrame(index=adata.obs_names[rows].copy()))
    sub.var_names = adata.var_names.copy()
    expressed = np.asarray((X > 0).sum(axis=0)).ravel() >= 3
    sub = sub[:, expressed].copy()
    n_top = min(p.n_top_genes, sub.n_vars)
    NORMALIZE(sub)
    HVG(sub, n_top_genes=max(50, n_top))
    n_hvg = int(sub.var["highly_variable"].sum())
    n_comps = max(2, min(p.n_comps, sub.n_obs - 1, n_hvg - 1))
    PCA(sub, n_comps=n_comps, random_state=p.random_state)
    NEIGHBORS(sub, n_neighbors=min(p.n_neighbors, sub.n_obs - 1), random_state=p.random_state)
    try:
        LEIDEN(sub, resolution=p.resolution, random_state=p.random_state)
    except InvalidParameterError as exc:
        if "one cluster" not in exc.message:
            raise
        raise InvalidParameterError(
            f"the {n_subset} cells of {p.labels} form a single cluster at resolution "
            f"{p.resolution:g}: no subtypes to compare",
            remedy="raise the resolution (e.g. 1.0), or accept that this population is homogeneous",
        ) from None
    sizes = sub.obs["leiden"].value_counts().sort_index()
    if p.reference != "rest" and p.reference not in sizes.index:
        raise InvalidParameterError(
            f"reference '{p.reference}' is not a subcluster (found {', '.join(sizes.index)})",
            remedy="use 'rest', or run once and pick a subcluster",
        )
    MARKERS(sub, groupby="leiden", method=p.method, reference=p.reference, pts=True)
    table = sc.get.rank_genes_groups_df(sub, group=None, key="rank_genes_groups")
    if "group" not in table:  # a single tested group comes back without the column
        table.insert(0, "group", sub.uns["rank_genes_groups"]["names"].dtype.names[0])
    table = table.rename(
        columns={
            "names": "gene",
            "scores": "score",
            "logfoldchanges": "logfoldchange",
            "pvals": "pvalue",
            "pvals_adj": "padj",
            "pct_nz_group": "pct_in",
            "pct_nz_reference": "pct_out",
        }
    )
    table["group"] = table["group"].astype(str)
    table["gene"] = table["gene"].astype(str)

    column = pd.Series(pd.NA, index=adata.obs_names, dtype="object")
    column.iloc[rows] = sub.obs["leiden"].astype(str).to_numpy()
    adata.obs[p.key_added] = pd.Categorical(column, categories=list(sizes.index))
    sample_key = _sample_key(adata, p.sample_key)
    if sample_key is not None:
        samples = adata.obs[sample_key].astype(str).to_numpy()[rows]
        if len(set(samples)) > 1:
            share = pd.crosstab(sub.obs["leiden"].to_numpy(), samples, normalize="index")
            for cluster, top in share.max(axis=1).items():
                if top >= 0.9:
                    warnings.append(
                        f"subcluster {cluster} is {top:.0%} cells of one sample "
                        f"({share.loc[cluster].idxmax()}): it may be a sample effect, not a subtype"
                    )
    adata.uns[p.key_added] = {
        "results": table,
        "sizes": pd.DataFrame({"group": sizes.index.astype(str), "n_cells": sizes.to_numpy()}),
        "params": {
            "groupby": groupby,
            "labels": list(p.labels),
            "n_cells": n_subset,
            "n_genes": int(sub.n_vars),
            "n_hvg": n_hvg,
            "n_comps": n_comps,
            "resolution": p.resolution,
            "method": p.method,
            "reference": p.reference,
            "counts_from": state.counts_location or "",
        },
    }
    top = table.groupby("group", sort=False).head(5)
    return ToolResult(
        summary=f"{len(sizes)} subclusters of {n_subset} cells ({', '.join(p.labels)} of "
        f"'{groupby}') re-clustered from counts; {p.method} DE in uns['{p.key_added}']",
        metrics={
            "n_cells": n_subset,
            "n_subclusters": len(sizes),
            "smallest_subcluster": int(sizes.min()),
            "n_significant": int((table["padj"] < 0.05).sum()),
        },
        warnings=warnings,
        written=[
            f"obs/{p.key_added}",
            f"uns/{p.key_added}",
            mark_owned(adata, "de_within_cluster", ("obs", p.key_added), ("uns", p.key_added)),
        ],
        tables={"top_genes": top[["group", "gene", "logfoldchange", "padj"]].to_dict("records")},
    )


def _check_de_within(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    key = p.key_added  # type: ignore[attr-defined]
    table = adata.uns.get(key, {}).get("results")
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise InvalidDataError(f"de_within_cluster finished but uns['{key}'] holds no results")
    if not (table["padj"] < 0.05).any():
        return [
            "no gene differs between the subclusters at adjusted p < 0.05: they may not be distinct subtypes"
        ]
    return []


DE_WITHIN_CLUSTER = register(
    Tool(
        id="de_within_cluster",
        name="DE between subclusters of a population",
        category="differential_expression",
        framework="scanpy",
        fn=de_within_cluster,
        params=DeWithinParams,
        needs="raw_counts",
        checks=_check_de_within,
        captures=("scanpy", "anndata", "igraph", "scikit-learn"),
        reference="Luecken & Theis (2019) Current best practices in single-cell RNA-seq "
        "analysis: a tutorial. Mol Syst Biol 15:e8746; Soneson & Robinson (2018) Nat Methods "
        "15:255-261",
        description="Subset cells by label, re-run normalize/hvg/pca/neighbors/leiden from "
        "counts, and test DE between the subclusters (Wilcoxon).",
    )
)
