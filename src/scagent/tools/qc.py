"""Quality control: per-cell metrics on raw counts, and cell and gene filters by threshold or by MAD."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.tools._data import (
    OWNED_KEYS,
    claim_key,
    mark_owned,
    owner_of,
    require_counts,
    state_of,
)
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

#: Haemoglobin genes: human HBA1/2, HBB, HBD, HBE1, HBG1/2, HBM, HBQ1, HBZ and mouse Hba-*/Hbb-*.
#: Stricter than ``^HB[^P]``, which also catches HBEGF and HBS1L.
HB_PATTERN = r"^(HB(A\d?|B|D|E\d|G\d|M|Q\d|Z)|Hb[ab]-.*)$"


class QcMetricsParams(ParamsModel):
    mito_prefix: str = Field(
        "MT-",
        description="Prefix of mitochondrial genes, matched case-insensitively (MT- human, mt- mouse).",
    )
    ribo_prefixes: list[str] = Field(
        default_factory=lambda: ["RPS", "RPL"],
        description="Prefixes of ribosomal protein genes (case-insensitive).",
    )
    hb_pattern: str = Field(HB_PATTERN, description="Regular expression for haemoglobin genes.")
    percent_top: int = Field(
        20,
        ge=1,
        le=1000,
        description="pct_counts_in_top_N_genes: share of counts in the N most expressed genes; "
        "20 is the sc-best-practices choice for outlier detection (Heumos et al. 2023).",
    )
    gene_symbols: str | None = Field(
        None, description="var column holding gene symbols when var_names are Ensembl ids."
    )


def _gene_flags(adata: AnnData, p: QcMetricsParams) -> dict[str, np.ndarray]:
    names = adata.var[p.gene_symbols] if p.gene_symbols else adata.var_names
    names = pd.Index(names.astype(str)).str.upper()
    ribo = np.zeros(len(names), dtype=bool)
    for prefix in p.ribo_prefixes:
        ribo |= np.asarray(names.str.startswith(prefix.upper()))
    hb = np.asarray(pd.Index(names).str.match(re.compile(p.hb_pattern, re.IGNORECASE)))
    return {
        "mt": np.asarray(names.str.startswith(p.mito_prefix.upper())),
        "ribo": ribo,
        "hb": hb,
    }


def qc_metrics(adata: AnnData, **params: Any) -> ToolResult:
    """Per-cell and per-gene QC metrics on raw counts, wherever the counts live.

    Wraps :func:`scanpy.pp.calculate_qc_metrics` with mitochondrial, ribosomal and
    haemoglobin gene sets, on the counts found by the inspector (``X``,
    ``layers['counts']`` or ``.raw``), so it is correct on normalized data too.

    Parameters
    ----------
    adata
        The data; modified in place.
    **params
        See :class:`QcMetricsParams`.

    Returns
    -------
    ToolResult
        Writes ``obs``: ``n_genes_by_counts``, ``log1p_n_genes_by_counts``, ``total_counts``,
        ``log1p_total_counts``, ``pct_counts_in_top_{N}_genes``, ``total_counts_{mt,ribo,hb}``,
        ``pct_counts_{mt,ribo,hb}`` (and their log1p); ``var``: ``mt``, ``ribo``, ``hb``,
        ``n_cells_by_counts``, ``mean_counts``, ``pct_dropout_by_counts``, ``total_counts``.
    """
    import anndata as ad
    import scanpy as sc

    p = parse_params(QcMetricsParams, params, "qc_metrics")
    state = state_of(adata)
    counts = require_counts(adata, "qc_metrics", state)
    flags = _gene_flags(adata, p)
    var = pd.DataFrame(flags, index=adata.var_names.copy())
    work = ad.AnnData(X=counts, obs=pd.DataFrame(index=adata.obs_names.copy()), var=var)
    top = min(p.percent_top, adata.n_vars)
    obs_m, var_m = sc.pp.calculate_qc_metrics(
        work, qc_vars=["mt", "ribo", "hb"], percent_top=[top], log1p=True, inplace=False
    )
    warnings = [
        w
        for col in obs_m.columns
        if (w := claim_key(adata, "obs", col, "qc_metrics", overwrite=True)) is not None
    ]
    if warnings:
        warnings = [f"replaced {len(warnings)} existing obs QC columns (e.g. total_counts)"]
    for col in obs_m.columns:
        adata.obs[col] = obs_m[col].to_numpy()
    for name, flag in flags.items():
        same = name in adata.var and np.array_equal(np.asarray(adata.var[name], dtype=bool), flag)
        if name in adata.var and not same and owner_of(adata, "var", name) is None:
            warnings.append(f"replaced the existing var['{name}'] with this gene set")
        adata.var[name] = flag
    for col in var_m.columns:
        adata.var[col] = var_m[col].to_numpy()
    mark_owned(adata, "qc_metrics", *(("var", name) for name in flags))
    n_mt = int(flags["mt"].sum())
    if n_mt == 0:
        warnings.append(
            f"no mitochondrial genes start with '{p.mito_prefix}'; pct_counts_mt is 0 "
            "(mouse genes use 'mt-'; Ensembl ids need gene_symbols=<var column>)"
        )
    obs = adata.obs
    metrics: dict[str, float | int | str] = {
        "n_mito_genes": n_mt,
        "n_ribo_genes": int(flags["ribo"].sum()),
        "n_hb_genes": int(flags["hb"].sum()),
        "median_total_counts": float(obs["total_counts"].median()),
        "median_n_genes": float(obs["n_genes_by_counts"].median()),
        "median_pct_counts_mt": float(obs["pct_counts_mt"].median()),
        "counts_from": state.counts_location or "",
    }
    return ToolResult(
        summary=(
            f"QC metrics for {adata.n_obs} cells from counts in {state.counts_location}: median "
            f"{metrics['median_total_counts']:.0f} counts, {metrics['median_n_genes']:.0f} genes, "
            f"{metrics['median_pct_counts_mt']:.1f}% mitochondrial"
        ),
        metrics=metrics,
        warnings=warnings,
        written=[f"obs/{c}" for c in obs_m.columns]
        + [f"var/{c}" for c in [*flags, *var_m.columns]]
        + [f"uns/{OWNED_KEYS}"],
    )


# ---------------------------------------------------------------------------------- filters


class FilterCellsParams(ParamsModel):
    mode: Literal["mad", "thresholds"] = Field(
        "mad",
        description="'mad': flag outliers per sample by median absolute deviations "
        "(sc-best-practices, Heumos et al. 2023); 'thresholds': only the explicit limits below. "
        "Explicit limits also apply in 'mad' mode.",
    )
    nmads: float = Field(
        5.0,
        ge=1.0,
        le=20.0,
        description="MADs from the median (log1p counts, log1p genes, pct counts in top 20 genes) "
        "beyond which a cell is an outlier; 5 is permissive on purpose (Heumos et al. 2023).",
    )
    nmads_mt: float = Field(
        3.0,
        ge=1.0,
        le=20.0,
        description="MADs above the median mitochondrial percentage; 3 is usual.",
    )
    mt_floor: float | None = Field(
        8.0,
        ge=0.0,
        le=100.0,
        description="In 'mad' mode a mitochondrial outlier must also exceed this percentage "
        "(8% as in sc-best-practices, Heumos et al. 2023); None uses the MAD rule alone.",
    )
    min_counts: int | None = Field(
        None, ge=0, description="Keep cells with at least this many counts."
    )
    max_counts: int | None = Field(
        None, ge=1, description="Keep cells with at most this many counts."
    )
    min_genes: int | None = Field(
        None, ge=0, description="Keep cells with at least this many genes; 200 is a common floor."
    )
    max_genes: int | None = Field(
        None, ge=1, description="Keep cells with at most this many genes."
    )
    max_pct_mt: float | None = Field(
        None,
        ge=0.0,
        le=100.0,
        description="Keep cells with at most this mitochondrial percentage; 5-20% depending on tissue "
        "(Osorio & Cai 2021).",
    )
    sample_key: str | None = Field(
        None, description="obs column of samples: MADs are computed within each sample."
    )
    dry_run: bool = Field(
        False, description="Only flag outliers in obs['qc_outlier'] and report; remove nothing."
    )


#: The QC metrics whose limits are reported (the fraction in top genes is filtered on too,
#: but is no quantity a reader sets a limit on).
_LIMIT_METRICS = ("total_counts", "n_genes_by_counts", "pct_counts_mt")


def _mad_limits(values: np.ndarray, nmads: float) -> tuple[float, float]:
    from scipy.stats import median_abs_deviation

    med = float(np.median(values))
    mad = float(median_abs_deviation(values))
    return med - nmads * mad, med + nmads * mad


def qc_limits(
    obs: pd.DataFrame, params: Mapping[str, Any], groups: pd.Series | None = None
) -> pd.DataFrame:
    """The limits ``filter_cells`` applies with ``params``, per sample, on the standard QC metrics.

    The same rule as :func:`filter_cells` (which records this table in
    ``uns['filter_cells']['limits']``): MADs on log1p of total counts and genes, an upper
    MAD limit on the mitochondrial share above ``mt_floor``, and explicit thresholds.

    Parameters
    ----------
    obs
        Per-cell QC columns of the cells before filtering.
    params
        The recorded parameters of the ``filter_cells`` step.
    groups
        Sample of each cell when the filter ran per sample (its ``sample_key``); ``None``
        means one group, ``"all"``.

    Returns
    -------
    One row per (group, metric) with ``lower`` and ``upper`` (NaN where no limit applied)
    and ``rule`` (``"mad"``, ``"threshold"`` or both).
    """
    labels = (
        groups.astype(str).to_numpy()
        if groups is not None
        else np.full(len(obs), "all", dtype=object)
    )
    mad_mode = params.get("mode", "mad") == "mad"
    nmads = float(params.get("nmads", 5.0))
    nmads_mt = float(params.get("nmads_mt", 3.0))
    mt_floor = params.get("mt_floor", 8.0)
    fixed = {
        "total_counts": (params.get("min_counts"), params.get("max_counts")),
        "n_genes_by_counts": (params.get("min_genes"), params.get("max_genes")),
        "pct_counts_mt": (None, params.get("max_pct_mt")),
    }
    rows = []
    for group in sorted(pd.unique(labels), key=str):
        idx = labels == group
        for metric in _LIMIT_METRICS:
            if metric not in obs:
                continue
            values = obs[metric].to_numpy(dtype=float)[idx]
            lower = upper = np.nan
            rule = []
            if mad_mode and len(values):
                rule.append("mad")
                if metric == "pct_counts_mt":
                    # Upper side only, and a cell must also exceed the floor (both rules hold).
                    upper = _mad_limits(values, nmads_mt)[1]
                    if mt_floor is not None:
                        upper = max(upper, float(mt_floor))
                else:
                    low, high = _mad_limits(np.log1p(values), nmads)
                    lower, upper = float(np.expm1(low)), float(np.expm1(high))
                    if lower <= 0:
                        lower = np.nan  # no cell can fall below a non-positive limit
            low_fixed, high_fixed = fixed[metric]
            if low_fixed is not None:
                lower = float(low_fixed) if np.isnan(lower) else max(lower, float(low_fixed))
                rule.append("threshold")
            if high_fixed is not None:
                upper = float(high_fixed) if np.isnan(upper) else min(upper, float(high_fixed))
                rule.append("threshold")
            if not rule:
                continue  # this metric was not filtered on
            rows.append(
                {
                    "group": str(group),
                    "metric": metric,
                    "n_cells": int(idx.sum()),
                    "lower": lower,
                    "upper": upper,
                    "rule": "+".join(dict.fromkeys(rule)),
                }
            )
    return pd.DataFrame(rows, columns=["group", "metric", "n_cells", "lower", "upper", "rule"])


def _mad_outlier(values: np.ndarray, nmads: float, upper_only: bool = False) -> np.ndarray:
    from scipy.stats import median_abs_deviation

    med = np.median(values)
    mad = median_abs_deviation(values)
    if upper_only:
        return values > med + nmads * mad
    return (values < med - nmads * mad) | (values > med + nmads * mad)


def _qc_columns(adata: AnnData) -> str | None:
    top = [c for c in adata.obs.columns if re.fullmatch(r"pct_counts_in_top_\d+_genes", c)]
    need = ["total_counts", "n_genes_by_counts", "pct_counts_mt"]
    return top[0] if top and all(c in adata.obs for c in need) else None


def filter_cells(adata: AnnData, **params: Any) -> ToolResult:
    """Remove low-quality cells by explicit thresholds or MAD-based outliers per sample.

    Computes the QC metrics first when they are missing. Reports, per sample, how many
    cells each rule flags (rules overlap) and how many are removed.

    Parameters
    ----------
    adata
        The data; cells are removed in place (every per-cell slot shrinks).
    **params
        See :class:`FilterCellsParams`.

    Returns
    -------
    ToolResult
        With ``tables['per_sample']`` and ``tables['limits']``. Writes
        ``uns['filter_cells']``: ``limits`` (per sample and metric, the lower and upper
        limits applied, from MADs and/or thresholds: :func:`qc_limits`), ``per_sample``
        (cells flagged by each rule, removed, kept) and ``sample_key``. With
        ``dry_run=True`` nothing is removed and ``obs['qc_outlier']`` flags the cells that
        would be.

    Raises
    ------
    InvalidDataError
        If the rules would remove every cell.
    """
    p = parse_params(FilterCellsParams, params, "filter_cells")
    if p.mode == "thresholds" and all(
        v is None for v in (p.min_counts, p.max_counts, p.min_genes, p.max_genes, p.max_pct_mt)
    ):
        raise InvalidParameterError(
            "filter_cells with mode='thresholds' needs at least one of min_counts, max_counts, "
            "min_genes, max_genes, max_pct_mt",
            remedy="give a threshold (e.g. min_genes=200) or use mode='mad'",
        )
    if p.sample_key is not None and p.sample_key not in adata.obs:
        raise InvalidParameterError(
            f"sample_key '{p.sample_key}' is not an obs column",
            remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
        )
    written: list[str] = []
    top_col = _qc_columns(adata)
    if top_col is None:
        written += qc_metrics(adata).written
        top_col = _qc_columns(adata)
    obs = adata.obs
    samples = (
        obs[p.sample_key].astype(str).to_numpy()
        if p.sample_key
        else np.full(adata.n_obs, "all", dtype=object)
    )
    rules: dict[str, np.ndarray] = {}
    if p.mode == "mad":
        per_sample = {
            "mad_total_counts": (np.log1p(obs["total_counts"].to_numpy()), p.nmads, False),
            "mad_n_genes": (np.log1p(obs["n_genes_by_counts"].to_numpy()), p.nmads, False),
            f"mad_{top_col.removeprefix('pct_counts_')}": (obs[top_col].to_numpy(), p.nmads, False),
            "mad_pct_mt": (obs["pct_counts_mt"].to_numpy(), p.nmads_mt, True),
        }
        for rule, (values, n, upper) in per_sample.items():
            flag = np.zeros(adata.n_obs, dtype=bool)
            for s in np.unique(samples):
                idx = samples == s
                flag[idx] = _mad_outlier(values[idx], n, upper_only=upper)
            rules[rule] = flag
        if p.mt_floor is not None:
            # Require both: a tight mitochondrial distribution makes 3 MADs a few tenths of
            # a percent, which alone would flag healthy cells.
            rules["mad_pct_mt"] &= obs["pct_counts_mt"].to_numpy() > p.mt_floor
    limits = {
        "min_counts": (obs["total_counts"], p.min_counts, np.less),
        "max_counts": (obs["total_counts"], p.max_counts, np.greater),
        "min_genes": (obs["n_genes_by_counts"], p.min_genes, np.less),
        "max_genes": (obs["n_genes_by_counts"], p.max_genes, np.greater),
        "max_pct_mt": (obs["pct_counts_mt"], p.max_pct_mt, np.greater),
    }
    for rule, (col, limit, op) in limits.items():
        if limit is not None:
            rules[rule] = op(col.to_numpy(), limit)
    outlier = np.zeros(adata.n_obs, dtype=bool)
    for flag in rules.values():
        outlier |= flag

    table = []
    for s in np.unique(samples):
        idx = samples == s
        row: dict[str, Any] = {"sample": str(s), "n_cells": int(idx.sum())}
        row.update({rule: int(flag[idx].sum()) for rule, flag in rules.items()})
        row["removed"] = int(outlier[idx].sum())
        row["kept"] = int(idx.sum() - outlier[idx].sum())
        table.append(row)

    n_before, n_removed = adata.n_obs, int(outlier.sum())
    if n_removed == n_before:
        raise InvalidDataError(
            f"filter_cells would remove all {n_before} cells (rules: "
            + ", ".join(f"{r}: {int(f.sum())}" for r, f in rules.items())
            + ")",
            remedy="loosen the thresholds, raise nmads, or check that the counts are real counts",
        )
    warnings = []
    if n_removed > 0.5 * n_before:
        warnings.append(
            f"filter_cells removes {n_removed / n_before:.0%} of the cells; check the thresholds"
        )
    for row in table:
        if row["kept"] == 0:
            warnings.append(f"sample '{row['sample']}' loses all its {row['n_cells']} cells")
    metrics: dict[str, float | int | str] = {
        "n_cells_before": n_before,
        "n_removed": n_removed,
        "n_cells_after": n_before - n_removed,
    }
    metrics.update({f"flagged_by_{rule}": int(flag.sum()) for rule, flag in rules.items()})
    # The limits applied, computed on the cells as they were before filtering.
    limits_table = qc_limits(obs, p.model_dump(), obs[p.sample_key] if p.sample_key else None)
    if p.dry_run:
        adata.obs["qc_outlier"] = outlier
        written.append("obs/qc_outlier")
        summary = (
            f"would remove {n_removed} of {n_before} cells (dry run; flagged in obs['qc_outlier'])"
        )
    else:
        adata._inplace_subset_obs(~outlier)
        written += ["X", "obs", "layers", "obsm", "obsp"]
        summary = (
            f"removed {n_removed} of {n_before} cells ({', '.join(rules)}); {adata.n_obs} remain"
        )
    if (w := claim_key(adata, "uns", "filter_cells", "filter_cells")) is not None:
        warnings.append(w)
    adata.uns["filter_cells"] = {
        "limits": limits_table,
        "per_sample": pd.DataFrame(table),
        "sample_key": p.sample_key or "",
    }
    written += ["uns/filter_cells", mark_owned(adata, "filter_cells", ("uns", "filter_cells"))]
    return ToolResult(
        summary=summary,
        metrics=metrics,
        warnings=warnings,
        written=written,
        tables={"per_sample": table, "limits": limits_table.to_dict("records")},
    )


class FilterGenesParams(ParamsModel):
    min_cells: int = Field(
        3,
        ge=0,
        description="Keep genes detected (count > 0) in at least this many cells; 3 is common, "
        "or ~0.1% of cells for large data.",
    )
    min_counts: int | None = Field(
        None, ge=0, description="Keep genes with at least this many counts in total."
    )


def filter_genes(adata: AnnData, **params: Any) -> ToolResult:
    """Remove genes seen in too few cells, judged on the raw counts wherever they live.

    Parameters
    ----------
    adata
        The data; genes are removed in place (every per-gene slot shrinks).
    **params
        See :class:`FilterGenesParams`.

    Returns
    -------
    ToolResult
        ``metrics['n_removed']``, ``n_genes_after``.

    Raises
    ------
    InvalidDataError
        If the rules would remove every gene.
    """
    p = parse_params(FilterGenesParams, params, "filter_genes")
    counts = require_counts(adata, "filter_genes")
    detected = np.asarray((counts > 0).sum(axis=0)).ravel()
    keep = detected >= p.min_cells
    if p.min_counts is not None:
        totals = np.asarray(counts.sum(axis=0)).ravel()
        keep &= totals >= p.min_counts
    n_before, n_removed = adata.n_vars, int((~keep).sum())
    if n_removed == n_before:
        raise InvalidDataError(
            f"filter_genes would remove all {n_before} genes (min_cells={p.min_cells}, "
            f"min_counts={p.min_counts})",
            remedy="lower min_cells / min_counts",
        )
    adata._inplace_subset_var(keep)
    return ToolResult(
        summary=f"removed {n_removed} of {n_before} genes; {adata.n_vars} remain",
        metrics={"n_genes_before": n_before, "n_removed": n_removed, "n_genes_after": adata.n_vars},
        written=["X", "var", "layers", "varm"],
    )


REFERENCE_QC = (
    "Heumos et al. (2023) Best practices for single-cell analysis across modalities. "
    "Nat Rev Genet 24:550-572"
)

QC_METRICS = register(
    Tool(
        id="qc_metrics",
        name="QC metrics",
        category="qc",
        framework="scanpy",
        fn=qc_metrics,
        params=QcMetricsParams,
        needs="raw_counts",
        produces=("qc_metrics",),
        reference=REFERENCE_QC,
        description="Per-cell counts, genes, and mitochondrial / ribosomal / haemoglobin percentages "
        "from the raw counts.",
    )
)

FILTER_CELLS = register(
    Tool(
        id="filter_cells",
        name="Filter cells",
        category="qc",
        framework="scanpy",
        fn=filter_cells,
        params=FilterCellsParams,
        requires=("qc_metrics",),
        reference=REFERENCE_QC,
        description="Remove low-quality cells: MAD-based outliers per sample or explicit thresholds; "
        "reports cells removed per rule and sample.",
    )
)

FILTER_GENES = register(
    Tool(
        id="filter_genes",
        name="Filter genes",
        category="qc",
        framework="scanpy",
        fn=filter_genes,
        params=FilterGenesParams,
        needs="raw_counts",
        reference=REFERENCE_QC,
        description="Remove genes detected in too few cells.",
    )
)
