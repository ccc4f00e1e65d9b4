"""Is a feature biology or chance? Enrichment of its top genes, compared with random directions.

Each feature's top genes are tested for over-representation in cell-type marker sets (the
MarkerDB) and any GMT gene sets: a one-sided Fisher exact test (the hypergeometric upper
tail, what decoupler's ORA computes two-sided) against the measured genes as universe, then
Benjamini-Hochberg over all feature x set tests. The same analysis on an SAE whose
directions are random unit vectors with the same k (same sparsity) gives the null share of
"significant" features; the report gives both and their margin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import InvalidDataError
from scagent.sae.activations import ActivationCache
from scagent.sae.features import FeatureResult, compute_features
from scagent.sae.model import TopKSAE

__all__ = [
    "ValidationResult",
    "marker_gene_sets",
    "ora",
    "random_direction_sae",
    "validate_features",
]


def marker_gene_sets(
    species: str = "human", tissue: str | None = None, min_size: int = 3, db: Any = None
) -> dict[str, list[str]]:
    """Positive marker genes per cell type from the MarkerDB (``MarkerDB.default()``)."""
    from scagent.knowledge import MarkerDB

    db = db or MarkerDB.default()
    table = db.subset(species=species, tissue=tissue).table
    table = table[table["polarity"] == "positive"]
    sets = {
        str(ct): sorted(set(g["gene"].astype(str)))
        for ct, g in table.groupby("cell_type", observed=True)
    }
    return {k: v for k, v in sets.items() if len(v) >= min_size}


def ora(
    top_genes: Mapping[int, Sequence[str]],
    gene_sets: Mapping[str, Sequence[str]],
    universe: Sequence[str],
    min_overlap: int = 1,
) -> pd.DataFrame:
    """Over-representation of each feature's top genes in each gene set.

    Returns one row per feature x set with at least ``min_overlap`` shared genes:
    ``feature``, ``gene_set``, ``overlap``, ``n_top``, ``set_size`` (within the universe),
    ``odds_ratio`` (Haldane-corrected), ``pvalue`` (one-sided Fisher), ``fdr`` (BH over all
    feature x set pairs, untested pairs counted with p = 1), ``genes``.
    """
    from scagent.knowledge.genesets import overrepresentation

    in_universe = set(map(str, universe))
    sets = {k: v for k, v in gene_sets.items() if any(str(g) in in_universe for g in v)}
    cols = ["feature", "gene_set", "overlap", "n_top", "set_size"]
    tested = overrepresentation(top_genes, sets, universe)
    df = tested[(tested["overlap"] >= max(min_overlap, 1)) & (tested["n_query"] > 0)]
    df = df.rename(columns={"query": "feature", "n_query": "n_top"})
    if df.empty:
        return pd.DataFrame(columns=[*cols, "odds_ratio", "pvalue", "fdr", "genes"])
    # BH over every feature x set pair, the untested ones counted with p = 1.
    n_tests = max(len(top_genes) * len(sets), len(df))
    padded = np.ones(n_tests)
    padded[: len(df)] = df["pvalue"].to_numpy()
    df = df.assign(fdr=stats.false_discovery_control(padded, method="bh")[: len(df)])
    return (
        df[[*cols, "odds_ratio", "pvalue", "fdr", "genes"]]
        .sort_values(["fdr", "pvalue"])
        .reset_index(drop=True)
    )


def random_direction_sae(sae: TopKSAE, seed: int = 0) -> TopKSAE:
    """An SAE of the same shape, k, bias and input scale whose directions are random unit vectors."""
    import torch

    g = torch.Generator().manual_seed(seed)
    null = TopKSAE(sae.d_in, sae.d_sae, sae.k, input_scale=sae.input_scale)
    with torch.no_grad():
        w = torch.randn(sae.d_sae, sae.d_in, generator=g)
        w /= w.norm(dim=1, keepdim=True)
        null.W_dec.copy_(w)
        null.W_enc.copy_(w.T)
        null.b_enc.zero_()
        null.b_dec.copy_(sae.b_dec.detach())
    return null


@dataclass
class ValidationResult:
    """Enrichment tables and the summary of the real-versus-null comparison."""

    enrichment: pd.DataFrame
    null_enrichment: pd.DataFrame
    summary: dict[str, Any]

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """``enrichment.parquet``, ``null_enrichment.parquet`` and ``validation.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, df in (
            ("enrichment", self.enrichment),
            ("null_enrichment", self.null_enrichment),
        ):
            with atomic_path(folder / f"{name}.parquet") as tmp:
                df.to_parquet(tmp, index=False)
        atomic_write_text(folder / "validation.json", json.dumps(self.summary, indent=1))
        return folder


def _share_significant(enr: pd.DataFrame, n_features: int, fdr: float) -> tuple[float, int]:
    sig = (
        enr.loc[(enr["fdr"] < fdr) & (enr["odds_ratio"] > 1), "feature"].nunique()
        if len(enr)
        else 0
    )
    return sig / max(n_features, 1), int(sig)


def validate_features(
    features: FeatureResult,
    sae: TopKSAE,
    cache: ActivationCache,
    adata: AnnData,
    gene_sets: Mapping[str, Sequence[str]] | None = None,
    species: str = "human",
    tissue: str | None = None,
    n_top: int = 20,
    fdr: float = 0.05,
    seed: int = 0,
) -> ValidationResult:
    """Enrichment of each live feature's top genes, and the same for a random-direction null.

    Parameters
    ----------
    features
        From :func:`compute_features` on ``sae``.
    sae, cache, adata
        The SAE, its activation cache and the cells (the null is run through the same
        feature analysis).
    gene_sets
        Gene sets to test; the MarkerDB's positive markers per cell type for ``species``
        (and ``tissue``) when None. Pass ``{**marker_gene_sets(), **read_gmt(path)}`` to
        combine.
    n_top
        Top genes per feature entering the test.
    fdr
        Significance threshold on the BH-adjusted p-value.

    Returns
    -------
    :class:`ValidationResult`; ``summary`` holds ``share_significant``,
    ``null_share_significant``, ``margin``, the counts, and the specificity comparison
    (share of features whose cell-group specificity exceeds the null's 95th percentile).
    """
    sets = dict(gene_sets) if gene_sets is not None else marker_gene_sets(species, tissue)
    if not sets:
        raise InvalidDataError("no gene sets to test against (empty MarkerDB subset / GMT)")
    universe = list(features.info.get("gene_universe") or [])
    if not universe:
        raise InvalidDataError("the feature result has no gene universe (info['gene_universe'])")
    live = features.features.loc[features.features["frequency"] > 0, "feature"].to_numpy()
    tops = {f: g[:n_top] for f, g in features.top_gene_lists().items() if f in set(live)}
    enr = ora(tops, sets, universe)
    null_sae = random_direction_sae(sae, seed=seed)
    null = compute_features(
        null_sae,
        cache,
        adata,
        groupby=features.info.get("groupby"),
        n_top_genes=n_top,
        key_added=None,
        gene_score=features.info.get("gene_score_option", "auto"),
    )
    null_live = null.features.loc[null.features["frequency"] > 0, "feature"].to_numpy()
    null_tops = {f: g[:n_top] for f, g in null.top_gene_lists().items() if f in set(null_live)}
    null_enr = ora(null_tops, sets, universe)
    share, n_sig = _share_significant(enr, len(live), fdr)
    null_share, n_null_sig = _share_significant(null_enr, len(null_live), fdr)
    spec = features.features.loc[features.features["frequency"] > 0, "specificity"].to_numpy()
    null_spec = null.features.loc[null.features["frequency"] > 0, "specificity"].to_numpy()
    threshold = float(np.quantile(null_spec, 0.95)) if len(null_spec) else float("nan")
    best = (
        enr[(enr["fdr"] < fdr) & (enr["odds_ratio"] > 1)]
        .drop_duplicates("feature")
        .set_index("feature")["gene_set"]
        if len(enr)
        else pd.Series(dtype=str)
    )
    summary = {
        "n_features": int(features.features.shape[0]),
        "n_live_features": len(live),
        "n_gene_sets": len(sets),
        "n_top_genes": n_top,
        "gene_score": features.info.get("gene_score"),
        "fdr_threshold": fdr,
        "n_significant": n_sig,
        "share_significant": share,
        "null_n_live_features": len(null_live),
        "null_n_significant": n_null_sig,
        "null_share_significant": null_share,
        "margin": share - null_share,
        "specificity_null_q95": threshold,
        "share_specific_above_null": float((spec > threshold).mean()) if len(spec) else 0.0,
        "null_share_specific_above_null": float((null_spec > threshold).mean())
        if len(null_spec)
        else 0.0,
        "best_gene_set": {int(k): str(v) for k, v in best.items()},
    }
    return ValidationResult(enr, null_enr, summary)
