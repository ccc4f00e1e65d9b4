"""Shared plotting helpers: headless figures written atomically as PNG and SVG, showing the data given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagent.report import plots


def _de_table(n_up: int, n_down: int, n_null: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    lfc = np.concatenate(
        [rng.uniform(1, 3, n_up), rng.uniform(-3, -1, n_down), rng.normal(0, 0.2, n_null)]
    )
    padj = np.concatenate([np.full(n_up + n_down, 1e-5), rng.uniform(0.2, 1, n_null)])
    return pd.DataFrame(
        {"gene": [f"g{i}" for i in range(len(lfc))], "log2FoldChange": lfc, "padj": padj}
    )


def test_volcano_counts_and_files(tmp_path) -> None:
    fig = plots.volcano(_de_table(7, 4, 50), title="B cell")
    title = fig.axes[0].get_title()
    assert "7 up, 4 down at FDR 0.05" in title
    # one scatter point per gene with a p-value
    assert fig.axes[0].collections[0].get_offsets().shape[0] == 61
    files = plots.save_figure(fig, tmp_path / "sub" / "volcano")
    assert [f.name for f in files] == ["volcano.png", "volcano.svg"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in files[1].read_text()[:1000]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["volcano.png", "volcano.svg"]


def test_enrichment_dotplot_shows_the_top_sets() -> None:
    table = pd.DataFrame(
        {
            "group": ["A", "A", "A", "B"],
            "source": ["S1", "S2", "S3", "S1"],
            "score": [2.0, -1.0, 0.5, 1.5],
            "padj": [1e-4, 0.01, 0.5, 1e-3],
        }
    )
    fig = plots.enrichment_dotplot(table, n_top=2)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["S1", "S2"]  # S3 is not among A's top 2
    empty = plots.enrichment_dotplot(table.iloc[:0])
    assert "no gene set" in empty.axes[0].texts[0].get_text()


def test_composition_bars_stack_to_one() -> None:
    props = pd.DataFrame({"T": [0.5, 0.6], "B": [0.5, 0.4]}, index=["s1", "s2"])
    fig = plots.composition_bars(props, pd.Series({"s1": "ctrl", "s2": "stim"}), highlight=["B"])
    ax = fig.axes[0]
    heights = np.array([p.get_height() for p in ax.patches]).reshape(2, 2)
    np.testing.assert_allclose(heights.sum(axis=0), [1.0, 1.0])
    assert any(t.get_text() == "* B" for t in ax.get_legend().get_texts())


def test_trajectory_plot_needs_an_embedding() -> None:
    import anndata as ad

    adata = ad.AnnData(np.zeros((3, 2)))
    adata.obs["dpt_pseudotime"] = [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="needs an embedding"):
        plots.trajectory_plot(adata)
    adata.obsm["X_pca"] = np.arange(6, dtype=float).reshape(3, 2)
    fig = plots.trajectory_plot(adata)
    assert "X_pca" in fig.axes[0].get_title()
