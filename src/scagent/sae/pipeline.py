"""The whole SAE workflow in one call: activations -> train -> features -> validate -> dashboard."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from anndata import AnnData

from scagent._atomic import atomic_write_text
from scagent.sae.activations import ActivationSource, cache_activations, parse_source
from scagent.sae.dashboard import build_dashboard
from scagent.sae.features import compute_features, write_features
from scagent.sae.train import TrainConfig, make_config, train_sae
from scagent.sae.validate import marker_gene_sets, validate_features

__all__ = ["demo_sae", "run"]


def run(
    adata: AnnData,
    source: str | ActivationSource,
    out_dir: str | os.PathLike[str],
    *,
    layer: int | None = None,
    config: TrainConfig | None = None,
    groupby: str | None = None,
    gene_sets: dict[str, list[str]] | None = None,
    species: str = "human",
    tissue: str | None = None,
    gene_score: str = "auto",
    n_top: int = 20,
    progress: bool = False,
    **train_params: Any,
) -> dict[str, Any]:
    """Run every step and write its outputs under ``out_dir``.

    Layout: ``activations/`` (cache), ``train/`` (``sae/`` SAELens folder, checkpoints,
    ``training_metrics.json``), ``features/``, ``validation/``, ``dashboard.html`` and
    ``summary.json``. Train parameters come from ``config`` or keyword arguments
    (``d_sae=``, ``k=``, ``steps=``...). Writes ``adata.obsm['X_sae']``.

    Returns
    -------
    The summary dict (also written to ``summary.json``).
    """
    out = Path(out_dir)
    src = parse_source(source, layer=layer) if isinstance(source, str) else source
    cache = cache_activations(src, adata, out / "activations")
    cfg = config or make_config(**train_params)
    trained = train_sae(
        cache,
        cfg,
        out / "train",
        progress=progress,
        metadata={"hook_name": cache.meta.get("source")},
    )
    feats = compute_features(trained.sae, cache, adata, groupby=groupby, gene_score=gene_score)
    write_features(feats, out / "features")
    sets = gene_sets if gene_sets is not None else marker_gene_sets(species, tissue)
    validation = validate_features(feats, trained.sae, cache, adata, gene_sets=sets, n_top=n_top)
    validation.write(out / "validation")
    build_dashboard(feats, out / "dashboard.html", validation.summary, validation.enrichment)
    summary = {
        "source": cache.meta.get("source"),
        "n_rows": cache.n_rows,
        "d_in": cache.d_in,
        "match_rate": cache.meta.get("match_rate"),
        "training": trained.metrics["final"],
        "validation": {k: v for k, v in validation.summary.items() if k != "best_gene_set"},
        "outputs": {
            "sae": str(out / "train" / "sae"),
            "features": str(out / "features"),
            "validation": str(out / "validation"),
            "dashboard": str(out / "dashboard.html"),
        },
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str))
    return summary


def demo_sae(adata: AnnData, out_dir: str | os.PathLike[str], steps: int = 300) -> dict[str, Any]:
    """A small SAE run for ``scagent demo`` on pbmc68k_reduced (``obsm['X_pca']``): seconds on CPU."""
    return run(
        adata,
        "obsm:X_pca",
        out_dir,
        d_sae=128,
        k=8,
        steps=steps,
        batch_size=256,
        lr=2e-3,
        warmup_steps=min(50, steps // 5),
        dead_after=20_000,
        log_every=max(1, steps // 10),
        threads=1,
    )
