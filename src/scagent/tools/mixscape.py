"""Mixscape: split each perturbation's cells into knocked-out (KO) and escaping (NP) cells by how far they move from their control neighbours.

Papalexi et al. (2021): a cell's perturbation signature is its expression minus the mean of
its nearest non-targeting control cells in PCA space (removing cell-state and replicate
variation); cells of a perturbation are projected onto the mean signature shift over the
perturbation's DE genes, and a two-component Gaussian mixture whose control component is
fixed by the control cells separates KO cells from cells that escaped the perturbation.

Written here, not called from pertpy: pertpy is an optional heavy dependency (jax, and it
pins statsmodels<0.15), and the algorithm is a few array operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import sparse, stats
from sklearn.neighbors import NearestNeighbors

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned, ready_for
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.guides import CONTROL_LABEL
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["MIXSCAPE", "MixscapeParams", "fit_fixed_mixture", "mixscape"]

PAPALEXI_2021 = (
    "Papalexi et al. (2021) Characterizing the molecular regulation of inhibitory immune "
    "checkpoints with multimodal single-cell screens. Nat Genet 53:322"
)
#: Labels of cells that carry no single perturbation (guide_assignment's words).
_NOT_SINGLE = ("multiple", "unassigned", "nan", "none", "")


class MixscapeParams(ParamsModel):
    perturbation_key: str = Field(
        "perturbation", description="obs column of each cell's perturbation (guide_assignment)."
    )
    control: str = Field(
        "auto",
        description="Level of the controls; 'auto' takes guide_assignment's control label "
        "('non-targeting').",
    )
    n_neighbors: int = Field(
        20, ge=1, le=500, description="Control cells whose mean expression a cell is compared to."
    )
    min_cells: int = Field(
        20, ge=2, le=100_000, description="A perturbation with fewer cells is called NP unseen."
    )
    min_de_genes: int = Field(
        5,
        ge=1,
        le=10_000,
        description="A perturbation with fewer DE genes has no detectable effect: all cells NP.",
    )
    de_pval: float = Field(0.05, gt=0.0, lt=1.0, description="BH-adjusted p-value of a DE gene.")
    logfc: float = Field(
        0.1, ge=0.0, description="|log2 fold change| of a DE gene (on the signature)."
    )
    iter_num: int = Field(
        10, ge=1, le=100, description="Rounds of projection and mixture fit per perturbation."
    )
    split_by: str | None = Field(
        None,
        description="obs column (replicate, sample) within which control neighbours are found; "
        "None uses all controls.",
    )
    key_added: str = Field(
        "mixscape", description="Prefix of the obs columns and the uns key written."
    )
    overwrite: bool = Field(False, description="Replace keys not written by scagent.")


def fit_fixed_mixture(
    x: np.ndarray, mu0: float, sd0: float, *, max_iter: int = 200, tol: float = 1e-8
) -> tuple[np.ndarray, dict[str, float]]:
    """Two-Gaussian EM with the control component ``N(mu0, sd0)`` held fixed.

    Only the perturbed component's mean, sd and the mixing weight are updated
    (scikit-learn's GaussianMixture cannot fix one component). Returns each value's
    posterior of the perturbed component and the fitted parameters.
    """
    x = np.asarray(x, dtype=float)
    sd0 = max(sd0, 1e-6)
    mu1, sd1, pi = float(x.mean()), max(float(x.std()), sd0), 0.5
    post = np.full(x.size, 0.5)
    previous = -np.inf
    for _ in range(max_iter):
        log0 = np.log1p(-pi) + stats.norm.logpdf(x, mu0, sd0)
        log1 = np.log(pi) + stats.norm.logpdf(x, mu1, sd1)
        total = np.logaddexp(log0, log1)
        post = np.exp(log1 - total)
        loglik = float(total.sum())
        weight = post.sum()
        if weight < 1e-9:
            break
        pi = float(np.clip(weight / x.size, 1e-6, 1 - 1e-6))
        mu1 = float((post * x).sum() / weight)
        sd1 = max(float(np.sqrt((post * (x - mu1) ** 2).sum() / weight)), 1e-3 * sd0)
        if loglik - previous < tol * abs(loglik):
            break
        previous = loglik
    return post, {"mu_ko": mu1, "sd_ko": sd1, "weight_ko": pi}


def _signature(
    expr: np.ndarray, pcs: np.ndarray, ctrl: np.ndarray, groups: np.ndarray, k: int
) -> np.ndarray:
    """Each cell's expression minus the mean of its ``k`` nearest controls (same group)."""
    out = np.empty_like(expr)
    for group in np.unique(groups):
        cells = np.flatnonzero(groups == group)
        refs = np.flatnonzero((groups == group) & ctrl)
        if refs.size == 0:
            raise InvalidDataError(
                f"no control cells in split_by group '{group}'; signatures need controls "
                "in every group",
                remedy="pass split_by=None, or a column whose groups all hold controls",
            )
        nn = NearestNeighbors(n_neighbors=min(k, refs.size)).fit(pcs[refs])
        idx = nn.kneighbors(pcs[cells], return_distance=False)
        out[cells] = expr[cells] - expr[refs[idx]].mean(axis=1)
    return out


def _de_genes(sig: np.ndarray, pert: np.ndarray, ctrl: np.ndarray, p: Any) -> np.ndarray:
    """Columns where the perturbation's signature differs from the controls' (Welch t, BH)."""
    a, b = sig[pert], sig[ctrl]
    with np.errstate(invalid="ignore", divide="ignore"):
        _, pval = stats.ttest_ind(a, b, axis=0, equal_var=False)
    pval = np.where(np.isfinite(pval), pval, 1.0)
    padj = stats.false_discovery_control(pval)
    # Expression is natural-log log1p: a mean difference / ln 2 is a log2 fold change.
    lfc = (a.mean(axis=0) - b.mean(axis=0)) / np.log(2)
    return np.flatnonzero((padj < p.de_pval) & (np.abs(lfc) > p.logfc))


def mixscape(adata: AnnData, **params: Any) -> ToolResult:
    """Call each perturbed cell knocked out (KO) or not perturbed (NP), as Mixscape does.

    For every cell the perturbation signature (log-normalized expression of the highly
    variable genes, plus measured target genes, minus the mean of its ``n_neighbors``
    nearest control cells in ``obsm['X_pca']``) is computed. Per perturbation with at least
    ``min_cells`` cells, genes DE between its cells and the controls on the signature
    (Welch t-test, BH) define a direction; each cell is projected onto the mean shift of the
    currently-KO cells, and a Gaussian mixture with the control component fixed by the
    controls' projections gives each cell's KO posterior. Projection and fit repeat with the
    KO cells until the calls stop changing (at most ``iter_num`` rounds).

    Parameters
    ----------
    adata
        Data after ``guide_assignment`` and ``pca``, with log-normalized expression
        somewhere (X, a layer, or counts to normalize).
    **params
        See :class:`MixscapeParams`.

    Returns
    -------
    ToolResult
        Writes ``obs['<key_added>_class']`` (``'<GENE> KO'``, ``'<GENE> NP'``, ``'NT'`` for
        controls, ``'unassigned'`` for cells without one perturbation),
        ``obs['<key_added>_class_global']`` (``KO``/``NP``/``NT``/``unassigned``),
        ``obs['<key_added>_posterior']`` (KO posterior; NaN for controls, unassigned cells
        and untested perturbations) and ``uns[key_added]`` with ``perturbations`` (per
        perturbation: cells, KO cells, share KO, DE genes used, rounds, converged, status)
        and ``params``.

    Raises
    ------
    MissingPrerequisiteError
        No ``obs[perturbation_key]`` (run guide_assignment) or no ``obsm['X_pca']`` (run pca).
    InvalidDataError
        No control cells, or fewer than ``min_cells`` of them.
    """
    p = parse_params(MixscapeParams, params, "mixscape")
    if p.perturbation_key not in adata.obs:
        raise MissingPrerequisiteError(
            f"mixscape needs obs['{p.perturbation_key}'] with each cell's perturbation "
            "(written by guide_assignment)",
            remedy="run guide_assignment first, or pass perturbation_key=<obs column>",
        )
    if "X_pca" not in adata.obsm:
        raise MissingPrerequisiteError(
            "mixscape finds each cell's control neighbours in obsm['X_pca'], which is absent",
            remedy="run pca first",
        )
    if p.split_by is not None and p.split_by not in adata.obs:
        raise InvalidParameterError(
            f"split_by '{p.split_by}' is not an obs column",
            remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}, or None",
        )
    class_key, global_key, post_key = (
        f"{p.key_added}_class",
        f"{p.key_added}_class_global",
        f"{p.key_added}_posterior",
    )
    out_warnings = [
        w
        for slot, key in (
            ("obs", class_key),
            ("obs", global_key),
            ("obs", post_key),
            ("uns", p.key_added),
        )
        if (w := claim_key(adata, slot, key, "mixscape", overwrite=p.overwrite)) is not None
    ]
    assignment = adata.uns.get("guide_assignment", {})
    assign_params = assignment.get("params", {}) if isinstance(assignment, dict) else {}
    control = (
        str(assign_params.get("control_label", CONTROL_LABEL)) if p.control == "auto" else p.control
    )
    labels = adata.obs[p.perturbation_key].astype(str).to_numpy()
    single = ~np.isin(labels, _NOT_SINGLE)
    if "guide_multiplet" in adata.obs:
        single &= ~adata.obs["guide_multiplet"].to_numpy(bool)
    ctrl = single & (labels == control)
    if ctrl.sum() < max(p.min_cells, 2):
        raise InvalidDataError(
            f"{int(ctrl.sum())} control cells (obs['{p.perturbation_key}'] == '{control}'); "
            f"mixscape needs at least min_cells={p.min_cells}",
            remedy="check that control guides were called (guide_assignment's control_pattern), "
            "pass control=<the control level>, or lower min_cells",
        )

    # Signatures only for cells that take part (controls and single-perturbation cells), on
    # HVGs plus measured targets (the knockdown itself is the clearest signal): dense but small.
    work = ready_for(adata, None, "log_normalized")
    genes = np.zeros(adata.n_vars, dtype=bool)
    if "highly_variable" in adata.var:
        genes |= adata.var["highly_variable"].to_numpy(bool)
    else:
        genes[:] = True
    genes |= adata.var_names.isin(np.unique(labels[single]))
    cells = np.flatnonzero(single)
    expr = work.X[cells][:, np.flatnonzero(genes)]
    expr = np.asarray(expr.toarray() if sparse.issparse(expr) else expr, dtype=np.float32)
    pcs = np.asarray(adata.obsm["X_pca"])[cells]
    groups = (
        adata.obs[p.split_by].astype(str).to_numpy()[cells]
        if p.split_by is not None
        else np.zeros(cells.size, dtype=int)
    )
    sub_labels = labels[cells]
    sub_ctrl = sub_labels == control
    sig = _signature(expr, pcs, sub_ctrl, groups, p.n_neighbors)

    posterior = np.full(adata.n_obs, np.nan)
    cls = np.where(single, labels, "unassigned").astype(object)
    glob = np.where(single, "NP", "unassigned").astype(object)
    cls[ctrl] = glob[ctrl] = "NT"
    rows = []
    perts = sorted({x for x in sub_labels if x != control})
    for pert in perts:
        in_pert = sub_labels == pert
        row: dict[str, Any] = {
            "perturbation": pert,
            "n_cells": int(in_pert.sum()),
            "n_ko": 0,
            "share_ko": 0.0,
            "n_de_genes": 0,
            "n_iter": 0,
            "converged": False,
            "status": "tested",
        }
        ko = in_pert.copy()
        if in_pert.sum() < p.min_cells:
            row["status"] = "too few cells"
            out_warnings.append(
                f"perturbation '{pert}' has {int(in_pert.sum())} cells (< min_cells="
                f"{p.min_cells}); all called NP"
            )
            ko[:] = False
        else:
            # DE genes once, from all the perturbation's cells (as Mixscape does); the
            # projection direction is then refined on the KO cells alone.
            de = _de_genes(sig, in_pert, sub_ctrl, p)
            row["n_de_genes"] = int(de.size)
            if de.size < p.min_de_genes:
                row["status"] = "too few DE genes"
                out_warnings.append(
                    f"perturbation '{pert}': {de.size} DE genes (< min_de_genes="
                    f"{p.min_de_genes}); no detectable effect, all cells called NP"
                )
                ko[:] = False
            else:
                both = in_pert | sub_ctrl
                for n_iter in range(1, p.iter_num + 1):
                    if not ko.any():
                        break
                    ref = sig[sub_ctrl][:, de].mean(axis=0)
                    vec = sig[ko][:, de].mean(axis=0) - ref
                    proj = np.full(cells.size, np.nan)
                    proj[both] = (sig[both][:, de] - ref) @ vec / float(vec @ vec)
                    ctrl_proj = proj[sub_ctrl]
                    post, _ = fit_fixed_mixture(
                        proj[in_pert], float(ctrl_proj.mean()), float(ctrl_proj.std())
                    )
                    new = np.zeros_like(ko)
                    new[in_pert] = post > 0.5
                    posterior[cells[in_pert]] = post
                    row["n_iter"] = n_iter
                    if np.array_equal(new, ko):
                        row["converged"] = True
                        break
                    ko = new
                if not row["converged"]:
                    out_warnings.append(
                        f"perturbation '{pert}': KO calls still changed after iter_num="
                        f"{p.iter_num} rounds"
                    )
        n_ko = int(ko.sum())
        row.update(n_ko=n_ko, share_ko=n_ko / max(int(in_pert.sum()), 1))
        idx = cells[in_pert]
        cls[idx] = np.where(ko[in_pert], f"{pert} KO", f"{pert} NP")
        glob[idx] = np.where(ko[in_pert], "KO", "NP")
        rows.append(row)

    adata.obs[class_key] = pd.Categorical(cls.astype(str))
    adata.obs[global_key] = pd.Categorical(glob.astype(str))
    adata.obs[post_key] = posterior
    table = pd.DataFrame(
        rows,
        columns=[
            "perturbation",
            "n_cells",
            "n_ko",
            "share_ko",
            "n_de_genes",
            "n_iter",
            "converged",
            "status",
        ],
    )
    adata.uns[p.key_added] = {
        "perturbations": table,
        "params": {
            "perturbation_key": p.perturbation_key,
            "control": control,
            "n_neighbors": p.n_neighbors,
            "min_cells": p.min_cells,
            "min_de_genes": p.min_de_genes,
            "de_pval": p.de_pval,
            "logfc": p.logfc,
            "iter_num": p.iter_num,
            "split_by": p.split_by or "",
            "n_signature_genes": int(genes.sum()),
            "de_test": "welch_t_on_signature",
        },
    }
    ledger = mark_owned(
        adata,
        "mixscape",
        ("obs", class_key),
        ("obs", global_key),
        ("obs", post_key),
        ("uns", p.key_added),
    )
    tested = single & ~ctrl
    n_ko_all = int((glob == "KO").sum())
    with_ko = int((table["n_ko"] > 0).sum()) if len(table) else 0
    metrics: dict[str, float | int | str] = {
        "n_perturbations": len(perts),
        "n_perturbations_with_ko": with_ko,
        "n_ko_cells": n_ko_all,
        "n_np_cells": int((glob == "NP").sum()),
        "n_control_cells": int(ctrl.sum()),
        "share_ko": n_ko_all / max(int(tested.sum()), 1),
    }
    return ToolResult(
        summary=f"mixscape: {n_ko_all} of {int(tested.sum())} perturbed cells called KO "
        f"({metrics['share_ko']:.0%}); {with_ko} of {len(perts)} perturbation(s) with KO cells, "
        f"vs {int(ctrl.sum())} '{control}' controls; classes in obs['{class_key}']",
        metrics=metrics,
        warnings=out_warnings,
        written=[
            f"obs/{class_key}",
            f"obs/{global_key}",
            f"obs/{post_key}",
            f"uns/{p.key_added}",
            ledger,
        ],
        tables={"perturbations": table.to_dict("records")},
    )


def _check_mixscape(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    key = f"{p.key_added}_posterior"  # type: ignore[attr-defined]
    post = adata.obs[key].to_numpy(float)
    post = post[np.isfinite(post)]
    if ((post < 0) | (post > 1)).any():
        raise InvalidDataError(f"mixscape wrote posteriors outside [0, 1] in obs['{key}']")
    return []


MIXSCAPE = register(
    Tool(
        id="mixscape",
        name="Mixscape KO / escape calls",
        category="perturbation",
        framework="scagent",
        fn=mixscape,
        params=MixscapeParams,
        requires=("pca",),
        needs="log_normalized",
        checks=_check_mixscape,
        captures=("scikit-learn", "scipy", "anndata", "numpy", "pandas"),
        reference=PAPALEXI_2021,
        description="Per perturbation, separate knocked-out cells from cells that escaped "
        "(Mixscape: signatures against control neighbours, projection, Gaussian mixture).",
    )
)
