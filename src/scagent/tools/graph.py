"""The k-nearest-neighbour graph of the cells, on the Harmony embedding when there is one, else on PCA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from scagent.errors import InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

#: Embeddings neighbors uses when ``use_rep='auto'``, best first: an integrated one beats plain PCA.
AUTO_REPRESENTATIONS = ("X_pca_harmony", "X_pca")


class NeighborsParams(ParamsModel):
    n_neighbors: int = Field(
        15,
        ge=2,
        le=200,
        description="Neighbors per cell; 15 is the default, 5-50 typical: larger values give a "
        "smoother graph and coarser clusters (Luecken & Theis 2019).",
        json_schema_extra={"sweep": [10, 15, 30, 50]},
    )
    n_pcs: int | None = Field(
        None, ge=2, le=300, description="Components of the representation to use; None uses all."
    )
    use_rep: str = Field(
        "auto",
        description="obsm key of the representation; 'auto' uses X_pca_harmony when present, "
        "else X_pca.",
    )
    metric: Literal["euclidean", "cosine", "correlation", "manhattan"] = Field(
        "euclidean", description="Distance between cells in the representation."
    )
    random_state: int = Field(0, description="Seed of the approximate neighbor search.")
    key_added: str | None = Field(
        None,
        description="Store under uns[key_added] and obsp['<key_added>_distances' / "
        "'<key_added>_connectivities'] instead of the default keys.",
    )


class _CsrMatrixKnn:
    """A kNN transformer whose result is a ``scipy.sparse.csr_matrix``.

    scanpy 1.11 calls ``.getnnz`` on the transformer's result, which the ``csr_array``
    returned by pynndescent no longer has under scipy >= 1.17, so scanpy's large-data path
    fails. This wraps the same transformer scanpy would build and converts the result.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return self.inner.get_params(deep=deep)

    def fit_transform(self, X: Any) -> Any:
        from scipy import sparse

        return sparse.csr_matrix(self.inner.fit_transform(X))


def _large_data_transformer(
    n_obs: int, n_neighbors: int, metric: str, random_state: int
) -> _CsrMatrixKnn | None:
    """scanpy's own pynndescent set-up (UMAP's settings) for large data, or None to let scanpy choose."""
    from scipy import sparse

    brute_force = (metric == "euclidean" and n_obs < 8192) or n_obs < 4096
    if brute_force or hasattr(sparse.csr_array, "getnnz"):
        return None
    import scanpy as sc
    from pynndescent import PyNNDescentTransformer

    return _CsrMatrixKnn(
        PyNNDescentTransformer(
            n_neighbors=n_neighbors,
            metric=metric,
            random_state=random_state,
            n_jobs=sc.settings.n_jobs,
            n_trees=min(64, 5 + round(n_obs**0.5 / 20.0)),
            n_iters=max(5, round(np.log2(n_obs))),
        )
    )


def connected_components(adata: AnnData, neighbors_key: str = "neighbors") -> tuple[int, float]:
    """Number of connected components of a neighbors graph and the largest one's share of cells."""
    from scipy.sparse.csgraph import connected_components as components

    key = adata.uns[neighbors_key].get("connectivities_key", "connectivities")
    n, labels = components(adata.obsp[key], directed=False)
    largest = np.bincount(labels).max() / adata.n_obs if adata.n_obs else 0.0
    return int(n), float(largest)


def neighbors(adata: AnnData, **params: Any) -> ToolResult:
    """kNN graph of the cells with :func:`scanpy.pp.neighbors`.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`NeighborsParams`.

    Returns
    -------
    ToolResult
        Writes ``uns['neighbors']``, ``obsp['distances']`` and ``obsp['connectivities']``
        (or keys prefixed by ``key_added``). ``metrics['n_components']`` counts the graph's
        connected components.
    """
    import scanpy as sc

    p = parse_params(NeighborsParams, params, "neighbors")
    if p.use_rep == "auto":
        rep = next((k for k in AUTO_REPRESENTATIONS if k in adata.obsm), None)
        if rep is None:
            raise MissingPrerequisiteError(
                "neighbors needs an embedding (obsm['X_pca'] or obsm['X_pca_harmony'])",
                remedy="run pca first",
            )
    else:
        rep = p.use_rep
        if rep not in adata.obsm and rep != "X":
            raise InvalidParameterError(
                f"use_rep '{rep}' is not in obsm (present: {', '.join(adata.obsm) or 'none'})",
                remedy="pass an existing obsm key or use_rep='auto'",
            )
    n_dims = adata.obsm[rep].shape[1] if rep != "X" else adata.n_vars
    n_pcs = None if p.n_pcs is None else min(p.n_pcs, n_dims)
    warnings = []
    ukey = p.key_added or "neighbors"
    if (w := claim_key(adata, "uns", ukey, "neighbors", overwrite=True)) is not None:
        warnings.append(w)
    sc.pp.neighbors(
        adata,
        transformer=_large_data_transformer(adata.n_obs, p.n_neighbors, p.metric, p.random_state),
        n_neighbors=p.n_neighbors,
        n_pcs=n_pcs,
        use_rep=rep,
        metric=p.metric,
        random_state=p.random_state,
        key_added=p.key_added,
    )
    n_comp, largest = connected_components(adata, ukey)
    if n_comp > 1:
        warnings.append(
            f"the neighbors graph has {n_comp} connected components (largest holds {largest:.0%} "
            "of cells); pseudotime and PAGA treat them as unrelated"
        )
    prefix = f"{p.key_added}_" if p.key_added else ""
    return ToolResult(
        summary=f"{p.n_neighbors}-nearest-neighbour graph on {rep} ({n_pcs or n_dims} dims), "
        f"{n_comp} connected component(s)",
        metrics={
            "use_rep": rep,
            "n_neighbors": p.n_neighbors,
            "n_components": n_comp,
            "largest_component_fraction": largest,
        },
        warnings=warnings,
        written=[
            f"uns/{ukey}",
            f"obsp/{prefix}distances",
            f"obsp/{prefix}connectivities",
            mark_owned(adata, "neighbors", ("uns", ukey)),
        ],
    )


NEIGHBORS = register(
    Tool(
        id="neighbors",
        name="Neighbors graph",
        category="graph",
        framework="scanpy",
        fn=neighbors,
        params=NeighborsParams,
        requires=("pca",),
        produces=("neighbors",),
        captures=("scanpy", "anndata", "numpy", "pynndescent"),
        reference="McInnes, Healy & Melville (2018) arXiv:1802.03426; Wolf, Angerer & Theis "
        "(2018) SCANPY. Genome Biol 19:15",
        description="k-nearest-neighbour graph of the cells on X_pca_harmony or X_pca, with "
        "connected components reported.",
    )
)
