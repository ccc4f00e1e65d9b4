"""Bring a working copy of the data into the state a step needs, from the best source available.

A tool asks for raw counts, log-normalized or scaled values; this module finds them (X, a
counts layer, ``.raw``) or derives them (normalize + log1p from counts, scale from log data),
and says plainly what is missing when nothing can serve.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scanpy as sc
from anndata import AnnData
from scipy import sparse

from scagent.data.inspect import describe_location, inspect_adata
from scagent.data.state import DataState
from scagent.errors import DataStateError, InvalidParameterError

__all__ = ["Need", "ensure_ready_for", "get_counts"]

Need = Literal["raw_counts", "log_normalized", "scaled"]
_NEEDS = ("raw_counts", "log_normalized", "scaled")


def get_counts(adata: AnnData, state: DataState | None = None) -> Any | None:
    """Return the raw-count matrix of ``adata`` (not a copy), or None if there is none.

    Parameters
    ----------
    adata
        The data.
    state
        Its :class:`DataState`; computed when not given.

    Returns
    -------
    The matrix found at ``state.counts_location`` (``layers/<name>``, ``raw`` or ``X``),
    cells x genes. For ``raw`` its genes are ``adata.raw.var_names``, which may be more
    than ``adata.var_names``.
    """
    state = state or inspect_adata(adata)
    location = state.counts_location
    if location is None:
        return None
    if location == "X":
        return adata.X
    if location == "raw":
        return adata.raw.X
    return adata.layers[location.split("/", 1)[1]]


def _from_matrix(adata: AnnData, X: Any, var: Any | None = None) -> AnnData:
    """A new AnnData with ``X`` and adata's annotations, sharing nothing mutable with adata."""
    return AnnData(
        X=X,
        obs=adata.obs.copy(),
        var=(adata.var if var is None else var).copy(),
        obsm=dict(adata.obsm.items()),
        obsp=dict(adata.obsp.items()),
        uns={k: v for k, v in adata.uns.items() if k != "log1p"},
    )


def _counts_adata(adata: AnnData, state: DataState) -> AnnData:
    location = state.counts_location
    if location is None:
        raise DataStateError(
            f"no raw counts found: X is {state.x_state}, layers {sorted(state.layer_states) or 'none'}, "
            f".raw {'is ' + state.raw_state if state.raw_state else 'absent'}",
            remedy="load the original count matrix (e.g. the Cell Ranger output) or put the "
            "counts in layers['counts']",
        )
    counts = get_counts(adata, state)
    var = adata.raw.var if location == "raw" else None
    X = counts.astype(np.float32, copy=True)
    if location == "raw":
        # .raw may have more genes than X: the working copy keeps raw's genes.
        out = AnnData(X=X, obs=adata.obs.copy(), var=var.copy(), obsm=dict(adata.obsm.items()))
    else:
        out = _from_matrix(adata, X)
    out.uns["scagent_prepared_from"] = location
    return out


def _log_normalized(adata: AnnData, state: DataState, target_sum: float | None) -> AnnData:
    if state.x_state == "log_normalized":
        return adata
    if state.raw_state == "log_normalized" and state.x_state in ("scaled", "transformed_unknown"):
        out = adata.raw.to_adata()
        out.obsm = dict(adata.obsm.items())
        out.uns["scagent_prepared_from"] = "raw"
        return out
    if state.counts_location is not None:
        out = _counts_adata(adata, state)
        sc.pp.normalize_total(out, target_sum=target_sum)
        sc.pp.log1p(out)
        out.uns["scagent_prepared_from"] = (
            f"normalize_total + log1p of {describe_location(state.counts_location)}"
        )
        return out
    if state.x_state == "normalized":
        out = _from_matrix(adata, adata.X.copy())
        sc.pp.log1p(out)
        out.uns["scagent_prepared_from"] = "log1p of per-cell normalized X"
        return out
    raise DataStateError(
        f"log-normalized values are not available and cannot be derived: X is {state.x_state}, "
        "and there are no raw counts, no normalized X and no log-normalized .raw",
        remedy="provide raw counts (layers['counts']) or log-normalized values",
    )


def ensure_ready_for(
    adata: AnnData,
    state: DataState | None = None,
    needs: Need = "log_normalized",
    *,
    target_sum: float | None = 1e4,
    max_value: float | None = 10.0,
) -> AnnData:
    """Return data whose X is in the state ``needs``, derived from the best source available.

    ``adata`` is never modified. When X is already in the needed state, ``adata`` itself is
    returned; otherwise a new AnnData (same cells, annotations shared by copy) whose X was
    taken from raw counts, ``.raw`` or derived: log-normalized values come from a
    log-normalized X, a log-normalized ``.raw``, raw counts (``normalize_total`` +
    ``log1p``) or normalized X (``log1p``); scaled values from log-normalized values
    (``sc.pp.scale``). ``uns['scagent_prepared_from']`` says where a derived X came from.

    Parameters
    ----------
    adata
        The data, in any state.
    state
        Its :class:`DataState`; computed when not given.
    needs
        ``"raw_counts"``, ``"log_normalized"`` or ``"scaled"``.
    target_sum
        Total per cell when normalizing counts (None: the median total, scanpy's default).
    max_value
        Clip value when scaling.

    Returns
    -------
    AnnData in the needed state. Genes may be those of ``.raw`` when that was the source.

    Raises
    ------
    DataStateError
        When nothing in the object can give the needed state; the message lists what is there.
    """
    if needs not in _NEEDS:
        raise InvalidParameterError(f"needs={needs!r} is not one of {', '.join(_NEEDS)}")
    state = state or inspect_adata(adata)
    if needs == "raw_counts":
        if state.counts_location == "X":
            return adata
        return _counts_adata(adata, state)
    if needs == "log_normalized":
        return _log_normalized(adata, state, target_sum)
    if state.x_state == "scaled":
        return adata
    log = _log_normalized(adata, state, target_sum)
    out = _from_matrix(adata, adata.X.copy()) if log is adata else log
    if sparse.issparse(out.X):
        # Scaling centres the data, which densifies it; do it once, explicitly.
        out.X = out.X.toarray()
    sc.pp.scale(out, max_value=max_value)
    out.uns["scagent_prepared_from"] = (
        f"sc.pp.scale of {log.uns.get('scagent_prepared_from', 'log-normalized X')}"
    )
    return out
