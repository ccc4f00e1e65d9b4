"""What every tool asks of the data: its state, its counts, a copy in the state a step needs, and key ownership.

The inspector and the preparers live in :mod:`scagent.data`; this module is the one
place the tools reach them, plus the ledger of keys scagent wrote (so a user's column
is never silently replaced).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from scagent.errors import DataStateError, InvalidParameterError, ScagentError

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.data.state import DataState

#: ``uns`` entry recording which keys scagent's tools wrote: ``{slot: {key: tool_id}}``.
OWNED_KEYS = "scagent_keys"


def state_of(adata: AnnData) -> DataState:
    """The inspector's :class:`DataState` of ``adata``."""
    from scagent.data import inspect_adata

    return inspect_adata(adata)


def obs_column(
    adata: AnnData,
    value: str,
    candidates: Callable[[], Iterable[str]],
    *,
    param: str = "groupby",
    missing: ScagentError | None,
) -> str | None:
    """The obs column a tool should use: ``value`` itself, or for ``"auto"`` the first
    of ``candidates()`` present in ``adata.obs``.

    ``candidates`` is called only for ``"auto"`` (it usually inspects the data). When none
    is present, ``missing`` is raised, or None returned if ``missing`` is None.
    """
    if value != "auto":
        if value not in adata.obs:
            raise InvalidParameterError(
                f"{param} '{value}' is not an obs column",
                remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
            )
        return value
    found = next((c for c in candidates() if c in adata.obs), None)
    if found is None and missing is not None:
        raise missing
    return found


def counts_of(adata: AnnData, state: DataState | None = None) -> Any:
    """Raw counts aligned to ``adata``'s cells and genes (not a copy where avoidable), or None."""
    from scagent.data import get_counts

    state = state if state is not None else state_of(adata)
    counts = get_counts(adata, state)
    if counts is None or state.counts_location != "raw":
        return counts
    raw_genes = adata.raw.var_names
    if raw_genes.equals(adata.var_names):
        return counts
    # .raw often keeps more genes than X: take the columns of X's genes.
    idx = raw_genes.get_indexer(adata.var_names)
    if (idx < 0).any():
        raise DataStateError(
            f"raw counts in .raw lack {int((idx < 0).sum())} of X's genes",
            remedy="put counts for exactly X's genes in layers['counts']",
        )
    return counts[:, idx]


def ready_for(adata: AnnData, state: DataState | None, needs: str) -> AnnData:
    """Data whose X holds ``needs`` (``"raw_counts"``, ``"log_normalized"``), for X's genes.

    May be ``adata`` itself when X is already in that state: do not modify the result.
    """
    from scagent.data import ensure_ready_for

    state = state if state is not None else state_of(adata)
    work = ensure_ready_for(adata, state, needs)
    if work is not adata and not work.var_names.equals(adata.var_names):
        work = work[:, adata.var_names]  # .raw was the source and has more genes
    return work


def require_counts(adata: AnnData, tool_id: str, state: DataState | None = None) -> Any:
    """Raw counts, or a :class:`DataStateError` saying that ``tool_id`` needs them."""
    counts = counts_of(adata, state)
    if counts is None:
        raise DataStateError(
            f"{tool_id} needs raw counts, but none were found in X, layers or .raw",
            remedy="load the raw count matrix (e.g. the 10x filtered_feature_bc_matrix) "
            "and put it in layers['counts']",
        )
    return counts


def is_integer_matrix(matrix: Any, max_values: int = 200_000) -> bool:
    """Whether a (sample of a) matrix holds non-negative whole numbers."""
    values = matrix.data if sparse.issparse(matrix) else np.asarray(matrix).ravel()
    values = values[:max_values]
    if values.size == 0:
        return True
    return bool(np.all(values >= 0) and np.all(np.mod(values, 1) == 0))


def _container(adata: AnnData, slot: str) -> Any:
    if slot in ("obs", "var"):
        return getattr(adata, slot).columns
    return getattr(adata, slot)


def owner_of(adata: AnnData, slot: str, key: str) -> str | None:
    """The tool id that wrote ``slot[key]``, or None if scagent did not write it."""
    ledger = adata.uns.get(OWNED_KEYS, {})
    return ledger.get(slot, {}).get(key) if isinstance(ledger, dict) else None


def claim_key(
    adata: AnnData, slot: str, key: str, tool_id: str, *, overwrite: bool = False
) -> str | None:
    """Check that ``tool_id`` may write ``slot[key]``; return a warning when it replaces something.

    A key that does not exist, or that a scagent tool wrote, may be replaced. A key the
    user (or another program) wrote is only replaced with ``overwrite=True``.

    Raises
    ------
    InvalidParameterError
        If ``slot[key]`` exists, scagent did not write it and ``overwrite`` is False.
    """
    if key not in _container(adata, slot):
        return None
    owner = owner_of(adata, slot, key)
    if owner is not None:
        return None
    if overwrite:
        return f"replaced the existing {slot}['{key}'] (overwrite=True)"
    raise InvalidParameterError(
        f"{slot}['{key}'] already exists and was not written by scagent; {tool_id} will not replace it",
        remedy="pass key_added=<a new name>, or overwrite=True to replace it",
    )


def mark_owned(adata: AnnData, tool_id: str, *slot_keys: tuple[str, str]) -> str:
    """Record that ``tool_id`` wrote each ``(slot, key)``; returns the ledger's slot path."""
    ledger = adata.uns.get(OWNED_KEYS)
    ledger = {k: dict(v) for k, v in ledger.items()} if isinstance(ledger, dict) else {}
    for slot, key in slot_keys:
        ledger.setdefault(slot, {})[key] = tool_id
    adata.uns[OWNED_KEYS] = ledger
    return f"uns/{OWNED_KEYS}"
