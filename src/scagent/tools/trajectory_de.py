"""Genes that change along pseudotime: a natural cubic spline of pseudotime per gene, F-tested against a flat line.

tradeSeq (Van den Berge et al. 2020), the usual tool, is R-only and fits a negative-binomial
GAM per gene. This module keeps its idea (a smooth of pseudotime per gene, tested against no
change) in the form that vectorises: every gene is regressed on the same design, an
intercept plus a natural cubic regression spline of pseudotime (patsy's ``cr``), so one QR
decomposition of the design serves all genes and a sparse expression matrix is never made
dense. Each gene gets an F test of the spline against the intercept-only model, a BH FDR,
the range of its fitted curve (on the log scale and as a fold change) and the pseudotime
where it peaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import sparse

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned, ready_for, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["TrajectoryDEParams", "spline_f_test", "trajectory_de"]

VAN_DEN_BERGE_2020 = (
    "Van den Berge et al. (2020) Trajectory-based differential expression analysis for "
    "single-cell sequencing data. Nat Commun 11:1201"
)
#: Points at which the fitted curves are evaluated for their range and peak.
_GRID = 100
#: Added to the fitted mean (normalized counts) before the fold change, so genes near zero
#: do not get huge folds from noise.
_PSEUDOCOUNT = 0.05


class TrajectoryDEParams(ParamsModel):
    pseudotime_key: str = Field(
        "auto",
        description="obs column of the pseudotime; 'auto' takes 'dpt_pseudotime', else the "
        "pseudotime the inspector found.",
    )
    genes: Literal["hvg", "all"] = Field(
        "hvg",
        description="Test the highly variable genes (var['highly_variable']) or all genes.",
    )
    df: int = Field(
        5,
        ge=3,
        le=20,
        description="Degrees of freedom of the natural cubic spline (its knots follow the "
        "quantiles of pseudotime); 3-6 are enough for monotone or single-peak trends, as "
        "tradeSeq's default of 6 knots.",
    )
    min_cells: int = Field(
        10, ge=1, description="Test only genes detected in at least this many of the cells."
    )
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="FDR threshold for 'significant'.")
    min_log2fc: float = Field(
        1.0,
        ge=0.0,
        description="Also required for 'significant': log2 fold change between the highest and "
        "lowest point of the fitted curve (1 = 2-fold). With thousands of cells, tiny trends "
        "pass any FDR.",
    )
    chunk_size: int = Field(
        2000, ge=1, description="Genes read into memory at once (dense per chunk if X is dense)."
    )
    key_added: str = Field("trajectory_de", description="uns key of the results.")
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")


def _spline_design(pseudotime: np.ndarray, df: int) -> tuple[np.ndarray, Any]:
    """Intercept + natural cubic regression spline (centred, so not collinear with it)."""
    import patsy

    design = patsy.dmatrix(f"cr(t, df={df}, constraints='center')", {"t": pseudotime})
    return np.asarray(design), design.design_info


def spline_f_test(
    expression: Any, pseudotime: np.ndarray, *, df: int = 5, chunk_size: int = 2000
) -> pd.DataFrame:
    """F test, per gene (column), of a spline of ``pseudotime`` against a constant.

    Parameters
    ----------
    expression
        cells x genes, log-normalized (sparse or dense).
    pseudotime
        One finite value per cell.
    df
        Degrees of freedom of the natural cubic spline.
    chunk_size
        Genes per chunk.

    Raises
    ------
    InvalidDataError
        Fewer than ``df + 1`` distinct pseudotime values, or a rank-deficient design.

    Returns
    -------
    DataFrame
        One row per gene (in column order): ``F``, ``pvalue``, ``amplitude`` (range of the
        fitted curve, log scale), ``log2_fold_range`` (log2 of the highest over the lowest
        fitted mean, on normalized counts), ``peak_pseudotime``, ``start``/``end`` (fitted
        values at the two ends) and ``mean``.
    """
    from scipy.stats import f as f_dist

    n_distinct = int(np.unique(pseudotime).size)
    if n_distinct < df + 1:
        # A spline of df degrees of freedom needs df + 1 distinct times; with fewer (days
        # or stages as pseudotime) the design is rank-deficient and the fitted curves blow
        # up (1e30), so refuse rather than report garbage ranges and peaks.
        lower = (
            f"pass df={n_distinct - 1} (the most these {n_distinct} time points support)"
            if n_distinct - 1 >= 3
            else "use a continuous pseudotime (diffusion_pseudotime), not a few discrete stages"
        )
        raise InvalidDataError(
            f"the pseudotime has only {n_distinct} distinct value(s); a spline with df={df} "
            f"needs at least {df + 1}",
            remedy=f"{lower}; or compare the stages with a group test (pseudobulk_de)",
        )
    design, info = _spline_design(pseudotime, df)
    n, p = design.shape
    if n <= p + 1:
        raise InvalidDataError(f"{n} cells are too few for a spline with {p} coefficients")
    if np.linalg.matrix_rank(design) < p:
        raise InvalidDataError(
            f"the spline design of the pseudotime (df={df}) is rank-deficient: its "
            f"{n_distinct} distinct values are too clumped for the knots",
            remedy=f"lower df (now {df}) or use a continuous pseudotime",
        )
    q, r = np.linalg.qr(design)
    import patsy

    grid = np.linspace(pseudotime.min(), pseudotime.max(), _GRID)
    grid_design = np.asarray(patsy.build_design_matrices([info], {"t": grid})[0])
    # Fitted curve on the grid = grid_design @ R^-1 @ Q^T y, the same map for every gene.
    to_grid = grid_design @ np.linalg.solve(r, q.T)

    columns = []
    for start in range(0, expression.shape[1], chunk_size):
        y = expression[:, start : start + chunk_size]
        if sparse.issparse(y):
            y = sparse.csc_matrix(y, dtype=np.float64)
            qty = np.asarray((y.T @ q).T)
            sum_sq = np.asarray(y.multiply(y).sum(axis=0)).ravel()
            total = np.asarray(y.sum(axis=0)).ravel()
            curves = np.asarray((y.T @ to_grid.T).T)
        else:
            y = np.asarray(y, dtype=np.float64)
            qty = q.T @ y
            sum_sq = (y**2).sum(axis=0)
            total = y.sum(axis=0)
            curves = to_grid @ y
        mean = total / n
        rss_full = np.maximum(sum_sq - (qty**2).sum(axis=0), 0.0)
        rss_null = np.maximum(sum_sq - n * mean**2, 0.0)
        columns.append((rss_full, rss_null, curves, mean))
    rss_full = np.concatenate([c[0] for c in columns])
    rss_null = np.concatenate([c[1] for c in columns])
    curves = np.concatenate([c[2] for c in columns], axis=1)
    mean = np.concatenate([c[3] for c in columns])

    with np.errstate(divide="ignore", invalid="ignore"):
        f_stat = ((rss_null - rss_full) / (p - 1)) / (rss_full / (n - p))
    f_stat = np.where(rss_null > 0, np.maximum(f_stat, 0.0), 0.0)
    pvalue = f_dist.sf(f_stat, p - 1, n - p)
    # The curve is a mean of log1p values; expm1 brings it back to normalized counts.
    fitted_mean = np.clip(np.expm1(curves), 0.0, None)
    log2_fold = np.log2(
        (fitted_mean.max(axis=0) + _PSEUDOCOUNT) / (fitted_mean.min(axis=0) + _PSEUDOCOUNT)
    )
    return pd.DataFrame(
        {
            "F": f_stat,
            "pvalue": pvalue,
            "amplitude": curves.max(axis=0) - curves.min(axis=0),
            "log2_fold_range": log2_fold,
            "peak_pseudotime": grid[curves.argmax(axis=0)],
            "start": curves[0],
            "end": curves[-1],
            "mean": mean,
        }
    )


def _pseudotime_key(adata: AnnData, value: str) -> str:
    if value != "auto":
        if value not in adata.obs:
            raise InvalidParameterError(
                f"pseudotime_key '{value}' is not an obs column",
                remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
            )
        return value
    if "dpt_pseudotime" in adata.obs:
        return "dpt_pseudotime"
    found = state_of(adata).breadcrumbs.pseudotime
    if found is None:
        raise MissingPrerequisiteError(
            "trajectory_de needs a pseudotime in obs",
            remedy="run trajectory (or diffusion_pseudotime) first, or pass pseudotime_key=",
        )
    return found


def _direction(table: pd.DataFrame) -> np.ndarray:
    """Increasing or decreasing when the ends differ by half the curve's range or more,
    else transient (the curve peaks or dips inside); flat for a constant curve.
    """
    rise = (table["end"] - table["start"]).to_numpy()
    amplitude = table["amplitude"].to_numpy()
    monotone = np.abs(rise) >= 0.5 * amplitude
    return np.select(
        [amplitude <= 0, monotone & (rise > 0), monotone],
        ["flat", "increasing", "decreasing"],
        default="transient",
    )


def trajectory_de(adata: AnnData, **params: Any) -> ToolResult:
    """Test each gene for a change along pseudotime (spline regression, F test, BH FDR).

    Cells with a missing or infinite pseudotime (unreachable from the root) are left out.
    Expression is the log-normalized data (from X, ``.raw`` or the counts).

    Parameters
    ----------
    adata
        The data with a pseudotime in obs; ``uns[key_added]`` is added.
    **params
        See :class:`TrajectoryDEParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` with ``results`` (a DataFrame, one row per tested gene,
        sorted by p-value: ``gene``, ``F``, ``pvalue``, ``fdr``, ``amplitude``,
        ``log2_fold_range``, ``peak_pseudotime``, ``direction``, ``mean``, ``n_cells``,
        ``significant``) and ``params``. ``tables['trajectory_de']`` holds the same rows.

    Raises
    ------
    MissingPrerequisiteError
        No pseudotime in obs.
    InvalidDataError
        Fewer than 20 cells with a finite pseudotime, a constant pseudotime, fewer than
        ``df + 1`` distinct pseudotime values (a spline needs more than a few stages), or
        no gene left to test.
    """
    p = parse_params(TrajectoryDEParams, params, "trajectory_de")
    key = _pseudotime_key(adata, p.pseudotime_key)
    pseudotime = pd.to_numeric(adata.obs[key], errors="coerce").to_numpy(dtype=np.float64)
    finite = np.isfinite(pseudotime)
    if finite.sum() < 20:
        raise InvalidDataError(
            f"only {int(finite.sum())} cells have a finite obs['{key}']; trajectory_de needs 20"
        )
    if np.ptp(pseudotime[finite]) == 0:
        raise InvalidDataError(f"obs['{key}'] is constant; there is no order to test along")
    warnings = []
    if (
        w := claim_key(adata, "uns", p.key_added, "trajectory_de", overwrite=p.overwrite)
    ) is not None:
        warnings.append(w)
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} cells without a finite pseudotime were left out")

    genes = np.ones(adata.n_vars, dtype=bool)
    if p.genes == "hvg":
        if "highly_variable" in adata.var:
            genes = adata.var["highly_variable"].to_numpy(dtype=bool)
        else:
            warnings.append("no var['highly_variable']: testing all genes")
    work = ready_for(adata, state_of(adata), "log_normalized")
    expression = work.X[np.flatnonzero(finite)][:, np.flatnonzero(genes)]
    detected = (
        np.asarray((expression > 0).sum(axis=0)).ravel()
        if sparse.issparse(expression)
        else (np.asarray(expression) > 0).sum(axis=0)
    )
    testable = detected >= p.min_cells
    if not testable.any():
        raise InvalidDataError(
            f"no gene is detected in {p.min_cells} or more of the {int(finite.sum())} cells",
            remedy="lower min_cells, or pass genes='all'",
        )
    expression = expression[:, np.flatnonzero(testable)]
    names = adata.var_names[np.flatnonzero(genes)][testable]
    table = spline_f_test(expression, pseudotime[finite], df=p.df, chunk_size=p.chunk_size)
    from scipy.stats import false_discovery_control

    table.insert(0, "gene", np.asarray(names, dtype=str))
    table.insert(3, "fdr", false_discovery_control(table["pvalue"].to_numpy(), method="bh"))
    table["direction"] = _direction(table)
    table["n_cells"] = detected[testable].astype(int)
    table["significant"] = (table["fdr"] < p.alpha) & (table["log2_fold_range"] >= p.min_log2fc)
    table = table.drop(columns=["start", "end"])
    table = table.sort_values(["pvalue", "F"], ascending=[True, False]).reset_index(drop=True)

    adata.uns[p.key_added] = {
        "results": table,
        "params": {
            "pseudotime_key": key,
            "genes": p.genes,
            "df": p.df,
            "min_cells": p.min_cells,
            "alpha": p.alpha,
            "min_log2fc": p.min_log2fc,
            "n_cells": int(finite.sum()),
            "method": "OLS on log-normalized expression: intercept + natural cubic spline "
            "(patsy cr) vs intercept only, F test, BH FDR",
        },
    }
    hits = table[table["significant"]]
    counts = hits["direction"].value_counts()
    top = ", ".join(hits["gene"].head(10))
    return ToolResult(
        summary=f"{len(hits)} of {len(table)} genes change along obs['{key}'] (FDR < {p.alpha}, "
        f">= {2**p.min_log2fc:g}-fold)" + (f": {top}" if top else ""),
        metrics={
            "pseudotime_key": key,
            "n_cells": int(finite.sum()),
            "n_tested": len(table),
            "n_significant": len(hits),
            "n_fdr_only": int((table["fdr"] < p.alpha).sum()),
            "n_increasing": int(counts.get("increasing", 0)),
            "n_decreasing": int(counts.get("decreasing", 0)),
            "n_transient": int(counts.get("transient", 0)),
            "top_genes": top,
        },
        warnings=warnings,
        written=[f"uns/{p.key_added}", mark_owned(adata, "trajectory_de", ("uns", p.key_added))],
        tables={"trajectory_de": table.to_dict("records")},
    )


def _check_trajectory_de(adata: AnnData, p: Any, result: ToolResult) -> list[str]:
    table = adata.uns[p.key_added]["results"]
    if table["pvalue"].isna().any():
        raise InvalidDataError("trajectory_de finished with missing p-values")
    return []


TRAJECTORY_DE = register(
    Tool(
        id="trajectory_de",
        name="Trajectory differential expression",
        category="trajectory",
        framework="scagent",
        fn=trajectory_de,
        params=TrajectoryDEParams,
        requires=("diffusion_pseudotime",),
        needs="log_normalized",
        checks=_check_trajectory_de,
        captures=("patsy", "scipy", "numpy", "anndata"),
        reference=VAN_DEN_BERGE_2020,
        description="Genes changing along pseudotime: natural cubic spline regression per gene, "
        "F test against no change, BH FDR, fold change and peak pseudotime.",
    )
)
