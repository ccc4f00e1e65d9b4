"""Label alignment between partitions by the Hungarian method (maximum total overlap)."""

from __future__ import annotations

import numpy as np

__all__ = ["align_labels", "contingency", "relabel_by_size"]


def contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Contingency table of two integer labelings (``a``'s labels x ``b``'s labels), in O(cells)."""
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    return np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb)


def align_labels(reference: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map ``labels`` onto ``reference``'s label space.

    The one-to-one part is the Hungarian assignment that maximises the cells shared
    (:func:`scipy.optimize.linear_sum_assignment`). A partition finer than the reference
    has clusters left over; each goes to the reference cluster it overlaps most, so a
    member that only splits a consensus cluster is not counted as disagreeing with it.

    Parameters
    ----------
    reference, labels
        Integer labels ``0..k-1`` of the same cells.

    Returns
    -------
    aligned
        ``labels`` expressed as reference labels.
    mapping
        ``mapping[label] = reference label``.
    """
    from scipy.optimize import linear_sum_assignment

    table = contingency(reference, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.full(table.shape[1], -1, dtype=np.int64)
    mapping[cols] = rows
    left = mapping < 0
    mapping[left] = table[:, left].argmax(axis=0)
    return mapping[labels], mapping


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered ``0..k-1`` from the largest cluster down (ties: first label first)."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64)
