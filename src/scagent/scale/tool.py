"""The out-of-core preprocessing as one registered tool, so a project on lazily opened data runs it through the session like any step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from scagent.tools.base import ParamsModel, Tool, ToolResult
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["PREPROCESS_LAZY", "PreprocessLazyParams"]


class PreprocessLazyParams(ParamsModel):
    target_sum: float | None = Field(
        1e4, gt=0, description="Counts per cell after normalization; None: the median total."
    )
    n_top_genes: int = Field(2000, ge=10, description="Highly variable genes.")
    flavor: Literal["seurat", "cell_ranger"] = Field(
        "seurat", description="HVG flavor (seurat_v3 needs in-memory counts)."
    )
    n_comps: int = Field(50, ge=2, le=500, description="Principal components.")
    percent_top: int = Field(20, ge=1, description="N of pct_counts_in_top_N_genes.")
    mito_prefix: str = Field("MT-", description="Prefix of mitochondrial genes.")


def preprocess_lazy_tool(adata: AnnData, **params: Any) -> ToolResult:
    """QC, normalize_total + log1p, HVG and PCA chunk by chunk on a dask-backed AnnData.

    See :func:`scagent.scale.preprocess_lazy`. In a project (``scagent init --data big.zarr
    --lazy``) X stays a dask array: the log-normalized X is a recipe, written to the
    snapshot store one row block at a time; counts stay in ``layers['counts']`` as the
    imported matrix itself (no new object).
    """
    from scagent.scale import preprocess_lazy

    summary = preprocess_lazy(adata, **params)
    seconds = summary["seconds"]
    return ToolResult(
        summary=(
            f"out-of-core QC, normalize, {summary['n_hvg']} HVGs and {summary['n_comps']} PCs "
            f"on {summary['n_cells']:,} cells x {summary['n_genes']:,} genes "
            f"({sum(seconds.values()):.0f} s)"
        ),
        metrics={
            "n_hvg": summary["n_hvg"],
            "n_comps": summary["n_comps"],
            "target_sum": summary["target_sum"],
            **{f"seconds_{k}": v for k, v in seconds.items()},
        },
        written=[
            "X", "layers/counts", "obs/total_counts", "obs/n_genes_by_counts",
            "var/highly_variable", "obsm/X_pca", "varm/PCs", "uns/pca", "uns/log1p",
        ],
    )  # fmt: skip


PREPROCESS_LAZY = register(
    Tool(
        id="preprocess_lazy",
        name="Out-of-core preprocessing (dask)",
        category="preprocessing",
        framework="dask",
        fn=preprocess_lazy_tool,
        params=PreprocessLazyParams,
        accepts_x=("raw_counts",),
        produces=("qc_metrics", "normalize", "log1p", "hvg", "pca"),
        produces_x="log_normalized",
        captures=("scanpy", "anndata", "dask", "numpy"),
        reference="Wolf et al. 2018 (scanpy); Rocklin 2015 (dask)",
        description="QC, normalization, HVG and PCA chunk by chunk on data opened lazily "
        "(scagent init --lazy); nothing holds the whole matrix.",
    )
)
