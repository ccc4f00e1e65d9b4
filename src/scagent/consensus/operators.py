"""Consensus operators: combine member partitions into one, in time linear in cells (never an n x n matrix).

``kmode`` takes, for every cell, the most frequent label among the members once all of
them are aligned to the current consensus (k-modes over aligned labels), starting from
the medoid member. ``coassoc`` weighs each edge of the sparse kNN graph by the share of
members that put its two cells together (the co-association, only where cells are
neighbours) and runs Leiden on that graph, collapsed onto the cells all members agree on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse

from scagent.consensus.align import align_labels, relabel_by_size
from scagent.consensus.members import leiden_on
from scagent.errors import InvalidParameterError

__all__ = ["OPERATORS", "OperatorResult", "agreement", "coassoc", "kmode", "pairwise_nmi"]

Operator = Literal["kmode", "coassoc"]
OPERATORS: tuple[str, ...] = ("kmode", "coassoc")


@dataclass
class OperatorResult:
    """Consensus labels (0 = largest cluster), per-cell agreement and what the operator did."""

    labels: np.ndarray
    agreement: np.ndarray
    aligned: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    time_s: float = 0.0


def pairwise_nmi(members: Sequence[np.ndarray]) -> np.ndarray:
    """Symmetric matrix of normalized mutual information between every pair of partitions."""
    from sklearn.metrics import normalized_mutual_info_score

    m = len(members)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = normalized_mutual_info_score(members[i], members[j])
    return out


def agreement(
    consensus: np.ndarray, members: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell share of members whose aligned label equals the consensus, and the aligned labels.

    Returns
    -------
    agreement
        Float per cell in [0, 1].
    aligned
        Cells x members, each member's labels aligned to the consensus (:func:`align_labels`).
    """
    aligned = np.column_stack([align_labels(consensus, m)[0] for m in members])
    return (aligned == consensus[:, None]).mean(axis=1), aligned


def kmode(
    members: Sequence[np.ndarray],
    *,
    reference: int | None = None,
    max_iter: int = 20,
    nmi: np.ndarray | None = None,
) -> OperatorResult:
    """k-modes consensus over Hungarian-aligned member labels.

    Parameters
    ----------
    members
        Integer labels of the same cells, one array per member.
    reference
        Index of the member to start from; default the medoid (highest mean NMI to the others).
    max_iter
        Align-then-vote rounds at most; it stops earlier when no cell changes.
    nmi
        The members' pairwise NMI matrix, if already computed.

    Returns
    -------
    OperatorResult
        ``info`` holds ``reference`` (index), ``iterations`` and ``converged``.
    """
    t = time.perf_counter()
    if len(members) < 2:
        raise InvalidParameterError("kmode needs at least 2 members")
    if reference is None:
        nmi = pairwise_nmi(members) if nmi is None else nmi
        reference = int(np.argmax((nmi.sum(axis=1) - 1) / (len(members) - 1)))
    consensus = relabel_by_size(members[reference])
    n = len(consensus)
    rows = np.arange(n)
    converged = False
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        k = int(consensus.max()) + 1
        votes = np.zeros((n, k), dtype=np.float32)
        votes[rows, consensus] = 0.5  # a tie keeps the current label
        for m in members:
            votes[rows, align_labels(consensus, m)[0]] += 1.0
        new = relabel_by_size(votes.argmax(axis=1))
        if np.array_equal(new, consensus):
            converged = True
            break
        consensus = new
    agree, aligned = agreement(consensus, members)
    return OperatorResult(
        consensus,
        agree,
        aligned,
        {"reference": reference, "iterations": iterations, "converged": converged},
        time.perf_counter() - t,
    )


def _absorb_small(labels: np.ndarray, graph: sparse.csr_matrix, min_size: int) -> np.ndarray:
    """Give the cells of clusters smaller than ``min_size`` the label most common among their neighbours."""
    counts = np.bincount(labels)
    small = counts[labels] < min_size
    if not small.any() or small.all():
        return labels
    out = labels.copy()
    adj = graph[np.flatnonzero(small)]
    for row, cell in enumerate(np.flatnonzero(small)):
        nbrs = adj.indices[adj.indptr[row] : adj.indptr[row + 1]]
        nbrs = nbrs[~small[nbrs]]
        if len(nbrs):
            out[cell] = np.bincount(labels[nbrs]).argmax()
    return out


def coassoc(
    members: Sequence[np.ndarray],
    graph: sparse.spmatrix,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    min_weight: float = 0.0,
    min_cluster_size: int = 5,
) -> OperatorResult:
    """Leiden on the kNN graph weighted by co-association (share of members agreeing per edge).

    Only the graph's edges are weighted, so memory is O(edges), not O(cells^2).

    Parameters
    ----------
    members
        Integer labels of the same cells, one array per member.
    graph
        Symmetric kNN connectivities of the cells (n x n sparse; n is taken from it).
    resolution
        Leiden resolution on the co-association graph.
    seed
        Leiden's seed.
    min_weight
        Edges whose co-association is at most this are dropped (0 keeps every edge on
        which at least one member agrees).
    min_cluster_size
        Smaller Leiden clusters (cells whose every edge was dropped) join their neighbours' majority.
    """
    import igraph

    t = time.perf_counter()
    if len(members) < 2:
        raise InvalidParameterError("coassoc needs at least 2 members")
    upper = sparse.triu(graph, k=1).tocoo()
    r, c = upper.row, upper.col
    weight = np.zeros(len(r), dtype=np.float32)
    for m in members:
        weight += m[r] == m[c]
    weight /= len(members)
    keep = weight > min_weight
    # Cells that every member labels alike (an "atom") are never split by the co-association,
    # so Leiden runs on the graph of atoms: each edge between atoms carries the summed
    # weights, each atom a loop with its internal weight, which keeps degrees and modularity
    # as on the cell graph. There are far fewer atoms than cells, which makes this fast.
    _, atom = np.unique(np.column_stack(members), axis=0, return_inverse=True)
    atom = atom.ravel()
    n_atoms = int(atom.max()) + 1
    agg = sparse.coo_matrix(
        (weight[keep].astype(np.float64), (atom[r[keep]], atom[c[keep]])), shape=(n_atoms, n_atoms)
    ).tocsr()
    agg = (agg + agg.T).tocsr()  # symmetric; an edge inside an atom lands twice on the diagonal
    agg.sum_duplicates()
    a_up = sparse.triu(agg, k=1).tocoo()
    diag = agg.diagonal() / 2
    loops = np.flatnonzero(diag > 0)
    g = igraph.Graph(
        n=n_atoms,
        edges=np.vstack([np.column_stack([a_up.row, a_up.col]), np.column_stack([loops, loops])]),
        directed=False,
        edge_attrs={"weight": np.concatenate([a_up.data, diag[loops]])},
    )
    labels = leiden_on(g, resolution, seed)[atom]
    labels = relabel_by_size(_absorb_small(labels, sparse.csr_matrix(graph), min_cluster_size))
    agree, aligned = agreement(labels, members)
    info = {
        "edges": len(r),
        "edges_kept": int(keep.sum()),
        "atoms": n_atoms,
        "mean_edge_coassociation": float(weight.mean()) if len(weight) else 0.0,
    }
    return OperatorResult(labels, agree, aligned, info, time.perf_counter() - t)
