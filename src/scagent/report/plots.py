"""Shared plotting helpers: volcano, enrichment dot plot, composition bars and trajectory, saved as PNG and SVG.

Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas), never through
``pyplot``: no global state, no display needed, safe in tests, threads and headless servers.
Each helper returns the figure; :func:`save_figure` writes it atomically in both formats.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scagent._atomic import atomic_path

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.figure import Figure

__all__ = [
    "composition_bars",
    "enrichment_dotplot",
    "new_figure",
    "save_figure",
    "trajectory_plot",
    "volcano",
]

_UP, _DOWN, _NS = "#c0392b", "#2e6bb0", "#b8b8b8"


def new_figure(width: float = 6.0, height: float = 4.5) -> Figure:
    """A figure on the Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig: Figure,
    stem: str | os.PathLike[str],
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 150,
) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` and ``<stem>.svg`` (atomically); return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(target, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
        out.append(target)
    return out


def volcano(
    results: pd.DataFrame,
    *,
    lfc: str = "log2FoldChange",
    padj: str = "padj",
    gene: str = "gene",
    alpha: float = 0.05,
    n_labels: int = 10,
    title: str = "",
) -> Figure:
    """Volcano plot: log2 fold change against -log10 adjusted p-value, significant genes coloured.

    The ``n_labels`` most significant genes are named.
    """
    fig = new_figure(5.5, 4.5)
    ax = fig.add_subplot()
    table = results[[gene, lfc, padj]].dropna()
    x = table[lfc].to_numpy(float)
    floor = np.nextafter(0, 1)
    y = -np.log10(np.clip(table[padj].to_numpy(float), floor, 1.0))
    sig = table[padj].to_numpy(float) < alpha
    colors = np.where(sig & (x > 0), _UP, np.where(sig & (x < 0), _DOWN, _NS))
    ax.scatter(x, y, s=6, c=colors, linewidths=0, rasterized=len(x) > 5000)
    ax.axhline(-np.log10(alpha), color="#666666", lw=0.8, ls="--")
    ax.axvline(0, color="#666666", lw=0.5)
    order = np.argsort(-y)[: min(n_labels, int(sig.sum()))]
    for i in order:
        ax.annotate(
            str(table[gene].iloc[i]),
            (x[i], y[i]),
            fontsize=7,
            xytext=(2, 2),
            textcoords="offset points",
        )
    ax.set_xlabel("log2 fold change")
    ax.set_ylabel("-log10 adjusted p-value")
    n_up, n_down = int((sig & (x > 0)).sum()), int((sig & (x < 0)).sum())
    ax.set_title(f"{title}\n{n_up} up, {n_down} down at FDR {alpha:g}".strip(), fontsize=9)
    return fig


def enrichment_dotplot(
    results: pd.DataFrame,
    *,
    x: str = "group",
    y: str = "source",
    score: str = "score",
    padj: str = "padj",
    n_top: int = 10,
    title: str = "",
) -> Figure:
    """Dot plot of enrichment: one column per ``x`` (cell type / contrast), one row per gene set.

    Dot size is -log10 adjusted p-value, colour the score. The ``n_top`` most significant
    sets of each column are shown.
    """
    table = results.dropna(subset=[padj]).copy()
    top = (
        table.sort_values(padj).groupby(x, sort=False).head(n_top)[y].drop_duplicates().tolist()
        if len(table)
        else []
    )
    table = table[table[y].isin(top)]
    columns = list(dict.fromkeys(table[x].astype(str)))
    fig = new_figure(max(3.5, 1.2 + 0.7 * len(columns)), max(2.5, 1.0 + 0.28 * len(top)))
    ax = fig.add_subplot()
    if table.empty:
        ax.text(0.5, 0.5, "no gene set to show", ha="center", va="center")
        ax.set_axis_off()
        return fig
    xi = table[x].astype(str).map({c: i for i, c in enumerate(columns)}).to_numpy()
    yi = table[y].map({s: i for i, s in enumerate(top)}).to_numpy()
    size = 15 + 25 * np.clip(-np.log10(np.clip(table[padj].to_numpy(float), 1e-300, 1)), 0, 10)
    values = table[score].to_numpy(float)
    limit = float(np.nanmax(np.abs(values))) or 1.0
    points = ax.scatter(
        xi,
        yi,
        s=size,
        c=values,
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        edgecolors="#333333",
        linewidths=0.3,
    )
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(top)), [str(s)[:50] for s in top], fontsize=7)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(len(top) - 0.5, -0.5)
    fig.colorbar(points, ax=ax, label=score, shrink=0.6)
    ax.set_title(title or "enrichment (size: -log10 adjusted p)", fontsize=9)
    return fig


def composition_bars(
    proportions: pd.DataFrame,
    conditions: pd.Series | None = None,
    *,
    highlight: Sequence[str] = (),
    title: str = "",
) -> Figure:
    """Stacked bars of cell-type proportions per sample (rows: samples, columns: types).

    Samples are ordered by ``conditions`` (sample -> condition) and labelled with it; types
    in ``highlight`` (e.g. significantly shifted) get a bold legend entry.
    """
    from matplotlib import colormaps

    table = proportions.copy()
    if conditions is not None:
        cond = conditions.reindex(table.index).astype(str)
        table = table.loc[cond.sort_values(kind="stable").index]
        labels = [f"{s}\n({cond[s]})" for s in table.index]
    else:
        labels = [str(s) for s in table.index]
    fig = new_figure(max(4.0, 1.5 + 0.55 * len(table)), 4.5)
    ax = fig.add_subplot()
    cmap = colormaps["tab20"]
    bottom = np.zeros(len(table))
    for i, col in enumerate(table.columns):
        values = table[col].to_numpy(float)
        ax.bar(
            range(len(table)),
            values,
            bottom=bottom,
            color=cmap(i % 20),
            width=0.8,
            label=("* " if col in highlight else "") + str(col),
        )
        bottom += values
    ax.set_xticks(range(len(table)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("proportion of cells")
    ax.set_ylim(0, 1)
    legend = ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    for text in legend.get_texts():
        if text.get_text().startswith("* "):
            text.set_fontweight("bold")
    ax.set_title(title or "cell-type composition per sample (* significant)", fontsize=9)
    return fig


def trajectory_plot(
    adata: AnnData,
    *,
    pseudotime: str = "dpt_pseudotime",
    groups: str | None = None,
    basis: str | None = None,
    title: str = "",
) -> Figure:
    """Two panels: cells on an embedding coloured by pseudotime, and the PAGA graph of ``groups``.

    The embedding is ``basis`` (default: X_umap, else X_diffmap components 1-2, else
    X_pca); PAGA nodes sit at their cells' mean position there, edges are drawn with
    width proportional to connectivity, nodes coloured by mean pseudotime.
    """
    if basis is None:
        basis = next((b for b in ("X_umap", "X_diffmap", "X_pca") if b in adata.obsm), None)
    if basis is None:
        raise ValueError("trajectory_plot needs an embedding in obsm (X_umap, X_diffmap or X_pca)")
    emb = np.asarray(adata.obsm[basis])
    xy = emb[:, 1:3] if basis == "X_diffmap" else emb[:, :2]
    pt = adata.obs[pseudotime].to_numpy(float)
    has_paga = groups is not None and "paga" in adata.uns and groups in adata.obs
    fig = new_figure(10.0 if has_paga else 5.5, 4.5)
    ax = fig.add_subplot(1, 2 if has_paga else 1, 1)
    finite = np.isfinite(pt)
    ax.scatter(xy[~finite, 0], xy[~finite, 1], s=3, c="#dddddd", linewidths=0)
    points = ax.scatter(
        xy[finite, 0],
        xy[finite, 1],
        s=3,
        c=pt[finite],
        cmap="viridis",
        linewidths=0,
        rasterized=adata.n_obs > 5000,
    )
    if "iroot" in adata.uns:
        root = int(adata.uns["iroot"])
        ax.scatter([xy[root, 0]], [xy[root, 1]], s=80, marker="*", c="red", label="root")
        ax.legend(fontsize=7, frameon=False)
    fig.colorbar(points, ax=ax, label="pseudotime", shrink=0.7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"pseudotime on {basis}", fontsize=9)
    if has_paga:
        ax2 = fig.add_subplot(1, 2, 2)
        labels = adata.obs[groups].astype(str)
        cats = [str(c) for c in adata.obs[groups].cat.categories]
        centers = np.array([xy[(labels == c).to_numpy()].mean(axis=0) for c in cats])
        mean_pt = np.array(
            [np.nanmean(np.where(finite, pt, np.nan)[(labels == c).to_numpy()]) for c in cats]
        )
        conn = adata.uns["paga"]["connectivities"]
        conn = conn.toarray() if hasattr(conn, "toarray") else np.asarray(conn)
        for i in range(len(cats)):
            for j in range(i + 1, len(cats)):
                if conn[i, j] > 0.05:
                    ax2.plot(
                        centers[[i, j], 0],
                        centers[[i, j], 1],
                        color="#444444",
                        lw=0.5 + 4 * conn[i, j],
                        alpha=0.7,
                        zorder=1,
                    )
        sizes = labels.value_counts().reindex(cats).to_numpy(float)
        ax2.scatter(
            centers[:, 0],
            centers[:, 1],
            s=60 + 400 * sizes / sizes.max(),
            c=mean_pt,
            cmap="viridis",
            edgecolors="black",
            zorder=2,
        )
        for c, (cx, cy) in zip(cats, centers, strict=True):
            ax2.annotate(c, (cx, cy), fontsize=7, ha="center", va="center", zorder=3)
        ax2.set_xticks([])
        ax2.set_yticks([])
        ax2.set_title(f"PAGA of '{groups}' (colour: mean pseudotime)", fontsize=9)
    return fig
