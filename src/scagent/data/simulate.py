"""Ground-truth simulator: raw UMI counts from a Splatter-like gamma-Poisson model with known truth.

The model, per cell ``c`` and gene ``g``::

    profile    q[k, g]  = softmax_g(base[g] + ln2 * type_log2fc[t, g] + batch[b, g]
                                    + ln2 * condition_log2fc[d, g] + sample[s, g])
    mean       mu[c, g] = L[c] * q[k(c), g]                    L ~ log-normal(mean_library_size)
    counts     X[c, g]  ~ NB(mean mu, variance mu + dispersion * mu^2)

where a profile ``k`` is one (cell state, sample) pair and the sample fixes batch and
condition. Splatter (Zappia et al. 2017, Genome Biol 18:174) is an R package and simulates
dense matrices; nothing in the Python stack simulates sparse counts at a million cells, so
the sampler is written here. It draws the negative binomial exactly, but only where counts
are likely: high-mean genes get a dense gamma draw and a Poisson draw per entry; low-mean
genes use the compound-Poisson form of the negative binomial (a Poisson number of clusters,
each of logarithmic size), which is sampled by thinning a Poisson process whose intensity
factorises as ``L[c] * q[k, g]``, so the work is proportional to the counts, not to
cells x genes.

Cells are generated in blocks of 1024 with their own random streams, so the matrix depends
on ``seed`` only (not on ``chunk_size``), and each block is written straight into the CSR
arrays: no dense cells x genes matrix and no second copy of the result ever exists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent.data._celltypes import (
    CATALOGUE,
    DEFAULT_PBMC_PROPORTIONS,
    HOUSEKEEPING,
    LINEAGE,
    MITO,
    RIBO,
    HemoglobinGenes,
    lookup_cell_type,
    simulator_cell_types,
)
from scagent.errors import InvalidParameterError

__all__ = ["simulate", "simulator_cell_types"]

#: Cells per independent random stream, sampled and sorted together.
_RNG_BLOCK = 1024
#: A gene whose expected count in a profile is at least this is sampled densely there.
#: Dense costs ~40 ns per entry, sparse ~150 ns per count: break-even near 0.3.
_DENSE_MEAN = 1.0
#: Number of discrete expression steps along the trajectory (pseudotime itself is continuous).
_N_LINEAGE_BINS = 50
#: Standard deviation (natural log) of the per-sample, per-gene random effect.
_SAMPLE_SIGMA = 0.1
#: Share of filler genes in each type's random up/down program, and its median |log2fc|.
_TYPE_PROGRAM_FRACTION = 0.03
_TYPE_PROGRAM_LOG2FC = 1.0
#: Baseline shares of a cell's counts.
_MITO_SHARE = 0.05
_RIBO_SHARE = 0.20
_MARKER_SHARE = 2e-4  # median per marker gene outside its type (0.6 UMI at 3000 per cell)
_HB_SHARE = 2e-6  # per haemoglobin gene outside erythroid cells (ambient)
_HB_ERYTHROID_SHARE = 0.05  # per haemoglobin gene in erythroid cells
#: Spread (sd of the natural log) of filler-gene baseline means; real 10x PBMC data: ~1.3
#: among detected genes, with a long tail of barely detected ones.
_FILLER_LOG_SD = 2.0
#: Filler genes that rise or fall along the trajectory: how many, by how much (log2), and
#: the slope of their logistic curve (gentle enough to be smooth over pseudotime).
_N_TRAJECTORY_FILLERS = 20
_TRAJECTORY_LOG2FC = 3.0
_TRAJECTORY_SLOPE = 6.0


def simulate(
    n_cells: int = 2000,
    n_genes: int = 2000,
    *,
    cell_types: Sequence[str] | None = None,
    proportions: Sequence[float] | None = None,
    species: Literal["human", "mouse"] = "human",
    n_batches: int = 1,
    batch_effect: float = 0.3,
    n_conditions: int = 1,
    samples_per_condition: int = 2,
    n_de_genes: int = 50,
    de_log2fc: float = 1.0,
    doublet_rate: float = 0.0,
    trajectory: bool = False,
    mean_library_size: float = 3000,
    library_size_sigma: float = 0.4,
    dispersion: float = 0.2,
    marker_log2fc: float = 3.0,
    chunk_size: int = 20000,
    seed: int = 0,
) -> ad.AnnData:
    """Simulate raw UMI counts of known cell types, batches, conditions, doublets and a lineage.

    The result looks like fresh Cell Ranger output (integer counts in a sparse ``X``,
    nothing computed) plus truth columns that let every later step be scored.

    Parameters
    ----------
    n_cells, n_genes
        Size of the matrix. ``n_genes`` must hold the named genes (markers of the whole
        catalogue, mitochondrial, ribosomal, haemoglobin and housekeeping genes, about 230);
        the rest are synthetic filler genes named ``SIMG00001`` (mouse ``Simg00001``).
    cell_types
        Names from the catalogue (:func:`simulator_cell_types`, case-insensitive). Default:
        eight PBMC types with PBMC-like shares.
    proportions
        Share of each type, summing to 1 (default: PBMC shares for the default types, equal
        shares otherwise).
    species
        ``"human"`` (upper-case symbols) or ``"mouse"`` (MGI symbols, e.g. ``Cd3e``, ``mt-Nd1``).
    n_batches, batch_effect
        Batches are assigned per sample (replicate ``i`` of every condition goes to batch
        ``i mod n_batches`` when ``n_batches <= samples_per_condition``, so batch and
        condition are not confounded; otherwise samples go round-robin). Each batch
        multiplies every gene by a log-normal factor with sigma ``batch_effect``.
    n_conditions, samples_per_condition
        Samples ``ctrl_1, ctrl_2, stim_1, ...`` nested in conditions (``ctrl``, then
        ``stim`` or ``stim1, stim2, ...``). Every sample has a small per-gene random
        effect (sigma 0.1), so pseudobulk replicates vary as real ones do.
    n_de_genes, de_log2fc
        Per non-reference condition, ``n_de_genes`` filler genes (drawn from the better
        expressed half) change by ``+de_log2fc`` (half of them) or ``-de_log2fc`` (the
        other half) against ``ctrl``, the same in every cell type.
    doublet_rate
        Share of cells (exactly ``round(doublet_rate * n_cells)``) that are the sum of two
        cells of different types from the same sample. Such a cell keeps its first parent's
        type in ``obs['cell_type']``; the second parent's type is in
        ``obs['doublet_partner_type']`` (missing for singlets) and ``obs['is_doublet']`` is True.
    trajectory
        Simulate one continuous lineage, HSPC -> erythroid: cells of these two types (added
        with a share of ``1 / (n_types + 2)`` each if absent) get ``obs['pseudotime']`` in
        [0, 1] (HSPC below 0.5, erythroid above; missing for other cells), and their
        expression moves smoothly from one type to the other, with extra filler genes
        rising or falling along sigmoid curves.
    mean_library_size, library_size_sigma
        Log-normal expected total count per cell: mean ``mean_library_size``, sigma (log
        scale) ``library_size_sigma``.
    dispersion
        Negative-binomial dispersion (variance = mu + dispersion * mu^2); 0 gives Poisson.
    marker_log2fc
        Up-regulation of each type's markers in that type.
    chunk_size
        Upper bound on the cells whose intermediate arrays are in memory at once. Cells are
        generated in blocks of 1024 (each with its own random stream, sorted and written
        straight into the CSR arrays), which never exceeds it; values below 1024 act as
        1024. The counts do not depend on it. Peak memory is about the final matrix plus
        one block (~100 MB at 20,000 genes).
    seed
        Non-negative integer; the same seed gives the same matrix.

    Returns
    -------
    AnnData with

    ``X``
        ``scipy.sparse.csr_matrix``, float32 integer counts, int32 indices (int64 beyond
        2**31 - 1 non-zeros), sorted indices. obs names ``cell_000001``...; var names are
        gene symbols.
    ``obs``
        ``cell_type`` (categorical), ``cell_ontology_id``, ``batch``, ``sample``,
        ``condition``, ``true_library_size`` (expected total count, summed over both
        parents for a doublet), ``is_doublet``, ``doublet_partner_type``, and ``pseudotime``
        when ``trajectory``.
    ``var``
        ``is_marker_of`` (comma-separated simulated types whose catalogue markers include
        the gene, else ``''``), ``mito``, ``ribo``, ``hb``.
    ``uns['simulation']``
        Every parameter (resolved), ``markers`` (type -> genes), ``cell_ontology_ids``
        (type -> CL id), ``de_genes`` (condition -> {gene: log2fc}), ``reference_condition``,
        ``sample_batch``, ``sample_condition``, ``trajectory_genes`` (gene -> log2 change
        from pseudotime 0 to 1, for genes changing at least 4-fold), ``truth_columns``
        (the obs columns above, which are truth and not traces of analysis) and the model.

    Raises
    ------
    InvalidParameterError
        If a parameter is out of range, naming it.

    Examples
    --------
    >>> adata = simulate(2000, 2000, n_batches=2, n_conditions=2, doublet_rate=0.05)
    >>> adata.obs["cell_type"].value_counts()  # doctest: +SKIP
    """
    types, props = _resolve_cell_types(cell_types, proportions, trajectory)
    _validate(
        n_cells=n_cells, n_genes=n_genes, species=species, n_batches=n_batches,
        batch_effect=batch_effect, n_conditions=n_conditions,
        samples_per_condition=samples_per_condition, n_de_genes=n_de_genes,
        de_log2fc=de_log2fc, doublet_rate=doublet_rate, mean_library_size=mean_library_size,
        library_size_sigma=library_size_sigma, dispersion=dispersion,
        marker_log2fc=marker_log2fc, chunk_size=chunk_size, seed=seed,
        n_types=len(types), props=props,
    )  # fmt: skip
    n_cells, n_genes, seed = int(n_cells), int(n_genes), int(seed)
    design_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))

    genes = _gene_universe(species, n_genes, types)
    design = _SampleDesign.build(n_conditions, samples_per_condition, n_batches)
    model = _build_profiles(
        design_rng, genes, types, design, species=species, batch_effect=batch_effect,
        n_de_genes=n_de_genes, de_log2fc=de_log2fc, trajectory=trajectory,
        marker_log2fc=marker_log2fc,
    )  # fmt: skip
    cells = _draw_cells(
        design_rng, n_cells, types, props, design, model, trajectory=trajectory,
        doublet_rate=doublet_rate, mean_library_size=mean_library_size,
        library_size_sigma=library_size_sigma,
    )  # fmt: skip
    X = _sample_counts(model.profiles, cells, n_genes, dispersion, chunk_size, seed)

    params = {
        "n_cells": n_cells, "n_genes": n_genes, "cell_types": list(types),
        "proportions": [float(p) for p in props], "species": species,
        "n_batches": int(n_batches), "batch_effect": float(batch_effect),
        "n_conditions": int(n_conditions), "samples_per_condition": int(samples_per_condition),
        "n_de_genes": int(n_de_genes) if n_conditions > 1 else 0,
        "de_log2fc": float(de_log2fc), "doublet_rate": float(doublet_rate),
        "trajectory": bool(trajectory), "mean_library_size": float(mean_library_size),
        "library_size_sigma": float(library_size_sigma), "dispersion": float(dispersion),
        "marker_log2fc": float(marker_log2fc), "chunk_size": int(chunk_size), "seed": seed,
    }  # fmt: skip
    return _assemble(X, genes, types, design, model, cells, params)


# ---------------------------------------------------------------------------------------------
# parameters


def _resolve_cell_types(
    cell_types: Sequence[str] | None, proportions: Sequence[float] | None, trajectory: bool
) -> tuple[list[str], np.ndarray]:
    if cell_types is None:
        types = list(DEFAULT_PBMC_PROPORTIONS)
        default_props: list[float] | None = list(DEFAULT_PBMC_PROPORTIONS.values())
    else:
        if isinstance(cell_types, str):
            cell_types = [cell_types]
        types = [lookup_cell_type(name).name for name in cell_types]
        default_props = None
        if not types:
            raise InvalidParameterError("cell_types: give at least one cell type")
        duplicated = sorted({t for t in types if types.count(t) > 1})
        if duplicated:
            raise InvalidParameterError(f"cell_types: duplicated {duplicated}")
    if proportions is None:
        props = np.array(default_props or [1.0 / len(types)] * len(types), dtype=float)
    else:
        try:
            props = np.asarray(list(proportions), dtype=float)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"proportions: must be a sequence of numbers, got {proportions!r}"
            ) from None
        if props.ndim != 1 or props.size != len(types):
            raise InvalidParameterError(
                f"proportions: need one value per cell type ({len(types)}), got {props.size}"
            )
        if not np.all(np.isfinite(props)) or np.any(props < 0):
            raise InvalidParameterError("proportions: values must be finite and >= 0")
        if abs(props.sum() - 1.0) > 1e-6:
            raise InvalidParameterError(f"proportions: must sum to 1, got {props.sum():.6g}")
    if trajectory:
        missing = [t for t in LINEAGE if t not in types]
        if missing:
            # The lineage types join with an equal share each; the given shares fill the rest.
            share = 1.0 / (len(types) + len(missing))
            props = np.concatenate([props * (1 - share * len(missing)), [share] * len(missing)])
            types = types + missing
    return types, props / props.sum()


def _validate(*, n_types: int, props: np.ndarray, **p) -> None:
    def bad(name: str, why: str) -> InvalidParameterError:
        return InvalidParameterError(f"{name}: {why}, got {p[name]!r}")

    def integer(name: str, minimum: int) -> None:
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise bad(name, "must be an integer")
        if value < minimum:
            raise bad(name, f"must be >= {minimum}")

    def number(name: str, minimum: float | None = 0.0, strict: bool = False) -> None:
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise bad(name, "must be a number")
        if not math.isfinite(value):
            raise bad(name, "must be finite")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise bad(name, f"must be {'>' if strict else '>='} {minimum}")

    if p["species"] not in ("human", "mouse"):
        raise bad("species", "must be 'human' or 'mouse'")
    for name, minimum in [
        ("n_cells", 1), ("n_genes", 1), ("n_batches", 1), ("n_conditions", 1),
        ("samples_per_condition", 1), ("n_de_genes", 0), ("chunk_size", 1), ("seed", 0),
    ]:  # fmt: skip
        integer(name, minimum)
    for name in ("batch_effect", "library_size_sigma", "dispersion", "marker_log2fc"):
        number(name)
    number("mean_library_size", strict=True)
    number("de_log2fc", minimum=None)
    number("doublet_rate")
    if p["doublet_rate"] >= 0.5:
        raise bad("doublet_rate", "must be < 0.5")
    n_samples = p["n_conditions"] * p["samples_per_condition"]
    if p["n_batches"] > n_samples:
        raise bad("n_batches", f"must be <= the number of samples ({n_samples})")
    minimum_genes = len(_named_genes(p["species"]))
    if p["n_genes"] < minimum_genes:
        raise bad("n_genes", f"must be >= {minimum_genes} (the named marker and QC genes)")
    n_fillers = p["n_genes"] - minimum_genes
    if p["n_conditions"] > 1 and p["n_de_genes"] > n_fillers // 2:
        raise bad("n_de_genes", f"must be <= {n_fillers // 2} with n_genes={p['n_genes']}")
    if p["doublet_rate"] > 0 and np.count_nonzero(props) < 2:
        raise bad("doublet_rate", "needs at least two cell types with a positive proportion")


# ---------------------------------------------------------------------------------------------
# genes, samples, expression profiles


@dataclass(frozen=True)
class _Genes:
    names: np.ndarray  # gene symbols, unique
    index: dict[str, int]
    mito: np.ndarray  # bool masks
    ribo: np.ndarray
    hb: np.ndarray
    markers: dict[str, list[str]]  # simulated type -> its markers
    n_named: int  # genes before the synthetic fillers


def _named_genes(species: str) -> list[str]:
    names: dict[str, None] = {}
    for ct in CATALOGUE:
        names.update(dict.fromkeys(ct.markers(species)))
    for group in (MITO[species], RIBO[species], HemoglobinGenes[species], HOUSEKEEPING[species]):
        names.update(dict.fromkeys(group))
    return list(names)


def _gene_universe(species: str, n_genes: int, types: list[str]) -> _Genes:
    named = _named_genes(species)
    prefix = "SIMG" if species == "human" else "Simg"
    width = max(5, len(str(n_genes - len(named))))
    fillers = [f"{prefix}{i:0{width}d}" for i in range(1, n_genes - len(named) + 1)]
    names = np.array(named + fillers, dtype=object)
    index = {g: i for i, g in enumerate(names)}
    return _Genes(
        names=names,
        index=index,
        mito=np.isin(names, MITO[species]),
        ribo=np.isin(names, RIBO[species]),
        hb=np.isin(names, HemoglobinGenes[species]),
        markers={t: list(lookup_cell_type(t).markers(species)) for t in types},
        n_named=len(named),
    )


@dataclass(frozen=True)
class _SampleDesign:
    conditions: list[str]
    samples: list[str]
    sample_condition: np.ndarray  # sample -> condition index
    sample_batch: np.ndarray  # sample -> batch index
    batches: list[str]

    @classmethod
    def build(cls, n_conditions: int, per_condition: int, n_batches: int) -> _SampleDesign:
        if n_conditions == 1:
            conditions = ["ctrl"]
        elif n_conditions == 2:
            conditions = ["ctrl", "stim"]
        else:
            conditions = ["ctrl"] + [f"stim{i}" for i in range(1, n_conditions)]
        samples, cond, rep = [], [], []
        for ci, c in enumerate(conditions):
            for r in range(per_condition):
                samples.append(f"{c}_{r + 1}")
                cond.append(ci)
                rep.append(r)
        if n_batches <= per_condition:
            batch = np.array(rep) % n_batches  # every batch holds every condition
        else:
            batch = np.arange(len(samples)) % n_batches
        return cls(
            conditions=conditions,
            samples=samples,
            sample_condition=np.array(cond),
            sample_batch=batch,
            batches=[f"batch{i + 1}" for i in range(n_batches)],
        )


@dataclass(frozen=True)
class _Model:
    profiles: np.ndarray  # (n_states * n_samples, n_genes) float64, rows sum to 1
    n_samples: int
    type_state: np.ndarray  # type index -> state index (-1 for lineage types)
    lineage_types: tuple[int, ...]  # type indices of the lineage (start, end) or ()
    lineage_first_state: int
    de_genes: dict[str, dict[str, float]]
    trajectory_genes: dict[str, float]

    def profile_of(self, state: np.ndarray, sample: np.ndarray) -> np.ndarray:
        return state * self.n_samples + sample


def _build_profiles(
    rng: np.random.Generator,
    genes: _Genes,
    types: list[str],
    design: _SampleDesign,
    *,
    species: str,
    batch_effect: float,
    n_de_genes: int,
    de_log2fc: float,
    trajectory: bool,
    marker_log2fc: float,
) -> _Model:
    G = genes.names.size
    filler = np.arange(genes.n_named, G)
    ln2 = math.log(2.0)

    # Baseline shares of a cell's counts; log-normal fillers match the spread of real genes.
    share = np.zeros(G)
    markers_all = [genes.index[g] for ct in CATALOGUE for g in ct.markers(species)]
    share[markers_all] = _MARKER_SHARE * rng.lognormal(0.0, 0.7, len(markers_all))
    share[genes.mito] = _MITO_SHARE * _dirichlet_like(rng, genes.mito.sum(), 0.5)
    share[genes.ribo] = _RIBO_SHARE * _dirichlet_like(rng, genes.ribo.sum(), 0.4)
    share[genes.hb] = _HB_SHARE
    for g, s in HOUSEKEEPING[species].items():
        share[genes.index[g]] = s
    if filler.size:
        w = rng.lognormal(0.0, _FILLER_LOG_SD, filler.size)
        share[filler] = max(0.05, 1.0 - share.sum()) * w / w.sum()
    base = np.log(share)

    # Per type (log2): markers up, a random program of fillers up/down, mito/ribo shifts.
    type_log2 = np.zeros((len(types), G))
    for t, name in enumerate(types):
        type_log2[t, [genes.index[g] for g in genes.markers[name]]] = marker_log2fc
        if name == "erythroid":
            type_log2[t, genes.hb] = np.log2(_HB_ERYTHROID_SHARE / _HB_SHARE)
        n_prog = round(_TYPE_PROGRAM_FRACTION * filler.size)
        prog = rng.choice(filler, n_prog, replace=False)
        sign = rng.choice([-1.0, 1.0], n_prog)
        type_log2[t, prog] = sign * _TYPE_PROGRAM_LOG2FC * rng.lognormal(0.0, 0.3, n_prog)
        type_log2[t, genes.mito] += np.clip(rng.normal(0.0, 0.35), -0.7, 0.6)
        type_log2[t, genes.ribo] += np.clip(rng.normal(0.0, 0.3), -0.6, 0.6)

    # Cell states: one per discrete type, plus pseudotime bins of the lineage.
    lineage = tuple(types.index(t) for t in LINEAGE) if trajectory else ()
    type_state = np.full(len(types), -1)
    discrete = [t for t in range(len(types)) if t not in lineage]
    type_state[discrete] = np.arange(len(discrete))
    state_log2 = [type_log2[t] for t in discrete]
    trajectory_genes: dict[str, float] = {}
    if trajectory:
        start, end = type_log2[lineage[0]], type_log2[lineage[1]]
        # Drawn from the best-expressed quarter of fillers, so the trends are visible.
        well_expressed = filler[share[filler] >= np.quantile(share[filler], 0.75)]
        n_traj = min(_N_TRAJECTORY_FILLERS, well_expressed.size // 2)
        traj = rng.choice(well_expressed, n_traj, replace=False)
        amp = rng.choice([-_TRAJECTORY_LOG2FC, _TRAJECTORY_LOG2FC], n_traj)
        mid = rng.uniform(0.35, 0.65, n_traj)
        centres = (np.arange(_N_LINEAGE_BINS) + 0.5) / _N_LINEAGE_BINS
        for t in centres:
            log2 = (1.0 - t) * start + t * end
            log2[traj] += amp * _sigmoid01(t, mid)
            state_log2.append(log2)
        change = end - start
        change[traj] += amp
        # Recorded: genes changing at least 4-fold (weaker shifts of the two types' random
        # programs are real but drown in counting noise).
        for g in np.flatnonzero(np.abs(change) >= 2.0):
            trajectory_genes[str(genes.names[g])] = float(change[g])
    state_log2_arr = np.asarray(state_log2)

    # Per sample: batch factor, condition DE, small random effect (all natural log).
    n_samples = len(design.samples)
    batch_log = (
        rng.normal(0.0, batch_effect, (len(design.batches), G))
        if len(design.batches) > 1
        else np.zeros((1, G))
    )
    cond_log2 = np.zeros((len(design.conditions), G))
    de_genes: dict[str, dict[str, float]] = {}
    if len(design.conditions) > 1 and n_de_genes > 0:
        candidates = filler[share[filler] >= np.median(share[filler])]
        for ci, cond in enumerate(design.conditions[1:], start=1):
            chosen = rng.choice(candidates, n_de_genes, replace=False)
            lfc = np.where(np.arange(n_de_genes) % 2 == 0, de_log2fc, -de_log2fc)
            cond_log2[ci, chosen] = lfc
            de_genes[cond] = {
                str(genes.names[g]): float(f) for g, f in zip(chosen, lfc, strict=True)
            }
    sample_log = (
        batch_log[design.sample_batch]
        + ln2 * cond_log2[design.sample_condition]
        + rng.normal(0.0, _SAMPLE_SIGMA, (n_samples, G))
    )

    # profiles[state * n_samples + sample] = softmax(base + state + sample).
    logits = (base + ln2 * state_log2_arr)[:, None, :] + sample_log[None, :, :]
    logits = logits.reshape(-1, G)
    logits -= logits.max(axis=1, keepdims=True)
    profiles = np.exp(logits)
    profiles /= profiles.sum(axis=1, keepdims=True)
    return _Model(
        profiles=profiles,
        n_samples=n_samples,
        type_state=type_state,
        lineage_types=lineage,
        lineage_first_state=len(discrete),
        de_genes=de_genes,
        trajectory_genes=trajectory_genes,
    )


def _dirichlet_like(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    w = rng.lognormal(0.0, sigma, int(n))
    return w / w.sum()


def _sigmoid01(t: float, mid: np.ndarray, slope: float = _TRAJECTORY_SLOPE) -> np.ndarray:
    """A logistic curve rescaled to run from exactly 0 at t=0 to 1 at t=1."""

    def s(x):
        return 1.0 / (1.0 + np.exp(-slope * (x - mid)))

    return (s(t) - s(0.0)) / (s(1.0) - s(0.0))


# ---------------------------------------------------------------------------------------------
# cells


@dataclass(frozen=True)
class _Cells:
    type_idx: np.ndarray
    sample: np.ndarray
    library: np.ndarray  # expected total count of the (first) cell
    profile: np.ndarray
    pseudotime: np.ndarray | None
    doublets: np.ndarray  # sorted cell indices
    partner_type: np.ndarray  # per doublet
    partner_library: np.ndarray
    partner_profile: np.ndarray


def _draw_cells(
    rng: np.random.Generator,
    n_cells: int,
    types: list[str],
    props: np.ndarray,
    design: _SampleDesign,
    model: _Model,
    *,
    trajectory: bool,
    doublet_rate: float,
    mean_library_size: float,
    library_size_sigma: float,
) -> _Cells:
    n_types = len(types)
    type_idx = rng.choice(n_types, n_cells, p=props).astype(np.int32)
    sample = rng.integers(0, len(design.samples), n_cells).astype(np.int32)

    def library(n: int) -> np.ndarray:
        # Log-normal with the requested mean (not median).
        mu = math.log(mean_library_size) - library_size_sigma**2 / 2
        return rng.lognormal(mu, library_size_sigma, n)

    def states(tidx: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        state = model.type_state[tidx].copy()
        if not trajectory:
            return state, None
        pt = np.full(tidx.size, np.nan)
        for half, t in enumerate(model.lineage_types):
            where = tidx == t
            pt[where] = rng.uniform(0.5 * half, 0.5 * (half + 1), where.sum())
        on = ~np.isnan(pt)
        bins = np.minimum((pt[on] * _N_LINEAGE_BINS).astype(int), _N_LINEAGE_BINS - 1)
        state[on] = model.lineage_first_state + bins
        return state, pt

    lib = library(n_cells)
    state, pseudotime = states(type_idx)

    n_doublets = round(doublet_rate * n_cells)
    doublets = np.sort(rng.choice(n_cells, n_doublets, replace=False))
    partner_type = np.empty(n_doublets, dtype=np.int32)
    own = type_idx[doublets]
    for t in range(n_types):
        where = own == t
        if where.any():
            cond = props.copy()
            cond[t] = 0.0  # a doublet's parents are of different types
            partner_type[where] = rng.choice(n_types, where.sum(), p=cond / cond.sum())
    partner_state, _ = states(partner_type)
    return _Cells(
        type_idx=type_idx,
        sample=sample,
        library=lib,
        profile=model.profile_of(state, sample),
        pseudotime=pseudotime,
        doublets=doublets,
        partner_type=partner_type,
        partner_library=library(n_doublets),
        partner_profile=model.profile_of(partner_state, sample[doublets]),
    )


# ---------------------------------------------------------------------------------------------
# counts


def _sample_profile(
    rng: np.random.Generator,
    lib: np.ndarray,
    q: np.ndarray,
    dispersion: float,
    dense_mean: float = _DENSE_MEAN,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Negative-binomial counts of cells sharing one profile ``q``: (rows, cols, values).

    ``X[i, g] ~ NB(mean lib[i] * q[g], dispersion)``; duplicates (row, col) are to be summed.
    """
    rows, cols, vals = [], [], []
    dense = q * lib.mean() >= dense_mean

    # Dense genes: gamma-Poisson per entry, in float32 (twice as fast as float64).
    dg = np.flatnonzero(dense)
    if dg.size:
        step = max(1, 4_000_000 // dg.size)  # bound the dense block to ~16 MB per array
        qd = q[dg].astype(np.float32)
        for lo in range(0, lib.size, step):
            mu = np.outer(lib[lo : lo + step].astype(np.float32), qd)
            if dispersion > 0:
                lam = rng.standard_gamma(1.0 / dispersion, size=mu.shape, dtype=np.float32)
                lam *= np.float32(dispersion)
                lam *= mu
            else:
                lam = mu
            counts = rng.poisson(lam)
            r, c = np.nonzero(counts)
            rows.append((r + lo).astype(np.int32))
            cols.append(dg[c].astype(np.int32))
            vals.append(counts[r, c].astype(np.float32))

    # Sparse genes: NB(mu, phi) is a Poisson(log1p(phi*mu)/phi) number of clusters, each of
    # Logarithmic(phi*mu/(1+phi*mu)) size. Draw the dominating Poisson(mu) process instead
    # (its intensity lib[i] * q[g] factorises: a Poisson total per gene, spread over the
    # cells in proportion to lib) and keep each point with probability
    # log1p(phi*mu)/(phi*mu): the work is proportional to the counts, not to cells x genes.
    sg = np.flatnonzero(~dense)
    if sg.size:
        qs = q[sg]
        cum_lib = np.cumsum(lib)
        per_gene = rng.poisson(qs * cum_lib[-1])
        gene = np.repeat(np.arange(sg.size, dtype=np.int32), per_gene)
        cell = _inverse_cdf(cum_lib, rng.random(gene.size) * cum_lib[-1])
        if dispersion > 0:
            x = lib[cell] * qs[gene]
            x *= dispersion
            keep = rng.random(gene.size) * x < np.log1p(x)
            cell, gene, x = cell[keep], gene[keep], x[keep]
            size = rng.logseries(x / (1.0 + x)).astype(np.float32)
        else:
            size = np.ones(gene.size, dtype=np.float32)
        rows.append(cell.astype(np.int32))
        cols.append(sg[gene].astype(np.int32))
        vals.append(size)
    if not rows:
        empty = np.empty(0, dtype=np.int32)
        return empty, empty, np.empty(0, dtype=np.float32)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _inverse_cdf(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the first ``cum`` entry above each ``u`` (``searchsorted(side='right')``).

    A guide table (Devroye 1986, III.2.4) puts each draw within a step or two of its answer,
    ten times faster than ``np.searchsorted``'s binary search for random draws.
    """
    n = cum.size
    m = 4 * n
    guide = np.searchsorted(cum, np.arange(m) * (cum[-1] / m), side="right")
    capped = np.append(cum, np.inf)  # the sentinel stops every walk at n
    idx = guide[np.minimum((u * (m / cum[-1])).astype(np.intp), m - 1)]
    while True:
        step = capped[idx] <= u
        if not step.any():
            break
        idx += step
    return np.minimum(idx, n - 1)


def _sample_rows(
    rng: np.random.Generator,
    profiles: np.ndarray,
    profile: np.ndarray,
    lib: np.ndarray,
    row: np.ndarray,
    dispersion: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triplets (row, gene, count) for generated cells; ``row`` maps each cell to its row."""
    order = np.argsort(profile, kind="stable")
    keys, starts = np.unique(profile[order], return_index=True)
    rows, cols, vals = [], [], []
    for k, members in zip(keys, np.split(order, starts[1:]), strict=True):
        r, c, v = _sample_profile(rng, lib[members], profiles[k], dispersion)
        rows.append(row[members][r])
        cols.append(c)
        vals.append(v)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _to_csr_arrays(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, n_genes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort triplets by (row, gene) and sum repeats: (non-zeros per row, genes, counts).

    The count rides in the low bits of one int64 key, because numpy's vectorised sort of
    plain integers is several times faster than scipy's per-row sort of index pairs.
    """
    value_bits = 63 - int(n_rows * n_genes).bit_length()
    key = rows.astype(np.int64) * n_genes + cols
    key <<= value_bits
    key |= np.minimum(vals, 2**value_bits - 1).astype(np.int64)
    key.sort()
    value = key & (2**value_bits - 1)
    key >>= value_bits
    first = np.empty(key.size, dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.add.reduceat(value, starts) if starts.size else value
    key = key[starts]
    row_nnz = np.bincount(key // n_genes, minlength=n_rows)
    return row_nnz, (key % n_genes).astype(np.int32), counts.astype(np.float32)


def _sample_counts(
    profiles: np.ndarray,
    cells: _Cells,
    n_genes: int,
    dispersion: float,
    chunk_size: int,
    seed: int,
) -> sp.csr_matrix:
    """The count matrix, generated block by block straight into its CSR arrays.

    A block of ``_RNG_BLOCK`` cells has its own random stream (so the counts depend on
    ``seed`` alone) and is sorted on its own: sorting ~1e6 keys in cache is twice as fast
    per key as sorting a 20,000-cell chunk at once. ``chunk_size`` only caps the working
    set, which a block never exceeds.
    """
    n_cells = cells.type_idx.size
    out = _CsrBuilder(n_cells, n_genes, _expected_nnz(profiles, cells, dispersion))
    for b0 in range(0, n_cells, _RNG_BLOCK):
        b1 = min(n_cells, b0 + _RNG_BLOCK)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, b0 // _RNG_BLOCK)))
        # A doublet's second parent is generated beside it and written to its row.
        d0, d1 = np.searchsorted(cells.doublets, [b0, b1])
        rows, cols, vals = _sample_rows(
            rng,
            profiles,
            np.concatenate([cells.profile[b0:b1], cells.partner_profile[d0:d1]]),
            np.concatenate([cells.library[b0:b1], cells.partner_library[d0:d1]]),
            np.concatenate([np.arange(b0, b1), cells.doublets[d0:d1]]) - b0,
            dispersion,
        )
        out.append(*_to_csr_arrays(rows, cols, vals, b1 - b0, n_genes))
    return out.finish()


def _expected_nnz(profiles: np.ndarray, cells: _Cells, dispersion: float) -> float:
    """Expected non-zeros, slightly over (P(X > 0) is concave in the library size)."""
    profile = np.concatenate([cells.profile, cells.partner_profile])
    lib = np.concatenate([cells.library, cells.partner_library])
    n = np.bincount(profile, minlength=profiles.shape[0])
    used = np.flatnonzero(n)
    mean_lib = np.bincount(profile, weights=lib, minlength=profiles.shape[0])[used] / n[used]
    mu = mean_lib[:, None] * profiles[used]
    if dispersion > 0:
        p_nonzero = -np.expm1(-np.log1p(dispersion * mu) / dispersion)
    else:
        p_nonzero = -np.expm1(-mu)
    return float(n[used] @ p_nonzero.sum(axis=1))


class _CsrBuilder:
    """Appends CSR rows into arrays reserved once for the expected number of non-zeros.

    Stacking per-block pieces at the end (``scipy.sparse.vstack``) would hold every piece
    and the result at once, and freed pieces do not always return to the OS; writing each
    block in place keeps the peak near one final matrix plus one block. Untouched reserved
    pages are never resident; the rare overshoot of the estimate grows the arrays.
    """

    def __init__(self, n_rows: int, n_cols: int, expected_nnz: float) -> None:
        self.n_rows, self.n_cols = n_rows, n_cols
        capacity = int(expected_nnz * 1.02) + 16 * n_cols
        capacity = min(capacity, n_rows * n_cols)
        self.index_dtype = np.int32 if capacity < np.iinfo(np.int32).max else np.int64
        self.data = np.empty(capacity, dtype=np.float32)
        self.indices = np.empty(capacity, dtype=self.index_dtype)
        self.indptr = np.zeros(n_rows + 1, dtype=np.int64)
        self.nnz = 0
        self.row = 0

    def append(self, row_nnz: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        end = self.nnz + data.size
        if end > self.data.size:
            capacity = max(end, int(self.data.size * 1.25))
            self.data = np.resize(self.data, capacity)
            self.indices = np.resize(self.indices, capacity)
        self.data[self.nnz : end] = data
        self.indices[self.nnz : end] = indices
        self.indptr[self.row + 1 : self.row + 1 + row_nnz.size] = self.nnz + np.cumsum(row_nnz)
        self.nnz = end
        self.row += row_nnz.size

    def finish(self) -> sp.csr_matrix:
        index_dtype = np.int32 if self.nnz < np.iinfo(np.int32).max else np.int64
        indices = self.indices[: self.nnz]
        if indices.dtype != index_dtype:  # only when the estimate was far off
            indices = indices.astype(index_dtype)
        # Views into the reserved arrays: copying them would double the peak.
        return sp.csr_matrix(
            (self.data[: self.nnz], indices, self.indptr.astype(index_dtype)),
            shape=(self.n_rows, self.n_cols),
            copy=False,
        )


# ---------------------------------------------------------------------------------------------
# AnnData


def _assemble(
    X: sp.csr_matrix,
    genes: _Genes,
    types: list[str],
    design: _SampleDesign,
    model: _Model,
    cells: _Cells,
    params: dict,
) -> ad.AnnData:
    n_cells = cells.type_idx.size
    width = max(6, len(str(n_cells)))
    obs_names = pd.Index([f"cell_{i:0{width}d}" for i in range(1, n_cells + 1)])
    ontology = {t: lookup_cell_type(t).cell_ontology_id for t in types}

    def categorical(codes: np.ndarray, categories: list[str]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=categories)

    true_library = cells.library.copy()
    true_library[cells.doublets] += cells.partner_library
    is_doublet = np.zeros(n_cells, dtype=bool)
    is_doublet[cells.doublets] = True
    partner = np.full(n_cells, -1, dtype=np.int32)  # -1: missing (singlet)
    partner[cells.doublets] = cells.partner_type

    obs = pd.DataFrame(
        {
            "cell_type": categorical(cells.type_idx, types),
            "cell_ontology_id": pd.Categorical(
                np.array([ontology[t] for t in types])[cells.type_idx],
                categories=list(dict.fromkeys(ontology.values())),
            ),
            "batch": categorical(design.sample_batch[cells.sample], design.batches),
            "sample": categorical(cells.sample, design.samples),
            "condition": categorical(design.sample_condition[cells.sample], design.conditions),
            "true_library_size": true_library,
            "is_doublet": is_doublet,
            "doublet_partner_type": categorical(partner, types),
        },
        index=obs_names,
    )
    if cells.pseudotime is not None:
        obs["pseudotime"] = cells.pseudotime

    marker_of: dict[str, list[str]] = {}
    for t in types:
        for g in genes.markers[t]:
            marker_of.setdefault(g, []).append(t)
    var = pd.DataFrame(
        {
            "is_marker_of": [",".join(marker_of.get(g, [])) for g in genes.names],
            "mito": genes.mito,
            "ribo": genes.ribo,
            "hb": genes.hb,
        },
        index=pd.Index(genes.names.astype(str)),
    )
    simulation = {
        **params,
        "markers": {t: list(genes.markers[t]) for t in types},
        "cell_ontology_ids": ontology,
        "reference_condition": design.conditions[0],
        "de_genes": model.de_genes,
        "sample_batch": {
            s: design.batches[b] for s, b in zip(design.samples, design.sample_batch, strict=True)
        },
        "sample_condition": {
            s: design.conditions[c]
            for s, c in zip(design.samples, design.sample_condition, strict=True)
        },
        "sample_effect_sigma": _SAMPLE_SIGMA,
        # Ground truth, not results of analysis steps: an inspector should not read
        # ``cell_type`` or ``is_doublet`` here as annotation or doublet detection done.
        "truth_columns": list(obs.columns),
        "model": (
            "gamma-Poisson (negative binomial): X ~ NB(L * q[type, sample], dispersion); "
            "de_genes shared by all cell types; a doublet keeps its first parent's cell_type"
        ),
    }
    if params["trajectory"]:
        simulation["lineage"] = list(LINEAGE)
        simulation["trajectory_genes"] = model.trajectory_genes
    return ad.AnnData(X=X, obs=obs, var=var, uns={"simulation": simulation})
