"""A pooled CRISPR screen read out by single-cell RNA-seq (Perturb-seq), simulated with known guides and knockdowns.

Expression comes from :func:`scagent.data.simulate` (gamma-Poisson raw counts across a few
replicate lanes). Each cell then receives a guide: a non-targeting control (``NT_1``...)
or one of ``guides_per_target`` guides per target gene (``<GENE>_1``...); some cells get
two guides (multiplets) and some none. In a perturbed cell the target gene's counts are
binomially thinned to ``knockdown`` of their value (CRISPRi leaves a remainder; a share of
cells escape), and a few downstream genes per target move up or down. The guide UMI table
follows what Replogle et al. (2022, Cell 185:2559) describe: every guide gets a Poisson
ambient background in every cell, proportional to its abundance in the pool, and a cell's
own guide(s) a log-normal foreground, which is why a Poisson-Gaussian mixture separates them.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent.data.simulate import simulate
from scagent.errors import InvalidParameterError

__all__ = ["CONTROL_LABEL", "simulate_perturbation", "truth_recovery"]

#: The perturbation level every non-targeting control guide collapses to.
CONTROL_LABEL = "non-targeting"


def _check(name: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise InvalidParameterError(
            f"simulate_perturbation: {name}={value!r} is out of range",
            remedy=f"choose {name} between {low} and {high}",
        )


def simulate_perturbation(
    n_cells: int = 3000,
    n_genes: int = 1500,
    *,
    n_targets: int = 6,
    guides_per_target: int = 2,
    n_control_guides: int = 2,
    control_fraction: float = 0.2,
    knockdown: float = 0.15,
    escape_rate: float = 0.1,
    multiplet_rate: float = 0.05,
    no_guide_rate: float = 0.05,
    samples: int = 2,
    n_downstream: int = 10,
    downstream_log2fc: float = 1.0,
    guide_umi_mean: float = 40.0,
    guide_umi_sigma: float = 0.8,
    ambient_umis: float = 4.0,
    cell_types: Sequence[str] | None = ("HSPC", "erythroid"),
    seed: int = 0,
) -> ad.AnnData:
    """Simulate a Perturb-seq screen: raw gene counts, guide UMI counts and the truth.

    Parameters
    ----------
    n_cells, n_genes
        Size of the expression matrix (see :func:`scagent.data.simulate`).
    n_targets, guides_per_target
        Target genes (picked among well-expressed genes) and guides per target, named
        ``<gene>_1``, ``<gene>_2``...
    n_control_guides, control_fraction
        Non-targeting guides ``NT_1``... and the share of guided cells that carry one.
    knockdown
        Remaining fraction of the target's counts in a perturbed cell (CRISPRi-like;
        0 is a full knockout), applied by binomial thinning.
    escape_rate
        Share of cells with a targeting guide whose expression is unchanged (escapers,
        the cells Mixscape calls non-perturbed).
    multiplet_rate, no_guide_rate
        Share of cells carrying two different guides, and carrying none (ambient only).
    samples
        Replicate lanes (obs ``sample``: ``lane_1``...), each with its own small per-gene
        effect, so pseudobulk DE has replicates.
    n_downstream, downstream_log2fc
        Genes changed by ``+-downstream_log2fc`` per target in its knocked-down cells.
    guide_umi_mean, guide_umi_sigma
        Median UMI count of a cell's own guide and the log-normal spread (natural log).
    ambient_umis
        Expected ambient guide UMIs per cell, spread over guides by their abundance.
    cell_types
        Cell states of the screened cells (default: K562-like HSPC and erythroid states).
    seed
        Random seed.

    Returns
    -------
    AnnData
        Raw counts in ``X``; ``obsm['guide_counts']`` (cells x guides DataFrame, int32);
        truth in ``obs['true_guide']`` (guide, ``g1+g2`` for multiplets, ``none``),
        ``obs['true_target']`` (gene, ``non-targeting``, ``multiple`` or ``none``),
        ``obs['true_multiplet']``, ``obs['true_escape']`` and
        ``uns['simulation']['perturbation']`` (targets, guide -> target, control guides,
        knockdown, escape rate, downstream genes per target with their log2 fold change).
    """
    for name, value in (
        ("control_fraction", control_fraction),
        ("knockdown", knockdown),
        ("escape_rate", escape_rate),
        ("multiplet_rate", multiplet_rate),
        ("no_guide_rate", no_guide_rate),
    ):
        _check(name, float(value), 0.0, 1.0)
    _check("n_targets", n_targets, 1, 500)
    _check("guides_per_target", guides_per_target, 1, 20)
    _check("n_control_guides", n_control_guides, 1, 50)
    _check("samples", samples, 1, 50)
    _check("n_downstream", n_downstream, 0, 200)
    if multiplet_rate + no_guide_rate >= 1:
        raise InvalidParameterError(
            "simulate_perturbation: multiplet_rate + no_guide_rate must be below 1",
            remedy="lower multiplet_rate or no_guide_rate",
        )
    adata = simulate(
        n_cells,
        n_genes,
        cell_types=cell_types,
        n_conditions=1,
        samples_per_condition=int(samples),
        seed=seed,
    )
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    _rename_lanes(adata)

    # Targets and downstream genes among well-expressed ordinary genes, so a knockdown is
    # measurable (real screens target expressed genes; CRISPRi of a silent gene is a no-op).
    X = adata.X.tocsr()
    mean = np.asarray(X.mean(axis=0)).ravel()
    var = adata.var
    ordinary = ~(var["mito"] | var["ribo"] | var["hb"]).to_numpy() & (
        var["is_marker_of"].to_numpy() == ""
    )
    candidates = np.flatnonzero(ordinary & (mean >= np.quantile(mean[ordinary], 0.85)))
    need = n_targets * (1 + n_downstream)
    if candidates.size < need:
        raise InvalidParameterError(
            f"simulate_perturbation: only {candidates.size} well-expressed genes for "
            f"{n_targets} targets with {n_downstream} downstream genes each",
            remedy="raise n_genes or lower n_targets / n_downstream",
        )
    picked = rng.choice(candidates, size=need, replace=False)
    target_idx = picked[:n_targets]
    genes = adata.var_names.to_numpy().astype(str)
    targets = [str(g) for g in genes[target_idx]]
    downstream: dict[str, dict[str, float]] = {}
    for i, target in enumerate(targets):
        block = picked[n_targets + i * n_downstream : n_targets + (i + 1) * n_downstream]
        signs = np.where(np.arange(block.size) % 2 == 0, -1.0, 1.0)
        downstream[target] = {
            str(genes[g]): float(s * downstream_log2fc) for g, s in zip(block, signs, strict=True)
        }

    guide_target = {f"{t}_{k}": t for t in targets for k in range(1, guides_per_target + 1)}
    controls = [f"NT_{k}" for k in range(1, n_control_guides + 1)]
    guide_names = [*guide_target, *controls]
    guide_target.update(dict.fromkeys(controls, CONTROL_LABEL))
    n_targeting = n_targets * guides_per_target
    # Pool abundance: controls share control_fraction, targeting guides the rest.
    weights = np.concatenate(
        [
            np.full(n_targeting, (1 - control_fraction) / n_targeting),
            np.full(n_control_guides, control_fraction / n_control_guides),
        ]
    )
    weights /= weights.sum()

    n = adata.n_obs
    kind = rng.choice(
        3, size=n, p=[1 - multiplet_rate - no_guide_rate, multiplet_rate, no_guide_rate]
    )
    first = rng.choice(len(guide_names), size=n, p=weights)
    second = np.full(n, -1)
    guide_of_target = np.array([guide_target[g] for g in guide_names])
    for c in np.flatnonzero(kind == 1):
        # A multiplet carries guides of two different targets (two infections); two guides
        # of one target (a dual-guide vector) perturb one gene and are not a multiplet.
        w = np.where(guide_of_target == guide_of_target[first[c]], 0.0, weights)
        second[c] = rng.choice(len(guide_names), p=w / w.sum())
    first[kind == 2] = -1
    escape = rng.random(n) < escape_rate

    # Expression effects, per affected gene column: knockdown then downstream changes.
    effects: dict[int, np.ndarray] = {}  # gene column -> per-cell log2 fold change
    gene_pos = {g: i for i, g in enumerate(genes)}
    for slot in (first, second):
        has = slot >= 0
        for gi, guide in enumerate(guide_names):
            target = guide_target[guide]
            if target == CONTROL_LABEL:
                continue
            cells = has & (slot == gi) & ~escape
            if not cells.any():
                continue
            col = gene_pos[target]
            effects.setdefault(col, np.zeros(n))[cells] += np.log2(max(knockdown, 1e-12))
            for gene, lfc in downstream[target].items():
                effects.setdefault(gene_pos[gene], np.zeros(n))[cells] += lfc
    X = _apply_effects(X, effects, knockdown, rng)
    adata.X = X

    guide_counts = _guide_umis(
        rng, first, second, weights, adata.obs["true_library_size"].to_numpy(),
        guide_umi_mean, guide_umi_sigma, ambient_umis,
    )  # fmt: skip
    adata.obsm["guide_counts"] = pd.DataFrame(
        guide_counts, index=adata.obs_names.copy(), columns=pd.Index(guide_names)
    )

    names = np.asarray(guide_names, dtype=object)
    true_guide = np.where(first >= 0, names[np.maximum(first, 0)], "none").astype(object)
    multi = second >= 0
    true_guide[multi] = [
        f"{names[a]}+{names[b]}" for a, b in zip(first[multi], second[multi], strict=True)
    ]
    true_target = np.array(
        [guide_target[g] if g in guide_target else g for g in true_guide], dtype=object
    )
    true_target[multi] = "multiple"
    targeted = (first >= 0) & (true_target != CONTROL_LABEL)
    adata.obs["true_guide"] = pd.Categorical(true_guide)
    adata.obs["true_target"] = pd.Categorical(true_target)
    adata.obs["true_multiplet"] = multi
    adata.obs["true_escape"] = escape & targeted

    sim = adata.uns["simulation"]
    sim["truth_columns"] = [
        *sim["truth_columns"],
        "true_guide",
        "true_target",
        "true_multiplet",
        "true_escape",
    ]
    sim["perturbation"] = {
        "targets": targets,
        "guides": dict(guide_target),
        "control_guides": controls,
        "control_label": CONTROL_LABEL,
        "knockdown": float(knockdown),
        "escape_rate": float(escape_rate),
        "multiplet_rate": float(multiplet_rate),
        "no_guide_rate": float(no_guide_rate),
        "control_fraction": float(control_fraction),
        "downstream": downstream,
        "guide_umi_mean": float(guide_umi_mean),
        "guide_umi_sigma": float(guide_umi_sigma),
        "ambient_umis": float(ambient_umis),
        "model": (
            "target counts ~ Binomial(counts, knockdown) in non-escaping perturbed cells; "
            "downstream genes thinned (down) or topped up with Poisson((2^lfc - 1) * counts) "
            "(up); guide UMIs ~ Poisson(ambient * abundance * library) + "
            "Poisson(LogNormal(log(guide_umi_mean), guide_umi_sigma)) for the cell's guides"
        ),
    }
    return adata


def _rename_lanes(adata: ad.AnnData) -> None:
    """Samples of the base simulator are named after conditions (``ctrl_1``); here they are lanes."""
    sim = adata.uns["simulation"]
    old = [str(c) for c in adata.obs["sample"].cat.categories]
    new = [f"lane_{i}" for i in range(1, len(old) + 1)]
    mapping = dict(zip(old, new, strict=True))
    adata.obs["sample"] = adata.obs["sample"].cat.rename_categories(mapping)
    for key in ("sample_batch", "sample_condition"):
        sim[key] = {mapping[k]: v for k, v in sim[key].items()}


def _apply_effects(
    X: sp.csr_matrix, effects: dict[int, np.ndarray], knockdown: float, rng: np.random.Generator
) -> sp.csr_matrix:
    """Change the affected gene columns cell by cell; thinning keeps counts integer and overdispersed."""
    if not effects:
        return X
    cols = np.array(sorted(effects))
    block = X[:, cols].toarray().astype(np.int64)
    for j, col in enumerate(cols):
        lfc = effects[col]
        counts = block[:, j]
        down = lfc < 0
        counts[down] = rng.binomial(counts[down], np.exp2(lfc[down]))
        up = lfc > 0
        counts[up] = counts[up] + rng.poisson((np.exp2(lfc[up]) - 1.0) * counts[up])
        block[:, j] = counts
    keep = np.ones(X.shape[1])
    keep[cols] = 0.0
    rows, js = np.nonzero(block)
    added = sp.csr_matrix(
        (block[rows, js].astype(np.float32), (rows, cols[js])), shape=X.shape, dtype=np.float32
    )
    out = (X @ sp.diags(keep.astype(np.float32)) + added).tocsr().astype(np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _guide_umis(
    rng: np.random.Generator,
    first: np.ndarray,
    second: np.ndarray,
    weights: np.ndarray,
    library: np.ndarray,
    umi_mean: float,
    umi_sigma: float,
    ambient: float,
) -> np.ndarray:
    n, g = first.size, weights.size
    depth = library / np.median(library)
    counts = rng.poisson(ambient * np.outer(depth, weights))
    capture = rng.lognormal(0.0, 0.3, size=n)  # per-cell guide capture efficiency
    for slot in (first, second):
        cells = np.flatnonzero(slot >= 0)
        lam = umi_mean * capture[cells] * rng.lognormal(0.0, umi_sigma, size=cells.size)
        counts[cells, slot[cells]] += rng.poisson(lam)
    assert counts.shape == (n, g)
    return counts.astype(np.int32)


def truth_recovery(
    adata: ad.AnnData, *, de_key: str = "perturbation_de", alpha: float = 0.05
) -> dict[str, float | int | str]:
    """Score guide assignment and perturbation DE against the simulated truth.

    Parameters
    ----------
    adata
        Output of :func:`simulate_perturbation` after ``guide_assignment`` and, for the
        DE scores, ``perturbation_de`` (results in ``uns[de_key]``).
    alpha
        FDR level of a DE call.

    Returns
    -------
    dict
        ``assignment_accuracy`` (truly single-guide cells whose ``obs['guide']`` is their
        guide), ``unassigned_rate_singlets``, ``multiplet_recall`` / ``multiplet_precision``
        (``obs['guide_multiplet']`` against the truth), ``no_guide_unassigned`` (cells
        with no guide left unassigned), ``targets_knocked_down`` (share of targets whose
        own gene is DE down at ``alpha`` in their own perturbation), ``downstream_recall``
        (planted downstream genes called with the right sign), ``false_knockdown_calls``
        (a target gene called down in a perturbation that is not its own) and
        ``knockdown_status_agreement`` (targets whose knockdown table status is
        ``knocked down``).
    """
    sim = adata.uns.get("simulation", {}).get("perturbation")
    if not isinstance(sim, dict):
        raise InvalidParameterError(
            "truth_recovery needs uns['simulation']['perturbation'] from simulate_perturbation",
            remedy="score only data made by scagent.data.simulate_perturbation",
        )
    out: dict[str, float | int | str] = {}
    obs = adata.obs
    true_guide = obs["true_guide"].astype(str)
    multi = obs["true_multiplet"].to_numpy(bool)
    if "guide" in obs:
        called = obs["guide"].astype(str)
        single = (~multi) & (true_guide != "none").to_numpy()
        out["n_singlets"] = int(single.sum())
        out["assignment_accuracy"] = float((called[single] == true_guide[single]).mean())
        out["unassigned_rate_singlets"] = float((called[single] == "unassigned").mean())
        none = (true_guide == "none").to_numpy()
        if none.any():
            out["no_guide_unassigned"] = float((called[none] == "unassigned").mean())
    if "guide_multiplet" in obs:
        flagged = obs["guide_multiplet"].to_numpy(bool)
        out["multiplet_recall"] = float(flagged[multi].mean()) if multi.any() else float("nan")
        out["multiplet_precision"] = float(multi[flagged].mean()) if flagged.any() else float("nan")
    entry = adata.uns.get(de_key)
    if isinstance(entry, dict) and isinstance(entry.get("results"), pd.DataFrame):
        res = entry["results"]
        targets = list(sim["targets"])
        sig_down = res[(res["padj"] < alpha) & (res["log2FoldChange"] < 0)]
        own = {(p, g) for p, g in zip(sig_down["perturbation"], sig_down["gene"], strict=True)}
        hits = [t for t in targets if (t, t) in own]
        out["targets_knocked_down"] = len(hits) / len(targets)
        out["false_knockdown_calls"] = int(sum(1 for p, g in own if g in targets and p != g))
        sig = res[res["padj"] < alpha]
        called = {
            (p, g): np.sign(lfc)
            for p, g, lfc in zip(
                sig["perturbation"], sig["gene"], sig["log2FoldChange"], strict=True
            )
        }
        planted = [
            (t, g, np.sign(lfc))
            for t, genes in sim["downstream"].items()
            for g, lfc in genes.items()
        ]
        if planted:
            found = sum(1 for t, g, s in planted if called.get((t, g)) == s)
            out["downstream_recall"] = found / len(planted)
        table = entry.get("knockdown")
        if isinstance(table, pd.DataFrame) and not table.empty:
            status = dict(zip(table["perturbation"], table["status"], strict=True))
            out["knockdown_status_agreement"] = float(
                np.mean([status.get(t) == "knocked down" for t in targets])
            )
    if "mixscape_class_global" in obs and "true_escape" in obs:
        # KO/NP calls against the planted escapers, on singly perturbed cells (not controls)
        calls = obs["mixscape_class_global"].astype(str).to_numpy()
        judged = np.isin(calls, ["KO", "NP"])
        if judged.any():
            ko = calls[judged] == "KO"
            out["mixscape_agreement"] = float(
                (ko == ~obs["true_escape"].to_numpy(bool)[judged]).mean()
            )
            out["mixscape_share_ko"] = float(ko.mean())
    return out
