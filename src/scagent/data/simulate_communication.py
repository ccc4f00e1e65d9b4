"""Cell-cell communication with known truth: PBMC-like counts with planted ligand-receptor signals.

:func:`simulate_communication` draws counts with :func:`scagent.data.simulate` and then
plants a few interactions from LIANA's consensus resource: the ligand is expressed strongly
and only in a sender type, the receptor only in a receiver type. The planted genes take
the place of synthetic filler genes, and their counts are drawn afresh (negative binomial
around each cell's true library size) so no filler program of the simulator leaks into
them: outside their type they sit at an ambient level. :func:`truth_recovery` scores a
finished ``communication`` run against the plant; :func:`check_communication_inputs`
says what a dataset lacks for the communication paradigm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent.errors import InvalidDataError, InvalidParameterError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "PLANTED_INTERACTIONS",
    "simulate_communication",
    "truth_recovery",
]

#: The default plant: (sender, receiver, ligand, receptor). Single-gene pairs of LIANA's
#: consensus resource whose genes are not among the simulator's named genes, so nothing
#: else in the matrix expresses them; senders and receivers are default PBMC types.
PLANTED_INTERACTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("cDC", "B cell", "CXCL13", "CXCR5"),
    ("classical monocyte", "CD8 T cell", "DLL1", "NOTCH1"),
    ("NK cell", "classical monocyte", "HGF", "MET"),
    ("B cell", "non-classical monocyte", "EFNA1", "EPHA2"),
)

#: Share of a cell's counts for a planted ligand in its sender (about 4.5 UMI at 3,000 per
#: cell) and a receptor in its receiver (about 2.4): strong, as a cytokine in its producer.
_LIGAND_SHARE = 1.5e-3
_RECEPTOR_SHARE = 8e-4
#: Ambient share of a planted gene in every other cell (0.003 UMI per cell).
_AMBIENT_SHARE = 1e-6
_DISPERSION = 0.2


def simulate_communication(
    n_cells: int = 2500,
    n_genes: int = 1500,
    *,
    interactions: Sequence[tuple[str, str, str, str]] | None = None,
    seed: int = 0,
    **simulate_kwargs: Any,
) -> AnnData:
    """Raw PBMC-like counts with planted ligand-receptor interactions between known cell types.

    Parameters
    ----------
    n_cells, n_genes
        Size of the matrix (passed to :func:`scagent.data.simulate`).
    interactions
        ``(sender type, receiver type, ligand, receptor)`` tuples; default
        :data:`PLANTED_INTERACTIONS`. Types must be simulated; each ligand-receptor pair
        must be a pair of single genes in LIANA's ``consensus`` resource.
    seed
        Seed of the simulator and of the planted counts.
    **simulate_kwargs
        Further arguments of :func:`scagent.data.simulate` (``cell_types``,
        ``proportions``, ``n_conditions``...). ``species`` must stay ``'human'``.

    Returns
    -------
    AnnData
        Raw counts as :func:`scagent.data.simulate` returns them, with each planted gene
        replacing a filler gene (``var['planted_communication']`` is True for them) and
        ``uns['simulation']['communication']``: the list of
        ``[source, target, ligand, receptor]``.

    Raises
    ------
    InvalidParameterError
        A planted type is not simulated, a pair is not a single-gene pair of the
        consensus resource, or there are too few filler genes to replace.
    """
    from scagent.data import simulate
    from scagent.data.simulate import _named_genes

    if simulate_kwargs.get("species", "human") != "human":
        raise InvalidParameterError(
            "simulate_communication plants pairs of the human consensus resource",
            remedy="leave species='human'",
        )
    planted = [tuple(map(str, row)) for row in (interactions or PLANTED_INTERACTIONS)]
    if any(len(row) != 4 for row in planted) or not planted:
        raise InvalidParameterError(
            "interactions: give (sender, receiver, ligand, receptor) tuples",
            remedy="e.g. interactions=[('cDC', 'B cell', 'CXCL13', 'CXCR5')]",
        )
    _check_pairs(planted, set(_named_genes("human")))
    adata = simulate(n_cells, n_genes, seed=seed, **simulate_kwargs)
    types = set(adata.obs["cell_type"].astype(str))
    absent = sorted({t for row in planted for t in row[:2]} - types)
    if absent:
        raise InvalidParameterError(
            f"interactions: cell types {absent} are not simulated",
            remedy=f"choose senders and receivers among: {', '.join(sorted(types))}",
        )

    # Each planted gene takes over a filler gene; fillers are the synthetic SIMG genes.
    genes = list(dict.fromkeys(g for row in planted for g in row[2:]))
    fillers = np.flatnonzero(adata.var_names.str.startswith("SIMG"))
    if fillers.size < len(genes):
        raise InvalidParameterError(
            f"n_genes={n_genes} leaves {fillers.size} filler genes, fewer than the "
            f"{len(genes)} planted genes",
            remedy="raise n_genes",
        )
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    slots = rng.choice(fillers, len(genes), replace=False)
    share = np.full((adata.n_obs, len(genes)), _AMBIENT_SHARE)
    cell_type = adata.obs["cell_type"].astype(str).to_numpy()
    for sender, receiver, ligand, receptor in planted:
        share[cell_type == sender, genes.index(ligand)] = _LIGAND_SHARE
        share[cell_type == receiver, genes.index(receptor)] = _RECEPTOR_SHARE
    mean = share * adata.obs["true_library_size"].to_numpy(float)[:, None]
    # Negative binomial as a gamma-Poisson mixture, as the simulator draws it.
    counts = rng.poisson(rng.gamma(1.0 / _DISPERSION, mean * _DISPERSION)).astype(np.float32)

    X = sp.lil_matrix(adata.X)  # a handful of columns; lil keeps the edit simple
    X[:, slots] = counts
    adata.X = sp.csr_matrix(X, dtype=np.float32)
    adata.X.sort_indices()
    names = adata.var_names.to_numpy(dtype=object).copy()
    names[slots] = genes
    adata.var_names = pd.Index(names)
    adata.var["planted_communication"] = adata.var_names.isin(genes)
    simulation = dict(adata.uns["simulation"])
    simulation["communication"] = [list(row) for row in planted]
    adata.uns["simulation"] = simulation
    return adata


def _check_pairs(planted: list[tuple[str, ...]], named: set[str]) -> None:
    from scagent.tools.communication import load_resource

    resource = load_resource("consensus")
    pairs = set(zip(resource["ligand"], resource["receptor"], strict=True))
    for _, _, ligand, receptor in planted:
        if (ligand, receptor) not in pairs or "_" in ligand + receptor:
            raise InvalidParameterError(
                f"interactions: {ligand}->{receptor} is not a single-gene pair of LIANA's "
                "consensus resource",
                remedy="pick a pair from liana.resource.select_resource('consensus')",
            )
        if {ligand, receptor} & named:
            raise InvalidParameterError(
                f"interactions: {ligand}->{receptor} uses a gene the simulator already "
                "expresses as a marker or QC gene",
                remedy="pick genes outside the simulator's named genes",
            )


# ------------------------------------------------------------------------------- scoring


def truth_recovery(adata: AnnData, key: str = "liana_res") -> dict[str, float | int | str]:
    """Score a ``communication`` run against the planted interactions.

    Interactions are ordered by LIANA's aggregate ranks: ``specificity_rank`` first, then
    ``magnitude_rank`` (both robust-rank-aggregate scores, smaller is better). Ranks are
    1-based. The groups of the run need not carry the simulated type names: each group
    label stands for the true type most of its cells have (``obs['cell_type']``), so a run
    grouped by annotation labels ('monocyte' for 'classical monocyte') is scored too. A
    planted interaction whose sender or receiver no group stands for (types merged by the
    clustering) or that LIANA did not test counts as missed, with rank ``n + 1``.

    Parameters
    ----------
    adata
        Data with ``uns['simulation']['communication']``, ``obs['cell_type']`` and
        ``uns[key]`` (the results of the ``communication`` tool).
    key
        The results key.

    Returns
    -------
    dict
        ``groupby``, ``n_planted``, ``n_found`` (planted interactions present in the
        results), ``n_interactions``, ``rank_in_pair_<i>`` (among the interactions of its
        sender -> receiver pair) and ``rank_overall_<i>`` per planted interaction (``i``
        from 0, in the order of the truth), ``max_rank_in_pair``, ``max_rank_overall``,
        ``median_rank_overall``, ``share_top10`` (share of planted interactions among the 10
        best overall), ``share_top1pct`` (among the best 1%, at least one row) and
        ``top1pct_rows``.

    Raises
    ------
    InvalidDataError
        No planted truth, or no results under ``uns[key]``.
    """
    from scagent.tools.communication import RANK_ORDER, communication_results

    truth = adata.uns.get("simulation", {}).get("communication")
    if truth is None or len(truth) == 0 or "cell_type" not in adata.obs:
        raise InvalidDataError(
            "no planted interactions in uns['simulation']['communication'] or no obs['cell_type']",
            remedy="simulate the data with scagent.data.simulate_communication",
        )
    try:
        table = communication_results(adata, key)
    except InvalidParameterError as exc:
        raise InvalidDataError(exc.message, remedy=exc.remedy) from None
    table = table.sort_values(RANK_ORDER, kind="stable").reset_index(drop=True)
    groupby = str(adata.uns.get(f"{key}_params", {}).get("groupby", ""))
    stands_for = _majority_types(adata, groupby)
    table["true_source"] = table["source"].map(stands_for).fillna("")
    table["true_target"] = table["target"].map(stands_for).fillna("")
    n = len(table)
    out: dict[str, float | int | str] = {
        "groupby": groupby,
        "n_planted": len(truth),
        "n_interactions": n,
    }
    in_pair_ranks, overall_ranks, found = [], [], 0
    for i, (source, target, ligand, receptor) in enumerate(truth):
        in_pair, rank = n + 1, n + 1
        mine = table[(table["true_source"] == source) & (table["true_target"] == target)]
        # Several groups may stand for one type (a split cluster): the best of them counts.
        for _, pair in mine.groupby(["source", "target"], sort=False):
            hit = np.flatnonzero(
                (pair["ligand_complex"] == ligand).to_numpy()
                & (pair["receptor_complex"] == receptor).to_numpy()
            )
            if hit.size:
                in_pair = min(in_pair, int(hit[0]) + 1)
                rank = min(rank, int(pair.index[hit[0]]) + 1)
        found += rank <= n
        in_pair_ranks.append(in_pair)
        overall_ranks.append(rank)
        out[f"rank_in_pair_{i}"] = in_pair
        out[f"rank_overall_{i}"] = rank
    top1pct = max(1, int(np.ceil(0.01 * n)))
    ranks = np.asarray(overall_ranks)
    out.update(
        n_found=int(found),
        max_rank_in_pair=int(max(in_pair_ranks)),
        max_rank_overall=int(ranks.max()),
        median_rank_overall=float(np.median(ranks)),
        share_top10=float(np.mean(ranks <= 10)),
        share_top1pct=float(np.mean(ranks <= top1pct)),
        top1pct_rows=top1pct,
    )
    return out


def _majority_types(adata: AnnData, groupby: str) -> dict[str, str]:
    """Group label -> the true cell type most of its cells have (identity for the truth column)."""
    if groupby in ("", "cell_type") or groupby not in adata.obs:
        types = adata.obs["cell_type"].astype(str).unique()
        return {t: t for t in types}
    crosstab = pd.crosstab(adata.obs[groupby].astype(str), adata.obs["cell_type"].astype(str))
    return crosstab.idxmax(axis=1).to_dict()


# -------------------------------------------------------------------------------- checks
