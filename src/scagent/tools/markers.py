"""Marker genes per group by rank tests (Wilcoxon by default) on log-normalized expression."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned, obs_column, ready_for, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.data.state import DataState


class MarkersParams(ParamsModel):
    groupby: str = Field(
        "auto",
        description="obs column of the groups; 'auto' takes 'leiden' when present, else the "
        "first clustering the inspector found.",
    )
    method: Literal["wilcoxon", "t-test", "t-test_overestim_var", "logreg"] = Field(
        "wilcoxon",
        description="Test; the Wilcoxon rank-sum test is robust and the usual choice for "
        "markers (Soneson & Robinson 2018). For condition DE use pseudobulk instead.",
    )
    n_genes: int | None = Field(
        None, ge=1, le=50_000, description="Genes to keep per group; None keeps all."
    )
    reference: str = Field("rest", description="Compare each group with 'rest' or with one group.")
    pts: bool = Field(False, description="Also report the fraction of cells expressing each gene.")
    tie_correct: bool = Field(False, description="Tie correction for the Wilcoxon test.")
    key_added: str = Field("rank_genes_groups", description="uns key of the result.")
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")


def _groupby(adata: AnnData, state: DataState, groupby: str) -> str:
    crumbs = state.breadcrumbs
    return obs_column(
        adata,
        groupby,
        lambda: ["leiden", *(c.name for c in (*crumbs.clusterings, *crumbs.cell_types))],
        missing=MissingPrerequisiteError(
            "markers needs a clustering or cell-type column to group by", remedy="run leiden first"
        ),
    )


def markers(adata: AnnData, **params: Any) -> ToolResult:
    """Rank marker genes per group with :func:`scanpy.tl.rank_genes_groups` on log-normalized data.

    The log-normalized values come from ``X``, ``.raw`` or are derived from the counts
    (in a working copy), whichever the inspector finds; scaled ``X`` is never tested.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`MarkersParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` (names, scores, logfoldchanges, pvals, pvals_adj per
        group); ``tables['top_markers']`` lists the top 5 genes per group.
    """
    import scanpy as sc

    p = parse_params(MarkersParams, params, "markers")
    state = state_of(adata)
    groupby = _groupby(adata, state, p.groupby)
    sizes = adata.obs[groupby].astype(str).value_counts()
    usable = sizes[sizes >= 2].index.tolist()
    if len(usable) < 2:
        raise InvalidDataError(
            f"markers needs at least 2 groups with 2 or more cells in obs['{groupby}']",
            remedy="cluster the cells first or choose another groupby",
        )
    warnings = []
    if len(usable) < len(sizes):
        warnings.append(
            f"groups with a single cell were left out: {', '.join(sizes.index[sizes < 2])}"
        )
    if (w := claim_key(adata, "uns", p.key_added, "markers", overwrite=p.overwrite)) is not None:
        warnings.append(w)
    if groupby in {c.name for c in state.condition_columns}:
        # Cells of one sample are not independent: a cell-level test between conditions
        # counts cells as replicates and floods the results with false discoveries.
        warnings.append(
            f"obs['{groupby}'] is a condition column: a cell-level test between conditions "
            "treats cells as replicates (pseudoreplication; Squair et al. 2021); use "
            "pseudobulk_de for condition differences, markers for clusters or cell types"
        )
    if p.reference != "rest" and p.reference not in usable:
        raise InvalidParameterError(
            f"reference '{p.reference}' is not a group of obs['{groupby}']",
            remedy=f"use 'rest' or one of: {', '.join(usable[:20])}",
        )
    kwargs: dict[str, Any] = {
        "groupby": groupby,
        "groups": usable if len(usable) < len(sizes) else "all",
        "reference": p.reference,
        "method": p.method,
        "n_genes": p.n_genes,
        "pts": p.pts,
        "key_added": p.key_added,
    }
    if p.method == "wilcoxon":
        kwargs["tie_correct"] = p.tie_correct
    if state.x_state == "log_normalized":
        sc.tl.rank_genes_groups(adata, use_raw=False, **kwargs)
        source = "X"
    elif state.raw_state == "log_normalized" and adata.raw is not None:
        sc.tl.rank_genes_groups(adata, use_raw=True, **kwargs)
        source = ".raw"
    else:
        work = ready_for(adata, state, "log_normalized")
        work.obs[groupby] = adata.obs[groupby].to_numpy()
        sc.tl.rank_genes_groups(work, use_raw=False, **kwargs)
        adata.uns[p.key_added] = work.uns[p.key_added]
        source = "log-normalized counts"
    result = adata.uns[p.key_added]
    table = []
    n_no_signal = 0
    for group in result["names"].dtype.names:
        names = result["names"][group]
        padj = result["pvals_adj"][group] if "pvals_adj" in result else np.full(len(names), np.nan)
        lfc = (
            result["logfoldchanges"][group]
            if "logfoldchanges" in result
            else np.full(len(names), np.nan)
        )
        if np.all(~(padj < 0.05)):
            n_no_signal += 1
        for i in range(min(5, len(names))):
            table.append(
                {
                    "group": group,
                    "rank": i + 1,
                    "gene": str(names[i]),
                    "logfoldchange": float(lfc[i]),
                    "pval_adj": float(padj[i]),
                }
            )
    if n_no_signal:
        warnings.append(f"{n_no_signal} group(s) have no gene with adjusted p < 0.05")
    top = pd.DataFrame(table)
    first = top[top["rank"] == 1] if len(top) else top
    return ToolResult(
        summary=f"{p.method} markers for {len(usable)} groups of '{groupby}' on {source} in "
        f"uns['{p.key_added}']",
        metrics={
            "groupby": groupby,
            "n_groups": len(usable),
            "top_markers": "; ".join(
                f"{g}: {n}"
                for g, n in zip(first.get("group", []), first.get("gene", []), strict=False)
            )[:500],
        },
        warnings=warnings,
        written=[f"uns/{p.key_added}", mark_owned(adata, "markers", ("uns", p.key_added))],
        tables={"top_markers": table},
    )


def _check_markers(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    key = p.key_added  # type: ignore[attr-defined]
    if "names" not in adata.uns.get(key, {}):
        raise InvalidDataError(f"markers finished but uns['{key}'] holds no gene names")
    return []


MARKERS = register(
    Tool(
        id="markers",
        name="Marker genes",
        category="markers",
        framework="scanpy",
        fn=markers,
        params=MarkersParams,
        requires=("clustering",),
        needs="log_normalized",
        produces=("markers",),
        checks=_check_markers,
        reference="Soneson & Robinson (2018) Bias, robustness and scalability in single-cell "
        "differential expression analysis. Nat Methods 15:255-261",
        description="Marker genes per cluster (Wilcoxon rank-sum by default) on log-normalized data.",
    )
)
