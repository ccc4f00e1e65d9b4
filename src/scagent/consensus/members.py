"""Clustering members of a consensus: several methods, each a seeded and recorded partition of the same cells.

Every member reads one shared :class:`MemberInputs` (the PCA embedding and the kNN graph
built once), so members differ only in method and parameters. A member is written as
``method:key=value:key=value`` (``leiden:resolution=0.5``, ``kmeans:k=auto``); its
parameters are validated before anything runs, and a failure while it runs is recorded,
not raised (see :func:`run_members`).
"""

from __future__ import annotations

import contextlib
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse

from scagent.errors import InvalidParameterError

__all__ = [
    "DEFAULT_MEMBERS",
    "MEMBER_METHODS",
    "SPATIAL_MEMBER",
    "MemberInputs",
    "MemberMethod",
    "MemberResult",
    "MemberSpec",
    "parse_members",
    "run_members",
]

#: The default members: graph methods at three granularities plus three methods on the PCA space.
DEFAULT_MEMBERS: tuple[str, ...] = (
    "leiden:resolution=0.5",
    "leiden:resolution=1.0",
    "leiden:resolution=1.5",
    "louvain:resolution=1.0",
    "kmeans:k=auto",
    "gmm:k=auto",
    "agglomerative:k=auto",
)
#: Added to the default members when ``obsm['spatial']`` exists.
SPATIAL_MEMBER = "banksy:resolution=1.0"


# --------------------------------------------------------------------------- shared inputs


@dataclass
class MemberInputs:
    """What every member reads: the embedding, the kNN graph and (if any) spatial coordinates.

    Attributes
    ----------
    embedding
        Cells x components (the PCA space), float32.
    graph
        Symmetric kNN connectivities (cells x cells, sparse).
    spatial
        Cells x 2 (or 3) coordinates from ``obsm['spatial']``, or None.
    n_neighbors
        Neighbours per cell of ``graph`` (also used for graphs members build themselves).
    """

    embedding: np.ndarray
    graph: sparse.csr_matrix
    spatial: np.ndarray | None = None
    n_neighbors: int = 15
    _igraph: Any = field(default=None, repr=False)

    @property
    def n_obs(self) -> int:
        return self.embedding.shape[0]

    def igraph(self) -> Any:
        """The graph as an undirected weighted ``igraph.Graph``, built once and shared."""
        if self._igraph is None:
            self._igraph = to_igraph(self.graph)
        return self._igraph


def to_igraph(adjacency: sparse.spmatrix) -> Any:
    """An undirected weighted igraph of a symmetric sparse adjacency (upper triangle, no loops)."""
    import igraph

    upper = sparse.triu(adjacency, k=1).tocoo()
    return igraph.Graph(
        n=adjacency.shape[0],
        edges=np.column_stack([upper.row, upper.col]),
        directed=False,
        edge_attrs={"weight": upper.data.astype(np.float64)},
    )


@contextlib.contextmanager
def igraph_seed(seed: int) -> Iterator[None]:
    """Seed igraph's random number generator for one call, as scanpy does, then restore it."""
    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


def leiden_on(graph: Any, resolution: float, seed: int, n_iterations: int = 2) -> np.ndarray:
    """Leiden (modularity, igraph) labels of a weighted igraph; scanpy's igraph flavor exactly."""
    with igraph_seed(seed):
        part = graph.community_leiden(
            objective_function="modularity",
            weights="weight",
            resolution=resolution,
            n_iterations=n_iterations,
        )
    return np.asarray(part.membership, dtype=np.int64)


def _threads(n_cells: int) -> Any:
    """Limit BLAS/OpenMP to one thread on small fits.

    On a busy machine OpenMP workers spin-wait for each other and a k-means fit on a few
    thousand cells becomes ~50x slower than single-threaded; threads only pay off on
    large data.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1) if n_cells <= 20_000 else contextlib.nullcontext()


def _subsample(n: int, max_cells: int, seed: int) -> np.ndarray:
    if n <= max_cells:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_cells, replace=False))


def _silhouette(X: np.ndarray, labels: np.ndarray, seed: int, max_cells: int = 3000) -> float:
    from sklearn.metrics import silhouette_score

    k = len(np.unique(labels))
    if k < 2 or k >= len(labels):
        return float("-inf")
    n = min(max_cells, len(labels))
    return float(silhouette_score(X, labels, sample_size=n, random_state=seed))


def _k_range(k_min: int, k_max: int, n: int) -> list[int]:
    ks = list(range(k_min, min(k_max, n - 1) + 1))
    if not ks:
        raise InvalidParameterError(f"no k in [{k_min}, {k_max}] fits {n} cells")
    return ks


def _extend(X: np.ndarray, sub: np.ndarray, labels_sub: np.ndarray, seed: int) -> np.ndarray:
    """Labels for every cell from labels of a subsample, by a kNN vote in the embedding."""
    if len(sub) == len(X):
        return labels_sub
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(15, len(sub))).fit(X[sub], labels_sub)
    out = knn.predict(X)
    out[sub] = labels_sub
    return out


# --------------------------------------------------------------------------- methods


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeidenMember(_Params):
    resolution: float = Field(1.0, gt=0, le=10, description="Leiden resolution (modularity).")
    n_iterations: int = Field(2, ge=-1, le=100, description="-1 runs to convergence.")


class LouvainMember(_Params):
    resolution: float = Field(1.0, gt=0, le=10, description="Louvain resolution (modularity).")


class _AutoK(_Params):
    k: int | Literal["auto"] = Field(
        "auto", description="Number of clusters, or 'auto' to choose it in [k_min, k_max]."
    )
    k_min: int = Field(2, ge=2, le=200)
    k_max: int = Field(15, ge=2, le=200)
    n_pcs: int | None = Field(None, ge=2, description="Leading components used (None: all).")
    max_cells: int = Field(
        5000, ge=100, description="Cells sampled to choose k (and, for agglomerative, to fit)."
    )


class KMeansMember(_AutoK):
    n_init: int = Field(3, ge=1, le=50)


class GMMMember(_AutoK):
    covariance_type: Literal["diag", "full", "spherical", "tied"] = "diag"


class AgglomerativeMember(_AutoK):
    linkage: Literal["ward", "average", "complete"] = "ward"


class BanksyMember(_Params):
    resolution: float = Field(1.0, gt=0, le=10, description="Leiden resolution.")
    mix: float = Field(
        0.2,
        ge=0,
        le=1,
        description="BANKSY's lambda: weight of the neighbourhood mean (0.2 finds cell types, "
        "0.8 tissue domains; Singhal et al. 2024).",
    )
    n_spatial_neighbors: int = Field(10, ge=2, le=100)


def _leiden(inputs: MemberInputs, seed: int, p: LeidenMember) -> tuple[np.ndarray, dict]:
    return leiden_on(inputs.igraph(), p.resolution, seed, p.n_iterations), {}


def _louvain(inputs: MemberInputs, seed: int, p: LouvainMember) -> tuple[np.ndarray, dict]:
    # The `louvain` package (scanpy's default flavor) is not installed; igraph's
    # community_multilevel is the same Louvain algorithm on the same graph, with a resolution.
    with igraph_seed(seed):
        part = inputs.igraph().community_multilevel(
            weights="weight", return_levels=False, resolution=p.resolution
        )
    return np.asarray(part.membership, dtype=np.int64), {"implementation": "igraph multilevel"}


def _space(inputs: MemberInputs, p: _AutoK) -> np.ndarray:
    X = inputs.embedding if p.n_pcs is None else inputs.embedding[:, : p.n_pcs]
    return np.ascontiguousarray(X, dtype=np.float64)


def _kmeans(inputs: MemberInputs, seed: int, p: KMeansMember) -> tuple[np.ndarray, dict]:
    from sklearn.cluster import KMeans

    X = _space(inputs, p)
    info: dict[str, Any] = {}
    k = p.k
    if k == "auto":
        # Choose k on a subsample (silhouette is quadratic in cells), fit all cells after.
        sub = _subsample(len(X), p.max_cells, seed)
        scores = {}
        with _threads(len(sub)):
            for kk in _k_range(p.k_min, p.k_max, len(sub)):
                lab = KMeans(kk, n_init=p.n_init, random_state=seed).fit_predict(X[sub])
                scores[kk] = _silhouette(X[sub], lab, seed)
        k = max(scores, key=lambda kk: (scores[kk], -kk))
        info = {"k": int(k), "selected_by": "silhouette", "scores": scores}
    with _threads(len(X)):
        labels = KMeans(int(k), n_init=p.n_init, random_state=seed).fit_predict(X)
    return labels.astype(np.int64), info


def _gmm(inputs: MemberInputs, seed: int, p: GMMMember) -> tuple[np.ndarray, dict]:
    from sklearn.mixture import GaussianMixture

    X = _space(inputs, p)

    def model(kk: int) -> GaussianMixture:
        return GaussianMixture(
            kk, covariance_type=p.covariance_type, random_state=seed, reg_covar=1e-4
        )

    info: dict[str, Any] = {}
    k = p.k
    if k == "auto":
        sub = _subsample(len(X), p.max_cells, seed)
        with _threads(len(sub)):
            scores = {
                kk: float(model(kk).fit(X[sub]).bic(X[sub]))
                for kk in _k_range(p.k_min, p.k_max, len(sub))
            }
        k = min(scores, key=lambda kk: (scores[kk], kk))
        info = {"k": int(k), "selected_by": "bic", "scores": scores}
    with _threads(len(X)):
        labels = model(int(k)).fit(X).predict(X)
    return labels.astype(np.int64), info


def _agglomerative(
    inputs: MemberInputs, seed: int, p: AgglomerativeMember
) -> tuple[np.ndarray, dict]:
    from scipy.cluster.hierarchy import fcluster, linkage

    X = _space(inputs, p)
    # A linkage tree needs all pairwise distances (quadratic memory): build it on at most
    # max_cells cells, cut it, and give the other cells the label of their neighbours.
    sub = _subsample(len(X), p.max_cells, seed)
    tree = linkage(X[sub], method=p.linkage)
    info: dict[str, Any] = {"fitted_cells": len(sub)}
    k = p.k
    if k == "auto":
        scores = {}
        with _threads(len(sub)):
            for kk in _k_range(p.k_min, p.k_max, len(sub)):
                scores[kk] = _silhouette(X[sub], fcluster(tree, kk, criterion="maxclust"), seed)
        k = max(scores, key=lambda kk: (scores[kk], -kk))
        info |= {"k": int(k), "selected_by": "silhouette", "scores": scores}
    labels_sub = fcluster(tree, int(k), criterion="maxclust").astype(np.int64) - 1
    return _extend(X, sub, labels_sub, seed), info


def spatial_graph(coords: np.ndarray, n_neighbors: int) -> tuple[sparse.csr_matrix, str]:
    """Row-normalised Gaussian weights of each cell's spatial neighbours, and what built the graph.

    The graph comes from squidpy (``spatial_neighbors_knn``) when it is installed; otherwise
    from scikit-learn's ``NearestNeighbors``, which computes the same kNN graph of the
    coordinates (squidpy is an optional extra).
    """
    n = len(coords)
    k = min(n_neighbors, n - 1)
    try:
        import anndata as ad
        import pandas as pd
        import squidpy as sq

        tmp = ad.AnnData(obs=pd.DataFrame(index=np.arange(n).astype(str)), obsm={"spatial": coords})
        sq.gr.spatial_neighbors_knn(tmp, n_neighs=k)
        dist = sparse.csr_matrix(tmp.obsp["spatial_distances"])
        built = "squidpy.gr.spatial_neighbors_knn"
    except ImportError:
        from sklearn.neighbors import NearestNeighbors

        dist = sparse.csr_matrix(
            NearestNeighbors(n_neighbors=k).fit(coords).kneighbors_graph(mode="distance")
        )
        built = "sklearn.neighbors.NearestNeighbors"
    # BANKSY weighs neighbours by a Gaussian of distance, sigma the median neighbour distance.
    sigma = float(np.median(dist.data)) if dist.nnz else 1.0
    weights = dist.copy()
    weights.data = np.exp(-(dist.data**2) / (2 * max(sigma, 1e-12) ** 2))
    rows = np.asarray(weights.sum(axis=1)).ravel()
    rows[rows == 0] = 1.0
    return sparse.diags(1.0 / rows) @ weights, built


def _banksy(inputs: MemberInputs, seed: int, p: BanksyMember) -> tuple[np.ndarray, dict]:
    if inputs.spatial is None:
        raise InvalidParameterError("the banksy member needs obsm['spatial']")
    import anndata as ad
    import pandas as pd

    from scagent.tools.graph import neighbors

    W, built = spatial_graph(np.asarray(inputs.spatial, dtype=np.float64), p.n_spatial_neighbors)
    Z = inputs.embedding.astype(np.float32)
    # BANKSY (Singhal et al. 2024): own expression and the neighbourhood's mean, mixed by lambda.
    augmented = np.hstack([np.sqrt(1 - p.mix) * Z, np.sqrt(p.mix) * (W @ Z)]).astype(np.float32)
    tmp = ad.AnnData(
        obs=pd.DataFrame(index=np.arange(len(Z)).astype(str)), obsm={"X_banksy": augmented}
    )
    neighbors(tmp, use_rep="X_banksy", n_neighbors=inputs.n_neighbors, random_state=seed)
    labels = leiden_on(to_igraph(tmp.obsp["connectivities"]), p.resolution, seed)
    return labels, {"spatial_graph": built}


@dataclass(frozen=True)
class MemberMethod:
    """One clustering method a member may use: its parameters and its function."""

    name: str
    params: type[BaseModel]
    fn: Callable[[MemberInputs, int, Any], tuple[np.ndarray, dict]]
    needs_spatial: bool = False
    reference: str = ""


#: The methods members may use, by name. Tests may replace an entry to make a member fail.
MEMBER_METHODS: dict[str, MemberMethod] = {
    m.name: m
    for m in (
        MemberMethod(
            "leiden", LeidenMember, _leiden, reference="Traag et al. (2019) Sci Rep 9:5233"
        ),
        MemberMethod(
            "louvain",
            LouvainMember,
            _louvain,
            reference="Blondel et al. (2008) J Stat Mech P10008 (igraph community_multilevel)",
        ),
        MemberMethod("kmeans", KMeansMember, _kmeans, reference="scikit-learn KMeans"),
        MemberMethod("gmm", GMMMember, _gmm, reference="scikit-learn GaussianMixture, BIC"),
        MemberMethod(
            "agglomerative",
            AgglomerativeMember,
            _agglomerative,
            reference="scipy.cluster.hierarchy.linkage (Ward)",
        ),
        MemberMethod(
            "banksy",
            BanksyMember,
            _banksy,
            needs_spatial=True,
            reference="Singhal et al. (2024) BANKSY. Nat Genet 56:431",
        ),
    )
}


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class MemberSpec:
    """A member to run: method, validated parameters, seed and a file-safe id."""

    id: str
    method: str
    params: dict[str, Any]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "method": self.method, "params": self.params, "seed": self.seed}


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_member(text: str, seed: int = 0) -> MemberSpec:
    """Parse ``method:key=value:key=value`` into a validated :class:`MemberSpec`.

    ``seed=N`` among the parameters overrides the run's seed for this member.

    Raises
    ------
    InvalidParameterError
        An unknown method, a malformed parameter, or a value out of range.
    """
    # Imported here: scagent.tools imports this package to register consensus_clustering.
    from scagent.tools.base import parse_params

    parts = [s.strip() for s in str(text).strip().split(":")]
    method = parts[0].lower()
    if method not in MEMBER_METHODS:
        raise InvalidParameterError(
            f"unknown clustering member {method!r} in {text!r}",
            remedy=f"use one of {', '.join(MEMBER_METHODS)}, e.g. leiden:resolution=1.0",
        )
    raw: dict[str, Any] = {}
    for part in parts[1:]:
        if not part:
            continue
        if "=" not in part:
            raise InvalidParameterError(
                f"member parameter {part!r} in {text!r} is not key=value",
                remedy="write members as method:key=value:key=value",
            )
        key, value = (s.strip() for s in part.split("=", 1))
        raw[key] = value
    member_seed = seed
    if "seed" in raw:
        try:
            member_seed = int(raw.pop("seed"))
        except ValueError:
            raise InvalidParameterError(f"seed in {text!r} is not an integer") from None
    params = parse_params(MEMBER_METHODS[method].params, raw, f"member {method}").model_dump()
    given = {k: params[k] for k in raw}
    suffix = "_".join(f"{k}{_format(v)}" for k, v in given.items())
    ident = f"{method}_{suffix}" if suffix else method
    return MemberSpec(id=ident, method=method, params=params, seed=member_seed)


def parse_members(
    members: str | Sequence[str] | None, seed: int = 0, *, spatial: bool = False
) -> list[MemberSpec]:
    """Parse a comma-separated string or a list of member specs; None gives the default set.

    With ``spatial`` (``obsm['spatial']`` exists) the default set gains the BANKSY-style
    member. Repeated ids get ``_2``, ``_3`` suffixes.
    """
    if members is None:
        texts = list(DEFAULT_MEMBERS) + ([SPATIAL_MEMBER] if spatial else [])
    elif isinstance(members, str):
        texts = [m for m in members.split(",") if m.strip()]
    else:
        texts = [str(m) for m in members]
    if not texts:
        raise InvalidParameterError(
            "no clustering members given", remedy="omit --members for the default set"
        )
    specs, seen = [], {}
    for text in texts:
        spec = parse_member(text, seed)
        if spec.id in seen:
            seen[spec.id] += 1
            spec = MemberSpec(f"{spec.id}_{seen[spec.id]}", spec.method, spec.params, spec.seed)
        else:
            seen[spec.id] = 1
        specs.append(spec)
    return specs


# --------------------------------------------------------------------------- running


@dataclass
class MemberResult:
    """One member's outcome: labels when it succeeded, the error when it failed."""

    spec: MemberSpec
    status: Literal["succeeded", "failed"]
    labels: np.ndarray | None = None
    error: str | None = None
    time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int | None:
        return None if self.labels is None else len(np.unique(self.labels))

    def record(self) -> dict[str, Any]:
        """The JSON-ready record of this member for ``plan.json``."""
        info = {
            k: ({str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v)
            for k, v in self.info.items()
        }
        return {
            **self.spec.to_dict(),
            "status": self.status,
            "error": self.error,
            "n_clusters": self.n_clusters,
            "time_s": round(self.time_s, 4),
            "info": info,
        }


def run_member(inputs: MemberInputs, spec: MemberSpec) -> MemberResult:
    """Run one member; any exception is caught and recorded as the member's error."""
    method = MEMBER_METHODS[spec.method]
    t = time.perf_counter()
    try:
        if method.needs_spatial and inputs.spatial is None:
            raise InvalidParameterError(f"member {spec.id} needs obsm['spatial']")
        labels, info = method.fn(inputs, spec.seed, method.params(**spec.params))
        labels = np.asarray(labels)
        if labels.shape != (inputs.n_obs,):
            raise ValueError(f"returned {labels.shape} labels for {inputs.n_obs} cells")
        _, labels = np.unique(labels, return_inverse=True)
        if labels.max(initial=0) < 1:
            raise ValueError("put every cell in one cluster")
        return MemberResult(
            spec, "succeeded", labels.astype(np.int64), None, time.perf_counter() - t, info
        )
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # a member's crash is data for the run, not the end of it
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
        error = f"{type(exc).__name__}: {exc}{where}"
        return MemberResult(spec, "failed", None, error, time.perf_counter() - t)


def run_members(
    inputs: MemberInputs,
    specs: Sequence[MemberSpec],
    progress: Callable[[MemberResult], None] | None = None,
) -> list[MemberResult]:
    """Run every member in order; failures are recorded in their result and the rest go on."""
    results = []
    for spec in specs:
        result = run_member(inputs, spec)
        results.append(result)
        if progress is not None:
            progress(result)
    return results
