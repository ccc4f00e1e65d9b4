"""CITE-seq simulator with planted protein-only populations, and the scores of an analysis against that truth.

RNA counts come from :func:`scagent.data.simulate`; antibody-derived tag (ADT) counts are
drawn per cell and antibody as a gamma-Poisson around::

    mean[c, p] = capture[c] * (ambient[p] * sticky[c] + signal[pop(c), p] * exp(N(0, 0.4)))

``capture`` is the cell's ADT capture efficiency (log-normal, shared by its antibodies),
``ambient`` the antibody's background (free antibody and non-specific binding: every cell
has it, some antibodies such as CD4 and HLA-DR carry a lot), ``sticky`` doubles it in
monocytes (Fc-receptor binding, which isotype controls reveal) and ``signal`` is the
specific staining of a positive population. Isotype controls carry background only.

Naive (CD45RA+) and memory (CD45RO+) T cells are planted with the *same* RNA profile: RNA
cannot tell them apart, the antibodies can. That is the case the multimodal paradigm is
for (Stoeckius et al. 2017; Hao et al. 2021, weighted nearest neighbours).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scagent.errors import InvalidDataError, InvalidParameterError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "CITE_POPULATIONS",
    "PROTEIN_KEY",
    "simulate_cite",
    "truth_recovery",
]

#: obsm key of the ADT counts (the modalities convention).
PROTEIN_KEY = "protein_counts"

#: Planted protein populations: name -> (RNA cell type of the simulator, share of cells).
CITE_POPULATIONS: dict[str, tuple[str, float]] = {
    "CD4 naive T cell": ("CD4 naive T cell", 0.22),
    "CD4 memory T cell": ("CD4 naive T cell", 0.18),
    "CD8 naive T cell": ("CD8 T cell", 0.10),
    "CD8 memory T cell": ("CD8 T cell", 0.10),
    "NK cell": ("NK cell", 0.10),
    "B cell": ("B cell", 0.12),
    "classical monocyte": ("classical monocyte", 0.13),
    "non-classical monocyte": ("non-classical monocyte", 0.05),
}

_CD4N, _CD4M, _CD8N, _CD8M, _NK, _B, _CM, _NCM = CITE_POPULATIONS
_T = (_CD4N, _CD4M, _CD8N, _CD8M)

#: The proteins that define each population in a gating strategy (lineage marker, and
#: CD45RA / CCR7 (CD197) for naive, CD45RO / CD25 for memory T cells); one of them should
#: top its cluster's protein markers.
DEFINING_PROTEINS: dict[str, list[str]] = {
    _CD4N: ["CD4", "CD45RA", "CD197"],
    _CD4M: ["CD4", "CD45RO", "CD25"],
    _CD8N: ["CD8a", "CD45RA", "CD197"],
    _CD8M: ["CD8a", "CD45RO"],
    _NK: ["CD56", "CD16"],
    _B: ["CD19"],
    _CM: ["CD14"],
    _NCM: ["CD16"],
}

# The panel: (antibody, ambient mean count, {population: mean specific signal}). The first
# nine define the populations, the isotype controls follow, then the rest of a typical
# TotalSeq PBMC panel. Signals and backgrounds are in the range of 10x PBMC CITE-seq data.
_PANEL: list[tuple[str, float, dict[str, float]]] = [
    ("CD3", 10, dict.fromkeys(_T, 250.0)),
    ("CD4", 30, {_CD4N: 150, _CD4M: 150, _CM: 40, _NCM: 30}),
    ("CD8a", 8, {_CD8N: 250, _CD8M: 250, _NK: 30}),
    ("CD45RA", 25, {_CD4N: 300, _CD8N: 300, _B: 300, _NK: 200, _CD4M: 15, _CD8M: 15,
                    _CM: 20, _NCM: 60}),
    ("CD45RO", 10, {_CD4M: 150, _CD8M: 150, _CM: 60, _NCM: 40, _CD4N: 5, _CD8N: 5}),
    ("CD14", 10, {_CM: 400, _NCM: 20}),
    ("CD16", 8, {_NCM: 500, _NK: 200}),
    ("CD19", 6, {_B: 150}),
    ("CD56", 12, {_NK: 200}),
    ("Mouse_IgG1_isotype", 6, {}),
    ("Mouse_IgG2a_isotype", 4, {}),
    ("Mouse_IgG2b_isotype", 5, {}),
    ("HLA-DR", 30, {_B: 300, _CM: 250, _NCM: 300}),
    ("CD11c", 10, {_CM: 150, _NCM: 150, _B: 10}),
    ("CD127", 6, {_CD4N: 60, _CD4M: 70, _CD8N: 40, _CD8M: 30}),
    ("CD197", 5, {_CD4N: 60, _CD8N: 60, _B: 30}),
    ("CD27", 8, {_CD4N: 80, _CD8N: 80, _CD4M: 50, _CD8M: 20, _B: 30}),
    ("CD25", 5, {_CD4M: 25}),
    ("CD123", 5, {_CM: 10}),
    ("CD34", 5, {}),
]  # fmt: skip
_N_DEFINING = 9
_MIN_PROTEINS = _N_DEFINING + 1  # the defining antibodies and one isotype control
_STICKY_TYPES = (_CM, _NCM)
_CAPTURE_SIGMA = 0.3
_SIGNAL_SIGMA = 0.6
_ADT_DISPERSION = 0.1


def _panel(n_proteins: int) -> list[tuple[str, float, dict[str, float]]]:
    panel = list(_PANEL[:n_proteins])
    # Beyond the curated panel: antibodies against nothing in blood (background only),
    # named so the gene mapping does not know them.
    for i in range(n_proteins - len(panel)):
        panel.append((f"ADT_EXTRA_{i + 1:02d}", 5.0, {}))
    return panel


def simulate_cite(
    n_cells: int = 3000,
    n_genes: int = 1500,
    *,
    n_proteins: int = 20,
    protein_depth: float = 1.0,
    seed: int = 0,
) -> AnnData:
    """Simulate a CITE-seq experiment: raw RNA counts plus ADT counts with known protein populations.

    Parameters
    ----------
    n_cells, n_genes
        Size of the RNA matrix (see :func:`scagent.data.simulate`).
    n_proteins
        Antibodies in the panel (at least 10): the nine that define the populations (CD3,
        CD4, CD8a, CD45RA, CD45RO, CD14, CD16, CD19, CD56), then up to three isotype
        controls, then the rest of a PBMC panel (HLA-DR, CD11c, CD127, CD197, CD27, CD25,
        CD123, CD34); beyond 20, background-only antibodies ``ADT_EXTRA_01``...
    protein_depth
        Multiplies every ADT mean (sequencing depth of the ADT library).
    seed
        Non-negative integer; the same seed gives the same data.

    Returns
    -------
    AnnData
        Raw RNA counts in ``X`` with the truth columns of :func:`scagent.data.simulate`
        (``obs['cell_type']`` is the RNA type), plus

        ``obsm['protein_counts']``
            DataFrame (cells x antibodies) of integer ADT counts.
        ``obs['true_protein_population']``
            The planted population (categorical), e.g. ``CD4 memory T cell``.
        ``uns['simulation']['cite']``
            ``populations`` (population -> RNA type), ``protein_only`` (groups of
            populations that share one RNA profile), ``defining_proteins``,
            ``isotype_controls``, ``ambient`` and ``signal`` per antibody, and the model.

    Raises
    ------
    InvalidParameterError
        If ``n_proteins`` < 10, ``protein_depth`` <= 0 or another parameter is out of range.

    Examples
    --------
    >>> adata = simulate_cite(2000, 1200, seed=1)
    >>> adata.obsm["protein_counts"].shape
    (2000, 20)
    """
    from scagent.data.simulate import simulate

    if isinstance(n_proteins, bool) or not isinstance(n_proteins, (int, np.integer)):
        raise InvalidParameterError(f"n_proteins: must be an integer, got {n_proteins!r}")
    if n_proteins < _MIN_PROTEINS:
        raise InvalidParameterError(
            f"n_proteins: must be >= {_MIN_PROTEINS} (the defining antibodies and one isotype "
            f"control), got {n_proteins}"
        )
    if not np.isfinite(protein_depth) or protein_depth <= 0:
        raise InvalidParameterError(f"protein_depth: must be > 0, got {protein_depth!r}")
    rna_types = list(dict.fromkeys(t for t, _ in CITE_POPULATIONS.values()))
    shares = {t: 0.0 for t in rna_types}
    for rna_type, share in CITE_POPULATIONS.values():
        shares[rna_type] += share
    adata = simulate(
        n_cells,
        n_genes,
        cell_types=rna_types,
        proportions=[shares[t] for t in rna_types],
        seed=seed,
    )
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))

    # Split each RNA type into its protein populations, in proportion to their shares.
    rna = adata.obs["cell_type"].astype(str).to_numpy()
    population = rna.astype(object)
    for rna_type in rna_types:
        pops = [p for p, (t, _) in CITE_POPULATIONS.items() if t == rna_type]
        idx = np.flatnonzero(rna == rna_type)
        if len(pops) > 1 and idx.size:
            w = np.array([CITE_POPULATIONS[p][1] for p in pops])
            population[idx] = rng.choice(pops, size=idx.size, p=w / w.sum())
    pop_names = list(CITE_POPULATIONS)
    pop_idx = pd.Categorical(population, categories=pop_names).codes

    panel = _panel(int(n_proteins))
    names = [name for name, _, _ in panel]
    ambient = np.array([a for _, a, _ in panel], dtype=float)
    signal = np.array([[sig.get(p, 0.0) for _, _, sig in panel] for p in pop_names], dtype=float)
    n = adata.n_obs
    capture = np.exp(rng.normal(-(_CAPTURE_SIGMA**2) / 2, _CAPTURE_SIGMA, size=n))
    sticky = np.where(np.isin(population, _STICKY_TYPES), 2.0, 1.0)
    spread = np.exp(rng.normal(-(_SIGNAL_SIGMA**2) / 2, _SIGNAL_SIGMA, size=(n, len(panel))))
    mean = capture[:, None] * (ambient[None, :] * sticky[:, None] + signal[pop_idx] * spread)
    mean *= float(protein_depth)
    lam = rng.gamma(1.0 / _ADT_DISPERSION, _ADT_DISPERSION, size=mean.shape) * mean
    counts = rng.poisson(lam).astype(np.int32)

    adata.obsm[PROTEIN_KEY] = pd.DataFrame(counts, index=adata.obs_names.copy(), columns=names)
    adata.obs["true_protein_population"] = pd.Categorical(population, categories=pop_names)
    simulation = adata.uns["simulation"]
    simulation["truth_columns"] = [*simulation["truth_columns"], "true_protein_population"]
    groups: dict[str, list[str]] = {}
    for p, (t, _) in CITE_POPULATIONS.items():
        groups.setdefault(t, []).append(p)
    simulation["cite"] = {
        "n_proteins": int(n_proteins),
        "protein_depth": float(protein_depth),
        "protein_key": PROTEIN_KEY,
        "populations": {p: t for p, (t, _) in CITE_POPULATIONS.items()},
        "population_shares": {p: float(s) for p, (_, s) in CITE_POPULATIONS.items()},
        "protein_only": [g for g in groups.values() if len(g) > 1],
        "defining_proteins": {p: list(v) for p, v in DEFINING_PROTEINS.items()},
        "isotype_controls": [nm for nm in names if "isotype" in nm.lower()],
        "ambient": dict(zip(names, ambient.tolist(), strict=True)),
        "signal": {
            nm: {p: float(signal[i, j]) for i, p in enumerate(pop_names) if signal[i, j] > 0}
            for j, nm in enumerate(names)
        },
        "model": (
            "ADT[c, p] ~ NB(capture[c] * (ambient[p] * sticky[c] + signal[pop, p] * "
            f"LogNormal(0, {_SIGNAL_SIGMA})), dispersion {_ADT_DISPERSION}); capture ~ "
            f"LogNormal(0, {_CAPTURE_SIGMA}); sticky = 2 in monocytes; naive and memory T "
            "cells share one RNA profile"
        ),
    }
    return adata


# ---------------------------------------------------------------------------------------------
# inputs


# ---------------------------------------------------------------------------------------------
# scoring


def _wnn_clustering(adata: AnnData, neighbors_key: str) -> str | None:
    """The obs column of a clustering computed on the graph ``neighbors_key`` (latest wins)."""
    found = None
    for col in adata.obs.columns:
        entry = adata.uns.get(col)
        if isinstance(entry, dict):
            nkey = entry.get("params", {}).get("neighbors_key")
            if nkey == neighbors_key:
                found = col
    return found


def _best_matches(truth: pd.Series, clusters: pd.Series) -> dict[str, tuple[str, float]]:
    """For each true population, the cluster with the highest Jaccard index, and that index."""
    table = pd.crosstab(truth.astype(str), clusters.astype(str))
    pop_sizes = table.sum(axis=1)
    cl_sizes = table.sum(axis=0)
    out = {}
    for pop in table.index:
        inter = table.loc[pop]
        jac = inter / (pop_sizes[pop] + cl_sizes - inter)
        best = str(jac.idxmax())
        out[pop] = (best, float(jac.max()))
    return out


def truth_recovery(
    adata: AnnData,
    *,
    wnn_key: str = "auto",
    rna_key: str = "auto",
    protein_markers_key: str = "protein_markers",
) -> dict[str, float | int | str]:
    """Score a finished CITE-seq analysis against the planted protein populations.

    Parameters
    ----------
    adata
        Output of :func:`simulate_cite` after the analysis.
    wnn_key
        obs column of the clustering on the WNN graph; ``"auto"`` takes the clustering whose
        ``uns[col]['params']['neighbors_key']`` is ``'wnn'`` (e.g. ``leiden_wnn``).
    rna_key
        obs column of the RNA-only clustering; ``"auto"`` takes ``leiden`` when it was
        computed on the RNA graph.
    protein_markers_key
        uns key of :func:`scagent.tools.multimodal.protein_markers`' result.

    Returns
    -------
    dict
        ``ari_wnn`` / ``ari_rna`` (adjusted Rand index against ``true_protein_population``),
        ``ari_gain`` (their difference), ``ari_wnn_protein_only`` / ``ari_rna_protein_only``
        (the same on the populations RNA cannot tell apart), ``n_clusters_wnn``,
        ``n_populations``; per population ``jaccard:<pop>`` (best-matching WNN cluster)
        and, when protein markers of that clustering exist, ``top_protein:<pop>`` and
        ``top_is_defining:<pop>`` (1 when the cluster's top protein marker is one of the
        population's defining proteins), summed in ``n_top_protein_defining``. Missing
        parts are left out.

    Raises
    ------
    InvalidDataError
        If the data carries no planted truth or no WNN clustering is found.
    """
    from sklearn.metrics import adjusted_rand_score

    cite = adata.uns.get("simulation", {}).get("cite")
    if not isinstance(cite, dict) or "true_protein_population" not in adata.obs:
        raise InvalidDataError(
            "no planted truth: obs['true_protein_population'] or uns['simulation']['cite'] "
            "is absent",
            remedy="score data made by scagent.data.simulate_cite",
        )
    truth = adata.obs["true_protein_population"].astype(str)
    wnn_col = _wnn_clustering(adata, "wnn") if wnn_key == "auto" else wnn_key
    if wnn_col is None or wnn_col not in adata.obs:
        raise InvalidDataError(
            "no clustering of the WNN graph found",
            remedy="run joint_embedding, then leiden with neighbors_key='wnn'",
        )
    if rna_key == "auto":
        rna_col = _wnn_clustering(adata, "neighbors")
        if rna_col is None and "leiden" in adata.obs and wnn_col != "leiden":
            rna_col = "leiden"
    else:
        rna_col = rna_key if rna_key in adata.obs else None
    out: dict[str, float | int | str] = {"wnn_clustering": wnn_col}
    wnn = adata.obs[wnn_col].astype(str)
    out["ari_wnn"] = float(adjusted_rand_score(truth, wnn))
    out["n_clusters_wnn"] = int(wnn.nunique())
    out["n_populations"] = int(truth.nunique())
    protein_only = {p for group in cite.get("protein_only", []) for p in group}
    mask = truth.isin(protein_only).to_numpy()
    if mask.any():
        out["ari_wnn_protein_only"] = float(adjusted_rand_score(truth[mask], wnn[mask]))
    if rna_col is not None:
        rna = adata.obs[rna_col].astype(str)
        out["rna_clustering"] = rna_col
        out["ari_rna"] = float(adjusted_rand_score(truth, rna))
        out["ari_gain"] = out["ari_wnn"] - out["ari_rna"]
        if mask.any():
            out["ari_rna_protein_only"] = float(adjusted_rand_score(truth[mask], rna[mask]))

    matches = _best_matches(truth, wnn)
    markers = adata.uns.get(protein_markers_key)
    top: dict[str, str] = {}
    if isinstance(markers, dict) and markers.get("params", {}).get("groupby") == wnn_col:
        names = markers["names"]
        top = {g: str(names[g][0]) for g in names.dtype.names}
    defining = cite.get("defining_proteins", {})
    n_defining = 0
    for pop, (cluster, jaccard) in matches.items():
        out[f"jaccard:{pop}"] = jaccard
        if cluster in top:
            hit = top[cluster] in defining.get(pop, [])
            out[f"top_protein:{pop}"] = top[cluster]
            out[f"top_is_defining:{pop}"] = int(hit)
            n_defining += int(hit)
    if top:
        out["n_top_protein_defining"] = n_defining
    return out
