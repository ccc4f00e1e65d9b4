"""The analysis report's figures: QC distributions with their thresholds, embeddings, marker dot plots, as data URIs.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas (no display,
no pyplot state) wherever scanpy lets us pass an ``ax``; scanpy's dot plot builds its
own pyplot figure, which is closed as soon as it is encoded. Every figure ends up as a
base64 PNG data URI, so the report stays one self-contained file.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scagent.report.plots import new_figure

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.figure import Figure

__all__ = [
    "QC_ALIASES",
    "QC_METRICS",
    "canonical_qc",
    "embedding_figure",
    "figure_data_uri",
    "marker_dotplot",
    "qc_thresholds",
    "qc_violins",
]

#: The per-cell QC columns drawn, with their axis labels and whether a log axis suits them.
QC_METRICS: dict[str, tuple[str, bool]] = {
    "total_counts": ("total counts per cell", True),
    "n_genes_by_counts": ("genes detected per cell", True),
    "pct_counts_mt": ("% counts from mitochondrial genes", False),
}


#: Names other tools give the same QC columns (Seurat, older scanpy tutorials).
QC_ALIASES: dict[str, tuple[str, ...]] = {
    "total_counts": ("total_counts", "n_counts", "nCount_RNA"),
    "n_genes_by_counts": ("n_genes_by_counts", "n_genes", "nFeature_RNA"),
    "pct_counts_mt": ("pct_counts_mt", "percent_mito", "percent.mt", "pct_mito"),
}


def canonical_qc(obs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The QC columns of ``obs`` under scanpy's names, and where each was read from (``obs['...']``).

    A mitochondrial column holding fractions (all values <= 1, as in pbmc68k_reduced's
    ``percent_mito``) is converted to percent.
    """
    found: dict[str, str] = {}
    columns = {}
    for name, aliases in QC_ALIASES.items():
        source = next((a for a in aliases if a in obs.columns), None)
        if source is None:
            continue
        values = pd.to_numeric(obs[source], errors="coerce").astype(float)
        where = f"obs['{source}']"
        if name == "pct_counts_mt" and source != name and values.max(skipna=True) <= 1.0:
            values = values * 100.0
            where += " (a fraction, shown as %)"
        columns[name] = values
        found[name] = where
    return pd.DataFrame(columns, index=obs.index), found


def figure_data_uri(fig: Any, *, dpi: int = 100) -> str:
    """``data:image/png;base64,...`` of a matplotlib figure; a pyplot figure is closed afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    # Figures scanpy made through pyplot stay registered there until closed.
    import matplotlib.pyplot as plt

    if plt.fignum_exists(getattr(fig, "number", -1)):
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ------------------------------------------------------------------------------------- QC


def qc_thresholds(
    obs: pd.DataFrame, params: Mapping[str, Any], groups: pd.Series | None = None
) -> pd.DataFrame:
    """The limits a ``filter_cells`` run applied (see :func:`scagent.tools.qc.qc_limits`).

    For data filtered by scagent the limits are recorded in ``uns['filter_cells']``; this
    recomputes them from the step's input, for projects made before they were recorded.
    """
    from scagent.tools.qc import qc_limits

    return qc_limits(obs, params, groups)


def _log_ticks(ax: Any) -> None:
    """Label a log10-valued axis with round numbers (1, 2, 5 x 10^k) in linear units."""
    low, high = ax.get_ylim()
    ticks: list[int] = []
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        values = [m * 10**k for k in range(0, 9) for m in mantissas]
        ticks = [v for v in values if low <= np.log10(v) <= high]
        if len(ticks) >= 3:
            break
    if len(ticks) > 6:
        ticks = [v for v in ticks if str(v)[0] in "15"]
    ax.set_yticks(np.log10(ticks), [f"{v:,}" for v in ticks], fontsize=7)
    ax.set_ylabel("log scale", fontsize=7)


def qc_violins(
    obs: pd.DataFrame,
    *,
    groupby: str | None = None,
    thresholds: pd.DataFrame | None = None,
    max_groups: int = 24,
) -> Figure:
    """One violin panel per QC metric, one violin per sample, with the filter's limits as lines.

    Parameters
    ----------
    obs
        Per-cell QC columns (and ``groupby``).
    groupby
        obs column of samples; ``None`` draws all cells as one violin.
    thresholds
        :func:`qc_thresholds` output. Group ``"all"`` draws a line across every violin;
        a group named like a sample draws a short line over that sample's violin.
    max_groups
        Samples beyond this many (the smallest) are left out of the figure.
    """
    metrics = [m for m in QC_METRICS if m in obs]
    labels = obs[groupby].astype(str) if groupby else pd.Series("all cells", index=obs.index)
    order = labels.value_counts().index[:max_groups].tolist()
    order = sorted(order, key=str)
    width = max(4.5, 1.2 + 0.45 * len(order)) * max(1, len(metrics))
    fig = new_figure(min(width, 16.0), 3.6)
    if not metrics:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no QC columns", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    lines = thresholds if thresholds is not None else pd.DataFrame(columns=["group", "metric"])
    for ax, metric in zip(axes, metrics, strict=True):
        label, log = QC_METRICS[metric]
        data = [obs.loc[(labels == g).to_numpy(), metric].to_numpy(dtype=float) for g in order]
        shown = [np.log10(np.clip(d, 1, None)) if log else d for d in data]
        positions = np.arange(1, len(order) + 1)
        parts = ax.violinplot(
            [d if len(d) > 1 else np.repeat(d, 2) for d in shown],
            positions=positions,
            showmedians=True,
            widths=0.8,
        )
        for body in parts["bodies"]:
            body.set_facecolor("#8fb4d9")
            body.set_edgecolor("#2e6bb0")
            body.set_alpha(0.8)
        for _, row in lines[lines["metric"] == metric].iterrows():
            if row["group"] == "all":
                x0, x1 = 0.5, len(order) + 0.5
            elif row["group"] in order:
                i = order.index(row["group"]) + 1
                x0, x1 = i - 0.45, i + 0.45
            else:
                continue
            for value in (row["lower"], row["upper"]):
                if pd.notna(value):
                    y = np.log10(max(float(value), 1.0)) if log else float(value)
                    ax.hlines(y, x0, x1, colors="#c0392b", linestyles="--", linewidth=1.2)
        ax.set_xticks(positions, order, rotation=45 if len(order) > 3 else 0, ha="right"
                      if len(order) > 3 else "center", fontsize=7)  # fmt: skip
        ax.set_title(label, fontsize=9)
        if log:
            _log_ticks(ax)
    fig.suptitle("QC before filtering (dashed red: limits the filter applied)", fontsize=9)
    return fig


# ------------------------------------------------------------------------------ embeddings


def embedding_figure(
    adata: AnnData, color: str, *, basis: str = "X_umap", title: str | None = None
) -> Figure:
    """Cells on ``obsm[basis]`` coloured by ``obs[color]``, drawn by :func:`scanpy.pl.embedding`.

    scanpy stores a palette in ``uns['<color>_colors']``; it draws on a two-column stand-in
    object here so that ``adata`` is never modified.
    """
    import anndata as ad
    import scanpy as sc

    values = adata.obs[color]
    categorical = not pd.api.types.is_numeric_dtype(values) or isinstance(
        values.dtype, pd.CategoricalDtype
    )
    obs = pd.DataFrame({color: values.astype(str).astype("category") if categorical else values})
    if categorical and isinstance(values.dtype, pd.CategoricalDtype):
        kept = [str(c) for c in values.cat.categories if str(c) in set(obs[color].cat.categories)]
        obs[color] = obs[color].cat.reorder_categories(kept)
    stand_in = ad.AnnData(obs=obs, obsm={"X_emb": np.asarray(adata.obsm[basis])[:, :2]})
    n_levels = obs[color].nunique() if categorical else 0
    fig = new_figure(6.8 if n_levels > 12 else 5.8, 4.6)
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        # scanpy's own use of a matplotlib API due to change; nothing the reader can act on.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sc.pl.embedding(
            stand_in,
            basis="X_emb",
            color=color,
            ax=ax,
            show=False,
            frameon=False,
            title=title or color,
            legend_fontsize=7,
            legend_loc="on data" if n_levels > 30 else "right margin",
            size=max(4.0, 120_000 / max(adata.n_obs, 1) ** 1.0) if adata.n_obs > 0 else None,
        )
    return fig


# --------------------------------------------------------------------------------- markers


def marker_dotplot(adata: AnnData, *, key: str = "rank_genes_groups", n_genes: int = 4) -> Any:
    """scanpy's dot plot of the top ``n_genes`` markers per group of ``uns[key]``.

    Expression is read log-normalized from wherever the inspector finds it (X, ``.raw``,
    or derived from the counts) -- the same values the markers were ranked on.

    Returns
    -------
    The matplotlib figure (close it, or pass it to :func:`figure_data_uri`).
    """
    import anndata as ad
    import scanpy as sc

    from scagent.data import ensure_ready_for, inspect_adata

    groupby = str(adata.uns[key]["params"]["groupby"])
    state = inspect_adata(adata)
    use_raw = False
    if state.x_state == "log_normalized":
        source = adata
    elif state.raw_state == "log_normalized" and adata.raw is not None:
        source, use_raw = adata, True
    else:
        source = ensure_ready_for(adata, state, "log_normalized")
    # The dot plot writes palettes into uns: it draws on a stand-in that shares X.
    work = ad.AnnData(
        X=source.X,
        obs=pd.DataFrame({groupby: adata.obs[groupby].values}, index=adata.obs_names),
        var=pd.DataFrame(index=source.var_names),
        uns={key: adata.uns[key]},
    )
    if use_raw:
        work.raw = adata.raw.to_adata()
    plot = sc.pl.rank_genes_groups_dotplot(
        work,
        key=key,
        groupby=groupby,
        n_genes=n_genes,
        use_raw=use_raw,
        dendrogram=False,
        show=False,
        return_fig=True,
    )
    plot.make_figure()
    return plot.fig
