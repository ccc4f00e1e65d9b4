"""Dimensionality reduction: PCA on the highly variable genes, and UMAP of the neighbors graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import sparse

from scagent.errors import DataStateError, MissingPrerequisiteError, ScagentError
from scagent.tools._data import claim_key, mark_owned, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData


class PcaParams(ParamsModel):
    n_comps: int = Field(
        50,
        ge=2,
        le=300,
        description="Principal components to compute; 50 is scanpy's default and 30-50 covers "
        "most data sets; check the variance-ratio elbow.",
        json_schema_extra={"sweep": [20, 30, 50, 100]},
    )
    use_highly_variable: bool | None = Field(
        None,
        description="Restrict to var['highly_variable']; None uses them when present.",
    )
    scale: bool = Field(
        False,
        description="Scale genes to unit variance (clipped at max_value) before PCA, in a copy; "
        "X keeps its log-normalized values.",
    )
    max_value: float | None = Field(
        10.0, gt=0, description="Clip scaled values at this many standard deviations (scale=True)."
    )
    svd_solver: Literal["arpack", "randomized", "full", "covariance_eigh"] = Field(
        "arpack", description="SVD solver; arpack is exact and deterministic for a given seed."
    )
    random_state: int = Field(0, description="Seed of the solver.")


def pca(adata: AnnData, **params: Any) -> ToolResult:
    """Principal component analysis of log-normalized (or scaled) ``X`` with :func:`scanpy.pp.pca`.

    Parameters
    ----------
    adata
        The data; modified in place (``X`` is never changed).
    **params
        See :class:`PcaParams`.

    Returns
    -------
    ToolResult
        Writes ``obsm['X_pca']``, ``varm['PCs']`` (zeros for genes left out) and
        ``uns['pca']`` (``variance``, ``variance_ratio``, ``params``).

    Raises
    ------
    DataStateError
        If ``X`` holds raw or merely normalized counts (run normalize first).
    """
    import anndata as ad
    import scanpy as sc

    p = parse_params(PcaParams, params, "pca")
    state = state_of(adata)
    if state.x_state in ("raw_counts", "normalized"):
        raise DataStateError(
            f"pca expects log-normalized or scaled X, but X holds {state.x_state.replace('_', ' ')}",
            remedy="run normalize first (scagent run normalize)",
        )
    has_hvg = "highly_variable" in adata.var
    if p.use_highly_variable and not has_hvg:
        raise MissingPrerequisiteError(
            "pca with use_highly_variable=True needs var['highly_variable']",
            remedy="run hvg first",
        )
    use_hvg = has_hvg if p.use_highly_variable is None else p.use_highly_variable
    mask = np.asarray(adata.var["highly_variable"], dtype=bool) if use_hvg else None
    n_features = int(mask.sum()) if mask is not None else adata.n_vars
    n_comps = min(p.n_comps, n_features - 1, adata.n_obs - 1)
    warnings = []
    if n_comps < p.n_comps:
        warnings.append(
            f"n_comps lowered from {p.n_comps} to {n_comps} (data is {adata.n_obs} x {n_features})"
        )
    for slot, key in (("obsm", "X_pca"), ("varm", "PCs")):
        if (w := claim_key(adata, slot, key, "pca", overwrite=True)) is not None:
            warnings.append(w)
    if p.scale:
        # Scale into a copy of the selected genes: X stays log-normalized for DE and plots.
        selected = adata.X[:, mask] if mask is not None else adata.X
        # Centring densifies anyway; doing it explicitly avoids a copy and scanpy's warning.
        work = ad.AnnData(X=selected.toarray() if sparse.issparse(selected) else np.array(selected))
        sc.pp.scale(work, max_value=p.max_value)
        sc.pp.pca(work, n_comps=n_comps, svd_solver=p.svd_solver, random_state=p.random_state)
        adata.obsm["X_pca"] = work.obsm["X_pca"]
        loadings = np.zeros((adata.n_vars, n_comps), dtype=work.varm["PCs"].dtype)
        loadings[mask if mask is not None else slice(None)] = work.varm["PCs"]
        adata.varm["PCs"] = loadings
        adata.uns["pca"] = dict(work.uns["pca"])
        adata.uns["pca"]["params"] = {
            **dict(work.uns["pca"].get("params", {})),
            "mask_var": "highly_variable" if mask is not None else None,
            "scaled_copy": True,
            "max_value": p.max_value,
        }
    else:
        sc.pp.pca(
            adata,
            n_comps=n_comps,
            mask_var="highly_variable" if use_hvg else None,
            svd_solver=p.svd_solver,
            random_state=p.random_state,
        )
    ratio = np.asarray(adata.uns["pca"]["variance_ratio"])
    return ToolResult(
        summary=f"{n_comps} principal components on {n_features} genes explain "
        f"{ratio.sum():.1%} of the variance",
        metrics={
            "n_comps": n_comps,
            "n_genes_used": n_features,
            "variance_explained": float(ratio.sum()),
            "variance_ratio_pc1": float(ratio[0]),
        },
        warnings=warnings,
        written=[
            "obsm/X_pca",
            "varm/PCs",
            "uns/pca",
            mark_owned(adata, "pca", ("obsm", "X_pca"), ("varm", "PCs")),
        ],
    )


def _check_pca(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    ratio = np.asarray(adata.uns.get("pca", {}).get("variance_ratio", []))
    if ratio.size == 0 or "X_pca" not in adata.obsm:
        raise ScagentError(
            "pca finished but obsm['X_pca'] or uns['pca']['variance_ratio'] is missing"
        )
    if not np.isfinite(adata.obsm["X_pca"]).all():
        raise ScagentError("pca produced non-finite coordinates")
    warnings = []
    if ratio[0] > 0.5:
        warnings.append(
            f"PC1 alone explains {ratio[0]:.0%} of the variance; a technical factor "
            "(library size, one outlier group) may dominate"
        )
    return warnings


class UmapParams(ParamsModel):
    min_dist: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Minimum distance between embedded points; 0.1-0.5 (smaller packs clusters "
        "tighter; McInnes et al. 2018).",
        json_schema_extra={"sweep": [0.1, 0.3, 0.5]},
    )
    spread: float = Field(1.0, gt=0.0, le=10.0, description="Scale of embedded points.")
    n_components: int = Field(2, ge=2, le=10, description="Dimensions of the embedding.")
    init_pos: Literal["spectral", "paga", "random"] = Field(
        "spectral", description="Initialisation; 'paga' needs a PAGA result (Wolf et al. 2019)."
    )
    random_state: int = Field(0, description="Seed; with a seed the embedding is reproducible.")
    neighbors_key: str | None = Field(None, description="uns key of the neighbors graph to embed.")
    key_added: str = Field("X_umap", description="obsm key of the embedding.")


def umap(adata: AnnData, **params: Any) -> ToolResult:
    """UMAP embedding of the neighbors graph with :func:`scanpy.tl.umap`.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`UmapParams`.

    Returns
    -------
    ToolResult
        Writes ``obsm[key_added]`` (default ``X_umap``) and ``uns['umap']`` (or
        ``uns[key_added]`` for another key).
    """
    import scanpy as sc

    p = parse_params(UmapParams, params, "umap")
    nkey = p.neighbors_key or "neighbors"
    if nkey not in adata.uns:
        raise MissingPrerequisiteError(
            f"umap needs a neighbors graph in uns['{nkey}']", remedy="run neighbors first"
        )
    if p.init_pos == "paga" and "paga" not in adata.uns:
        raise MissingPrerequisiteError(
            "umap with init_pos='paga' needs uns['paga']", remedy="run paga first"
        )
    warnings = []
    if (w := claim_key(adata, "obsm", p.key_added, "umap")) is not None:
        warnings.append(w)
    default = p.key_added == "X_umap"
    sc.tl.umap(
        adata,
        min_dist=p.min_dist,
        spread=p.spread,
        n_components=p.n_components,
        init_pos=p.init_pos,
        random_state=p.random_state,
        neighbors_key=nkey,
        key_added=None if default else p.key_added,
    )
    uns_key = "umap" if default else p.key_added
    coords = adata.obsm[p.key_added]
    if not np.isfinite(coords).all():
        raise ScagentError("umap produced non-finite coordinates")
    return ToolResult(
        summary=f"{p.n_components}-D UMAP of the '{nkey}' graph in obsm['{p.key_added}']",
        metrics={"n_components": p.n_components, "min_dist": p.min_dist},
        warnings=warnings,
        written=[
            f"obsm/{p.key_added}",
            f"uns/{uns_key}",
            mark_owned(adata, "umap", ("obsm", p.key_added)),
        ],
    )


PCA = register(
    Tool(
        id="pca",
        name="Principal component analysis",
        category="reduction",
        framework="scanpy",
        fn=pca,
        params=PcaParams,
        requires=("hvg",),
        accepts_x=("log_normalized", "scaled", "transformed_unknown"),
        produces=("pca",),
        checks=_check_pca,
        captures=("scanpy", "anndata", "numpy", "scikit-learn"),
        reference="Luecken & Theis (2019) Current best practices in single-cell RNA-seq analysis: "
        "a tutorial. Mol Syst Biol 15:e8746",
        description="PCA of log-normalized X on the highly variable genes (optionally scaled in a copy).",
    )
)

UMAP = register(
    Tool(
        id="umap",
        name="UMAP embedding",
        category="embedding",
        framework="scanpy",
        fn=umap,
        params=UmapParams,
        requires=("neighbors",),
        produces=("umap",),
        captures=("scanpy", "anndata", "numpy", "umap-learn"),
        reference="McInnes, Healy & Melville (2018) UMAP: Uniform Manifold Approximation and "
        "Projection. arXiv:1802.03426",
        description="2-D (or n-D) UMAP embedding of the neighbors graph for visualisation.",
    )
)
