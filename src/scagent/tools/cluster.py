"""Leiden clustering of the neighbors graph, with a resolution sweep scored by silhouette."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from scagent.errors import InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

RESOLUTION_SWEEP = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0]


class LeidenParams(ParamsModel):
    resolution: float = Field(
        1.0,
        gt=0.0,
        le=10.0,
        description="Higher values give more, smaller clusters; 0.4-1.2 is typical for 5k-50k "
        "cells (Traag, Waltman & van Eck 2019). Sweep and compare rather than trust one value.",
        json_schema_extra={"sweep": RESOLUTION_SWEEP},
    )
    resolutions: list[float] | None = Field(
        None,
        description="Sweep: cluster at each resolution, report clusters and silhouette per "
        "resolution, and keep the one chosen by `select`.",
    )
    select: Literal["silhouette", "resolution"] = Field(
        "silhouette",
        description="In a sweep, keep the resolution with the best silhouette, or the one given "
        "as `resolution`.",
    )
    key_added: str = Field("leiden", description="obs column of the cluster labels.")
    random_state: int = Field(0, description="Seed; recorded so the clustering can be replayed.")
    n_iterations: int = Field(
        2,
        ge=-1,
        le=100,
        description="Leiden iterations; 2 is scanpy's recommendation, -1 runs to convergence.",
    )
    neighbors_key: str | None = Field(None, description="uns key of the neighbors graph.")
    silhouette_n_cells: int = Field(
        2000, ge=100, le=100_000, description="Cells subsampled to compute the silhouette."
    )
    overwrite: bool = Field(False, description="Replace an obs[key_added] not written by scagent.")

    @field_validator("resolutions", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        # The CLI passes "0.5,1.0"; the API passes a list.
        if isinstance(value, str):
            return [v for v in value.replace(" ", ",").split(",") if v]
        return value

    @field_validator("resolutions")
    @classmethod
    def _positive(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one resolution")
            bad = [v for v in value if not 0 < v <= 10]
            if bad:
                raise ValueError(f"resolutions must be in (0, 10], got {bad}")
        return value


def silhouette(
    embedding: np.ndarray, labels: np.ndarray, *, max_cells: int = 2000, random_state: int = 0
) -> float:
    """Silhouette of ``labels`` in ``embedding`` on a random subsample; NaN with fewer than 2 clusters."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(random_state)
    idx = rng.choice(len(labels), size=min(max_cells, len(labels)), replace=False)
    sub = np.asarray(labels)[idx]
    n = len(np.unique(sub))
    if n < 2 or n >= len(sub):
        return float("nan")
    return float(silhouette_score(embedding[idx], sub))


def _leiden_labels(adata: AnnData, p: LeidenParams, resolution: float, nkey: str) -> pd.Categorical:
    import scanpy as sc

    tmp = "_scagent_leiden_tmp"
    sc.tl.leiden(
        adata,
        resolution=resolution,
        key_added=tmp,
        flavor="igraph",
        n_iterations=p.n_iterations,
        directed=False,
        random_state=p.random_state,
        neighbors_key=nkey,
    )
    labels = adata.obs.pop(tmp)
    adata.uns.pop(tmp, None)
    return labels.values


def leiden(adata: AnnData, **params: Any) -> ToolResult:
    """Leiden communities of the neighbors graph (:func:`scanpy.tl.leiden`, igraph flavor).

    With ``resolutions=[...]`` it sweeps: one clustering per resolution, each scored by
    the number of clusters and the silhouette in the graph's embedding (X_pca or
    X_pca_harmony); it keeps the best-scoring one or the one asked.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`LeidenParams`.

    Returns
    -------
    ToolResult
        Writes ``obs[key_added]`` (categorical), ``uns[key_added]['params']`` and, for a
        sweep, ``uns[key_added + '_sweep']`` and ``tables['sweep']``.
    """
    p = parse_params(LeidenParams, params, "leiden")
    nkey = p.neighbors_key or "neighbors"
    if nkey not in adata.uns:
        raise MissingPrerequisiteError(
            f"leiden needs a neighbors graph in uns['{nkey}']", remedy="run neighbors first"
        )
    warnings = []
    if (w := claim_key(adata, "obs", p.key_added, "leiden", overwrite=p.overwrite)) is not None:
        warnings.append(w)
    written = [f"obs/{p.key_added}", f"uns/{p.key_added}"]
    table: list[dict[str, Any]] = []
    chosen = p.resolution
    if p.resolutions is None:
        labels = _leiden_labels(adata, p, p.resolution, nkey)
    else:
        sweep = list(dict.fromkeys(p.resolutions))
        if p.select == "resolution" and p.resolution not in sweep:
            sweep.append(p.resolution)
        rep = adata.uns[nkey].get("params", {}).get("use_rep") or "X_pca"
        embedding = adata.obsm[rep] if rep in adata.obsm else adata.obsm["X_pca"]
        runs = {}
        for res in sweep:
            lab = _leiden_labels(adata, p, res, nkey)
            runs[res] = lab
            sizes = pd.Series(lab).value_counts()
            table.append(
                {
                    "resolution": res,
                    "n_clusters": len(sizes),
                    "silhouette": silhouette(
                        embedding,
                        np.asarray(lab),
                        max_cells=p.silhouette_n_cells,
                        random_state=p.random_state,
                    ),
                    "smallest_cluster": int(sizes.min()),
                }
            )
        if p.select == "resolution":
            chosen = p.resolution
        else:
            scored = [r for r in table if np.isfinite(r["silhouette"])]
            if not scored:
                raise InvalidParameterError(
                    f"no resolution in {sweep} gave 2 or more clusters",
                    remedy="sweep higher resolutions",
                )
            chosen = max(scored, key=lambda r: (r["silhouette"], -r["resolution"]))["resolution"]
        labels = runs[chosen]
        for row in table:
            row["selected"] = row["resolution"] == chosen
        adata.uns[f"{p.key_added}_sweep"] = {
            k: np.asarray([row[k] for row in table]) for k in table[0]
        }
        written.append(f"uns/{p.key_added}_sweep")
    adata.obs[p.key_added] = pd.Categorical(labels)
    adata.uns[p.key_added] = {
        "params": {
            "resolution": float(chosen),
            "random_state": p.random_state,
            "n_iterations": p.n_iterations,
            "flavor": "igraph",
            "neighbors_key": nkey,
        }
    }
    written.append(mark_owned(adata, "leiden", ("obs", p.key_added), ("uns", p.key_added)))
    sizes = adata.obs[p.key_added].value_counts()
    metrics: dict[str, float | int | str] = {
        "n_clusters": len(sizes),
        "resolution": float(chosen),
        "smallest_cluster": int(sizes.min()),
        "largest_cluster": int(sizes.max()),
        "random_state": p.random_state,
    }
    summary = f"{len(sizes)} Leiden clusters at resolution {chosen:g} in obs['{p.key_added}']"
    if table:
        best = next(r for r in table if r["selected"])
        metrics["silhouette"] = best["silhouette"]
        summary += f" (selected from {len(table)} resolutions by {p.select})"
    return ToolResult(
        summary=summary,
        metrics=metrics,
        warnings=warnings,
        written=written,
        tables={"sweep": table} if table else {},
    )


def clustering_checks(adata: AnnData, key: str, tool_id: str = "clustering") -> list[str]:
    """Checks every clustering must pass: at least 2 clusters (else an error), then warnings.

    Raises
    ------
    InvalidParameterError
        If there is a single cluster (the resolution is too low for these data).
    """
    sizes = adata.obs[key].value_counts()
    if len(sizes) < 2:
        raise InvalidParameterError(
            f"{tool_id} put all {adata.n_obs} cells in one cluster (obs['{key}'])",
            remedy="raise the resolution, or check the neighbors graph",
        )
    warnings = []
    small = sizes[sizes < 10]
    if len(small):
        warnings.append(
            f"{len(small)} cluster(s) have fewer than 10 cells ({', '.join(map(str, small.index[:5]))}); "
            "lower the resolution or treat them with care"
        )
    if len(sizes) > adata.n_obs / 10:
        warnings.append(
            f"{len(sizes)} clusters for {adata.n_obs} cells (more than one per 10 cells): "
            "the resolution is probably too high"
        )
    return warnings


def _check_leiden(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    return clustering_checks(adata, p.key_added, "leiden")  # type: ignore[attr-defined]


LEIDEN = register(
    Tool(
        id="leiden",
        name="Leiden clustering",
        category="clustering",
        framework="scanpy",
        fn=leiden,
        params=LeidenParams,
        requires=("neighbors",),
        produces=("leiden", "clustering"),
        checks=_check_leiden,
        captures=("scanpy", "anndata", "igraph", "scikit-learn"),
        reference="Traag, Waltman & van Eck (2019) From Louvain to Leiden: guaranteeing "
        "well-connected communities. Sci Rep 9:5233",
        description="Leiden clusters of the neighbors graph; a resolution sweep reports clusters "
        "and silhouette per resolution.",
    )
)
