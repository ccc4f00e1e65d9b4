"""Doublet detection with scanpy's Scrublet, run within each sample because doublets form within a capture."""

from __future__ import annotations

import warnings as warnings_module
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import Field

from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.tools._data import claim_key, mark_owned, require_counts
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


class DoubletsParams(ParamsModel):
    batch_key: str | None = Field(
        None,
        description="obs column of samples/captures; Scrublet runs on each separately, as it "
        "should (doublets only form within one capture).",
    )
    expected_doublet_rate: float = Field(
        0.06,
        ge=0.001,
        le=0.5,
        description="Expected doublet fraction: about 0.8% per 1,000 cells recovered on 10x "
        "(0.05-0.1 for 6k-12k cells; Wolock et al. 2019).",
    )
    sim_doublet_ratio: float = Field(
        2.0, ge=0.5, le=10.0, description="Simulated doublets per observed cell."
    )
    n_prin_comps: int = Field(
        30, ge=2, le=100, description="Principal components for the kNN graph."
    )
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Doublet score threshold; None lets Scrublet pick it from the bimodal "
        "simulated score distribution.",
    )
    random_state: int = Field(0, description="Seed for the simulated doublets.")
    remove: bool = Field(False, description="Remove the predicted doublets after scoring.")
    overwrite: bool = Field(
        False,
        description="Replace doublet_score / predicted_doublet columns not written by scagent.",
    )


def threshold_minimum(values: np.ndarray) -> float | None:
    """Scrublet's automatic threshold: the minimum between the two modes of the simulated
    doublets' score histogram (``skimage.filters.threshold_minimum``, Glasbey 1993).

    Returns None when the histogram never becomes bimodal (skimage raises then).
    """
    from skimage.filters import threshold_minimum as skimage_threshold_minimum

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 10 or np.ptp(values) == 0:
        return None
    try:
        return float(skimage_threshold_minimum(values))
    except RuntimeError:
        return None


def doublets(adata: AnnData, **params: Any) -> ToolResult:
    """Score doublets with :func:`scanpy.pp.scrublet` on the raw counts, per sample.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`DoubletsParams`.

    Returns
    -------
    ToolResult
        Writes ``obs['doublet_score']`` and ``obs['predicted_doublet']``; with
        ``remove=True`` the predicted doublets are removed from ``adata``.
        ``tables['per_sample']`` gives the rate per sample.
    """
    import anndata as ad
    import scanpy as sc

    p = parse_params(DoubletsParams, params, "doublets")
    if p.batch_key is not None and p.batch_key not in adata.obs:
        raise InvalidParameterError(
            f"batch_key '{p.batch_key}' is not an obs column",
            remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
        )
    warnings = [
        w
        for col in ("doublet_score", "predicted_doublet")
        if (w := claim_key(adata, "obs", col, "doublets", overwrite=p.overwrite))
    ]
    counts = require_counts(adata, "doublets")
    obs = pd.DataFrame(index=adata.obs_names.copy())
    batches = (
        adata.obs[p.batch_key].astype(str).to_numpy()
        if p.batch_key
        else np.full(adata.n_obs, "all", dtype=object)
    )
    for b in np.unique(batches):
        n = int((batches == b).sum())
        if n <= p.n_prin_comps + 1:
            raise InvalidDataError(
                f"sample '{b}' has {n} cells, too few for Scrublet with n_prin_comps={p.n_prin_comps}",
                remedy="lower n_prin_comps, or drop or merge the tiny sample",
            )
    score = np.zeros(adata.n_obs)
    called = np.zeros(adata.n_obs, dtype=bool)
    thresholds: dict[str, float] = {}
    for b in np.unique(batches):
        idx = np.flatnonzero(batches == b)
        work = ad.AnnData(X=counts[idx].astype(np.float32), obs=obs.iloc[idx])
        # A provisional threshold of 1 keeps scanpy from failing on a unimodal score
        # histogram; the call is made below, per sample, the way Scrublet makes it.
        with warnings_module.catch_warnings():
            # Scrublet's rate summary divides by zero at the provisional threshold.
            warnings_module.simplefilter("ignore", RuntimeWarning)
            sc.pp.scrublet(
                work,
                expected_doublet_rate=p.expected_doublet_rate,
                sim_doublet_ratio=p.sim_doublet_ratio,
                n_prin_comps=p.n_prin_comps,
                threshold=1.0 if p.threshold is None else p.threshold,
                random_state=p.random_state,
                verbose=False,
            )
        # Scrublet drops cells with fewer than 3 genes; they get score 0 (not called).
        score[idx] = np.nan_to_num(work.obs["doublet_score"].to_numpy(dtype=float))
        threshold = p.threshold
        if threshold is None:
            threshold = threshold_minimum(np.asarray(work.uns["scrublet"]["doublet_scores_sim"]))
            if threshold is None:
                warnings.append(
                    f"sample '{b}': no clear doublet score threshold (simulated scores are not "
                    "bimodal); no doublets called there, set threshold= to call them"
                )
                threshold = np.inf
        thresholds[str(b)] = float(threshold)
        called[idx] = score[idx] > threshold
    adata.obs["doublet_score"] = score
    adata.obs["predicted_doublet"] = called
    written = ["obs/doublet_score", "obs/predicted_doublet"]
    written.append(
        mark_owned(adata, "doublets", ("obs", "doublet_score"), ("obs", "predicted_doublet"))
    )
    table = []
    for b in np.unique(batches):
        idx = batches == b
        table.append(
            {
                "sample": str(b),
                "n_cells": int(idx.sum()),
                "n_doublets": int(called[idx].sum()),
                "doublet_rate": float(called[idx].mean()),
                "threshold": thresholds[str(b)] if np.isfinite(thresholds[str(b)]) else None,
            }
        )
        if called[idx].mean() > 0.3:
            warnings.append(
                f"sample '{b}' has {called[idx].mean():.0%} predicted doublets; check the threshold"
            )
    n_called = int(called.sum())
    if p.remove:
        if n_called == adata.n_obs:
            raise InvalidDataError(
                "every cell is called a doublet; refusing to remove them all",
                remedy="set threshold= explicitly or check that the counts are raw counts",
            )
        adata._inplace_subset_obs(~called)
        written += ["X", "obs", "layers", "obsm", "obsp"]
    return ToolResult(
        summary=f"{n_called} of {len(called)} cells ({n_called / len(called):.1%}) predicted doublets"
        + (" and removed" if p.remove else ""),
        metrics={
            "n_doublets": n_called,
            "doublet_rate": float(n_called / len(called)),
            "median_doublet_score": float(np.median(score)),
            "n_cells_after": adata.n_obs,
        },
        warnings=warnings,
        written=written,
        tables={"per_sample": table},
    )


DOUBLETS = register(
    Tool(
        id="doublets",
        name="Doublet detection (Scrublet)",
        category="doublets",
        framework="scanpy",
        fn=doublets,
        params=DoubletsParams,
        needs="raw_counts",
        produces=("doublets",),
        reference="Wolock, Lopez & Klein (2019) Scrublet: computational identification of cell "
        "doublets in single-cell transcriptomic data. Cell Systems 8:281-291",
        description="Doublet scores and calls per cell with Scrublet, per sample; optional removal.",
    )
)
