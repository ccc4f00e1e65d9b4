"""Batch integration with Harmony on the PCA embedding, and a kNN batch-mixing score to judge it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import Field

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


def batch_mixing(
    embedding: np.ndarray,
    batches: np.ndarray,
    *,
    n_neighbors: int = 30,
    max_cells: int = 3000,
    random_state: int = 0,
) -> float:
    """Mean normalized entropy of the batch labels among each cell's nearest neighbours.

    1 means every neighbourhood mixes the batches as the whole data does, 0 means each
    cell sees only its own batch. Computed on a random subsample of ``max_cells`` query
    cells (neighbours are searched among all cells).
    """
    from sklearn.neighbors import NearestNeighbors

    codes, levels = pd.factorize(pd.Series(batches).astype(str))
    if len(levels) < 2:
        return 1.0
    rng = np.random.default_rng(random_state)
    n = embedding.shape[0]
    query = rng.choice(n, size=min(max_cells, n), replace=False)
    k = min(n_neighbors + 1, n)
    index = NearestNeighbors(n_neighbors=k).fit(embedding)
    nn = index.kneighbors(embedding[query], return_distance=False)[:, 1:]
    freq = np.stack([(codes[nn] == b).mean(axis=1) for b in range(len(levels))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(freq > 0, freq * np.log(freq), 0.0), axis=1)
    return float(np.mean(ent) / np.log(len(levels)))


class HarmonyParams(ParamsModel):
    batch_key: str = Field(
        description="obs column of the batches to integrate (sample, donor, run)."
    )
    theta: float = Field(
        2.0,
        ge=0.0,
        le=10.0,
        description="Diversity penalty; 2 is the default (Korsunsky et al. 2019); higher values "
        "mix batches more strongly, at the risk of merging real biology.",
        json_schema_extra={"sweep": [1.0, 2.0, 4.0]},
    )
    max_iter_harmony: int = Field(10, ge=1, le=100, description="Maximum Harmony rounds.")
    basis: str = Field("X_pca", description="obsm key of the embedding to correct.")
    key_added: str = Field("X_pca_harmony", description="obsm key of the corrected embedding.")
    random_state: int = Field(0, description="Seed of Harmony's k-means initialisation.")
    overwrite: bool = Field(False, description="Replace an obsm[key_added] not written by scagent.")


def harmony(adata: AnnData, **params: Any) -> ToolResult:
    """Correct the PCA embedding for batch with :func:`harmonypy.run_harmony`.

    ``sc.external.pp.harmony_integrate`` fails with harmonypy 2.x (shape error), so this
    calls harmonypy directly and stores ``Z_corr`` itself.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`HarmonyParams`.

    Returns
    -------
    ToolResult
        Writes ``obsm[key_added]`` (default ``X_pca_harmony``). ``metrics`` holds the
        kNN batch mixing (:func:`batch_mixing`) before and after.
    """
    import harmonypy

    p = parse_params(HarmonyParams, params, "harmony")
    if p.basis not in adata.obsm:
        raise MissingPrerequisiteError(f"harmony needs obsm['{p.basis}']", remedy="run pca first")
    if p.batch_key not in adata.obs:
        raise InvalidParameterError(
            f"batch_key '{p.batch_key}' is not an obs column",
            remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
        )
    batches = adata.obs[p.batch_key].astype(str).to_numpy()
    n_batches = len(np.unique(batches))
    if n_batches < 2:
        raise InvalidDataError(
            f"obs['{p.batch_key}'] has a single level; there is nothing to integrate",
            remedy="choose the column that separates samples or batches",
        )
    warnings = []
    if (w := claim_key(adata, "obsm", p.key_added, "harmony", overwrite=p.overwrite)) is not None:
        warnings.append(w)
    basis = np.asarray(adata.obsm[p.basis], dtype=np.float64)
    meta = pd.DataFrame({p.batch_key: batches}, index=adata.obs_names.copy())
    result = harmonypy.run_harmony(
        basis,
        meta,
        [p.batch_key],
        theta=p.theta,
        max_iter_harmony=p.max_iter_harmony,
        random_state=p.random_state,
        verbose=False,
    )
    corrected = np.asarray(result.Z_corr)
    if corrected.shape != basis.shape and corrected.T.shape == basis.shape:
        corrected = corrected.T  # harmonypy < 2 returned PCs x cells
    adata.obsm[p.key_added] = corrected.astype(np.float32)
    before = batch_mixing(basis, batches, random_state=p.random_state)
    after = batch_mixing(corrected, batches, random_state=p.random_state)
    if after < before:
        warnings.append(f"batch mixing fell after Harmony ({before:.2f} -> {after:.2f})")
    return ToolResult(
        summary=f"Harmony corrected {p.basis} for {n_batches} batches of '{p.batch_key}': "
        f"batch mixing {before:.2f} -> {after:.2f}",
        metrics={
            "n_batches": n_batches,
            "batch_mixing_before": before,
            "batch_mixing_after": after,
        },
        warnings=warnings,
        written=[f"obsm/{p.key_added}", mark_owned(adata, "harmony", ("obsm", p.key_added))],
    )


HARMONY = register(
    Tool(
        id="harmony",
        name="Harmony integration",
        category="integration",
        framework="harmonypy",
        fn=harmony,
        params=HarmonyParams,
        requires=("pca",),
        produces=("harmony",),
        captures=("harmonypy", "numpy", "anndata"),
        reference="Korsunsky et al. (2019) Fast, sensitive and accurate integration of single-cell "
        "data with Harmony. Nat Methods 16:1289-1296",
        description="Remove batch effects from the PCA embedding (obsm['X_pca_harmony']); reports "
        "batch mixing before and after.",
    )
)
